package server

import (
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/edge"
	"github.com/tianyan/vms/whepclient"
)

// startONVIFCamera starts a simulated ONVIF camera on loopback with PTZ.
func startONVIFCamera(t testing.TB, name string) *camsim.Camera {
	t.Helper()
	cam, err := camsim.StartCamera(camsim.CameraConfig{Name: name, Manufacturer: "Tianyan", Model: "SIM-PTZ",
		DiscoveryIP: "127.0.0.1", Username: "admin", Password: "cam-secret-1", PTZ: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// techPage is a technician's browser session on the agent's page.
type techPage struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (p *techPage) call(method, path string, body any) (int, []byte) {
	p.t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, p.base+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := p.hc.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

func TestTechnicianProvisionsDiscoveredCameraThroughAgentAndCentreDrivesIt(t *testing.T) {
	a := startApp(t)
	for _, r := range []catalog.Region{{Code: "440307", Name: "District"}, {Code: "440307001", Name: "S1", Parent: "440307"}} {
		if _, err := a.Catalog.CreateRegion(r); err != nil {
			t.Fatal(err)
		}
	}
	cam := startONVIFCamera(t, "Reservoir-1")
	// The agent serves street 1, where the technician provisions.
	creds := a.enrollAgentIn("Reservoir LAN", "440307001")
	book := edge.NewCameraBook(t.TempDir(), testLogger())
	book.SetDiscovery(edge.DiscoveryConfig{MulticastIP: "127.0.0.1", Timeout: 1500 * time.Millisecond})
	agent := edge.New(edge.Config{Credentials: creds, Cameras: book, HealthInterval: time.Second, Logger: testLogger(),
		CameraNetworks: loopbackCameraNetworks(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "agent online", agent.Online)
	page := httptest.NewServer(edge.NewProvisioningUI(agent, testLogger()).Handler())
	t.Cleanup(page.Close)

	a.createUser("tech", "tech-pass-123")
	a.grant(map[string]any{"user": "tech", "categories": []string{"reservoir"}, "regions": []string{"440307001"},
		"max_level": 2, "actions": []string{"provision", "view", "ptz", "snapshot"}})
	jar, _ := cookiejar.New(nil)
	p := &techPage{t: t, base: page.URL, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second}}

	if code, _ := p.call(http.MethodGet, "/api/cameras", nil); code != http.StatusUnauthorized {
		t.Fatalf("page API without login: %d", code)
	}
	if code, body := p.call(http.MethodPost, "/api/login", map[string]string{"username": "tech", "password": "wrong"}); code != http.StatusUnauthorized {
		t.Fatalf("wrong technician password: %d %s", code, body)
	}
	if code, body := p.call(http.MethodPost, "/api/login", map[string]string{"username": "tech", "password": "tech-pass-123"}); code != http.StatusOK {
		t.Fatalf("technician login: %d %s", code, body)
	}
	code, body := p.call(http.MethodPost, "/api/discover", nil)
	var list struct{ Items []edge.Camera }
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil {
		t.Fatalf("discover: %d %s", code, body)
	}
	var found *edge.Camera
	for i, c := range list.Items {
		if c.XAddr == cam.XAddr() {
			found = &list.Items[i]
		}
	}
	if found == nil {
		t.Fatalf("the camera at %s was not discovered: %s", cam.XAddr(), body)
	}
	if code, body := p.call(http.MethodPost, "/api/cameras/probe", map[string]string{"id": found.ID, "username": "admin", "password": "wrong"}); code != http.StatusBadGateway {
		t.Fatalf("probe with a wrong camera password: %d %s", code, body)
	}
	code, body = p.call(http.MethodPost, "/api/cameras/probe", map[string]string{"id": found.ID, "username": "admin", "password": "cam-secret-1"})
	var probed edge.Camera
	if err := json.Unmarshal(body, &probed); code != http.StatusOK || err != nil || probed.MainToken == "" || probed.SubToken == "" || !probed.PTZ {
		t.Fatalf("probe: %d %s", code, body)
	}
	if bytes.Contains(body, []byte("cam-secret-1")) {
		t.Fatal("the page API showed the camera password")
	}
	code, body = p.call(http.MethodGet, "/api/cameras/"+found.ID+"/snapshot.jpg", nil)
	if _, err := jpeg.Decode(bytes.NewReader(body)); code != http.StatusOK || err != nil {
		t.Fatalf("snapshot preview: %d %v", code, err)
	}
	// Outside the technician's grant: refused by the centre, said on the page.
	code, body = p.call(http.MethodPost, "/api/cameras/"+found.ID+"/point", edge.PointSpec{Name: "School gate", Category: "school", Region: "440307001", Level: 1})
	if code != http.StatusForbidden {
		t.Fatalf("provision outside the grant: %d %s", code, body)
	}
	code, body = p.call(http.MethodPost, "/api/cameras/"+found.ID+"/point", edge.PointSpec{Name: "水库 1 号", Category: "reservoir",
		Region: "440307001", Level: 2, Kind: "panoramic", UseSub: true})
	var pt catalog.Point
	if err := json.Unmarshal(body, &pt); code != http.StatusCreated || err != nil {
		t.Fatalf("provision: %d %s", code, body)
	}
	if pt.Agent != creds.AgentID || pt.Camera != found.ID || pt.Sub == nil || !pt.PTZ {
		t.Fatalf("provisioned point %+v", pt)
	}

	// The technician watches it through the centre: relay on demand, with a
	// keyframe request to the camera.
	tech := a.loginAs("tech", "tech-pass-123")
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	start := time.Now()
	c, err := whepclient.ConnectHTTP(wctx, a.whepURL(pt.ID), tech, whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatalf("WHEP of the provisioned point: %v", err)
	}
	defer c.Close()
	if err := c.WaitKeyframe(wctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("cold start through agent with keyframe request: %v", time.Since(start))

	// PTZ and snapshots from the central API travel through the agent.
	before := cam.PTZPosition()
	res := a.do(http.MethodPost, "/api/v1/points/"+pt.ID+"/ptz", tech, "", map[string]any{"op": "move", "pan": 0.8, "timeout_ms": 400})
	if res.Status != http.StatusNoContent {
		t.Fatalf("ptz move: %s", res)
	}
	waitFor(t, 5*time.Second, "camera head moved", func() bool { return cam.PTZPosition().Pan > before.Pan+0.05 })
	res = a.do(http.MethodGet, "/api/v1/points/"+pt.ID+"/snapshot.jpg", tech, "", nil)
	if _, err := jpeg.Decode(bytes.NewReader(res.Body)); res.Status != http.StatusOK || err != nil {
		t.Fatalf("snapshot through the centre: %d %v", res.Status, err)
	}
	wantError(t, a.do(http.MethodPost, "/api/v1/points/"+pt.ID+"/ptz", tech, "", map[string]any{"op": "spin"}), http.StatusUnprocessableEntity)

	// Without the ptz grant: 403; outside any grant: 404.
	a.createUser("viewer", "viewer-pass-123")
	a.grant(map[string]any{"user": "viewer", "categories": []string{"reservoir"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}})
	viewer := a.loginAs("viewer", "viewer-pass-123")
	wantError(t, a.do(http.MethodPost, "/api/v1/points/"+pt.ID+"/ptz", viewer, "", map[string]any{"op": "stop"}), http.StatusForbidden)
	wantError(t, a.do(http.MethodGet, "/api/v1/points/"+pt.ID+"/snapshot.jpg", viewer, "", nil), http.StatusForbidden)
	a.createUser("other", "other-pass-123")
	other := a.loginAs("other", "other-pass-123")
	wantError(t, a.do(http.MethodPost, "/api/v1/points/"+pt.ID+"/ptz", other, "", map[string]any{"op": "stop"}), http.StatusNotFound)

	// The inventory reached the centre, without credentials.
	res = a.admin(http.MethodGet, "/api/v1/agents/"+creds.AgentID, nil)
	if !bytes.Contains(res.Body, []byte(found.ID)) || bytes.Contains(res.Body, []byte("cam-secret-1")) {
		t.Fatalf("agent inventory at the centre: %s", res.Body)
	}
	// Audit has the provisioning, PTZ and snapshot.
	res = a.admin(http.MethodGet, "/api/v1/audit?point="+pt.ID, nil)
	for _, action := range []string{"point.create", "ptz.move", "snapshot", "view.start"} {
		if !bytes.Contains(res.Body, []byte(`"`+action+`"`)) {
			t.Errorf("audit lacks %s: %s", action, res.Body)
		}
	}
}
