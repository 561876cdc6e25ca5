package ps

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/tianyan/vms/camsim"
)

// clipFrames returns a committed clip as Annex-B access units with 25 fps
// timestamps (DTS from 1 s on, to cross no wrap by accident).
func clipFrames(t testing.TB, name string) []Frame {
	t.Helper()
	c, err := camsim.LoadClip(name)
	if err != nil {
		t.Fatal(err)
	}
	typ := H264
	if c.Codec == "H265" {
		typ = H265
	}
	keys := map[int]bool{}
	for _, k := range c.Keyframes {
		keys[k] = true
	}
	out := make([]Frame, len(c.AUs))
	for i, au := range c.AUs {
		var b []byte
		for _, n := range au {
			b = append(b, 0, 0, 0, 1)
			b = append(b, n...)
		}
		ts := int64(90000 + i*3600)
		out[i] = Frame{Type: typ, PTS: ts, DTS: ts, Data: b, Key: keys[i]}
	}
	return out
}

// muxFrames writes frames (and, interleaved, audio) as one program stream.
func muxFrames(m *Muxer, frames []Frame, audio []Frame) []byte {
	var out []byte
	a := 0
	for _, f := range frames {
		for a < len(audio) && audio[a].PTS <= f.DTS {
			out = append(out, m.Audio(audio[a].PTS, audio[a].Data)...)
			a++
		}
		out = append(out, m.Video(f.PTS, f.DTS, f.Data, f.Key)...)
	}
	return out
}

// feedChunks feeds stream in chunks of the sizes given in turn, then
// flushes; any error fails the test.
func feedChunks(t testing.TB, d *Demuxer, stream []byte, sizes []int) (video, audio []Frame) {
	t.Helper()
	video, audio, corrupt := feedCorrupt(t, d, stream, sizes)
	if corrupt > 0 {
		t.Fatalf("%d feeds reported corrupt input", corrupt)
	}
	return video, audio
}

// feedCorrupt is feedChunks counting the feeds that reported ErrCorrupt.
func feedCorrupt(t testing.TB, d *Demuxer, stream []byte, sizes []int) (video, audio []Frame, corrupt int) {
	t.Helper()
	emit := func(f Frame) {
		if f.Type.IsVideo() {
			video = append(video, f)
		} else {
			audio = append(audio, f)
		}
	}
	for i := 0; len(stream) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(stream))
		if err := d.Feed(stream[:n], emit); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("feed: %v is not ErrCorrupt", err)
			}
			corrupt++
		}
		stream = stream[n:]
	}
	d.Flush(emit)
	return video, audio, corrupt
}

// nalus splits an Annex-B unit, leaving out access unit delimiters.
func nalus(t testing.TB, typ StreamType, au []byte) [][]byte {
	t.Helper()
	var a h264.AnnexB
	if err := a.Unmarshal(au); err != nil {
		t.Fatalf("annex-b: %v", err)
	}
	var out [][]byte
	for _, n := range a {
		if len(n) == 0 {
			continue
		}
		if typ == H264 && n[0]&0x1f == 9 || typ == H265 && (n[0]>>1)&0x3f == 35 {
			continue
		}
		out = append(out, n)
	}
	return out
}

func sameNALUs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
