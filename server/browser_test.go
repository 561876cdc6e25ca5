package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/server"

	"github.com/tianyan/vms/internal/browsertest"
)

// TestBrowserPlaysLiveVideo drives the real UI in headless Chromium: open a
// point's link, log in through the form, and check that the <video> element
// decodes frames continuously over WHEP from a simulated RTSP camera.
func TestBrowserPlaysLiveVideo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()

	const adminPassword = "admin-pass-123"
	app, err := server.Start(server.Config{
		DataDir:       t.TempDir(),
		HTTPAddr:      "127.0.0.1:0",
		RTSPAddr:      "127.0.0.1:0",
		WebRTCAddr:    "127.0.0.1:0",
		ICEInterfaces: []string{"lo"},
		AdminPassword: adminPassword,
		Argon:         accounts.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),

		CameraNetworks: []string{"127.0.0.0/8"}, // camsim listens on loopback
	})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(context.Background())

	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{
		Address:  "127.0.0.1:0",
		Profiles: map[string]*camsim.Clip{"main": clip},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()

	base := app.HTTPURL()
	token := browserAPILogin(ctx, t, base, "admin", adminPassword)
	browserAPICreatePoint(ctx, t, base, token, map[string]any{
		"id": "cam1", "name": "测试",
		"source": map[string]string{"type": "rtsp", "url": cam.URL("main")},
	})

	bctx, bcancel := browsertest.Start(ctx, t)
	// The browser must be gone before the app closes and before t.TempDir
	// removes its profile.
	defer bcancel()

	var (
		errMu     sync.Mutex
		jsErrors  []string
		logErrors []string
	)
	// Listen starts the browser and opens the tab, so every console message
	// of the page below is seen.
	if err := chromedp.Listen(bctx, func(ev any) {
		errMu.Lock()
		defer errMu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				jsErrors = append(jsErrors, "console.error: "+browserConsoleArgs(e.Args))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			jsErrors = append(jsErrors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *cdplog.EventEntryAdded:
			// Browser log entries (e.g. the 401 of the first /api/v1/me) are
			// expected network noise; keep them for the failure report only.
			if e.Entry != nil {
				logErrors = append(logErrors, fmt.Sprintf("%s %s: %s", e.Entry.Level, e.Entry.Source, e.Entry.Text))
			}
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	defer func() {
		errMu.Lock()
		defer errMu.Unlock()
		for _, e := range jsErrors {
			t.Errorf("browser: %s", e)
		}
		if t.Failed() {
			for _, e := range logErrors {
				t.Logf("browser log: %s", e)
			}
		}
	}()

	step := func(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(bctx, d)
		defer scancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Opening a point's page while logged out goes through the login form
	// and back to the point.
	step("open the point's page and log in through the form", 15*time.Second,
		chromedp.Navigate(base+"/#/p/cam1"),
		chromedp.WaitVisible(chromedp.CSS("#u")),
		chromedp.SendKeys(chromedp.CSS("#u"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#p"), adminPassword),
		// A real click on the form's button fires the submit event the
		// page handles (chromedp.Submit would bypass it).
		chromedp.Click(chromedp.CSS("#login button")),
		chromedp.WaitVisible(chromedp.CSS("#video")),
	)

	frames := func() int {
		t.Helper()
		sctx, scancel := context.WithTimeout(bctx, 5*time.Second)
		defer scancel()
		n, err := chromedp.Run(sctx, chromedp.Evaluate[int](
			`document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames`))
		if err != nil {
			t.Fatalf("read totalVideoFrames: %v", err)
		}
		return n
	}
	status := func() string {
		t.Helper()
		sctx, scancel := context.WithTimeout(bctx, 5*time.Second)
		defer scancel()
		s, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
		if err != nil {
			t.Fatalf("read #status: %v", err)
		}
		return s
	}

	clicked := time.Now()
	first := 0
	for deadline := time.Now().Add(20 * time.Second); ; {
		if first = frames(); first > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no video frame decoded within 20 s of logging in (status %q)", status())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first decoded frame %v after logging in", time.Since(clicked).Round(time.Millisecond))

	t0 := time.Now()
	step("watch", 5*time.Second, chromedp.Sleep(2*time.Second))
	second := frames()
	elapsed := time.Since(t0)
	t.Logf("totalVideoFrames %d -> %d in %v", first, second, elapsed.Round(time.Millisecond))
	if second < first+25 {
		t.Errorf("video stalled: totalVideoFrames %d -> %d in %v, want at least +25 (25 fps clip)", first, second, elapsed)
	}
	if s := status(); !strings.Contains(s, "直播中") {
		t.Errorf("#status = %q, want it to say 直播中 (live)", s)
	}

	step("scroll to top", 5*time.Second, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	sctx, scancel := context.WithTimeout(bctx, 10*time.Second)
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	scancel()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out, err := filepath.Abs(filepath.Join("..", "testout"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(out, "browser-player.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}

// browserConsoleArgs renders console.error arguments for a failure message.
func browserConsoleArgs(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case a.Description != "":
			parts = append(parts, a.Description)
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// browserAPILogin logs in through the JSON API and returns the bearer token.
func browserAPILogin(ctx context.Context, t *testing.T, base, user, pass string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": pass})
	res := browserAPIDo(ctx, t, http.MethodPost, base+"/api/v1/auth/login", "", body)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("login: HTTP %d: %s", res.StatusCode, b)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("login: no token (%v)", err)
	}
	return out.Token
}

// browserAPICreatePoint creates a point as an administrator would.
func browserAPICreatePoint(ctx context.Context, t *testing.T, base, token string, point map[string]any) {
	t.Helper()
	body, _ := json.Marshal(point)
	res := browserAPIDo(ctx, t, http.MethodPost, base+"/api/v1/points", token, body)
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("create point: HTTP %d: %s", res.StatusCode, b)
	}
}

func browserAPIDo(ctx context.Context, t *testing.T, method, url, token string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res
}
