package media

// Reorder window: a packet ahead of the next expected one waits in a slot
// until the gap fills or maxHeld packets wait, then the gap is given up as
// lost. At 2 Mbit/s (about 180 packets a second) eight packets are some
// 45 ms: enough for the reordering of a LAN or a bonded uplink, short
// enough not to delay a live picture.
const (
	window  = 64
	maxHeld = 8
)

// packet is an RTP packet's fields the receiver uses.
type packet struct {
	seq     uint16
	ts      uint32
	marker  bool
	payload []byte
}

// reorder puts packets back in sequence order within a small window.
type reorder struct {
	slots   [window]slot
	next    uint16
	started bool
	held    int
}

type slot struct {
	used bool
	pkt  packet
	buf  []byte // owns pkt.payload, reused
}

// push takes one packet (its payload is copied if it must wait) and calls
// out for each packet now in order; lost is set on the first packet after
// a gap.
func (r *reorder) push(p packet, out func(p packet, lost bool)) {
	if !r.started {
		r.started, r.next = true, p.seq
	}
	d := int16(p.seq - r.next)
	switch {
	case d == 0:
		out(p, false)
		r.next++
		r.drain(out, false)
	case d < 0 && d > -window*4:
		// Late or duplicate: its place has passed.
	case d < 0 || d >= window:
		// A jump: the sender restarted or a long gap. Start over here.
		r.flush(out)
		r.next = p.seq
		out(p, true)
		r.next++
	default:
		s := &r.slots[p.seq%window]
		if s.used {
			return // duplicate
		}
		s.used = true
		s.buf = append(s.buf[:0], p.payload...)
		s.pkt = p
		s.pkt.payload = s.buf
		r.held++
		if r.held > maxHeld {
			r.skipGap(out)
		}
	}
}

// drain delivers the packets waiting from next on.
func (r *reorder) drain(out func(packet, bool), lost bool) {
	for {
		s := &r.slots[r.next%window]
		if !s.used || s.pkt.seq != r.next {
			return
		}
		s.used = false
		r.held--
		out(s.pkt, lost)
		lost = false
		r.next++
	}
}

// skipGap gives up the missing packets before the first waiting one.
func (r *reorder) skipGap(out func(packet, bool)) bool {
	for i := range uint16(window) {
		if s := &r.slots[(r.next+i)%window]; s.used && s.pkt.seq == r.next+i {
			r.next += i
			r.drain(out, true)
			return true
		}
	}
	return false
}

// flush delivers everything waiting, in order, as after a gap.
func (r *reorder) flush(out func(packet, bool)) {
	for r.held > 0 {
		if !r.skipGap(out) {
			// Cannot happen (waiting packets are always within the
			// window ahead of next); never loop on it.
			for i := range r.slots {
				r.slots[i].used = false
			}
			r.held = 0
		}
	}
}
