package media

import (
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gb28181/ps"
)

// BenchmarkReceivePSOverRTP is the receive path's cost beyond reading the
// socket (which RTSP ingest pays as well): RTP parsing, the reorder
// window, PS demuxing and frame assembly, on the 2 Mbit/s 720p clip with
// G.711 audio, as a device sends it. It reports the share of one core a
// live stream costs (the target: ≤ 0.1 %).
func BenchmarkReceivePSOverRTP(b *testing.B) {
	c, err := camsim.LoadClip(camsim.ClipH264Main)
	if err != nil {
		b.Fatal(err)
	}
	keys := map[int]bool{}
	for _, k := range c.Keyframes {
		keys[k] = true
	}
	dev := &rawRTP{ssrc: 1, mux: ps.NewMuxer(ps.H264, ps.G711A)}
	var pkts [][]byte
	var bytes int
	for i, au := range c.AUs {
		var data []byte
		for _, n := range au {
			data = append(append(data, 0, 0, 0, 1), n...)
		}
		ts := int64(i * 3600)
		pack := dev.mux.Audio(ts, make([]byte, 320))
		for len(pack) > 0 {
			n := min(len(pack), maxPayload)
			p := appendRTPHeader(nil, 96, n == len(pack), dev.seq, uint32(ts), 1)
			pkts = append(pkts, append(p, pack[:n]...))
			dev.seq++
			pack = pack[n:]
		}
		pkts = append(pkts, dev.packets(ps.Frame{Type: ps.H264, PTS: ts, DTS: ts, Data: data, Key: keys[i]})...)
	}
	for _, p := range pkts {
		bytes += len(p)
	}
	seconds := float64(len(c.AUs)) / float64(c.FPS)
	// Sequence numbers continue across loops of the clip, as on the wire.
	r := &Receiver{cfg: ReceiverConfig{Transport: UDP}, log: testLogger(), demux: ps.NewDemuxer()}
	frames := 0
	emit := func(ps.Frame) { frames++ }
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	seq := uint16(0)
	for range b.N {
		for _, p := range pkts {
			p[2], p[3] = byte(seq>>8), byte(seq)
			seq++
			r.packet(p, emit)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if frames < b.N*len(c.AUs)*2-2 {
		b.Fatalf("%d frames out of %d", frames, b.N*len(c.AUs)*2)
	}
	b.ReportMetric(100*elapsed.Seconds()/float64(b.N)/seconds, "%core/stream")
	b.ReportMetric(float64(bytes)*8/seconds/1e6, "Mbit/s")
}
