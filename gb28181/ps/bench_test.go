package ps

import (
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
)

// BenchmarkPSDemux demuxes the 2 Mbit/s 720p clip as a device sends it
// (G.711 audio packs between the frames, 1,400-byte RTP payloads, a flush
// at each frame's end). Besides bytes/s it reports the share of one core
// that one such live stream costs: the target is ≤ 0.1 %.
func BenchmarkPSDemux(b *testing.B) {
	video := clipFrames(b, camsim.ClipH264Main)
	var audio []Frame
	for ts := int64(90000); ts < video[len(video)-1].DTS; ts += 3600 {
		audio = append(audio, Frame{Type: G711A, PTS: ts, Data: make([]byte, 320)})
	}
	m := NewMuxer(H264, G711A)
	var packs [][]byte
	var total int
	a := 0
	for _, f := range video {
		for a < len(audio) && audio[a].PTS <= f.DTS {
			packs = append(packs, append([]byte(nil), m.Audio(audio[a].PTS, audio[a].Data)...))
			a++
		}
		packs = append(packs, append([]byte(nil), m.Video(f.PTS, f.DTS, f.Data, f.Key)...))
	}
	for _, p := range packs {
		total += len(p)
	}
	seconds := float64(len(video)) / 25
	d := NewDemuxer()
	var frames int
	emit := func(Frame) { frames++ }
	b.SetBytes(int64(total))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		for _, p := range packs {
			for len(p) > 0 {
				n := min(1400, len(p))
				if err := d.Feed(p[:n], emit); err != nil {
					b.Fatal(err)
				}
				p = p[n:]
			}
			d.Flush(emit)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if frames < b.N*len(video) {
		b.Fatalf("%d frames out of %d", frames, b.N*len(video))
	}
	// CPU time per second of stream, as a percentage of one core.
	b.ReportMetric(100*elapsed.Seconds()/float64(b.N)/seconds, "%core/stream")
	b.ReportMetric(float64(total)*8/seconds/1e6, "Mbit/s")
}
