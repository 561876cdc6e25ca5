package ps

import (
	"testing"

	"github.com/tianyan/vms/camsim"
)

// FuzzDemux feeds arbitrary bytes in two slices: the Demuxer must not
// panic, must keep its buffers bounded, and must emit only well-formed
// frames.
func FuzzDemux(f *testing.F) {
	in := clipFrames(f, camsim.ClipH264Sub)[:4]
	m := NewMuxer(H264, G711A)
	var stream []byte
	for _, fr := range in {
		stream = append(stream, m.Audio(fr.PTS, []byte{1, 2, 3, 4})...)
		stream = append(stream, m.Video(fr.PTS, fr.DTS, fr.Data[:min(len(fr.Data), 3000)], fr.Key)...)
	}
	f.Add(stream, 100)
	f.Add(stream[:500], 7)
	h5 := clipFrames(f, camsim.ClipH265Sub)[0]
	f.Add(NewMuxer(H265, 0).Video(h5.PTS, h5.DTS, h5.Data[:2000], false), 1)
	f.Add([]byte{0, 0, 1, 0xba, 0x21, 0, 1, 0, 1, 0x80, 0x1b, 0x83, 0, 0, 1, 0xe0, 0, 0, 0xff, 0x0f, 0, 0, 1, 0x09}, 3)
	f.Add([]byte{0, 0, 1, 0xbc, 0, 0x0c, 0xe0, 0xff, 0, 0, 0, 8, 0x1b, 0xe0, 0, 0, 0x90, 0xc0, 0, 0}, 4)
	f.Add([]byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 0xff}, 2)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		d := NewDemuxer()
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		emit := func(fr Frame) {
			if fr.PTS < 0 || fr.PTS > tsMask || fr.DTS < 0 || fr.DTS > tsMask {
				t.Fatalf("timestamp out of 33 bits: %d %d", fr.PTS, fr.DTS)
			}
			if fr.Type.IsVideo() && len(fr.Data) == 0 {
				t.Fatal("empty video frame")
			}
		}
		_ = d.Feed(data[:cut], emit)
		_ = d.Feed(data[cut:], emit)
		d.Flush(emit)
		if len(d.pending) > maxPending || len(d.video.es) > maxAU {
			t.Fatalf("buffers over bounds: pending %d, es %d", len(d.pending), len(d.video.es))
		}
	})
}
