package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/whepclient"
)

// The whole suite talks to real servers on 127.0.0.1 only: the app, camsim
// cameras, ffmpeg and a GStreamer camera. Nothing is mocked.

const adminPassword = "admin-pass-123"

func testLogger() *slog.Logger {
	if os.Getenv("VMS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// store, accounts and catalog log to slog's default logger (and gortsplib to
// the log package, which follows it): quiet them too unless VMS_TEST_LOG is set.
func init() {
	if os.Getenv("VMS_TEST_LOG") == "" {
		slog.SetDefault(testLogger())
	}
}

// testApp is a running App with an HTTP client of its own.
type testApp struct {
	*App
	t     *testing.T
	http  *http.Client
	token string // admin's session token
}

func testConfig(t testing.TB) Config {
	cfg := Config{
		DataDir:       t.TempDir(),
		HTTPAddr:      "127.0.0.1:0",
		RTSPAddr:      "127.0.0.1:0",
		WebRTCAddr:    "127.0.0.1:0",
		ICEInterfaces: []string{"lo"},
		IdleGrace:     500 * time.Millisecond,
		StartTimeout:  3 * time.Second,
		AdminPassword: adminPassword,
		Argon:         accounts.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1},
		Logger:        testLogger(),
	}
	// The suite's cameras (camsim, ffmpeg, GStreamer) listen on loopback;
	// the private ranges stay for points that name 10.x hosts.
	cfg.CameraNetworks = append(cameranet.CentreDefaults(), "127.0.0.0/8")
	return cfg
}

// startApp starts the full server and logs in as admin. The app is closed
// when the test ends.
func startApp(t *testing.T) *testApp {
	t.Helper()
	return startAppWith(t, testConfig(t))
}

// startAppWith is startApp with a configuration of the test's own.
func startAppWith(t *testing.T, cfg Config) *testApp {
	t.Helper()
	app, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	a := &testApp{App: app, t: t, http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		app.Close(ctx)
		a.http.CloseIdleConnections()
	})
	a.token = a.login(adminPassword)
	return a
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// apiErr is the error body every failure carries.
type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

// do sends one request. body may be nil, a string (sent as is) or anything
// else (sent as JSON).
func (a *testApp) do(method, path, token, contentType string, body any) response {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
		if contentType == "" {
			contentType = "application/json"
		}
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = a.HTTPURL() + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	buf, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: buf}
}

// admin sends a request as the logged-in admin.
func (a *testApp) admin(method, path string, body any) response {
	a.t.Helper()
	return a.do(method, path, a.token, "", body)
}

func (a *testApp) login(password string) string {
	a.t.Helper()
	res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "admin", "password": password})
	if res.Status != http.StatusOK {
		a.t.Fatalf("login: %s", res)
	}
	var out struct {
		Token string `json:"token"`
	}
	decodeInto(a.t, res, &out)
	if out.Token == "" {
		a.t.Fatalf("login answered no token: %s", res.Body)
	}
	return out.Token
}

func decodeInto(t *testing.T, res response, v any) {
	t.Helper()
	if err := json.Unmarshal(res.Body, v); err != nil {
		t.Fatalf("decoding %q: %v", res.Body, err)
	}
}

// wantError checks status and the {"error":{"code","message"}} shape, and
// returns the error.
func wantError(t *testing.T, res response, status int) apiErr {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d; body %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q, want application/json", ct)
	}
	var shape map[string]map[string]any
	if err := json.Unmarshal(res.Body, &shape); err != nil || len(shape) != 1 || shape["error"] == nil {
		t.Fatalf(`error body %s is not {"error":{...}} (%v)`, res.Body, err)
	}
	for _, k := range []string{"code", "message"} {
		if s, ok := shape["error"][k].(string); !ok || s == "" {
			t.Fatalf("error body %s: %q missing or not a non-empty string", res.Body, k)
		}
	}
	var out struct {
		Error apiErr `json:"error"`
	}
	decodeInto(t, res, &out)
	return out.Error
}

// pointJSON is the API's view of a point.
type pointJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Source struct {
		Type      string `json:"type"`
		URL       string `json:"url"`
		Transport string `json:"transport"`
	} `json:"main"`
	OnDemand bool `json:"on_demand"`
}

// createPoint creates a point over HTTP and fails the test otherwise.
func (a *testApp) createPoint(id string, source map[string]string) pointJSON {
	a.t.Helper()
	res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": id, "name": "Point " + id, "source": source})
	if res.Status != http.StatusCreated {
		a.t.Fatalf("create point %s: %s", id, res)
	}
	var p pointJSON
	decodeInto(a.t, res, &p)
	return p
}

// statsJSON is GET /api/v1/points/{id}/stats.
type statsJSON struct {
	State       string  `json:"state"`
	VideoCodec  string  `json:"video_codec"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	FPS         float64 `json:"fps"`
	Readers     int     `json:"readers"`
	FramesIn    uint64  `json:"frames_in"`
	SourceError string  `json:"source_error"`
}

func (a *testApp) stats(id string) statsJSON {
	a.t.Helper()
	res := a.admin(http.MethodGet, "/api/v1/points/"+id+"/stats", nil)
	if res.Status != http.StatusOK {
		a.t.Fatalf("stats of %s: %s", id, res)
	}
	var st statsJSON
	decodeInto(a.t, res, &st)
	return st
}

func (a *testApp) whepURL(id string) string { return a.HTTPURL() + "/api/v1/points/" + id + "/whep" }

// connectViewer opens a WHEP session over HTTP as admin; it is closed when
// the test ends.
func (a *testApp) connectViewer(id string, opts whepclient.Options) *whepclient.Client {
	a.t.Helper()
	c, err := a.tryViewer(id, opts)
	if err != nil {
		a.t.Fatalf("WHEP viewer of %s: %v", id, err)
	}
	return c
}

func (a *testApp) tryViewer(id string, opts whepclient.Options) (*whepclient.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts.Interfaces = []string{"lo"}
	c, err := whepclient.ConnectHTTP(ctx, a.whepURL(id), a.token, opts)
	if err != nil {
		return nil, err
	}
	a.t.Cleanup(c.Close)
	return c, nil
}

// whepStatus is the HTTP status a WHEP viewer was refused with.
func whepStatus(t *testing.T, err error) (int, string) {
	t.Helper()
	var he *whepclient.HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("WHEP error %v (%T), want an HTTP status", err, err)
	}
	return he.Status, he.Body
}

func waitKeyframe(t *testing.T, c *whepclient.Client, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatalf("%v (viewer stats %+v, connection %s)", err, c.Stats(), c.ConnectionState())
	}
}

// startCamera starts a camsim camera looping clip at /main.
func startCamera(t *testing.T, clipName string) *camsim.RTSPCamera {
	t.Helper()
	clip, err := camsim.LoadClip(clipName)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{
		Address:  "127.0.0.1:0",
		Profiles: map[string]*camsim.Clip{"main": clip},
		User:     "cam", Pass: "campass",
		Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// requireTool finds an external program CI installs. A missing tool fails
// the test: skipping would hide that the interop checks never ran.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required for this test (CI installs it): %v", name, err)
	}
	return p
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// --- Authentication -------------------------------------------------------

func TestAPIWithoutTokenIs401WithErrorBody(t *testing.T) {
	a := startApp(t)
	a.createPoint("gate", map[string]string{"type": "publish"})

	for _, tc := range []struct{ method, path, ct, body string }{
		{http.MethodGet, "/api/v1/points", "", ""},
		{http.MethodPost, "/api/v1/points/gate/whep", "application/sdp", "v=0\r\n"},
	} {
		res := a.do(tc.method, tc.path, "", tc.ct, tc.body)
		e := wantError(t, res, http.StatusUnauthorized)
		if e.Code != "unauthenticated" {
			t.Errorf("%s %s: code %q, want unauthenticated", tc.method, tc.path, e.Code)
		}
		if h := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
			t.Errorf("%s %s: WWW-Authenticate %q, want a Bearer challenge", tc.method, tc.path, h)
		}
		// A made-up token is no better than none.
		res = a.do(tc.method, tc.path, "not-a-real-token", tc.ct, tc.body)
		wantError(t, res, http.StatusUnauthorized)
	}
}

func TestLoginWithWrongPasswordIs401(t *testing.T) {
	a := startApp(t)
	res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "admin", "password": "wrong-password"})
	e := wantError(t, res, http.StatusUnauthorized)
	if e.Code != "bad_credentials" {
		t.Fatalf("code %q, want bad_credentials", e.Code)
	}
	if strings.Contains(string(res.Body), "token") {
		t.Fatalf("failed login answered a token: %s", res.Body)
	}
}

// --- Points ---------------------------------------------------------------

func TestPointCRUDOverHTTPNeverShowsCameraPassword(t *testing.T) {
	a := startApp(t)
	const secret = "s3cr3t-Pa55"
	camURL := "rtsp://camuser:" + secret + "@127.0.0.1:554/stream1"
	wantURL := "rtsp://***:***@127.0.0.1:554/stream1"

	res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{
		"id": "gate-1", "name": "Gate 1", "source": map[string]string{"type": "rtsp", "url": camURL},
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("create: %s", res)
	}
	if loc := res.Header.Get("Location"); loc != "/api/v1/points/gate-1" {
		t.Errorf("create Location %q", loc)
	}
	var p pointJSON
	decodeInto(t, res, &p)
	if p.ID != "gate-1" || p.Name != "Gate 1" || p.Source.Type != "rtsp" || p.Source.URL != wantURL || p.Source.Transport != "tcp" || !p.OnDemand {
		t.Fatalf("created point %+v", p)
	}

	check := func(what string, res response) {
		t.Helper()
		if res.Status != http.StatusOK {
			t.Fatalf("%s: %s", what, res)
		}
		if strings.Contains(string(res.Body), secret) {
			t.Fatalf("%s leaks the camera password: %s", what, res.Body)
		}
	}
	res = a.admin(http.MethodGet, "/api/v1/points/gate-1", nil)
	check("GET", res)
	decodeInto(t, res, &p)
	if p.Source.URL != wantURL {
		t.Fatalf("GET url %q, want %q", p.Source.URL, wantURL)
	}

	a.createPoint("gate-2", map[string]string{"type": "publish"})
	res = a.admin(http.MethodGet, "/api/v1/points", nil)
	check("list", res)
	var list struct {
		Items []pointJSON `json:"items"`
		Total int         `json:"total"`
	}
	decodeInto(t, res, &list)
	if list.Total != 2 || len(list.Items) != 2 {
		t.Fatalf("list: %s", res.Body)
	}
	for _, it := range list.Items {
		if it.ID == "gate-1" && it.Source.URL != wantURL {
			t.Fatalf("list url %q", it.Source.URL)
		}
	}

	// Sending back the redacted URL the API showed keeps the real password.
	res = a.admin(http.MethodPatch, "/api/v1/points/gate-1", map[string]any{
		"name": "Gate One", "on_demand": false, "source": map[string]string{"type": "rtsp", "url": wantURL},
	})
	check("PATCH", res)
	decodeInto(t, res, &p)
	if p.Name != "Gate One" || p.OnDemand || p.Source.URL != wantURL {
		t.Fatalf("patched point %+v", p)
	}
	stored, err := a.Catalog.Get("gate-1")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Main.URL != camURL {
		t.Fatalf("stored url after PATCH with the redacted url = %q, want the original", stored.Main.URL)
	}

	res = a.admin(http.MethodDelete, "/api/v1/points/gate-1", nil)
	if res.Status != http.StatusNoContent {
		t.Fatalf("delete: %s", res)
	}
	wantError(t, a.admin(http.MethodGet, "/api/v1/points/gate-1", nil), http.StatusNotFound)
	wantError(t, a.admin(http.MethodDelete, "/api/v1/points/gate-1", nil), http.StatusNotFound)
	wantError(t, a.admin(http.MethodGet, "/api/v1/points/gate-1/stats", nil), http.StatusNotFound)
}

func TestPointWithMalformedJSONIs400(t *testing.T) {
	a := startApp(t)
	for _, body := range []string{`{"id":"x","name":`, `{"id": "x"`, ``, `not json`} {
		res := a.do(http.MethodPost, "/api/v1/points", a.token, "application/json", body)
		wantError(t, res, http.StatusBadRequest)
	}
	a.createPoint("p1", map[string]string{"type": "publish"})
	res := a.do(http.MethodPatch, "/api/v1/points/p1", a.token, "application/json", `{"name":`)
	wantError(t, res, http.StatusBadRequest)
}

func TestPointWithInvalidFieldIs422NamingTheField(t *testing.T) {
	a := startApp(t)
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"id": "bad id!", "name": "x", "source": map[string]string{"type": "publish"}}, "id"},
		{map[string]any{"id": "ok", "name": "", "source": map[string]string{"type": "publish"}}, "name"},
		{map[string]any{"id": "ok", "name": "x", "source": map[string]string{"type": "rtsp", "url": "http://cam/x"}}, "main.url"},
		{map[string]any{"id": "ok", "name": "x", "source": map[string]string{"type": "ftp"}}, "main.type"},
		{map[string]any{"id": "ok", "name": "x", "source": map[string]string{"type": "publish"}, "colour": "red"}, "colour"},
	} {
		res := a.admin(http.MethodPost, "/api/v1/points", tc.body)
		e := wantError(t, res, http.StatusUnprocessableEntity)
		if e.Field != tc.field {
			t.Errorf("body %v: field %q, want %q (%s)", tc.body, e.Field, tc.field, res.Body)
		}
	}
	if res := a.admin(http.MethodGet, "/api/v1/points", nil); !strings.Contains(string(res.Body), `"total":0`) {
		t.Fatalf("rejected points were stored: %s", res.Body)
	}
}

// --- Metrics --------------------------------------------------------------

func TestMetricsNeedAdminToken(t *testing.T) {
	a := startApp(t)
	wantError(t, a.do(http.MethodGet, "/metrics", "", "", nil), http.StatusUnauthorized)
	res := a.admin(http.MethodGet, "/metrics", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("metrics as admin: %s", res)
	}
	if !regexp.MustCompile(`(?m)^tianyan_webrtc_sessions 0$`).Match(res.Body) {
		t.Fatalf("metrics lack tianyan_webrtc_sessions 0:\n%s", res.Body)
	}
}

// --- Shutdown -------------------------------------------------------------

func TestCloseWithLiveViewerIsPromptAndLeavesNoGoroutines(t *testing.T) {
	settle := func() { runtime.GC(); time.Sleep(100 * time.Millisecond) }
	settle()
	baseline := runtime.NumGoroutine()

	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{Address: "127.0.0.1:0", Profiles: map[string]*camsim.Clip{"main": clip}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	app, err := Start(testConfig(t))
	if err != nil {
		cam.Close()
		t.Fatal(err)
	}
	a := &testApp{App: app, t: t, http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}}
	closed := false
	defer func() {
		if !closed {
			app.Close(context.Background())
		}
		cam.Close()
	}()
	a.token = a.login(adminPassword)
	a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	viewer, err := whepclient.ConnectHTTP(ctx, a.whepURL("cam"), a.token, whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	waitKeyframe(t, viewer, 10*time.Second)
	if n := app.WebRTC.SessionCount(); n != 1 {
		t.Fatalf("sessions before close: %d", n)
	}

	start := time.Now()
	done := make(chan struct{})
	go func() {
		app.Close(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("App.Close did not return within 10 s with a viewer playing")
	}
	closed = true
	t.Logf("App.Close took %v", time.Since(start).Round(time.Millisecond))

	viewer.Close()
	cam.Close()
	a.http.CloseIdleConnections()

	const slack = 3
	deadline := time.Now().Add(5 * time.Second)
	for {
		settle()
		n := runtime.NumGoroutine()
		if n <= baseline+slack {
			break
		}
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines after Close, baseline %d (+%d allowed):\n%s", n, baseline, slack, buf.String())
		}
	}
}

func TestStartThatFailsReturnsErrorAndReleasesWhatItOpened(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t)
	cfg.RTSPAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.HTTPAddr = busy.Addr().String() // HTTP is the last listener Start opens

	app, err := func() (app *App, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("Start panicked: %v", r)
			}
		}()
		return Start(cfg)
	}()
	if err == nil {
		app.Close(context.Background())
		t.Fatal("Start succeeded on a busy HTTP address")
	}
	if app != nil || !strings.Contains(err.Error(), "http") {
		t.Fatalf("Start = %v, %v; want nil and the HTTP listen error", app, err)
	}
	// Everything opened before the failure was closed again.
	ln, err := net.Listen("tcp", cfg.RTSPAddr)
	if err != nil {
		t.Fatalf("RTSP port still held after the failed Start: %v", err)
	}
	ln.Close()
	cfg.HTTPAddr = "127.0.0.1:0"
	app, err = Start(cfg)
	if err != nil {
		t.Fatalf("second Start on the same data directory (store left locked?): %v", err)
	}
	app.Close(context.Background())
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
