package onvif

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func opsOf(reqs []fakeRequest) []string {
	var ops []string
	for _, r := range reqs {
		ops = append(ops, r.Op)
	}
	return ops
}

func checkFakeDevice(t *testing.T, fc *fakeCamera, dev Device) {
	t.Helper()
	if dev.Manufacturer != "FakeVision" || dev.Model != "FV-PTZ-9" || dev.FirmwareVersion != "3.1.4" ||
		dev.SerialNumber != "FV123456" || dev.HardwareID != "HW-9" || dev.IP != "127.0.0.1" {
		t.Errorf("identity: %+v", dev)
	}
	if dev.MediaXAddr != fc.srv.URL+"/onvif/media_service" || dev.PTZXAddr != fc.srv.URL+"/onvif/ptz_service" {
		t.Errorf("services: media %q ptz %q", dev.MediaXAddr, dev.PTZXAddr)
	}
	if len(dev.Profiles) != 2 {
		t.Fatalf("profiles: %+v", dev.Profiles)
	}
	main, sub := dev.MainSub()
	wantMain := Profile{Token: "main", Name: "Main stream", Codec: "H264", Width: 1920, Height: 1080, FPS: 25, Bitrate: 4096,
		StreamURI: "rtsp://127.0.0.1:8554/main", SnapshotURI: fc.srv.URL + "/snapshot/main.jpg", PTZ: true}
	wantSub := Profile{Token: "sub", Name: "Sub stream", Codec: "H264", Width: 640, Height: 360, FPS: 15, Bitrate: 512,
		StreamURI: "rtsp://127.0.0.1:8554/sub", SnapshotURI: fc.srv.URL + "/snapshot/sub.jpg", PTZ: true}
	if main == nil || *main != wantMain {
		t.Errorf("main: got %+v\nwant %+v", main, wantMain)
	}
	if sub == nil || *sub != wantSub {
		t.Errorf("sub: got %+v\nwant %+v", sub, wantSub)
	}
	if dev.SnapshotURI != wantMain.SnapshotURI {
		t.Errorf("device snapshot URI %q", dev.SnapshotURI)
	}
	if !dev.PTZ || !slices.Equal(dev.Presets, []Preset{{"1", "Gate"}, {"2", "Spillway"}}) {
		t.Errorf("PTZ %v presets %+v", dev.PTZ, dev.Presets)
	}
	if len(dev.Warnings) != 0 {
		t.Errorf("warnings: %q", dev.Warnings)
	}
}

func TestProbeAgainstCameraThatVerifiesUsernameTokenDigestOnItsOwnClock(t *testing.T) {
	// The camera's clock is 3 h ahead and it refuses tokens more than 5 s
	// off its clock, so the probe only works if the offset is learned
	// first and used for every token.
	fc := newFakeCamera(t, "admin", "s3cr3t&<x>", func(fc *fakeCamera) { fc.skew = 3 * time.Hour })
	c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "admin", Password: "s3cr3t&<x>"})
	dev, err := c.Probe(context.Background())
	if err != nil {
		t.Fatalf("probe: %v (warnings %q)", err, dev.Warnings)
	}
	checkFakeDevice(t, fc, dev)
	if d := dev.ClockOffset - 3*time.Hour; d < -2*time.Second || d > 2*time.Second {
		t.Errorf("clock offset %v, want about 3h", dev.ClockOffset)
	}
	reqs := fc.seen()
	wantOps := []string{"GetSystemDateAndTime", "GetDeviceInformation", "GetCapabilities", "GetProfiles",
		"GetStreamUri", "GetSnapshotUri", "GetStreamUri", "GetSnapshotUri", "GetNodes", "GetPresets"}
	if !slices.Equal(opsOf(reqs), wantOps) {
		t.Fatalf("ops %v, want %v", opsOf(reqs), wantOps)
	}
	for _, r := range reqs {
		if r.HadToken == (r.Op == "GetSystemDateAndTime") {
			t.Errorf("%s: token present = %v", r.Op, r.HadToken)
		}
		if !strings.HasPrefix(r.ContentType, "application/soap+xml") || !strings.Contains(r.ContentType, `action="http://www.onvif.org/`) {
			t.Errorf("%s: content type %q", r.Op, r.ContentType)
		}
	}
	wantPaths := map[string]string{"GetProfiles": "/onvif/media_service", "GetNodes": "/onvif/ptz_service", "GetCapabilities": "/onvif/device_service"}
	for _, r := range reqs {
		if p, ok := wantPaths[r.Op]; ok && r.Path != p {
			t.Errorf("%s went to %s, want %s", r.Op, r.Path, p)
		}
	}
}

func TestProbeWithWrongPasswordIsAnAuthError(t *testing.T) {
	fc := newFakeCamera(t, "admin", "right", nil)
	c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "admin", Password: "wrong"})
	_, err := c.Probe(context.Background())
	wantKind(t, err, KindAuth, "GetDeviceInformation", "ter:NotAuthorized")
}

func TestProbeAgainstCameraRequiringHTTPDigest(t *testing.T) {
	for _, tc := range []struct {
		name string
		algo string
		wsse bool
	}{
		{"MD5", "MD5", false},
		{"SHA-256", "SHA-256", false},
		{"digest and UsernameToken both", "SHA-256", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeCamera(t, "operator", "pa55", func(fc *fakeCamera) {
				fc.digestAlgo = tc.algo
				fc.requireWSSE = tc.wsse
				fc.skew = -90 * time.Minute
			})
			c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "operator", Password: "pa55"})
			dev, err := c.Probe(context.Background())
			if err != nil {
				t.Fatalf("probe: %v", err)
			}
			checkFakeDevice(t, fc, dev)
			// One challenge, then the nonce is reused with a rising count.
			if fc.challenges != 1 {
				t.Errorf("camera challenged %d times, want 1", fc.challenges)
			}
			data, ctype, err := c.Snapshot(context.Background(), dev.SnapshotURI)
			if err != nil || ctype != "image/jpeg" || len(data) != len(fakeJPEG) {
				t.Fatalf("snapshot: %v %q %d bytes", err, ctype, len(data))
			}
		})
	}
}

func TestHTTPDigestWithWrongPasswordIsAnAuthError(t *testing.T) {
	fc := newFakeCamera(t, "operator", "pa55", func(fc *fakeCamera) { fc.digestAlgo = "MD5" })
	c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "operator", Password: "nope"})
	_, err := c.Probe(context.Background())
	wantKind(t, err, KindAuth, "camera refused the credentials (HTTP 401 after digest authentication)")

	c = newTestClient(t, fc.xaddr(), ClientOptions{})
	_, err = c.Probe(context.Background())
	wantKind(t, err, KindAuth, "camera requires credentials (HTTP 401)")
}

func TestProbeFallsBackToGetServicesWithoutGetCapabilities(t *testing.T) {
	fc := newFakeCamera(t, "admin", "pw", func(fc *fakeCamera) { fc.noCaps = true })
	c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "admin", Password: "pw"})
	dev, err := c.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if dev.MediaXAddr != fc.srv.URL+"/onvif/media_service" || dev.PTZXAddr != fc.srv.URL+"/onvif/ptz_service" {
		t.Fatalf("services: %q %q", dev.MediaXAddr, dev.PTZXAddr)
	}
	if len(dev.Warnings) != 1 || !strings.Contains(dev.Warnings[0], "GetCapabilities") || !strings.Contains(dev.Warnings[0], "trying GetServices") {
		t.Fatalf("warnings %q", dev.Warnings)
	}
	if !slices.Contains(opsOf(fc.seen()), "GetServices") {
		t.Fatal("GetServices not called")
	}
}

func TestProbeKeepsPartialResultsWhenOptionalCallsFail(t *testing.T) {
	fc := newFakeCamera(t, "admin", "pw", func(fc *fakeCamera) {
		fc.failOps["GetSnapshotUri"] = true
		fc.failOps["GetPresets"] = true
	})
	c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "admin", Password: "pw"})
	dev, err := c.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dev.Profiles) != 2 || dev.Profiles[0].StreamURI == "" || dev.SnapshotURI != "" || len(dev.Presets) != 0 || !dev.PTZ {
		t.Fatalf("device %+v", dev)
	}
	if len(dev.Warnings) != 3 {
		t.Fatalf("want 3 warnings (2 snapshot URIs, presets), got %q", dev.Warnings)
	}
	for _, w := range dev.Warnings {
		if !strings.Contains(w, "Internal failure in") || !strings.Contains(w, string(KindSOAPFault)) {
			t.Errorf("warning %q", w)
		}
	}
}

func TestPTZCommandsReachThePTZServiceWithTheRightArguments(t *testing.T) {
	fc := newFakeCamera(t, "admin", "pw", nil)
	c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "admin", Password: "pw"})
	ctx := context.Background()
	if err := c.ContinuousMove(ctx, "main", 0.5, -2, 0, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.ContinuousMove(ctx, "main", 0, 0, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if err := c.GotoPreset(ctx, "main", "2"); err != nil {
		t.Fatal(err)
	}
	presets, err := c.Presets(ctx, "main")
	if err != nil || len(presets) != 2 {
		t.Fatalf("presets %v %v", presets, err)
	}
	if err := c.SetSynchronizationPoint(ctx, "sub"); err != nil {
		t.Fatal(err)
	}
	var moves, stops, gotos, syncs []fakeRequest
	for _, r := range fc.seen() {
		switch r.Op {
		case "ContinuousMove":
			moves = append(moves, r)
		case "Stop":
			stops = append(stops, r)
		case "GotoPreset":
			gotos = append(gotos, r)
		case "SetSynchronizationPoint":
			syncs = append(syncs, r)
		}
	}
	if len(moves) != 2 || len(stops) != 1 || len(gotos) != 1 || len(syncs) != 1 {
		t.Fatalf("ops %v", opsOf(fc.seen()))
	}
	for _, want := range []string{`x="0.5"`, `y="-1"`, panTiltVelocitySpace, zoomVelocitySpace, "<tptz:Timeout>PT1.5S</tptz:Timeout>", "<tptz:ProfileToken>main</tptz:ProfileToken>"} {
		if !strings.Contains(moves[0].Body, want) {
			t.Errorf("first move lacks %s:\n%s", want, moves[0].Body)
		}
	}
	if !strings.Contains(moves[1].Body, "<tptz:Timeout>PT1S</tptz:Timeout>") {
		t.Errorf("move without timeout did not get the 1 s default:\n%s", moves[1].Body)
	}
	if moves[0].Path != "/onvif/ptz_service" || syncs[0].Path != "/onvif/media_service" {
		t.Errorf("paths %s %s", moves[0].Path, syncs[0].Path)
	}
	if !strings.Contains(stops[0].Body, "<tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>true</tptz:Zoom>") {
		t.Errorf("stop body:\n%s", stops[0].Body)
	}
	if strings.Contains(gotos[0].Body, "Speed") || !strings.Contains(gotos[0].Body, "<tptz:PresetToken>2</tptz:PresetToken>") {
		t.Errorf("goto body:\n%s", gotos[0].Body)
	}
	if !strings.Contains(syncs[0].Body, "<trt:ProfileToken>sub</trt:ProfileToken>") {
		t.Errorf("sync body:\n%s", syncs[0].Body)
	}

	before := len(fc.seen())
	wantKind(t, c.ContinuousMove(ctx, "main", math.NaN(), 0, 0, time.Second), KindInvalid, "not a number")
	wantKind(t, c.GotoPreset(ctx, "main", ""), KindInvalid)
	if len(fc.seen()) != before {
		t.Fatal("invalid arguments reached the camera")
	}
}

func TestCameraWithoutPTZ(t *testing.T) {
	fc := newFakeCamera(t, "admin", "pw", func(fc *fakeCamera) { fc.ptz = false })
	c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "admin", Password: "pw"})
	dev, err := c.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if dev.PTZ || dev.PTZXAddr != "" || dev.Presets != nil || dev.Profiles[0].PTZ {
		t.Fatalf("device %+v", dev)
	}
	wantKind(t, c.ContinuousMove(context.Background(), "main", 1, 0, 0, time.Second), KindUnsupported, "no PTZ service")
}

func TestFallsBackToSOAP11WhenCameraRefusesSOAP12(t *testing.T) {
	fc := newFakeCamera(t, "admin", "pw", func(fc *fakeCamera) { fc.only11 = true })
	c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "admin", Password: "pw"})
	dev, err := c.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if dev.Manufacturer != "FakeVision" {
		t.Fatalf("device %+v", dev)
	}
	for _, r := range fc.seen() {
		if !strings.HasPrefix(r.ContentType, "text/xml") || !strings.Contains(r.Body, nsSOAP11) {
			t.Fatalf("%s sent as %q", r.Op, r.ContentType)
		}
	}
}

func TestSnapshots(t *testing.T) {
	ctx := context.Background()
	t.Run("octet-stream JPEG is sniffed", func(t *testing.T) {
		fc := newFakeCamera(t, "", "", func(fc *fakeCamera) { fc.snapshotType = "application/octet-stream" })
		c := newTestClient(t, fc.xaddr(), ClientOptions{})
		data, ct, err := c.Snapshot(ctx, "/snapshot/main.jpg") // relative: resolved against the device
		if err != nil || ct != "image/jpeg" || len(data) != len(fakeJPEG) {
			t.Fatalf("%v %q %d", err, ct, len(data))
		}
	})
	t.Run("HTML login page is not an image", func(t *testing.T) {
		fc := newFakeCamera(t, "", "", func(fc *fakeCamera) {
			fc.snapshotType = "text/html"
			fc.snapshotBody = []byte("<html><body>Please log in</body></html>")
		})
		c := newTestClient(t, fc.xaddr(), ClientOptions{})
		_, _, err := c.Snapshot(ctx, fc.srv.URL+"/snapshot/main.jpg")
		wantKind(t, err, KindMalformed, "snapshot is text/html, not an image")
	})
	t.Run("oversize", func(t *testing.T) {
		fc := newFakeCamera(t, "", "", func(fc *fakeCamera) {
			fc.snapshotBody = append(append([]byte{}, fakeJPEG...), make([]byte, 64<<10)...)
		})
		c := newTestClient(t, fc.xaddr(), ClientOptions{MaxSnapshotBytes: 32 << 10})
		_, _, err := c.Snapshot(ctx, fc.srv.URL+"/snapshot/main.jpg")
		wantKind(t, err, KindTooLarge, "snapshot larger than 32768 bytes")
	})
	t.Run("digest with wrong password", func(t *testing.T) {
		fc := newFakeCamera(t, "u", "p", func(fc *fakeCamera) { fc.digestAlgo = "MD5" })
		c := newTestClient(t, fc.xaddr(), ClientOptions{Username: "u", Password: "x"})
		_, _, err := c.Snapshot(ctx, fc.srv.URL+"/snapshot/main.jpg")
		wantKind(t, err, KindAuth, "refused the credentials")
	})
	t.Run("basic", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "viewer" || p != "pw" {
				w.Header().Set("WWW-Authenticate", `Basic realm="cgi"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = w.Write(fakeJPEG)
		}))
		defer srv.Close()
		c := newTestClient(t, srv.URL, ClientOptions{Username: "viewer", Password: "pw"})
		data, ct, err := c.Snapshot(ctx, srv.URL+"/cgi-bin/snapshot.cgi?channel=1")
		if err != nil || ct != "image/jpeg" || len(data) != len(fakeJPEG) {
			t.Fatalf("%v %q %d", err, ct, len(data))
		}
		c = newTestClient(t, srv.URL, ClientOptions{Username: "viewer", Password: "bad"})
		_, _, err = c.Snapshot(ctx, srv.URL+"/cgi-bin/snapshot.cgi")
		wantKind(t, err, KindAuth, "after basic authentication")
	})
	t.Run("not http", func(t *testing.T) {
		c := newTestClient(t, "127.0.0.1:1", ClientOptions{})
		_, _, err := c.Snapshot(ctx, "rtsp://127.0.0.1/x")
		wantKind(t, err, KindInvalid)
	})
}
