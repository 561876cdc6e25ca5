package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/edge"
	"github.com/tianyan/vms/server"
)

// TestDemoAgentPageAsEachDemoAccount walks the agent's provisioning page of
// `vms demo` as the review that found its side door did: only the
// technician may log in; the 16 cameras the demo registered are shown as
// registered, with their points, and none can be registered again; the
// level-4 panoramic mast's snapshot comes through the centre's door.
func TestDemoAgentPageAsEachDemoAccount(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ui := ln.Addr().String()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.RTSPAddr, cfg.WebRTCAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SIPAddr = "127.0.0.1:0"
	cfg.ICEInterfaces = []string{"lo"}
	cfg.AdminPassword = Accounts[0].Password
	cfg.Argon = accounts.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Logger = log
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Start(ctx, cfg, Options{Logger: log, AgentUIListener: ln, SkipCatalog: true})
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	t.Cleanup(d.Close)

	call := func(hc *http.Client, method, path string, body any) (int, []byte) {
		t.Helper()
		var r io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			r = bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, d.AgentUIURL+path, r)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, out
	}
	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 30 * time.Second}
	}
	waitFor(t, 10*time.Second, "the agent's page", func() bool {
		c, err := net.Dial("tcp", ui)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	for _, a := range Accounts {
		code, body := call(browser(), http.MethodPost, "/api/login", map[string]string{"username": a.Username, "password": a.Password})
		want := http.StatusForbidden
		if a.Username == "admin" || a.Username == "tech" {
			want = http.StatusOK
		}
		if code != want {
			t.Errorf("%s logging in on the agent page: %d %s, want %d", a.Username, code, body, want)
		}
	}

	tech := browser()
	if code, body := call(tech, http.MethodPost, "/api/login", map[string]string{"username": "tech", "password": "tech-demo"}); code != http.StatusOK {
		t.Fatalf("tech login: %d %s", code, body)
	}
	code, body := call(tech, http.MethodGet, "/api/cameras", nil)
	var list struct{ Items []edge.PageCamera }
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil {
		t.Fatalf("cameras: %d %s", code, body)
	}
	// Other cameras on this host's loopback (another demo's, a test's)
	// are on the agent's LAN too and rightly offered as new: judge only
	// the demo's own.
	own := map[string]bool{}
	for _, c := range d.Cameras {
		own[edge.CameraID(c.Endpoint(), c.XAddr())] = true
	}
	points := map[string]string{} // point → camera
	for _, c := range list.Items {
		if !own[c.ID] {
			continue
		}
		if c.Point == nil {
			t.Errorf("camera %s (%s) is offered as new", c.ID, c.Name)
			continue
		}
		points[c.Point.ID] = c.ID
	}
	if len(points) != len(liveCameras) {
		t.Fatalf("%d registered cameras listed, the demo registered %d", len(points), len(liveCameras))
	}
	mast := liveCameras[15] // 前海片区高点: level 4, panoramic
	cam := points[mast.id]
	if cam == "" {
		t.Fatalf("the level-4 mast %s is not listed as registered", mast.id)
	}
	code, body = call(tech, http.MethodPost, "/api/cameras/"+cam+"/point", edge.PointSpec{Name: "again", Category: mast.category, Region: mast.region, Level: 4})
	if code != http.StatusConflict {
		t.Fatalf("registering the mast again: %d %s", code, body)
	}
	code, body = call(tech, http.MethodGet, "/api/cameras/"+cam+"/snapshot.jpg", nil)
	if _, err := jpeg.Decode(bytes.NewReader(body)); code != http.StatusOK || err != nil {
		t.Fatalf("the technician's snapshot of the mast: %d %v", code, err)
	}
}
