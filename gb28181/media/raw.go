package media

import (
	"errors"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/gb28181/ps"
)

// rawDepacketizer takes H.264 (RFC 6184) or H.265 (RFC 7798) RTP, which a
// device sends instead of PS when it answered the SDP offer's H264/98 or
// H265 payload type.
type rawDepacketizer struct {
	codec ps.StreamType
	h264  *rtph264.Decoder
	h265  *rtph265.Decoder
	pkt   rtp.Packet
	fedTS uint32
	fed   bool
}

func newRawDepacketizer(codec ps.StreamType) *rawDepacketizer {
	d := &rawDepacketizer{codec: codec}
	d.reset()
	return d
}

// reset drops a partial access unit (after lost packets).
func (d *rawDepacketizer) reset() {
	if d.codec == ps.H265 {
		d.h265 = &rtph265.Decoder{}
		_ = d.h265.Init()
	} else {
		d.h264 = &rtph264.Decoder{}
		_ = d.h264.Init()
	}
	d.fed = false
}

func (d *rawDepacketizer) push(p packet, lost bool, emit func(ps.Frame)) {
	if lost {
		d.reset()
	}
	d.pkt.Marker, d.pkt.SequenceNumber, d.pkt.Timestamp = p.marker, p.seq, p.ts
	// The decoders keep references to payloads until the unit is
	// complete, and the receiver reuses its read buffer: copy.
	d.pkt.Payload = append([]byte(nil), p.payload...)
	// The decoders also end a unit where the timestamp changes (a lost
	// marker): the unit returned then is the previous timestamp's.
	ts := p.ts
	if d.fed && d.fedTS != p.ts {
		ts = d.fedTS
	}
	d.fedTS, d.fed = p.ts, true
	var au [][]byte
	var err error
	if d.codec == ps.H265 {
		au, err = d.h265.Decode(&d.pkt)
	} else {
		au, err = d.h264.Decode(&d.pkt)
	}
	if err != nil {
		if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph265.ErrMorePacketsNeeded) {
			d.reset()
		}
		return
	}
	f := ps.Frame{Type: d.codec, PTS: int64(ts), DTS: int64(ts)}
	if d.codec == ps.H265 {
		f.Key = h265.IsRandomAccess(au)
		f.Data, err = h264.AnnexB(au).Marshal()
	} else {
		f.Key = h264.IsRandomAccess(au) || hasSPS(au)
		f.Data, err = h264.AnnexB(au).Marshal()
	}
	if err != nil || len(f.Data) == 0 {
		return
	}
	emit(f)
}

func hasSPS(au [][]byte) bool {
	for _, n := range au {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			return true
		}
	}
	return false
}
