package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/edge"
	"github.com/tianyan/vms/whepclient"
)

// edgeAgent is an enrolled edge agent running against a test app.
type edgeAgent struct {
	ID    string
	Agent *edge.Agent
	Creds edge.Credentials
	stop  context.CancelFunc
	done  chan error
}

// enrollAgent creates an agent over the admin API and enrolls it with the
// one-time code, as `edge-agent enroll` does.
func (a *testApp) enrollAgent(name string) edge.Credentials {
	a.t.Helper()
	res := a.admin(http.MethodPost, "/api/v1/agents", map[string]string{"name": name})
	if res.Status != http.StatusCreated {
		a.t.Fatalf("create agent: %s", res)
	}
	var created struct {
		Agent struct{ ID string }
		Code  string `json:"enrollment_code"`
	}
	decodeInto(a.t, res, &created)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := edge.Enroll(ctx, nil, a.HTTPURL(), created.Code, "test-host")
	if err != nil {
		a.t.Fatalf("enroll: %v", err)
	}
	if creds.AgentID != created.Agent.ID {
		a.t.Fatalf("enrolled as %s, created %s", creds.AgentID, created.Agent.ID)
	}
	// A code works once.
	if _, err := edge.Enroll(ctx, nil, a.HTTPURL(), created.Code, "again"); err == nil {
		a.t.Fatal("an enrollment code worked twice")
	}
	return creds
}

// runAgent starts an edge agent; it is stopped when the test ends.
func (a *testApp) runAgent(creds edge.Credentials) *edgeAgent {
	a.t.Helper()
	ea := &edgeAgent{ID: creds.AgentID, Creds: creds, done: make(chan error, 1)}
	ea.Agent = edge.New(edge.Config{Credentials: creds, Cameras: edge.NewCameraBook("", testLogger()),
		HealthInterval: time.Second, Logger: testLogger(), CameraNetworks: loopbackCameraNetworks(a.t)})
	ctx, cancel := context.WithCancel(context.Background())
	ea.stop = cancel
	go func() { ea.done <- ea.Agent.Run(ctx) }()
	a.t.Cleanup(func() {
		cancel()
		select {
		case <-ea.done:
		case <-time.After(10 * time.Second):
			a.t.Error("edge agent did not stop")
		}
	})
	waitFor(a.t, 10*time.Second, "agent online", func() bool { return ea.Agent.Online() && a.agentOnline(creds.AgentID) })
	return ea
}

func (a *testApp) agentOnline(id string) bool {
	res := a.admin(http.MethodGet, "/api/v1/agents/"+id, nil)
	var ag struct{ Online bool }
	decodeInto(a.t, res, &ag)
	return ag.Online
}

func (a *testApp) pointStatus(id string) string {
	res := a.admin(http.MethodGet, "/api/v1/points/"+id, nil)
	var p struct{ Status struct{ State string } }
	decodeInto(a.t, res, &p)
	return p.Status.State
}

func TestEdgeRelayOnDemandFromAgentToWHEPViewer(t *testing.T) {
	a := startApp(t)
	cam := startDualCamera(t)
	ea := a.runAgent(a.enrollAgent("Reservoir LAN"))
	res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "edge1", "name": "Edge camera",
		"agent": ea.ID, "camera": "cam-1",
		"main": map[string]string{"type": "rtsp", "url": cam.URL("main")},
		"sub":  map[string]string{"type": "rtsp", "url": cam.URL("sub")}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create bound point: %s", res)
	}
	// The agent learns its binding and reports the camera reachable.
	waitFor(t, 10*time.Second, "point online from agent health", func() bool { return a.pointStatus("edge1") == "online" })
	if st := a.stats("edge1"); st.State != "idle" {
		t.Fatalf("relay running before anyone watches: %+v", st)
	}
	if n := len(ea.Agent.Relays()); n != 0 {
		t.Fatalf("agent runs %d relays before anyone watches", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	c, err := whepclient.ConnectHTTP(ctx, a.whepURL("edge1")+"?profile=sub", a.token, whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatalf("WHEP through the agent: %v", err)
	}
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("cold start through the agent (no keyframe request: plain RTSP camera): %v", time.Since(start))
	waitFor(t, 10*time.Second, "50 frames", func() bool { return c.Stats().Frames >= 50 })
	var st statsJSON
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/points/edge1/stats?profile=sub", nil), &st)
	if st.Width != 640 || st.Readers != 1 {
		t.Fatalf("sub relay stats %+v", st)
	}
	c.Close()
	// Idle grace (500 ms in tests) → relay stopped at the agent.
	waitFor(t, 10*time.Second, "relay stopped after idle grace", func() bool { return len(ea.Agent.Relays()) == 0 })
}

func TestEdgePointGoesOfflineWhenCameraDiesAndViewerResumesAfterCentreRestart(t *testing.T) {
	cfg := testConfig(t)
	app, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var closeOnce sync.Once
	closeApp := func() { closeOnce.Do(func() { app.Close(context.Background()) }) }
	t.Cleanup(closeApp)
	a := &testApp{App: app, t: t, http: &http.Client{Timeout: 20 * time.Second}}
	a.token = a.login(adminPassword)

	cam := startDualCamera(t)
	camAddr := cam.Addr()
	ea := a.runAgent(a.enrollAgent("Street LAN"))
	res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "edge2", "name": "Edge camera 2",
		"agent": ea.ID, "camera": "cam-2", "main": map[string]string{"type": "rtsp", "url": cam.URL("main")}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create bound point: %s", res)
	}
	waitFor(t, 10*time.Second, "point online", func() bool { return a.pointStatus("edge2") == "online" })

	cam.Close()
	killed := time.Now()
	waitFor(t, 10*time.Second, "point offline after the camera died", func() bool { return a.pointStatus("edge2") == "offline" })
	t.Logf("camera killed → point offline in %v", time.Since(killed))

	main, _ := camsim.LoadClip(camsim.ClipH264Main)
	cam2, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{Address: camAddr, Profiles: map[string]*camsim.Clip{"main": main},
		User: "cam", Pass: "campass", Logger: testLogger()})
	if err != nil {
		t.Fatalf("restart camera on %s: %v", camAddr, err)
	}
	t.Cleanup(cam2.Close)
	waitFor(t, 10*time.Second, "point back online", func() bool { return a.pointStatus("edge2") == "online" })

	// Restart the centre on the same addresses: the agent reconnects by
	// itself and a viewer plays through it again.
	cfg2 := cfg
	cfg2.HTTPAddr, cfg2.RTSPAddr, cfg2.WebRTCAddr = app.httpLn.Addr().String(), app.RTSP.Addr(), "127.0.0.1:0"
	closeApp()
	app2, err := Start(cfg2)
	if err != nil {
		t.Fatalf("restart centre: %v", err)
	}
	t.Cleanup(func() { app2.Close(context.Background()) })
	b := &testApp{App: app2, t: t, http: &http.Client{Timeout: 20 * time.Second}}
	b.token = b.login(adminPassword)
	waitFor(t, 20*time.Second, "agent reconnected to the restarted centre", func() bool { return b.agentOnline(ea.ID) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := whepclient.ConnectHTTP(ctx, b.whepURL("edge2"), b.token, whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatalf("WHEP after centre restart: %v", err)
	}
	defer c.Close()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRevokedAgentIsCutAndRefused(t *testing.T) {
	a := startApp(t)
	cam := startDualCamera(t)
	creds := a.enrollAgent("Doomed LAN")
	ea := a.runAgent(creds)
	res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "edge3", "name": "Edge camera 3",
		"agent": ea.ID, "main": map[string]string{"type": "rtsp", "url": cam.URL("main")}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create bound point: %s", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := whepclient.ConnectHTTP(ctx, a.whepURL("edge3"), a.token, whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	if res := a.admin(http.MethodPost, "/api/v1/agents/"+ea.ID+"/revoke", nil); res.Status != http.StatusNoContent {
		t.Fatalf("revoke: %s", res)
	}
	// The link is cut at once and the agent gives up (403, not a retry loop).
	select {
	case err := <-ea.done:
		if err == nil {
			t.Fatal("revoked agent stopped without an error")
		}
		ea.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("revoked agent still running")
	}
	waitFor(t, 5*time.Second, "publish cut", func() bool {
		for _, s := range a.RTSP.Sessions() {
			if s.Publisher {
				return false
			}
		}
		return true
	})
	// Its credentials no longer open a link.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	again := edge.New(edge.Config{Credentials: creds, Logger: testLogger()})
	if err := again.Run(ctx2); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("revoked credentials: %v", err)
	}
	// Points may not be bound to it any more.
	wantError(t, a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "edge4", "name": "x", "agent": ea.ID,
		"main": map[string]string{"type": "rtsp", "url": cam.URL("main")}}), http.StatusUnprocessableEntity)
}
