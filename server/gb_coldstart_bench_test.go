package server

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tianyan/vms/whepclient"
)

// BenchmarkColdStartGB measures a viewer's WHEP POST on a GB/T 28181
// channel to its first keyframe when nothing plays the channel: INVITE to
// a gbsim camera (25 fps, 2 s GOP, the clip running mid-GOP), 200, ACK,
// IFameCmd, PS over RTP, demux, the hub, WebRTC. Without IFameCmd a cold
// viewer would wait a second on average for the device's next keyframe.
// Reports p50 and max over the iterations (the issue asks for ≥ 20:
// -benchtime 20x); the target is p50 ≤ 500 ms, max ≤ 1 s.
func BenchmarkColdStartGB(b *testing.B) {
	cfg := testConfig(b)
	cfg.IdleGrace = 200 * time.Millisecond
	cfg.SIPAddr, cfg.SIPID, cfg.SIPDomain, cfg.SIPPassword = "127.0.0.1:0", "44030700002000000001", "4403070000", gbTestPassword
	app, err := Start(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close(context.Background())
	dev := startGBSimDevice(b, app.SIPAddr(), gbLiveOptions{})
	for {
		if _, err := app.Catalog.Get(gbLiveChannel); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok, _, _, err := app.Accounts.Login("admin", adminPassword)
	if err != nil {
		b.Fatal(err)
	}
	url := app.HTTPURL() + "/api/v1/points/" + gbLiveChannel + "/whep"
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		// Cold: no call to the device, the hub's path idle, the clip
		// somewhere in its GOP.
		for st, _ := app.Hub.Stats(gbLiveChannel); len(dev.Sessions()) > 0 || app.GBLive.Calls() > 0 || st.State != "idle"; st, _ = app.Hub.Stats(gbLiveChannel) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(len(took)%10) * 173 * time.Millisecond)
		b.StartTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		start := time.Now()
		c, err := whepclient.ConnectHTTP(ctx, url, tok, whepclient.Options{Interfaces: []string{"lo"}})
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		if err := c.WaitKeyframe(ctx); err != nil {
			cancel()
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		c.Close()
		cancel()
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
}
