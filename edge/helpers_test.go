package edge

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/internal/netnstest"
)

// Camera credentials of the simulated cameras. The password has characters
// that break naive URL and XML handling.
const (
	camUser = "admin"
	camPass = "cam s3cret&<p@ss>"
)

// testLogger is quiet unless VMS_TEST_LOG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("VMS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// uniqueName keeps this test's cameras apart from cameras other test
// processes may have answering on loopback at the same time.
func uniqueName(base string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return base + "-" + hex.EncodeToString(b)
}

// camConfig is a camera with credentials and a unique name on loopback.
func camConfig(name string) camsim.CameraConfig {
	return camsim.CameraConfig{Name: uniqueName(name), Username: camUser, Password: camPass}
}

// loopbackNetworks lists loopback as the camera network: the simulated
// cameras of these tests listen there.
func loopbackNetworks(t testing.TB) *cameranet.Policy {
	t.Helper()
	p, err := cameranet.Parse("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startCamera starts a simulated camera and closes it when the test ends.
func startCamera(t testing.TB, cfg camsim.CameraConfig) *camsim.Camera {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	cam, err := camsim.StartCamera(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// startCameraIn starts a camera inside a namespace host, at the host's
// address: every socket it opens is the namespace's.
func startCameraIn(t testing.TB, h *netnstest.Host, cfg camsim.CameraConfig) *camsim.Camera {
	t.Helper()
	cfg.DiscoveryIP = h.IP.String()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	var cam *camsim.Camera
	// No t.Fatal inside Do: it runs on another goroutine.
	err := h.Do(func() error {
		var err error
		cam, err = camsim.StartCamera(cfg)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// eventually polls cond until it holds or d passes. It waits for an
// outcome; it does not measure how long the outcome took.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
