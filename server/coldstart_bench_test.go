package server

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/edge"
	"github.com/tianyan/vms/whepclient"
)

// BenchmarkColdStartThroughAgent measures a viewer's WHEP POST to its
// first keyframe when the relay is not running: centre → agent relay_start
// → camera (ONVIF SetSynchronizationPoint, RTSP) → centre → WebRTC. camsim
// has a 2 s GOP, so without the keyframe request a cold viewer would wait
// about 1 s more on average. Reports p50 and max over the iterations
// (run with -benchtime 10x for the 10 tries).
func BenchmarkColdStartThroughAgent(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("keyframe-request=%v", sync), func(b *testing.B) { benchColdStart(b, sync) })
	}
}

func benchColdStart(b *testing.B, keyframeRequest bool) {
	cfg := testConfig(b)
	cfg.IdleGrace = 200 * time.Millisecond
	app, err := Start(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close(context.Background())
	cam := startONVIFCamera(b, "Bench")
	ag, code, _, err := app.Agents.Create("bench", "", "admin")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	creds, err := edge.Enroll(ctx, nil, app.HTTPURL(), code, "bench")
	if err != nil {
		b.Fatal(err)
	}
	book := edge.NewCameraBook("", testLogger())
	book.SetCameraNetworks(loopbackCameraNetworks(b))
	camRec, err := book.Provision(ctx, "cam-bench", cam.XAddr(), "admin", "cam-secret-1")
	if err != nil {
		b.Fatal(err)
	}
	if !keyframeRequest {
		// A camera the agent cannot ask for a keyframe.
		book = edge.NewCameraBook("", testLogger())
	}
	agent := edge.New(edge.Config{Credentials: creds, Cameras: book, Logger: testLogger(), CameraNetworks: loopbackCameraNetworks(b)})
	done := make(chan struct{})
	go func() { _ = agent.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	mainURL, _ := camRec.StreamURL(camRec.MainToken)
	if _, err := app.Catalog.Create(catalog.Point{ID: "bench1", Name: "bench", Category: "reservoir", Agent: ag.ID, Camera: "cam-bench",
		Main: catalog.Source{Type: catalog.SourceRTSP, URL: mainURL}}); err != nil {
		b.Fatal(err)
	}
	p, _ := app.Catalog.Get("bench1")
	app.syncPoint(p)
	tok, _, _, err := app.Accounts.Login("admin", adminPassword)
	if err != nil {
		b.Fatal(err)
	}
	for !agent.Online() {
		time.Sleep(20 * time.Millisecond)
	}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		// Cold: no relay running, camera somewhere in its GOP.
		for st, _ := app.Hub.Stats("bench1"); len(agent.Relays()) > 0 || st.State != "idle"; st, _ = app.Hub.Stats("bench1") {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(len(took)%10) * 173 * time.Millisecond)
		b.StartTimer()
		wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
		start := time.Now()
		c, err := whepclient.ConnectHTTP(wctx, app.HTTPURL()+"/api/v1/points/bench1/whep", tok, whepclient.Options{Interfaces: []string{"lo"}})
		if err != nil {
			wcancel()
			b.Fatal(err)
		}
		if err := c.WaitKeyframe(wctx); err != nil {
			wcancel()
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		c.Close()
		wcancel()
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
}
