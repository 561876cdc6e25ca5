package ps

// nalKind is what a NAL unit means to access-unit assembly.
type nalKind uint8

const (
	nalOther     nalKind = iota
	nalDelimiter         // access unit delimiter: always starts an AU
	nalPrefix            // parameter sets, SEI: start an AU after a picture
	nalFirstVCL          // first slice of a picture
	nalVCL               // a later slice of the same picture
)

// classify says how the NAL unit whose header starts h (at least two bytes
// past the header for H.265, one for H.264) affects AU assembly, and
// whether it makes the AU a random-access one.
func classify(codec StreamType, h []byte) (kind nalKind, key bool) {
	if codec == H265 {
		if len(h) < 3 {
			return nalOther, false
		}
		t := (h[0] >> 1) & 0x3f
		switch {
		case t <= 31:
			// first_slice_segment_in_pic_flag is the first bit after the
			// two-byte header.
			key = t >= 16 && t <= 23
			if h[2]&0x80 != 0 {
				return nalFirstVCL, key
			}
			return nalVCL, key
		case t == 35:
			return nalDelimiter, false
		case t == 32:
			return nalPrefix, true
		case t == 33, t == 34, t == 39, t >= 41 && t <= 44, t >= 48 && t <= 55:
			return nalPrefix, false
		}
		return nalOther, false
	}
	if len(h) < 2 {
		return nalOther, false
	}
	switch t := h[0] & 0x1f; t {
	case 1, 5:
		// first_mb_in_slice is ue(v); 0 is coded as a single 1 bit.
		key = t == 5
		if h[1]&0x80 != 0 {
			return nalFirstVCL, key
		}
		return nalVCL, key
	case 9:
		return nalDelimiter, false
	case 7:
		return nalPrefix, true
	case 6, 8, 14, 15, 16, 17, 18:
		return nalPrefix, false
	}
	return nalOther, false
}

// guessVideo names the codec of a video PES payload that no PSM described,
// from its first NAL unit header; 0 when the payload does not start with
// one. H.265 headers are two bytes whose second holds a non-zero temporal
// ID (almost always 0x01); the H.265 types checked are those a stream or a
// keyframe starts with, whose first bytes are not H.264 headers a stream
// starts with.
func guessVideo(p []byte) StreamType {
	i := 0
	for i < len(p) && i < 8 && p[i] == 0 {
		i++
	}
	if i < 2 || i+2 >= len(p) || p[i] != 1 {
		return 0
	}
	h := p[i+1:]
	if h[0]&0x80 != 0 {
		return 0
	}
	t265 := (h[0] >> 1) & 0x3f
	if h[1] == 0x01 && h[0]&0x01 == 0 {
		switch t265 {
		case 32, 33, 34, 35, 39, 19, 20, 21, 1:
			return H265
		}
	}
	if t := h[0] & 0x1f; t >= 1 && t <= 23 {
		return H264
	}
	return 0
}

// guessAudio names the codec of an audio PES payload no PSM described:
// AAC when it starts with an ADTS header, otherwise G.711 A-law, what GB/T
// 28181 devices send by default.
func guessAudio(p []byte) StreamType {
	if len(p) >= 2 && p[0] == 0xff && p[1]&0xf6 == 0xf0 {
		return AAC
	}
	return G711A
}
