package streaming

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/whepclient"
)

func testLogger() *slog.Logger {
	if os.Getenv("VMS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startCamera starts a simulated camera with the 640x360 H.264 clip at /main.
func startCamera(t *testing.T, addr string) *camsim.RTSPCamera {
	t.Helper()
	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{
		Address:  addr,
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

func newTestWebRTC(t *testing.T) *WebRTC {
	t.Helper()
	w, err := NewWebRTC(WebRTCConfig{ListenAddr: "127.0.0.1:0", Interfaces: []string{"lo"}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// inProcessExchange answers offers straight from the hub, no HTTP.
func inProcessExchange(hub *Hub, w *WebRTC, point string, releases chan<- func()) whepclient.Exchange {
	return func(ctx context.Context, offer string) (string, string, error) {
		stream, release, err := hub.Acquire(ctx, point)
		if err != nil {
			return "", "", err
		}
		s, answer, err := w.NewSession(ctx, stream, offer, SessionOptions{OnClose: func(*Session) { release() }})
		if err != nil {
			release()
			return "", "", err
		}
		_ = releases
		return answer, s.ID, nil
	}
}

func connectViewer(t *testing.T, hub *Hub, w *WebRTC, point string, opts whepclient.Options) *whepclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts.Interfaces = []string{"lo"}
	c, err := whepclient.Connect(ctx, inProcessExchange(hub, w, point, nil), opts)
	if err != nil {
		t.Fatalf("connect viewer: %v", err)
	}
	t.Cleanup(c.Close)
	return c
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
