package gb28181

import (
	"errors"
	"fmt"

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
