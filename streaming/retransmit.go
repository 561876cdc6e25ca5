package streaming

import (
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// retransmitHistory is how many sent packets per track a viewer can resend
// on NACK: ~4 s of a 2 Mbit/s stream, enough to cover a whole joining GOP.
const retransmitHistory = 1024

// retransmitter answers NACKs from a ring of references to the shared,
// already-packetized packets: a viewer keeps 24 bytes per remembered packet
// instead of a copy of it, which is what keeps per-viewer memory small.
type retransmitter struct {
	mu   sync.Mutex
	ring [retransmitHistory]sentPacket
}

type sentPacket struct {
	pkt *rtp.Packet // shared with every viewer; never modified
	seq uint16
	ts  uint32
}

func (r *retransmitter) remember(pkt *rtp.Packet, seq uint16, ts uint32) {
	r.mu.Lock()
	r.ring[seq%retransmitHistory] = sentPacket{pkt: pkt, seq: seq, ts: ts}
	r.mu.Unlock()
}

func (r *retransmitter) lookup(seq uint16) (sentPacket, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sp := r.ring[seq%retransmitHistory]
	return sp, sp.pkt != nil && sp.seq == seq
}

// handleRTCP resends what a NACK asks for. It returns how many packets it
// resent.
func (r *retransmitter) handleRTCP(pkts []rtcp.Packet, track *webrtc.TrackLocalStaticRTP) int {
	n := 0
	var out rtp.Packet
	for _, p := range pkts {
		nack, ok := p.(*rtcp.TransportLayerNack)
		if !ok {
			continue
		}
		for _, pair := range nack.Nacks {
			for _, seq := range pair.PacketList() {
				sp, ok := r.lookup(seq)
				if !ok {
					continue
				}
				out.Header = sp.pkt.Header
				out.Header.SequenceNumber = sp.seq
				out.Header.Timestamp = sp.ts
				out.Payload = sp.pkt.Payload
				if track.WriteRTP(&out) == nil {
					n++
				}
			}
		}
	}
	return n
}
