package streaming

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tianyan/vms/whepclient"
)

// BenchmarkJoiningViewerFirstKeyframe measures a WebRTC viewer joining a
// live pulled camera: from the start of the WHEP exchange to its first
// decoded keyframe. camsim has a 2 s GOP; joins are spread over it, so
// without the hub's cached GOP a joiner would wait about 1 s on average.
// Reports p50 and max (run with -benchtime 20x).
func BenchmarkJoiningViewerFirstKeyframe(b *testing.B) {
	cam := startCamera(b, "127.0.0.1:0")
	hub := NewHub(HubConfig{Logger: testLogger()})
	defer hub.Close()
	hub.SetPoint("cam1", SourceConfig{Type: SourceRTSP, URL: cam.URL("main")})
	w, err := NewWebRTC(WebRTCConfig{ListenAddr: "127.0.0.1:0", Interfaces: []string{"lo"}, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if st, _ := hub.Stats("cam1"); st.KeyframeAgeMs != nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("camera never sent a keyframe")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		// Land somewhere else in the GOP each time.
		time.Sleep(time.Duration(len(took)%7) * 290 * time.Millisecond)
		b.StartTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		c, err := whepclient.Connect(ctx, inProcessExchange(hub, w, "cam1", nil), whepclient.Options{Interfaces: []string{"lo"}})
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		if err := c.WaitKeyframe(ctx); err != nil {
			cancel()
			b.Fatal(err)
		}
		took = append(took, c.Stats().FirstKeyframe)
		b.StopTimer()
		c.Close()
		cancel()
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}
