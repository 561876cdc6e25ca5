package gb28181

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/gb28181/ps"
	"github.com/tianyan/vms/streaming"
)

// psPayloadMax bounds one RTP payload of PS sent upward: under the usual
// 1500-byte MTU with IP, UDP and RTP headers.
const psPayloadMax = 1400

// rtpWriteTimeout bounds one write to a TCP media connection: a platform
// that stops reading must not hold the view's goroutine forever.
const rtpWriteTimeout = 5 * time.Second

// psSender packetises a program stream into RTP (payload type 96) on conn:
// datagrams over UDP, RFC 4571 length-prefixed frames over TCP.
type psSender struct {
	conn net.Conn
	tcp  bool
	ssrc uint32
	seq  uint16
	buf  []byte
}

func newPSSender(conn net.Conn, tcp bool, ssrc uint32) *psSender {
	return &psSender{conn: conn, tcp: tcp, ssrc: ssrc, seq: uint16(time.Now().UnixNano())}
}

// write sends one pack (a frame's PS bytes) stamped ts (90 kHz), the
// marker on its last packet.
func (s *psSender) write(ts uint32, pack []byte) error {
	for len(pack) > 0 {
		n := min(len(pack), psPayloadMax)
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc,
			Marker: n == len(pack)}, Payload: pack[:n]}
		s.seq++
		raw, err := pkt.Marshal()
		if err != nil {
			return err
		}
		if s.tcp {
			s.buf = binary.BigEndian.AppendUint16(s.buf[:0], uint16(len(raw)))
			s.buf = append(s.buf, raw...)
			raw = s.buf
			_ = s.conn.SetWriteDeadline(time.Now().Add(rtpWriteTimeout))
		}
		if _, err := s.conn.Write(raw); err != nil {
			return err
		}
		pack = pack[n:]
	}
	return nil
}

// unitMuxer turns the hub's units of one video track (RTP packetised for
// WebRTC) back into access units and muxes them as PS.
type unitMuxer struct {
	decode func(*rtp.Packet) ([][]byte, error)
	mux    *ps.Muxer
}

func newUnitMuxer(codec string) (*unitMuxer, error) {
	switch codec {
	case streaming.CodecH264:
		d, err := (&format.H264{PayloadTyp: 96, PacketizationMode: 1}).CreateDecoder()
		if err != nil {
			return nil, err
		}
		return &unitMuxer{decode: d.Decode, mux: ps.NewMuxer(ps.H264, 0)}, nil
	case streaming.CodecH265:
		d, err := (&format.H265{PayloadTyp: 96}).CreateDecoder()
		if err != nil {
			return nil, err
		}
		return &unitMuxer{decode: d.Decode, mux: ps.NewMuxer(ps.H265, 0)}, nil
	}
	return nil, fmt.Errorf("codec %s cannot be sent as PS", codec)
}

// pack returns the PS pack of u, or nil while u does not complete an access unit.
func (m *unitMuxer) pack(u *streaming.Unit) ([]byte, error) {
	var au [][]byte
	for _, p := range u.Packets {
		nalus, err := m.decode(p)
		switch {
		case err == nil:
			au = nalus
		case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph265.ErrMorePacketsNeeded):
		default:
			return nil, err
		}
	}
	if len(au) == 0 {
		return nil, nil
	}
	annexB, err := h264.AnnexB(au).Marshal()
	if err != nil {
		return nil, err
	}
	pts := int64(u.Timestamp)
	return m.mux.Video(pts, pts, annexB, u.Keyframe), nil
}
