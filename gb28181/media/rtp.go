package media

// parseRTP reads an RTP packet's fixed header, skipping CSRCs and a header
// extension and stripping padding; ok is false for anything that is not a
// well-formed version 2 packet.
func parseRTP(b []byte) (p packet, ssrc uint32, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return p, 0, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return p, 0, false
		}
		off += 4 + 4*(int(b[off+2])<<8|int(b[off+3]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		pad := int(b[end-1])
		if pad == 0 || pad > end-off {
			return p, 0, false
		}
		end -= pad
	}
	if off > end {
		return p, 0, false
	}
	p.marker = b[1]&0x80 != 0
	p.seq = uint16(b[2])<<8 | uint16(b[3])
	p.ts = uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7])
	ssrc = uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])
	p.payload = b[off:end]
	return p, ssrc, true
}

// appendRTPHeader appends a 12-byte RTP header.
func appendRTPHeader(b []byte, pt uint8, marker bool, seq uint16, ts, ssrc uint32) []byte {
	m := pt & 0x7f
	if marker {
		m |= 0x80
	}
	return append(b, 0x80, m, byte(seq>>8), byte(seq),
		byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts),
		byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc))
}
