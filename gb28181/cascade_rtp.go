package gb28181

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/gb28181/ps"
	"github.com/tianyan/vms/streaming"
)

// unitFrames turns the hub's units of one video track (RTP packetised for
// WebRTC once, for every reader) back into access units for the PS muxer.
type unitFrames struct {
	decode func(*rtp.Packet) ([][]byte, error)
	typ    ps.StreamType
}

func newUnitFrames(codec string) (*unitFrames, error) {
	switch codec {
	case streaming.CodecH264:
		d, err := (&format.H264{PayloadTyp: 96, PacketizationMode: 1}).CreateDecoder()
		if err != nil {
			return nil, err
		}
		return &unitFrames{decode: d.Decode, typ: ps.H264}, nil
	case streaming.CodecH265:
		d, err := (&format.H265{PayloadTyp: 96}).CreateDecoder()
		if err != nil {
			return nil, err
		}
		return &unitFrames{decode: d.Decode, typ: ps.H265}, nil
	}
	return nil, fmt.Errorf("codec %s cannot be sent as PS", codec)
}

// frame returns the access unit u carries; ok is false while u does not
// complete one.
func (m *unitFrames) frame(u *streaming.Unit) (f ps.Frame, ok bool, err error) {
	var au [][]byte
	for _, p := range u.Packets {
		nalus, err := m.decode(p)
		switch {
		case err == nil:
			au = nalus
		case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph265.ErrMorePacketsNeeded):
		default:
			return ps.Frame{}, false, err
		}
	}
	if len(au) == 0 {
		return ps.Frame{}, false, nil
	}
	// Annex-B framing is the same for H.265 NAL units.
	annexB, err := h264.AnnexB(au).Marshal()
	if err != nil {
		return ps.Frame{}, false, err
	}
	pts := int64(u.Timestamp)
	return ps.Frame{Type: m.typ, PTS: pts, DTS: pts, Data: annexB, Key: u.Keyframe}, true, nil
}

// ptsClock maps one track's timestamps onto the PS clock (90 kHz): the
// first at base, each next by its delta, so a wrapping RTP timestamp never
// sends the PTS back.
type ptsClock struct {
	set  bool
	last uint32
	pts  int64
	rate int64
}

func (c *ptsClock) at(ts uint32, base func() int64) int64 {
	if !c.set {
		c.set, c.last, c.pts = true, ts, base()
		return c.pts
	}
	c.pts += int64(int32(ts-c.last)) * 90000 / c.rate
	c.last = ts
	return c.pts
}

// streamFrames turns a stream's units into PS frames: its video (H.264 or
// H.265) and its G.711 audio if it has one. The hub's tracks keep
// timelines of their own, so both are anchored to the wall clock when they
// first appear here: close enough for lips, never drifting apart.
type streamFrames struct {
	video, audio int // track indexes; audio -1 when none is sent
	vdec         *unitFrames
	atyp         ps.StreamType
	start        time.Time
	vclock       ptsClock
	aclock       ptsClock
	// snapSpan is how far (90 kHz) the joining snapshot's first video unit
	// lies before its last: the last one is "now".
	snapSpan int64
}

func newStreamFrames(s *streaming.Stream) (*streamFrames, error) {
	sf := &streamFrames{video: -1, audio: -1, start: time.Now()}
	for i, t := range s.Tracks {
		switch {
		case t.Kind == streaming.KindVideo && sf.video < 0:
			d, err := newUnitFrames(t.Codec)
			if err != nil {
				return nil, err
			}
			sf.video, sf.vdec = i, d
			sf.vclock.rate = int64(t.ClockRate)
		case t.Codec == streaming.CodecPCMA && sf.audio < 0:
			sf.audio, sf.atyp = i, ps.G711A
		case t.Codec == streaming.CodecPCMU && sf.audio < 0:
			sf.audio, sf.atyp = i, ps.G711U
		}
		if i == sf.audio {
			sf.aclock.rate = int64(t.ClockRate)
		}
	}
	if sf.video < 0 {
		return nil, errors.New("no H.264 or H.265 video")
	}
	return sf, nil
}

// types are the stream types to announce in the PSM.
func (sf *streamFrames) types() (video, audio ps.StreamType) {
	return sf.vdec.typ, sf.atyp
}

// joined tells the clock the snapshot a view starts with.
func (sf *streamFrames) joined(snap []*streaming.Unit) {
	var first, last *streaming.Unit
	for _, u := range snap {
		if u.Track == sf.video {
			if first == nil {
				first = u
			}
			last = u
		}
	}
	if first != nil && sf.vclock.rate > 0 {
		sf.snapSpan = int64(int32(last.Timestamp-first.Timestamp)) * 90000 / sf.vclock.rate
	}
}

func (sf *streamFrames) now() int64 {
	// One second of headroom so an early snapshot unit never goes negative.
	return 90000 + time.Since(sf.start).Nanoseconds()*9/100000
}

// frame returns the PS frame u carries; ok is false when u carries none
// (an incomplete unit, another track).
func (sf *streamFrames) frame(u *streaming.Unit) (ps.Frame, bool, error) {
	switch u.Track {
	case sf.video:
		f, ok, err := sf.vdec.frame(u)
		if !ok || err != nil {
			return f, false, err
		}
		f.PTS = sf.vclock.at(u.Timestamp, func() int64 { return sf.now() - sf.snapSpan })
		f.DTS = f.PTS
		return f, true, nil
	case sf.audio:
		var data []byte
		for _, p := range u.Packets {
			data = append(data, p.Payload...)
		}
		if len(data) == 0 {
			return ps.Frame{}, false, nil
		}
		pts := sf.aclock.at(u.Timestamp, sf.now)
		return ps.Frame{Type: sf.atyp, PTS: pts, DTS: pts, Data: data}, true, nil
	}
	return ps.Frame{}, false, nil
}
