package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/whepclient"
)

// TestPulledCameraStatusFollowsItsSource: a point the centre pulls itself
// (no edge agent) is online while its camera streams, offline within 10 s
// of the camera dying under a viewer, and online again when it returns.
func TestPulledCameraStatusFollowsItsSource(t *testing.T) {
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	addr := cam.Addr()
	a.createPoint("pulled", map[string]string{"type": "rtsp", "url": cam.URL("main")})
	if st := a.pointStatus("pulled"); st != "unknown" {
		t.Fatalf("a never-watched pulled point is %q, want unknown", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := whepclient.ConnectHTTP(ctx, a.whepURL("pulled"), a.token, whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, 10*time.Second, "online while streaming", func() bool { return a.pointStatus("pulled") == "online" })

	cam.Close()
	died := time.Now()
	waitFor(t, 10*time.Second, "offline after the camera died", func() bool { return a.pointStatus("pulled") == "offline" })
	t.Logf("pulled camera died → offline in %v", time.Since(died).Round(time.Millisecond))

	clip, _ := camsim.LoadClip(camsim.ClipH264Sub)
	cam2, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{Address: addr, Profiles: map[string]*camsim.Clip{"main": clip},
		User: "cam", Pass: "campass", Logger: testLogger()})
	if err != nil {
		t.Fatalf("restart camera: %v", err)
	}
	defer cam2.Close()
	waitFor(t, 20*time.Second, "online after the camera returned", func() bool { return a.pointStatus("pulled") == "online" })
	res := a.admin(http.MethodGet, "/api/v1/points/pulled", nil)
	if res.Status != http.StatusOK {
		t.Fatal(res)
	}
}
