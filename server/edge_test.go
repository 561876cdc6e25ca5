package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
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

// statusWatch polls a point's status in the catalog and keeps every state
// it passes through, in order.
type statusWatch struct {
	mu     sync.Mutex
	states []string
	stop   chan struct{}
	done   chan struct{}
}

func watchStatus(t *testing.T, a *testApp, id string) *statusWatch {
	w := &statusWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			p, err := a.Catalog.Get(id)
			if err == nil {
				w.mu.Lock()
				if n := len(w.states); n == 0 || w.states[n-1] != p.Status.State {
					w.states = append(w.states, p.Status.State)
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.end)
	return w
}

func (w *statusWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *statusWatch) seen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.states...)
}

func (w *statusWatch) last() string {
	s := w.seen()
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// TestAgentAwayIsNeverShownAsCameraOffline: an agent restarting within the
// health window leaves its point online or stale, never offline; an agent
// gone for longer leaves it agent_offline, and a viewer is told
// agent_offline (503), not that the camera is offline.
func TestAgentAwayIsNeverShownAsCameraOffline(t *testing.T) {
	const window = 3 * time.Second
	cfg := testConfig(t)
	cfg.AgentKeepalive, cfg.AgentHealthWindow = 200*time.Millisecond, window
	a := startAppWith(t, cfg)
	cam := startDualCamera(t)
	creds := a.enrollAgent("Blip LAN")
	first := a.runAgent(creds)
	res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "edge-away", "name": "Edge camera away",
		"agent": first.ID, "camera": "cam-a", "main": map[string]string{"type": "rtsp", "url": cam.URL("main")}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create bound point: %s", res)
	}
	waitFor(t, 10*time.Second, "point online", func() bool { return a.pointStatus("edge-away") == "online" })

	// The agent restarts: gone for moments, well inside the window.
	w := watchStatus(t, a, "edge-away")
	first.stop()
	waitFor(t, 10*time.Second, "centre sees the agent gone", func() bool { return !a.agentOnline(first.ID) })
	waitFor(t, 5*time.Second, "point stale", func() bool { return w.last() == "stale" })
	second := a.runAgent(creds)
	waitFor(t, window, "point online again", func() bool { return w.last() == "online" })
	w.end()
	t.Logf("agent restart: %v", w.seen())
	for _, s := range w.seen() {
		if s != "online" && s != "stale" {
			t.Fatalf("an agent restart within the window showed the point %q: %v", s, w.seen())
		}
	}

	// Now it goes for good.
	w = watchStatus(t, a, "edge-away")
	second.stop()
	gone := time.Now()
	waitFor(t, window+10*time.Second, "point agent_offline", func() bool { return w.last() == "agent_offline" })
	t.Logf("agent gone: %v, agent_offline after %v (window %v)", w.seen(), time.Since(gone).Round(time.Millisecond), window)
	for _, s := range w.seen() {
		if s == "offline" {
			t.Fatalf("an absent agent's point was shown offline: %v", w.seen())
		}
	}
	_, err := a.tryViewer("edge-away", whepclient.Options{})
	status, body := whepStatus(t, err)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"agent_offline"`) {
		t.Fatalf("WHEP while the agent is away: %d %s, want 503 agent_offline", status, body)
	}
	// The facets count it apart from offline cameras.
	var f struct{ Status map[string]int }
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/points/facets", nil), &f)
	if f.Status["agent_offline"] != 1 || f.Status["offline"] != 0 {
		t.Errorf("facets status %v", f.Status)
	}
}
