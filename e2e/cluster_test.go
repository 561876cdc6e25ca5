package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
)

// adminPassword is what the first start of every test server gives admin.
const adminPassword = "e2e-admin-pass-123"

// vmsOptions are what a test chooses about its server.
type vmsOptions struct {
	// IdleGrace is --idle-grace (default 2 s: tests wait it out).
	IdleGrace time.Duration
	// Env is added to the child's environment (e.g. GODEBUG).
	Env []string
	// Args are added after the default flags, so a repeated flag (e.g.
	// --sip with a known port) overrides the default.
	Args []string
}

// vmsServer is the central server running as a child process. Its data
// directory and ports stay the same across restarts, as on a real host.
type vmsServer struct {
	t    *testing.T
	bin  string
	opts vmsOptions
	data string
	http int
	rtsp int
	rtc  int
	proc *proc
}

// startVMS starts `vms serve` on free loopback ports and waits until it
// answers HTTP.
func startVMS(t *testing.T, opts vmsOptions) *vmsServer {
	t.Helper()
	bin, _ := binaries(t)
	if opts.IdleGrace == 0 {
		opts.IdleGrace = 2 * time.Second
	}
	v := &vmsServer{t: t, bin: bin, opts: opts, data: t.TempDir(),
		http: freeTCPPort(t), rtsp: freeTCPPort(t), rtc: freeUDPAndTCPPort(t)}
	v.start()
	return v
}

func (v *vmsServer) start() {
	v.t.Helper()
	env := append([]string{"VMS_ADMIN_PASSWORD=" + adminPassword}, v.opts.Env...)
	args := []string{"serve",
		"--data", v.data,
		"--http", fmt.Sprintf("127.0.0.1:%d", v.http),
		"--rtsp", fmt.Sprintf("127.0.0.1:%d", v.rtsp),
		"--webrtc", fmt.Sprintf("127.0.0.1:%d", v.rtc),
		// GB/T 28181 on an ephemeral loopback port: several servers run at once.
		"--sip", "127.0.0.1:0",
		"--ice-interfaces", "lo",
		// The cameras of these tests listen on loopback.
		"--camera-networks", "127.0.0.0/8",
		"--idle-grace", v.opts.IdleGrace.String()}
	v.proc = startProc(v.t, "vms", v.bin, env, append(args, v.opts.Args...)...)
	hc := &http.Client{Timeout: 2 * time.Second}
	waitFor(v.t, 30*time.Second, "vms to answer HTTP", func() bool {
		if !v.proc.running() {
			v.t.Fatalf("vms exited at start: %v\n%s", v.proc.err, v.proc.out.String())
		}
		res, err := hc.Get(v.URL() + "/api/v1/openapi.json")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// URL is the server's HTTP base URL.
func (v *vmsServer) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", v.http) }

// kill9 kills the server without warning.
func (v *vmsServer) kill9() { v.proc.kill9() }

// restart starts the server again on the same data directory and ports.
func (v *vmsServer) restart() {
	v.t.Helper()
	if v.proc.running() {
		v.t.Fatal("restart of a running vms")
	}
	v.start()
}

// rssKiB is the server process's resident set (VmRSS) in KiB.
func (v *vmsServer) rssKiB() int {
	v.t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", v.proc.pid()))
	if err != nil {
		v.t.Fatalf("read vms status: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				v.t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb
		}
	}
	v.t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// api is a logged-in client of a server's HTTP API.
type api struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

// apiError is an answer other than 2xx.
type apiError struct {
	Status int
	Body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

// login logs in as user at v.
func login(t *testing.T, v *vmsServer, user, password string) *api {
	t.Helper()
	a := &api{t: t, base: v.URL(), hc: &http.Client{Timeout: 30 * time.Second}}
	var out struct{ Token string }
	if err := a.call(http.MethodPost, "/api/v1/auth/login", "application/json",
		mustJSON(map[string]string{"username": user, "password": password}), &out); err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	a.token = out.Token
	return a
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}

// call sends body (if any) and decodes a JSON answer into out (if any).
func (a *api) call(method, path, contentType string, body []byte, out any) error {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	res, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return &apiError{Status: res.StatusCode, Body: strings.TrimSpace(string(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// must is call for JSON requests that have to succeed.
func (a *api) must(method, path string, in, out any) {
	a.t.Helper()
	var body []byte
	ct := ""
	if in != nil {
		body, ct = mustJSON(in), "application/json"
	}
	if err := a.call(method, path, ct, body, out); err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// pointState is status.state of a point ("online", "offline", "unknown").
func (a *api) pointState(id string) string {
	a.t.Helper()
	var p struct {
		Status struct{ State string }
	}
	a.must(http.MethodGet, "/api/v1/points/"+id, nil, &p)
	return p.Status.State
}

// streamStats is the part of GET /points/{id}/stats the tests read.
type streamStats struct {
	State    string
	Readers  int
	FramesIn uint64 `json:"frames_in"`
}

func (a *api) stats(id, profile string) streamStats {
	a.t.Helper()
	var st streamStats
	a.must(http.MethodGet, "/api/v1/points/"+id+"/stats?profile="+profile, nil, &st)
	return st
}

// agentInfo is the part of GET /agents/{id} the tests read.
type agentInfo struct {
	Online bool
	Relays []struct {
		Point, Profile, State string
	}
}

func (a *api) agent(id string) agentInfo {
	a.t.Helper()
	var ag agentInfo
	a.must(http.MethodGet, "/api/v1/agents/"+id, nil, &ag)
	return ag
}

// metric reads one unlabelled sample from /metrics.
func (a *api) metric(name string) float64 {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	// Uncompressed: a gzipped answer leaves a pooled 1.4 MiB compressor in
	// the server, which the churn test would count against it.
	req.Header.Set("Accept-Encoding", "identity")
	res, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		a.t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	sc := bufio.NewScanner(io.LimitReader(res.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				a.t.Fatalf("metric %s: %v", name, err)
			}
			return v
		}
	}
	a.t.Fatalf("metric %s not in /metrics", name)
	return 0
}

// whepURL is the WHEP endpoint of a point's profile.
func (a *api) whepURL(id, profile string) string {
	return a.base + "/api/v1/points/" + id + "/whep?profile=" + profile
}

// edgeAgent is `edge-agent run` as a child process, enrolled once; its
// state directory survives restarts.
type edgeAgent struct {
	t     *testing.T
	bin   string
	ID    string
	state string
	proc  *proc
}

// startAgent creates an agent through the admin API, enrolls it with
// `edge-agent enroll` and starts `edge-agent run`, waiting until the
// centre sees it online.
func startAgent(t *testing.T, admin *api, name string) *edgeAgent {
	t.Helper()
	_, bin := binaries(t)
	var created struct {
		Agent struct{ ID string }
		Code  string `json:"enrollment_code"`
	}
	admin.must(http.MethodPost, "/api/v1/agents", map[string]string{"name": name}, &created)
	ea := &edgeAgent{t: t, bin: bin, ID: created.Agent.ID, state: filepath.Join(t.TempDir(), "edge-state")}
	enroll := startProc(t, "edge-agent enroll", bin, nil, "enroll", "--server", admin.base, "--code", created.Code, "--state", ea.state)
	select {
	case <-enroll.done:
		if enroll.err != nil {
			t.Fatalf("edge-agent enroll: %v\n%s", enroll.err, enroll.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("edge-agent enroll hangs")
	}
	ea.start()
	waitFor(t, 15*time.Second, "agent online", func() bool { return admin.agent(ea.ID).Online })
	return ea
}

func (ea *edgeAgent) start() {
	ea.proc = startProc(ea.t, "edge-agent", ea.bin, nil, "run", "--state", ea.state, "--ui", "", "--multicast-ip", "127.0.0.1",
		"--camera-networks", "127.0.0.0/8")
}

func (ea *edgeAgent) kill9() { ea.proc.kill9() }

func (ea *edgeAgent) restart() {
	ea.t.Helper()
	if ea.proc.running() {
		ea.t.Fatal("restart of a running edge-agent")
	}
	ea.start()
}

// startCamera starts a camsim RTSP camera with main (720p) and sub (360p)
// profiles on addr ("127.0.0.1:0" for any port).
func startCamera(t *testing.T, addr string) *camsim.RTSPCamera {
	t.Helper()
	profiles := map[string]*camsim.Clip{}
	for profile, name := range map[string]string{"main": camsim.ClipH264Main, "sub": camsim.ClipH264Sub} {
		clip, err := camsim.LoadClip(name)
		if err != nil {
			t.Fatal(err)
		}
		profiles[profile] = clip
	}
	cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{Address: addr, Profiles: profiles, User: "cam", Pass: "campass"})
	if err != nil {
		t.Fatalf("camera on %s: %v", addr, err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// createPoint adds a point whose main and sub come from cam, bound to
// agentID when it is not empty (the agent relays it), pulled by the server
// otherwise.
func createPoint(admin *api, id, agentID string, cam *camsim.RTSPCamera) {
	admin.t.Helper()
	p := map[string]any{"id": id, "name": "E2E " + id,
		"main": map[string]string{"type": "rtsp", "url": cam.URL("main")},
		"sub":  map[string]string{"type": "rtsp", "url": cam.URL("sub")}}
	if agentID != "" {
		p["agent"], p["camera"] = agentID, "cam-"+id
	}
	admin.must(http.MethodPost, "/api/v1/points", p, nil)
}

// timeout is a context that ends after d, cancelled with the test.
func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
