package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/whepclient"
)

// startDualCamera serves the 720p clip at /main and the 360p clip at /sub.
func startDualCamera(t *testing.T) *camsim.RTSPCamera {
	t.Helper()
	main, err := camsim.LoadClip(camsim.ClipH264Main)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{Address: "127.0.0.1:0",
		Profiles: map[string]*camsim.Clip{"main": main, "sub": sub}, User: "cam", Pass: "campass", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

func TestWHEPSubProfilePlaysTheLowBitrateStream(t *testing.T) {
	a := startApp(t)
	cam := startDualCamera(t)
	res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "dual", "name": "Dual",
		"main": map[string]string{"type": "rtsp", "url": cam.URL("main")},
		"sub":  map[string]string{"type": "rtsp", "url": cam.URL("sub")}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create: %s", res)
	}
	a.createPoint("single", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		point, ask, want string
		width            int
	}{{"dual", "sub", "sub", 640}, {"dual", "main", "main", 1280}, {"single", "sub", "main", 1280}} {
		c, err := whepclient.ConnectHTTP(ctx, a.whepURL(tc.point)+"?profile="+tc.ask, a.token,
			whepclient.Options{Interfaces: []string{"lo"}})
		if err != nil {
			t.Fatalf("%s?profile=%s: %v", tc.point, tc.ask, err)
		}
		if err := c.WaitKeyframe(ctx); err != nil {
			t.Fatal(err)
		}
		res := a.admin(http.MethodGet, "/api/v1/points/"+tc.point+"/stats?profile="+tc.want, nil)
		var st statsJSON
		decodeInto(t, res, &st)
		if st.Width != tc.width || st.Readers != 1 {
			t.Fatalf("%s %s stats %+v, want width %d and 1 reader", tc.point, tc.want, st, tc.width)
		}
		c.Close()
		waitFor(t, 5*time.Second, "viewer gone", func() bool { return a.WebRTC.SessionCount() == 0 })
	}
	if e := wantError(t, a.do(http.MethodPost, "/api/v1/points/dual/whep?profile=hd", a.token, "application/sdp", "v=0\r\n"), http.StatusBadRequest); e.Code != "bad_profile" {
		t.Fatalf("unknown profile answered %+v", e)
	}

	r, err := readRTSP(t, "rtsp://admin:"+adminPassword+"@"+a.RTSP.Addr()+"/dual/sub", true)
	if err != nil {
		t.Fatalf("RTSP read of the sub profile: %v", err)
	}
	waitFor(t, 10*time.Second, "sub RTP over RTSP", func() bool { return r.packets.Load() >= 50 })
	_, err = readRTSP(t, "rtsp://admin:"+adminPassword+"@"+a.RTSP.Addr()+"/single/sub", true)
	if err == nil {
		t.Fatal("RTSP read of a sub profile the point does not have succeeded")
	}
}
