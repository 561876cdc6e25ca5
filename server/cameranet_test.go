package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/edge"
	"github.com/tianyan/vms/internal/fakedns"
)

// centreRule is how a refusal under the default camera networks ends.
const centreRule = "not inside --camera-networks (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fd00::/8)"

// countingProxy forwards TCP connections on 127.0.0.1 to target and counts
// them: it tells whether the centre connected to a camera at all.
type countingProxy struct {
	ln     net.Listener
	target string
	conns  atomic.Int32
	wg     sync.WaitGroup
}

func startCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *countingProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			if p.target == "" {
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); up.Close(); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); c.Close(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func (p *countingProxy) addr() string { return p.ln.Addr().String() }
func (p *countingProxy) port() string { return strconv.Itoa(p.ln.Addr().(*net.TCPAddr).Port) }

// loopbackCameraNetworks is what edge agents of these tests may reach: the
// simulated cameras on loopback.
func loopbackCameraNetworks(t testing.TB) *cameranet.Policy {
	t.Helper()
	p, err := cameranet.Parse("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// defaultNetworksConfig is testConfig with the centre's default camera
// networks: the private ranges, no loopback.
func defaultNetworksConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.CameraNetworks = nil
	return cfg
}

// wantRefused checks a 422 naming field and containing every one of want.
func wantRefused(t *testing.T, what string, res response, field string, want ...string) {
	t.Helper()
	e := wantError(t, res, http.StatusUnprocessableEntity)
	if e.Field != field {
		t.Errorf("%s: field %q, want %q (%s)", what, e.Field, field, res.Body)
	}
	for _, w := range want {
		if !strings.Contains(e.Message, w) {
			t.Errorf("%s: message %q does not say %q", what, e.Message, w)
		}
	}
}

// TestPointURLsOutsideTheCameraNetworksAre422NamingTheRule is the door of
// issue 10: "a point's RTSP URL may name any host: 127.0.0.1 ports,
// 169.254.169.254; the centre connects there". Under the default camera
// networks every such create, PATCH and import is a 422 naming the rule,
// nothing is stored, and the always-on camera port sees no connection.
func TestPointURLsOutsideTheCameraNetworksAre422NamingTheRule(t *testing.T) {
	a := startAppWith(t, defaultNetworksConfig(t))
	cam := startCountingProxy(t, "") // an open port on loopback
	point := func(id, mainURL string, sub map[string]string) map[string]any {
		p := map[string]any{"id": id, "name": "Point " + id, "on_demand": false,
			"main": map[string]string{"type": "rtsp", "url": mainURL}}
		if sub != nil {
			p["sub"] = sub
		}
		return p
	}

	res := a.admin(http.MethodPost, "/api/v1/points", point("lo", "rtsp://cam:campass@"+cam.addr()+"/main", nil))
	wantRefused(t, "loopback port", res, "main.url", "camera URL host 127.0.0.1 is loopback; "+centreRule)
	if strings.Contains(string(res.Body), "campass") {
		t.Fatalf("the refusal shows the camera password: %s", res.Body)
	}

	res = a.admin(http.MethodPost, "/api/v1/points", point("meta", "rtsp://169.254.169.254/latest/meta-data", nil))
	if e := wantError(t, res, http.StatusUnprocessableEntity); e.Message != "camera URL host 169.254.169.254 is link-local; "+centreRule {
		t.Fatalf("metadata address: %q", e.Message)
	}

	// localhost is in /etc/hosts: resolved without a DNS query.
	res = a.admin(http.MethodPost, "/api/v1/points", point("name", "rtsp://localhost:"+cam.port()+"/main", nil))
	wantRefused(t, "a name resolving to loopback", res, "main.url", "camera URL host localhost resolves to 127.0.0.1, which is loopback")

	res = a.admin(http.MethodPost, "/api/v1/points", point("sub", "rtsp://10.0.0.5/main",
		map[string]string{"type": "rtsp", "url": "rtsp://127.0.0.1:" + cam.port() + "/sub"}))
	wantRefused(t, "sub stream", res, "sub.url", "is loopback")

	// A point on the camera LAN is fine; moving it to loopback is not.
	a.createPoint("lan", map[string]string{"type": "rtsp", "url": "rtsp://10.0.0.5:554/main"})
	res = a.admin(http.MethodPatch, "/api/v1/points/lan", map[string]any{"main": map[string]string{"type": "rtsp", "url": "rtsp://127.0.0.1:" + cam.port() + "/main"}})
	wantRefused(t, "PATCH to loopback", res, "main.url", "is loopback")
	var got pointJSON
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/points/lan", nil), &got)
	if got.Source.URL != "rtsp://10.0.0.5:554/main" {
		t.Fatalf("a refused PATCH changed the point: %+v", got)
	}

	csv := "id,name,kind,category,region,lat,lon,level,address,tags,ptz,main_url,sub_url,on_demand\n" +
		"imp1,Fine,hd,road,,,,1,,,false,rtsp://10.0.0.6/main,,false\n" +
		"imp2,Metadata,hd,road,,,,1,,,false,rtsp://169.254.169.254/x,,false\n" +
		"imp3,Loopback,hd,road,,,,1,,,false,rtsp://127.0.0.1:" + cam.port() + "/main,,false\n"
	rows := wantRowsRejected(t, a.do(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", csv))
	if len(rows) != 2 || rows[0] != (rowJSON{Line: 3, Field: "main_url"}) || rows[1] != (rowJSON{Line: 4, Field: "main_url"}) {
		t.Fatalf("import rows %+v, want lines 3 and 4 on main_url", rows)
	}
	for _, id := range []string{"lo", "meta", "name", "sub", "imp1", "imp2", "imp3"} {
		if res := a.admin(http.MethodGet, "/api/v1/points/"+id, nil); res.Status != http.StatusNotFound {
			t.Errorf("point %s exists after a refusal: %s", id, res)
		}
	}
	// Pullers of always-on points start at once; give one the time it
	// would need before asserting none ever connected.
	time.Sleep(time.Second)
	if n := cam.conns.Load(); n != 0 {
		t.Fatalf("the loopback camera port got %d connections from the centre", n)
	}
}

// TestStoredPointOutsideTheCameraNetworksIsNotPulledAndGoesOffline: a
// point stored while loopback was listed (or before camera networks
// existed) streams and is online; after a restart without loopback the
// centre never connects to it again and its status turns offline, with
// the rule in its stats.
func TestStoredPointOutsideTheCameraNetworksIsNotPulledAndGoesOffline(t *testing.T) {
	cam := startCamera(t, camsim.ClipH264Sub)
	proxy := startCountingProxy(t, cam.Addr())
	cfg := testConfig(t) // loopback listed
	first, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a1 := &testApp{App: first, t: t, http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}}
	a1.token = a1.login(adminPassword)
	res := a1.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "gate", "name": "Gate", "on_demand": false,
		"main": map[string]string{"type": "rtsp", "url": "rtsp://cam:campass@" + proxy.addr() + "/main"}})
	if res.Status != http.StatusCreated {
		t.Fatal(res)
	}
	waitFor(t, 15*time.Second, "online while loopback is listed", func() bool { return a1.pointStatus("gate") == "online" })
	a1.http.CloseIdleConnections()
	first.Close(context.Background())

	before := proxy.conns.Load()
	cfg.CameraNetworks = nil
	a := startAppWith(t, cfg)
	waitFor(t, 15*time.Second, "offline once the URL is outside the camera networks", func() bool { return a.pointStatus("gate") == "offline" })
	if st := a.stats("gate"); !strings.Contains(st.SourceError, "camera address "+proxy.addr()+" is loopback; "+centreRule) {
		t.Fatalf("source error %q does not name the rule", st.SourceError)
	}
	// Retries keep being refused: the status stays offline and the camera
	// never hears from the centre again.
	time.Sleep(2 * time.Second)
	if st := a.pointStatus("gate"); st != "offline" {
		t.Fatalf("status %q after retries, want offline", st)
	}
	if n := proxy.conns.Load(); n != before {
		t.Fatalf("the centre connected %d times to a camera outside its networks", n-before)
	}
}

// TestCameraNameRebindingToLoopbackIsRefusedAtConnectTime: a camera name
// resolves into the camera LAN when the point is created and to loopback
// when the centre connects. The URL passed validation; the connection is
// refused anyway, and the loopback camera sees nothing.
func TestCameraNameRebindingToLoopbackIsRefusedAtConnectTime(t *testing.T) {
	dns := fakedns.Start(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	proxy := startCountingProxy(t, cam.Addr())
	cfg := defaultNetworksConfig(t)
	cfg.CameraResolver = dns.Resolver()
	a := startAppWith(t, cfg)

	const name = "gate-cam.rebind.test"
	dns.Set(name, netip.MustParseAddr("10.0.0.7"))
	a.createPoint("gate", map[string]string{"type": "rtsp", "url": "rtsp://cam:campass@" + name + ":" + proxy.port() + "/main"})
	dns.Set(name, netip.MustParseAddr("127.0.0.1"))

	onDemand := false
	res := a.admin(http.MethodPatch, "/api/v1/points/gate", map[string]any{"on_demand": onDemand})
	if res.Status != http.StatusOK {
		t.Fatalf("PATCH on_demand: %s", res)
	}
	waitFor(t, 15*time.Second, "the rebound name refused naming the resolved address and the rule", func() bool {
		return strings.Contains(a.stats("gate").SourceError, "camera address 127.0.0.1:"+proxy.port()+" is loopback; "+centreRule)
	})
	waitFor(t, 10*time.Second, "offline", func() bool { return a.pointStatus("gate") == "offline" })
	if n := proxy.conns.Load(); n != 0 {
		t.Fatalf("the centre connected %d times to loopback through a rebound name", n)
	}
	// The same point on a name that resolves into the listed networks is
	// pulled: only the resolved address decided.
	if dns.Queries(name) < 2 {
		t.Fatalf("the name was not resolved again at connect time (%d queries)", dns.Queries(name))
	}
}

// TestPointURLOfTheServersOwnListenersIs422EvenWithLoopbackListed: with
// 127.0.0.0/8 listed (tests, the demo), the server's own RTSP and HTTP
// ports are still no camera.
func TestPointURLOfTheServersOwnListenersIs422EvenWithLoopbackListed(t *testing.T) {
	a := startApp(t)
	for what, addr := range map[string]string{"RTSP": a.RTSP.Addr(), "HTTP": strings.TrimPrefix(a.HTTPURL(), "http://")} {
		res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "self", "name": "Self",
			"main": map[string]string{"type": "rtsp", "url": "rtsp://" + addr + "/p"}})
		wantRefused(t, what, res, "main.url", "is this server's own listener ("+addr+")")
	}
	// Any other loopback port is a camera while loopback is listed.
	cam := startCamera(t, camsim.ClipH264Sub)
	p := a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})
	raw, _ := json.Marshal(p)
	if !strings.Contains(string(raw), cam.Addr()) {
		t.Fatalf("created %s", raw)
	}
}

// TestAgentProbeAndHealthStayInsideTheAgentsCameraNetworks: an agent whose
// camera network is 10.0.0.0/8 answers a technician's probe of a loopback
// or link-local address with 422 naming the rule, sending nothing; and a
// point bound to it whose camera URL names an open loopback port is never
// dialled by the health check, so it does not turn online.
func TestAgentProbeAndHealthStayInsideTheAgentsCameraNetworks(t *testing.T) {
	a := startApp(t)
	if _, err := a.Catalog.CreateRegion(catalog.Region{Code: "440307", Name: "District"}); err != nil {
		t.Fatal(err)
	}
	soap := startCountingProxy(t, "") // would-be ONVIF device service
	rtspPort := startCountingProxy(t, "")
	nets, err := cameranet.Parse("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	// In the district, so the technician's provision grant covers its
	// unbound cameras and the probe reaches the camera-network check.
	creds := a.enrollAgentIn("Field LAN", "440307")
	agent := edge.New(edge.Config{Credentials: creds, Cameras: edge.NewCameraBook("", testLogger()),
		CameraNetworks: nets, HealthInterval: 200 * time.Millisecond, Logger: testLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "agent online", agent.Online)

	page := httptest.NewServer(edge.NewProvisioningUI(agent, testLogger()).Handler())
	t.Cleanup(page.Close)
	a.createUser("tech", "tech-pass-123")
	a.grant(map[string]any{"user": "tech", "categories": []string{"reservoir"}, "regions": []string{"440307"},
		"max_level": 2, "actions": []string{"provision", "view"}})
	jar, _ := cookiejar.New(nil)
	p := &techPage{t: t, base: page.URL, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	if code, body := p.call(http.MethodPost, "/api/login", map[string]string{"username": "tech", "password": "tech-pass-123"}); code != http.StatusOK {
		t.Fatalf("technician login: %d %s", code, body)
	}
	for xaddr, rule := range map[string]string{
		"http://" + soap.addr() + "/onvif/device_service": "camera URL host 127.0.0.1 is loopback; not inside --camera-networks (10.0.0.0/8)",
		"169.254.169.254": "camera URL host 169.254.169.254 is link-local; not inside --camera-networks (10.0.0.0/8)",
	} {
		code, body := p.call(http.MethodPost, "/api/cameras/probe", map[string]string{"xaddr": xaddr, "username": "admin", "password": "pw"})
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(body, &e)
		if code != http.StatusUnprocessableEntity || e.Error.Code != "camera_network" || e.Error.Message != rule {
			t.Errorf("probe of %s: %d %s, want 422 camera_network %q", xaddr, code, body, rule)
		}
	}

	// The centre does not judge an agent's LAN: the point is stored, and
	// the agent's networks decide.
	a.createPointFromBody(map[string]any{"id": "field1", "name": "Field 1", "agent": creds.AgentID, "camera": "cam-x",
		"main": map[string]string{"type": "rtsp", "url": "rtsp://admin:pw@" + rtspPort.addr() + "/main"}})
	waitFor(t, 10*time.Second, "the agent's health report", func() bool { return a.pointStatus("field1") == "offline" })
	time.Sleep(time.Second) // five more health rounds
	if st := a.pointStatus("field1"); st != "offline" {
		t.Fatalf("a point whose camera is outside the agent's networks is %q", st)
	}
	if n := soap.conns.Load() + rtspPort.conns.Load(); n != 0 {
		t.Fatalf("the agent connected %d times outside its camera networks", n)
	}
}

// createPointFromBody creates a point from a full request body and fails otherwise.
func (a *testApp) createPointFromBody(body map[string]any) {
	a.t.Helper()
	if res := a.admin(http.MethodPost, "/api/v1/points", body); res.Status != http.StatusCreated {
		a.t.Fatalf("create point: %s", res)
	}
}
