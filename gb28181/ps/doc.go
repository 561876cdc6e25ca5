// Package ps reads and writes the MPEG-2 Program Stream (ISO/IEC 13818-1
// §2.5) as GB/T 28181 devices send it over RTP: pack headers, a system
// header and a program stream map (PSM) before keyframes, and PES packets
// carrying H.264/H.265 video and G.711/AAC audio.
//
// The Demuxer turns any slicing of such a stream back into access units. It
// is written for what real devices send, not only for what the standard
// allows: MPEG-1 pack headers, a missing PSM (the codec is then guessed from
// the payload), PES packets with no length, access units split over several
// PES packets or several access units in one (as ffmpeg writes them), and
// garbage between packets (it resynchronises on the next start code). Its
// buffers are bounded and no input makes it panic.
//
// The Muxer writes the layout GB/T 28181 devices use: one pack per frame,
// the system header and PSM before each keyframe, PES packets of at most
// 65,535 bytes with PTS/DTS on the first.
//
// The package knows nothing of RTP, sockets or SIP: gb28181/media carries
// its bytes over RTP.
package ps

// StreamType is an elementary stream type as written in a PSM (ISO/IEC
// 13818-1 Table 2-34, with the GB/T 28181 values for G.711).
type StreamType uint8

// Stream types GB/T 28181 devices use.
const (
	MPEG4 StreamType = 0x10
	H264  StreamType = 0x1b
	H265  StreamType = 0x24
	AAC   StreamType = 0x0f
	G711A StreamType = 0x90
	G711U StreamType = 0x91
)

// IsVideo reports whether t is a video stream type this package knows.
func (t StreamType) IsVideo() bool {
	return t == H264 || t == H265 || t == MPEG4
}

// String names the stream type for logs.
func (t StreamType) String() string {
	switch t {
	case MPEG4:
		return "MPEG-4"
	case H264:
		return "H264"
	case H265:
		return "H265"
	case AAC:
		return "AAC"
	case G711A:
		return "G711A"
	case G711U:
		return "G711U"
	}
	return "0x" + string("0123456789abcdef"[t>>4]) + string("0123456789abcdef"[t&15])
}

// Frame is one access unit of one elementary stream.
type Frame struct {
	Type StreamType
	// PTS and DTS are on the 90 kHz clock, 33 bits as carried in PES
	// headers (a uint32 conversion gives a continuous RTP timestamp).
	PTS, DTS int64
	// Data is an Annex-B access unit for video (start codes included), the
	// raw payload for audio.
	Data []byte
	// Key marks a random-access video unit: H.264 IDR or SPS, H.265 IRAP or
	// VPS.
	Key bool
}
