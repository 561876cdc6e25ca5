package streaming

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// webrtcPayloadMax keeps RTP packets under common path MTUs once SRTP and
// TURN overhead are added.
const webrtcPayloadMax = 1150

// Codec names as used in stats and errors.
const (
	CodecH264 = "H264"
	CodecH265 = "H265"
	CodecPCMA = "PCMA"
	CodecPCMU = "PCMU"
	CodecOpus = "opus"
)

// TrackKind says whether a track carries video or audio.
type TrackKind string

// Track kinds.
const (
	KindVideo TrackKind = "video"
	KindAudio TrackKind = "audio"
)

// Track is one media of a Stream as it is offered to readers.
type Track struct {
	Kind      TrackKind
	Codec     string
	ClockRate int
	Channels  int

	media  *description.Media
	format format.Format
}

// Unit is one access unit (video frame or audio packet) already packetized
// for WebRTC. Units are shared by every reader and must never be modified.
type Unit struct {
	Track    int
	Keyframe bool
	// Timestamp is the RTP timestamp on the stream's continuous timeline.
	Timestamp uint32
	Packets   []*rtp.Packet
	Bytes     int
}

// processor turns incoming RTP packets of one track into Units.
type processor interface {
	process(pkt *rtp.Packet) (*Unit, error)
	reset()
}

// tracksFromDescription picks the tracks we can serve and says why others were skipped.
func tracksFromDescription(desc *description.Session) (tracks []*Track, skipped []string) {
	haveVideo, haveAudio := false, false
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			t := trackFromFormat(m, f)
			if t == nil {
				skipped = append(skipped, skipReason(f))
				continue
			}
			if (t.Kind == KindVideo && haveVideo) || (t.Kind == KindAudio && haveAudio) {
				skipped = append(skipped, fmt.Sprintf("%s: a second %s track is not served", f.Codec(), t.Kind))
				continue
			}
			if t.Kind == KindVideo {
				haveVideo = true
			} else {
				haveAudio = true
			}
			tracks = append(tracks, t)
			break
		}
	}
	return tracks, skipped
}

func trackFromFormat(m *description.Media, f format.Format) *Track {
	switch f := f.(type) {
	case *format.H264:
		if f.PacketizationMode >= 2 {
			return nil
		}
		return &Track{Kind: KindVideo, Codec: CodecH264, ClockRate: 90000, media: m, format: f}
	case *format.H265:
		return &Track{Kind: KindVideo, Codec: CodecH265, ClockRate: 90000, media: m, format: f}
	case *format.G711:
		if f.SampleRate != 8000 || f.ChannelCount != 1 {
			return nil
		}
		c := CodecPCMA
		if f.MULaw {
			c = CodecPCMU
		}
		return &Track{Kind: KindAudio, Codec: c, ClockRate: 8000, Channels: 1, media: m, format: f}
	case *format.Opus:
		return &Track{Kind: KindAudio, Codec: CodecOpus, ClockRate: 48000, Channels: 2, media: m, format: f}
	}
	return nil
}

func skipReason(f format.Format) string {
	switch f.(type) {
	case *format.MPEG4Audio, *format.MPEG4AudioLATM:
		return "AAC audio skipped: browsers cannot receive AAC over WebRTC and Tianyan does not transcode"
	case *format.G711:
		return "G.711 skipped: only 8 kHz mono is allowed in WebRTC"
	case *format.H264:
		return "H264 skipped: packetization-mode 2 is not supported"
	}
	return fmt.Sprintf("%s skipped: codec not supported for WebRTC", f.Codec())
}

func newProcessor(t *Track) processor {
	switch t.Codec {
	case CodecH264:
		return &h264Processor{format: t.format.(*format.H264)}
	case CodecH265:
		return &h265Processor{format: t.format.(*format.H265)}
	}
	return &audioProcessor{}
}

func isBenignDecodeErr(err error) bool {
	return errors.Is(err, rtph264.ErrMorePacketsNeeded) ||
		errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) ||
		errors.Is(err, rtph265.ErrMorePacketsNeeded) ||
		errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious)
}

// copyAU copies NAL units out of buffers that the RTSP library may reuse.
func copyAU(au [][]byte) ([][]byte, int) {
	n := 0
	for _, nalu := range au {
		n += len(nalu)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(au))
	for i, nalu := range au {
		start := len(buf)
		buf = append(buf, nalu...)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out, n
}

// h264Processor depacketizes camera RTP into access units and packetizes
// them again for browsers: AUDs dropped, SPS/PPS in front of every IDR so a
// joining viewer can decode the first frame it gets.
type h264Processor struct {
	format *format.H264
	dec    *rtph264.Decoder
	enc    *rtph264.Encoder
	sps    []byte
	pps    []byte

	// Width and Height are read from the latest SPS.
	width, height int
}

func (p *h264Processor) reset() { p.dec = nil }

func (p *h264Processor) init() error {
	if p.sps == nil {
		sps, pps := p.format.SafeParams()
		p.setSPS(sps)
		p.pps = cloneBytes(pps)
	}
	p.dec = &rtph264.Decoder{PacketizationMode: p.format.PacketizationMode}
	if err := p.dec.Init(); err != nil {
		return err
	}
	if p.enc == nil {
		p.enc = &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: webrtcPayloadMax, PacketizationMode: 1}
		if err := p.enc.Init(); err != nil {
			return err
		}
	}
	return nil
}

func (p *h264Processor) setSPS(sps []byte) {
	if len(sps) == 0 {
		return
	}
	p.sps = cloneBytes(sps)
	var s h264.SPS
	if err := s.Unmarshal(sps); err == nil {
		p.width, p.height = s.Width(), s.Height()
	}
}

func (p *h264Processor) process(pkt *rtp.Packet) (*Unit, error) {
	if p.dec == nil {
		if err := p.init(); err != nil {
			return nil, err
		}
	}
	au, err := p.dec.Decode(pkt)
	if err != nil {
		if isBenignDecodeErr(err) {
			return nil, nil
		}
		return nil, err
	}
	filtered := au[:0:0]
	hasSPS, hasPPS, key := false, false, false
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		case h264.NALUTypeSPS:
			hasSPS = true
			if string(nalu) != string(p.sps) {
				p.setSPS(nalu)
			}
		case h264.NALUTypePPS:
			hasPPS = true
			if string(nalu) != string(p.pps) {
				p.pps = cloneBytes(nalu)
			}
		case h264.NALUTypeIDR:
			key = true
		}
		filtered = append(filtered, nalu)
	}
	if len(filtered) == 0 {
		return nil, nil
	}
	if key {
		var prefix [][]byte
		if !hasSPS && p.sps != nil {
			prefix = append(prefix, p.sps)
		}
		if !hasPPS && p.pps != nil {
			prefix = append(prefix, p.pps)
		}
		if prefix != nil {
			filtered = append(prefix, filtered...)
		}
	}
	owned, size := copyAU(filtered)
	pkts, err := p.enc.Encode(owned)
	if err != nil {
		return nil, err
	}
	for _, q := range pkts {
		q.Timestamp = pkt.Timestamp
	}
	return &Unit{Keyframe: key, Timestamp: pkt.Timestamp, Packets: pkts, Bytes: size}, nil
}

// h265Processor is the H.265 twin of h264Processor.
type h265Processor struct {
	format        *format.H265
	dec           *rtph265.Decoder
	enc           *rtph265.Encoder
	vps, sps, pps []byte
	width, height int
}

func (p *h265Processor) reset() { p.dec = nil }

func (p *h265Processor) init() error {
	if p.sps == nil {
		vps, sps, pps := p.format.SafeParams()
		p.vps, p.pps = cloneBytes(vps), cloneBytes(pps)
		p.setSPS(sps)
	}
	p.dec = &rtph265.Decoder{MaxDONDiff: p.format.MaxDONDiff}
	if err := p.dec.Init(); err != nil {
		return err
	}
	if p.enc == nil {
		p.enc = &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: webrtcPayloadMax}
		if err := p.enc.Init(); err != nil {
			return err
		}
	}
	return nil
}

func (p *h265Processor) setSPS(sps []byte) {
	if len(sps) == 0 {
		return
	}
	p.sps = cloneBytes(sps)
	var s h265.SPS
	if err := s.Unmarshal(sps); err == nil {
		p.width, p.height = s.Width(), s.Height()
	}
}

func (p *h265Processor) process(pkt *rtp.Packet) (*Unit, error) {
	if p.dec == nil {
		if err := p.init(); err != nil {
			return nil, err
		}
	}
	au, err := p.dec.Decode(pkt)
	if err != nil {
		if isBenignDecodeErr(err) {
			return nil, nil
		}
		return nil, err
	}
	filtered := au[:0:0]
	hasVPS, hasSPS, hasPPS := false, false, false
	for _, nalu := range au {
		if len(nalu) < 2 {
			continue
		}
		switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
		case h265.NALUType_AUD_NUT:
			continue
		case h265.NALUType_VPS_NUT:
			hasVPS = true
			p.vps = cloneBytes(nalu)
		case h265.NALUType_SPS_NUT:
			hasSPS = true
			if string(nalu) != string(p.sps) {
				p.setSPS(nalu)
			}
		case h265.NALUType_PPS_NUT:
			hasPPS = true
			p.pps = cloneBytes(nalu)
		}
		filtered = append(filtered, nalu)
	}
	if len(filtered) == 0 {
		return nil, nil
	}
	key := h265.IsRandomAccess(filtered)
	if key {
		var prefix [][]byte
		if !hasVPS && p.vps != nil {
			prefix = append(prefix, p.vps)
		}
		if !hasSPS && p.sps != nil {
			prefix = append(prefix, p.sps)
		}
		if !hasPPS && p.pps != nil {
			prefix = append(prefix, p.pps)
		}
		if prefix != nil {
			filtered = append(prefix, filtered...)
		}
	}
	owned, size := copyAU(filtered)
	pkts, err := p.enc.Encode(owned)
	if err != nil {
		return nil, err
	}
	for _, q := range pkts {
		q.Timestamp = pkt.Timestamp
	}
	return &Unit{Keyframe: key, Timestamp: pkt.Timestamp, Packets: pkts, Bytes: size}, nil
}

// audioProcessor passes audio RTP through, on a clean header of our own.
type audioProcessor struct{}

func (audioProcessor) reset() {}

func (audioProcessor) process(pkt *rtp.Packet) (*Unit, error) {
	if len(pkt.Payload) == 0 {
		return nil, nil
	}
	q := &rtp.Packet{
		Header: rtp.Header{
			Version:   2,
			Marker:    pkt.Marker,
			Timestamp: pkt.Timestamp,
		},
		Payload: cloneBytes(pkt.Payload),
	}
	return &Unit{Timestamp: pkt.Timestamp, Packets: []*rtp.Packet{q}, Bytes: len(q.Payload)}, nil
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// timeline keeps a track's RTP timestamps continuous across source sessions,
// so a viewer who stays through a camera reconnect sees time move forward.
type timeline struct {
	clockRate int
	started   bool
	offset    uint32
	lastOut   uint32
	lastWall  time.Time
	rebase    bool
}

func (t *timeline) next(in uint32, now time.Time) uint32 {
	switch {
	case !t.started:
		t.started = true
	case t.rebase:
		ticks := uint32(now.Sub(t.lastWall).Seconds() * float64(t.clockRate))
		if ticks == 0 {
			ticks = 1
		}
		t.offset = t.lastOut + ticks - in
	}
	t.rebase = false
	out := in + t.offset
	t.lastOut, t.lastWall = out, now
	return out
}
