package ps

// Stream IDs the Muxer writes.
const (
	videoStreamID = 0xe0
	audioStreamID = 0xc0
)

// muxRate is the program_mux_rate written (units of 50 bytes/s, here
// 20 Mbit/s): decoders of live streams do not pace by it, but zero is
// forbidden.
const muxRate = 50000

// maxPESPayload is the room in one PES packet after a header with no
// timestamps (the length field counts at most 65,535 bytes).
const maxPESPayload = 65535 - 3

// Muxer writes access units as a program stream, one pack per frame, the
// way GB/T 28181 devices do. It is not safe for concurrent use.
type Muxer struct {
	video, audio StreamType
	buf          []byte
}

// NewMuxer returns a Muxer for one video stream and, unless audio is 0,
// one audio stream.
func NewMuxer(video StreamType, audio StreamType) *Muxer {
	return &Muxer{video: video, audio: audio}
}

// Video returns a pack holding one Annex-B access unit; a keyframe's pack
// also carries the system header and the PSM, so a receiver joining there
// learns the codecs. The slice is reused by the next call.
func (m *Muxer) Video(pts, dts int64, au []byte, key bool) []byte {
	b := appendPackHeader(m.buf[:0], dts)
	if key {
		b = m.appendSystemHeader(b)
		b = m.appendPSM(b)
	}
	b = appendPES(b, videoStreamID, pts, dts, au)
	m.buf = b
	return b
}

// Audio returns a pack holding one audio frame, or nil when the Muxer has
// no audio stream. The slice is reused by the next call.
func (m *Muxer) Audio(pts int64, data []byte) []byte {
	if m.audio == 0 {
		return nil
	}
	b := appendPackHeader(m.buf[:0], pts)
	b = appendPES(b, audioStreamID, pts, pts, data)
	m.buf = b
	return b
}

// appendPackHeader writes an MPEG-2 pack header with the SCR at scr (90 kHz).
func appendPackHeader(b []byte, scr int64) []byte {
	s := uint64(scr) & tsMask
	return append(b, 0, 0, 1, 0xba,
		0x40|byte(s>>27)&0x38|0x04|byte(s>>28)&0x03,
		byte(s>>20),
		byte(s>>12)&0xf8|0x04|byte(s>>13)&0x03,
		byte(s>>5),
		byte(s<<3)&0xf8|0x04, // SCR extension 0
		0x01,
		byte(muxRate>>14), byte(muxRate>>6&0xff), byte(muxRate<<2&0xff)|0x03,
		0xf8) // no stuffing
}

func (m *Muxer) appendSystemHeader(b []byte) []byte {
	n := 6 + 3
	if m.audio != 0 {
		n += 3
	}
	audioBound := byte(0)
	if m.audio != 0 {
		audioBound = 1
	}
	b = append(b, 0, 0, 1, 0xbb, byte(n>>8), byte(n),
		0x80|byte(muxRate>>15&0x7f), byte(muxRate>>7&0xff), byte(muxRate<<1&0xff)|0x01,
		audioBound<<2,
		0xe0|1, // audio and video locked, one video stream
		0x7f)
	// P-STD buffer bounds: video 1024-byte units, audio 128-byte units.
	b = append(b, videoStreamID, 0xe0|byte(400>>8), byte(400&0xff))
	if m.audio != 0 {
		b = append(b, audioStreamID, 0xc0, 32)
	}
	return b
}

func (m *Muxer) appendPSM(b []byte) []byte {
	esLen := 4
	if m.audio != 0 {
		esLen += 4
	}
	start := len(b)
	n := 10 + esLen
	b = append(b, 0, 0, 1, 0xbc, byte(n>>8), byte(n),
		0xe0, // current, version 0
		0xff,
		0, 0, // no program descriptors
		byte(esLen>>8), byte(esLen),
		byte(m.video), videoStreamID, 0, 0)
	if m.audio != 0 {
		b = append(b, byte(m.audio), audioStreamID, 0, 0)
	}
	c := crc32MPEG(b[start:])
	return append(b, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
}

// appendPES writes data as PES packets of stream sid, the first carrying
// the timestamps (DTS only when it differs from the PTS).
func appendPES(b []byte, sid byte, pts, dts int64, data []byte) []byte {
	pts &= tsMask
	dts &= tsMask
	first := true
	for first || len(data) > 0 {
		hl := 0
		if first {
			hl = 5
			if dts != pts {
				hl = 10
			}
		}
		n := min(len(data), maxPESPayload-hl)
		l := 3 + hl + n
		b = append(b, 0, 0, 1, sid, byte(l>>8), byte(l), 0x80)
		switch hl {
		case 0:
			b = append(b, 0x00, 0)
		case 5:
			b = append(b, 0x80, 5)
			b = appendTS(b, 0x2, pts)
		default:
			b = append(b, 0xc0, 10)
			b = appendTS(b, 0x3, pts)
			b = appendTS(b, 0x1, dts)
		}
		b = append(b, data[:n]...)
		data = data[n:]
		first = false
	}
	return b
}

// appendTS writes a 33-bit timestamp with its 4-bit prefix and markers.
func appendTS(b []byte, prefix byte, ts int64) []byte {
	t := uint64(ts)
	return append(b,
		prefix<<4|byte(t>>29)&0x0e|1,
		byte(t>>22),
		byte(t>>14)&0xfe|1,
		byte(t>>7),
		byte(t<<1)|1)
}

// crc32MPEG is CRC-32/MPEG-2 (polynomial 0x04C11DB7, not reflected), the
// PSM's checksum.
func crc32MPEG(b []byte) uint32 {
	c := uint32(0xffffffff)
	for _, x := range b {
		c ^= uint32(x) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04c11db7
			} else {
				c <<= 1
			}
		}
	}
	return c
}
