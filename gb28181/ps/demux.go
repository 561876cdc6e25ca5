package ps

import (
	"bytes"
	"errors"
	"fmt"
)

// Bounds on what the Demuxer holds.
const (
	// maxAU is the largest video access unit kept: an H.265 4K keyframe
	// fits many times over; a stream without access-unit boundaries is
	// cut here rather than growing without end.
	maxAU = 8 << 20
	// maxPending is the largest unparsed tail kept between Feed calls: a
	// whole PES packet with its header.
	maxPending = 6 + 65535
)

// ErrCorrupt wraps what Feed reports when it skipped bytes it could not
// parse. It is not fatal: the Demuxer has resynchronised and keeps going.
var ErrCorrupt = errors.New("ps: corrupt stream")

var startCode = []byte{0, 0, 1}

// Demuxer turns a program stream back into access units. It is not safe
// for concurrent use.
type Demuxer struct {
	pending []byte // an incomplete packet carried to the next Feed
	// types maps stream IDs to stream types, from the PSM or guessed.
	types [256]StreamType
	// videoID and audioID are the stream IDs followed (the first video
	// and audio stream seen); others are skipped.
	videoID, audioID byte
	video            videoES
	audio            audioES
	// unbounded is set inside a PES packet without a length, whose
	// payload runs to the next system start code.
	unbounded bool
	unbPTS    stamp
	skipped   int
	err       error
}

// stamp is a PES packet's timestamps.
type stamp struct {
	pts, dts int64
	ok       bool
}

// NewDemuxer returns a Demuxer waiting for the first pack.
func NewDemuxer() *Demuxer {
	return &Demuxer{}
}

// Feed parses b, any slice of the stream, and calls emit for each access
// unit completed by it. A video access unit is complete when the next one
// starts (or on Flush). Frame.Data is the caller's to keep. The error,
// wrapping ErrCorrupt, only reports skipped or dropped bytes: the Demuxer
// stays usable and the next Feed goes on.
func (d *Demuxer) Feed(b []byte, emit func(Frame)) error {
	d.skipped, d.err = 0, nil
	if len(d.pending) == 0 {
		n := d.parse(b, emit)
		d.pending = append(d.pending[:0], b[n:]...)
	} else {
		d.pending = append(d.pending, b...)
		n := d.parse(d.pending, emit)
		d.pending = d.pending[:copy(d.pending, d.pending[n:])]
	}
	if len(d.pending) > maxPending {
		// parse only leaves an incomplete packet, never longer than
		// maxPending; this guards the bound against a future mistake.
		d.skipped += len(d.pending)
		d.pending = d.pending[:0]
	}
	if cap(d.pending) > 4*maxPending {
		d.pending = nil
	}
	switch {
	case d.err != nil && d.skipped > 0:
		return fmt.Errorf("%w (skipped %d bytes)", d.err, d.skipped)
	case d.err != nil:
		return d.err
	case d.skipped > 0:
		return fmt.Errorf("%w: skipped %d bytes", ErrCorrupt, d.skipped)
	}
	return nil
}

// Flush emits the video access unit being assembled if all of it has
// arrived: the RTP receiver calls it at the end of a frame (marker bit),
// so a frame goes out without waiting for the next one.
func (d *Demuxer) Flush(emit func(Frame)) {
	if len(d.pending) > 0 && !d.unbounded {
		return // the rest of a PES packet is still to come
	}
	if d.unbounded && len(d.pending) > 0 {
		// Nothing but the next start code can end the packet, and a
		// frame boundary is one: pass the bytes held back.
		d.videoPayload(d.pending, stamp{}, emit)
		d.pending = d.pending[:0]
	}
	d.video.flush(emit)
}

// Reset forgets an incomplete packet and the access unit being assembled,
// keeping what the PSM said: the RTP receiver calls it when packets were
// lost, so bytes from either side of the gap are never joined into one
// unit or mistaken for a packet's length.
func (d *Demuxer) Reset() {
	d.pending = d.pending[:0]
	d.unbounded = false
	d.unbPTS = stamp{}
	d.video.reset(d.video.codec)
}

// parse consumes whole packets from buf and returns how many bytes it
// used; the rest is an incomplete packet.
func (d *Demuxer) parse(buf []byte, emit func(Frame)) int {
	i := 0
	for {
		if d.unbounded {
			j := nextSystemStart(buf, i)
			if j < 0 || j+3 >= len(buf) {
				// Hold back what could be the start of a start code.
				end := len(buf) - 3
				if end > i {
					d.videoPayload(buf[i:end], d.takeUnbPTS(), emit)
					i = end
				}
				return i
			}
			d.videoPayload(buf[i:j], d.takeUnbPTS(), emit)
			i = j
			d.unbounded = false
		}
		rest := buf[i:]
		if len(rest) < 4 {
			return i
		}
		if rest[0] != 0 || rest[1] != 0 || rest[2] != 1 || rest[3] < 0xb9 {
			j := nextSystemStart(buf, i+1)
			if j < 0 {
				end := max(len(buf)-3, i)
				d.skipped += end - i
				return end
			}
			d.skipped += j - i
			i = j
			continue
		}
		n := d.packet(rest, emit)
		switch {
		case n == 0:
			if len(rest) >= maxPending {
				// Cannot be a packet we wait for: resync.
				d.skipped += 4
				i += 4
				continue
			}
			return i
		case n < 0:
			d.skipped += 4
			i += 4
		default:
			i += n
		}
	}
}

func (d *Demuxer) takeUnbPTS() stamp {
	s := d.unbPTS
	d.unbPTS = stamp{}
	return s
}

// nextSystemStart finds the next start code of a pack, system header or
// PES packet (0x000001 followed by a stream ID ≥ 0xB9) at or after from.
// No H.264 or H.265 NAL header starts with such a byte (its forbidden bit
// is 0), so these never occur inside video payloads.
func nextSystemStart(buf []byte, from int) int {
	for from < len(buf) {
		j := bytes.Index(buf[from:], startCode)
		if j < 0 {
			return -1
		}
		p := from + j
		if p+3 >= len(buf) {
			// A start code whose ID has not arrived: resume here.
			return p
		}
		if buf[p+3] >= 0xb9 {
			return p
		}
		from = p + 1
	}
	return -1
}

// packet handles the packet at the start of p (a system start code):
// bytes used, 0 when incomplete, -1 when it is not a valid packet.
func (d *Demuxer) packet(p []byte, emit func(Frame)) int {
	sid := p[3]
	switch sid {
	case 0xba:
		if len(p) < 5 {
			return 0
		}
		switch {
		case p[4]&0xc0 == 0x40: // MPEG-2
			if len(p) < 14 {
				return 0
			}
			n := 14 + int(p[13]&7)
			if len(p) < n {
				return 0
			}
			return n
		case p[4]&0xf0 == 0x20: // MPEG-1
			if len(p) < 12 {
				return 0
			}
			return 12
		}
		return -1
	case 0xb9: // program end
		return 4
	}
	if len(p) < 6 {
		return 0
	}
	l := int(p[4])<<8 | int(p[5])
	isPES := sid >= 0xc0 && sid <= 0xef
	if l == 0 && isPES {
		return d.unboundedPES(p, emit)
	}
	n := 6 + l
	if len(p) < n {
		return 0
	}
	switch {
	case sid == 0xbc:
		d.psm(p[6:n], emit)
	case isPES:
		off, ts, ok := pesHeader(p[:n])
		if !ok {
			return -1
		}
		d.pes(sid, p[off:n], ts, emit)
	}
	// System header, padding, private streams: nothing to take.
	return n
}

// unboundedPES starts a PES packet with no length (allowed for video in
// transport streams, seen from some devices in program streams).
func (d *Demuxer) unboundedPES(p []byte, emit func(Frame)) int {
	if len(p) < 9 {
		return 0
	}
	off, ts, ok := pesHeader(p)
	if !ok {
		if len(p) < 9+255 {
			return 0 // the header may not have arrived whole
		}
		return -1
	}
	sid := p[3]
	if sid < 0xe0 || !d.followVideo(sid) {
		// Only video may be unbounded; skip to the next start code.
		return off
	}
	d.unbounded = true
	d.unbPTS = ts
	return off
}

// pesHeader parses an MPEG-2 or MPEG-1 PES header: payload offset,
// timestamps, and whether the header is valid and complete in p.
func pesHeader(p []byte) (int, stamp, bool) {
	var ts stamp
	if len(p) >= 9 && p[6]&0xc0 == 0x80 {
		off := 9 + int(p[8])
		if off > len(p) {
			return 0, ts, false
		}
		hl := int(p[8])
		switch p[7] >> 6 {
		case 2:
			if hl >= 5 {
				ts.pts = readTS(p[9:])
				ts.dts, ts.ok = ts.pts, true
			}
		case 3:
			if hl >= 10 {
				ts.pts = readTS(p[9:])
				ts.dts, ts.ok = readTS(p[14:]), true
			}
		}
		return off, ts, true
	}
	// MPEG-1: stuffing, an optional STD buffer field, then the timestamps.
	i := 6
	for i < len(p) && i < 6+16 && p[i] == 0xff {
		i++
	}
	if i < len(p) && p[i]&0xc0 == 0x40 {
		i += 2
	}
	if i >= len(p) {
		return 0, ts, false
	}
	switch c := p[i]; {
	case c&0xf0 == 0x20:
		if i+5 > len(p) {
			return 0, ts, false
		}
		ts.pts = readTS(p[i:])
		ts.dts, ts.ok = ts.pts, true
		return i + 5, ts, true
	case c&0xf0 == 0x30:
		if i+10 > len(p) {
			return 0, ts, false
		}
		ts.pts, ts.dts, ts.ok = readTS(p[i:]), readTS(p[i+5:]), true
		return i + 10, ts, true
	case c == 0x0f:
		return i + 1, ts, true
	}
	return 0, ts, false
}

// readTS reads a 33-bit timestamp in the PES layout (marker bits ignored:
// devices get them wrong).
func readTS(b []byte) int64 {
	return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

// psm reads a program stream map's body (after its length) into types.
// The CRC is not checked: devices write wrong ones, and a wrong type
// would show as soon as the payload is used.
func (d *Demuxer) psm(b []byte, emit func(Frame)) {
	if len(b) < 6 {
		return
	}
	pos := 4 + (int(b[2])<<8 | int(b[3]))
	if pos+2 > len(b) {
		return
	}
	end := min(pos+2+(int(b[pos])<<8|int(b[pos+1])), len(b))
	pos += 2
	for pos+4 <= end {
		st, id := StreamType(b[pos]), b[pos+1]
		pos += 4 + (int(b[pos+2])<<8 | int(b[pos+3]))
		if st == 0 {
			continue
		}
		if id == d.videoID && d.types[id] != st {
			if !st.IsVideo() && d.types[id].IsVideo() {
				continue // a type devices write wrongly; what was guessed stands
			}
			// A new codec (the device was reconfigured): what came in
			// the old one goes out first.
			d.video.flush(emit)
			d.video.reset(st)
		}
		d.types[id] = st
	}
}

// followVideo reports whether sid is the video stream followed, choosing
// it if none is yet.
func (d *Demuxer) followVideo(sid byte) bool {
	if d.videoID == 0 {
		d.videoID = sid
	}
	return sid == d.videoID
}

func (d *Demuxer) pes(sid byte, payload []byte, ts stamp, emit func(Frame)) {
	if sid >= 0xe0 {
		if d.followVideo(sid) {
			d.videoPayload(payload, ts, emit)
		}
		return
	}
	if d.audioID == 0 {
		d.audioID = sid
	}
	if sid != d.audioID || len(payload) == 0 {
		return
	}
	if d.types[sid] == 0 {
		d.types[sid] = guessAudio(payload)
	}
	d.audio.push(d.types[sid], payload, ts, emit)
}

func (d *Demuxer) videoPayload(payload []byte, ts stamp, emit func(Frame)) {
	if len(payload) == 0 {
		return
	}
	t := d.types[d.videoID]
	if t == 0 {
		if t = guessVideo(payload); t == 0 {
			d.skipped += len(payload) // cannot tell yet; wait for a NAL start
			return
		}
		d.types[d.videoID] = t
	} else if !t.IsVideo() && d.video.codec != H264 && d.video.codec != H265 {
		// A PSM type no GB/T 28181 video has (some devices write 0x06,
		// private data, for H.265): trust the payload if it is H.264 or
		// H.265, else pass it through frame by frame.
		if g := guessVideo(payload); g != 0 {
			t = g
			d.types[d.videoID] = g
		}
	}
	if d.video.codec != t {
		d.video.reset(t)
	}
	if err := d.video.push(payload, ts, emit); err != nil {
		d.err = err
	}
}

// mark is a PES packet's timestamps and where its payload starts in the
// elementary stream: they belong to the first access unit starting in it.
type mark struct {
	off int
	ts  stamp
}

// videoES assembles access units from a video elementary stream.
type videoES struct {
	codec StreamType
	es    []byte
	scan  int // next offset to look for a start code
	marks []mark
	// started is set once an access unit's start was seen; the bytes of a
	// picture joined halfway are dropped.
	started     bool
	hasVCL, key bool
	last        stamp
	delta       int64
}

func (v *videoES) reset(codec StreamType) {
	*v = videoES{codec: codec, es: v.es[:0], marks: v.marks[:0], last: v.last, delta: v.delta}
}

func (v *videoES) push(payload []byte, ts stamp, emit func(Frame)) error {
	if ts.ok {
		v.marks = append(v.marks, mark{off: len(v.es), ts: ts})
	}
	if v.codec != H264 && v.codec != H265 {
		// No NAL units to find boundaries by: a new timestamp starts a
		// new frame.
		if ts.ok && len(v.es) > 0 {
			v.emit(len(v.es), emit)
		}
		v.started = true
		v.hasVCL = true
		v.es = append(v.es, payload...)
		return v.bound()
	}
	v.es = append(v.es, payload...)
	v.scanNALs(emit)
	return v.bound()
}

// bound drops an access unit that outgrew maxAU.
func (v *videoES) bound() error {
	if len(v.es) <= maxAU {
		return nil
	}
	n := len(v.es)
	v.reset(v.codec)
	if cap(v.es) > 2*maxAU {
		v.es = nil
	}
	return fmt.Errorf("%w: video access unit over %d bytes dropped (%d bytes)", ErrCorrupt, maxAU, n)
}

func (v *videoES) scanNALs(emit func(Frame)) {
	need := 2
	if v.codec == H265 {
		need = 3
	}
	for {
		j := bytes.Index(v.es[v.scan:], startCode)
		if j < 0 {
			v.scan = max(v.scan, len(v.es)-2)
			return
		}
		p := v.scan + j
		h := p + 3
		if len(v.es)-h < need {
			v.scan = p // wait for the NAL header
			return
		}
		kind, key := classify(v.codec, v.es[h:])
		start := p
		if p > 0 && v.es[p-1] == 0 {
			start = p - 1
		}
		begins := kind == nalDelimiter || kind == nalPrefix || kind == nalFirstVCL
		switch {
		case !v.started && begins:
			v.drop(start, false)
			h -= start
			v.started = true
		case !v.started:
			// A picture joined halfway: skip to an access unit's start.
			v.scan = h
			continue
		case begins && v.hasVCL:
			v.emit(start, emit)
			h -= start
		}
		if kind == nalFirstVCL || kind == nalVCL {
			v.hasVCL = true
		}
		if key {
			v.key = true
		}
		v.scan = h
	}
}

// flush emits the access unit being assembled, if it holds a picture.
func (v *videoES) flush(emit func(Frame)) {
	if v.started && v.hasVCL && len(v.es) > 0 {
		v.emit(len(v.es), emit)
	}
}

// emit sends es[:end] as an access unit and keeps the rest.
func (v *videoES) emit(end int, emit func(Frame)) {
	ts, found := stamp{}, false
	for _, m := range v.marks {
		// The latest PES starting at (or within the start code of) the
		// unit gives its timestamps; a repeat of the last unit's (devices
		// stamp every PES of a frame) does not.
		if m.off <= 3 && !(v.last.ok && m.ts.pts == v.last.pts) {
			ts, found = m.ts, true
		}
	}
	if !found && v.last.ok {
		d := v.delta
		if d <= 0 {
			d = 3600
		}
		ts = stamp{pts: (v.last.pts + d) & tsMask, dts: (v.last.dts + d) & tsMask, ok: true}
	}
	if ts.ok && v.last.ok {
		if d := (ts.dts - v.last.dts) & tsMask; d > 0 && d < 90000 {
			v.delta = d
		}
	}
	v.last = ts
	f := Frame{Type: v.codec, PTS: ts.pts, DTS: ts.dts, Key: v.key, Data: append([]byte(nil), v.es[:end]...)}
	v.drop(end, true)
	v.hasVCL, v.key = false, false
	emit(f)
}

// drop removes es[:n], moving the marks and scan position with it. When
// the bytes were an access unit emitted (consumed), the marks it used go
// with it.
func (v *videoES) drop(n int, consumed bool) {
	if n == 0 {
		return
	}
	v.es = v.es[:copy(v.es, v.es[n:])]
	v.scan = max(v.scan-n, 0)
	k := 0
	for _, m := range v.marks {
		if consumed && m.off <= 3 {
			continue
		}
		m.off -= n
		v.marks[k] = m
		k++
	}
	v.marks = v.marks[:k]
	// Of the marks now at or before the start, only the newest matters:
	// a PES that began inside the bytes dropped holds the next unit's
	// start.
	first := 0
	for first+1 < len(v.marks) && v.marks[first+1].off <= 3 {
		first++
	}
	if first > 0 {
		v.marks = v.marks[:copy(v.marks, v.marks[first:])]
	}
}

// tsMask keeps a timestamp to 33 bits.
const tsMask = 1<<33 - 1

// audioES emits audio frames, one per PES packet.
type audioES struct {
	last  stamp
	delta int64
}

func (a *audioES) push(t StreamType, payload []byte, ts stamp, emit func(Frame)) {
	if !ts.ok && a.last.ok {
		d := a.delta
		if t == G711A || t == G711U {
			d = int64(len(payload)) * 90000 / 8000
		}
		ts = stamp{pts: (a.last.pts + d) & tsMask, ok: true}
		ts.dts = ts.pts
	}
	if ts.ok && a.last.ok {
		if d := (ts.pts - a.last.pts) & tsMask; d > 0 && d < 90000 {
			a.delta = d
		}
	}
	a.last = ts
	emit(Frame{Type: t, PTS: ts.pts, DTS: ts.pts, Data: append([]byte(nil), payload...)})
}
