package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
)

const (
	camUser = "admin"
	camPass = "cli-s3cret&<pw>"
)

// startCamera starts a simulated camera on loopback with a name no other
// test process uses, and stops it when the test ends.
func startCamera(t *testing.T, base string, ptz bool) *camsim.Camera {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	cam, err := camsim.StartCamera(camsim.CameraConfig{Name: base + "-" + hex.EncodeToString(b), Username: camUser, Password: camPass,
		PTZ: ptz, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// edgeAgent runs one command line in-process.
func edgeAgent(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func keys(m map[string]json.RawMessage) []string {
	return slices.Sorted(maps.Keys(m))
}

// The shape the issue specifies for `discover --json`.
var (
	cameraKeys  = []string{"error", "ip", "manufacturer", "model", "profiles", "ptz", "snapshot_uri", "xaddr"}
	profileKeys = []string{"codec", "height", "name", "stream_uri", "token", "width"}
)

// discovered is one camera of `discover --json`, decoded strictly.
type discovered struct {
	XAddr        string `json:"xaddr"`
	IP           string `json:"ip"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	Profiles     []struct {
		Token     string `json:"token"`
		Name      string `json:"name"`
		Codec     string `json:"codec"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		StreamURI string `json:"stream_uri"`
	} `json:"profiles"`
	SnapshotURI string `json:"snapshot_uri"`
	PTZ         bool   `json:"ptz"`
	Error       string `json:"error"`
}

// decodeDiscovery checks every camera's keys, and every profile's, against
// the documented shape, then decodes strictly.
func decodeDiscovery(t *testing.T, stdout string) map[string]discovered {
	t.Helper()
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
	}
	for _, c := range raw {
		if !slices.Equal(keys(c), cameraKeys) {
			t.Errorf("camera keys %v, want %v", keys(c), cameraKeys)
		}
		var profiles []map[string]json.RawMessage
		if err := json.Unmarshal(c["profiles"], &profiles); err != nil || profiles == nil {
			t.Errorf("profiles %s: not an array (%v)", c["profiles"], err)
		}
		for _, p := range profiles {
			if !slices.Equal(keys(p), profileKeys) {
				t.Errorf("profile keys %v, want %v", keys(p), profileKeys)
			}
		}
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	var list []discovered
	if err := dec.Decode(&list); err != nil {
		t.Fatalf("decoding %s: %v", stdout, err)
	}
	out := map[string]discovered{}
	for _, d := range list {
		out[d.XAddr] = d
	}
	return out
}

func TestDiscoverJSONProbesCamerasWithTheDocumentedShape(t *testing.T) {
	ptzCam, fixedCam := startCamera(t, "cli-ptz", true), startCamera(t, "cli-fixed", false)
	badCam := startCamera(t, "cli-badpass", false)
	badCam.SetFaults(camsim.Faults{WrongPassword: true})

	// The simulated cameras live on loopback: listed, as in the demo.
	code, stdout, stderr := edgeAgent(t, "discover", "--json", "--multicast-ip", "127.0.0.1", "--discovery-timeout", "1s",
		"--user", camUser, "--pass", camPass, "--camera-networks", "127.0.0.0/8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, camPass) || strings.Contains(stdout, "cli-s3cret") {
		t.Fatalf("discovery output shows the camera password:\n%s", stdout)
	}
	// Other test processes may have cameras on loopback too: only ours
	// are checked in detail, but every one must have the shape.
	found := decodeDiscovery(t, stdout)
	for _, cam := range []*camsim.Camera{ptzCam, fixedCam} {
		d, ok := found[cam.XAddr()]
		if !ok {
			t.Fatalf("%s missing from\n%s", cam.Name(), stdout)
		}
		if d.IP != "127.0.0.1" || d.Manufacturer != "Tianyan Simulated" || d.Model != "CamSim-1" || d.Error != "" ||
			d.PTZ != (cam == ptzCam) || !strings.HasPrefix(d.SnapshotURI, "http://127.0.0.1:") || len(d.Profiles) != 2 {
			t.Errorf("%s: %+v", cam.Name(), d)
			continue
		}
		for i, token := range []string{camsim.ProfileMain, camsim.ProfileSub} {
			p := d.Profiles[i]
			if p.Token != token || p.Name == "" || p.Codec != "H264" || p.Width <= 0 || p.Height <= 0 || p.StreamURI != cam.RTSPURL(token) {
				t.Errorf("%s profile %d: %+v", cam.Name(), i, p)
			}
		}
	}
	d, ok := found[badCam.XAddr()]
	if !ok {
		t.Fatalf("%s missing", badCam.Name())
	}
	if !strings.Contains(d.Error, "auth") || len(d.Profiles) != 0 || d.Manufacturer != "" {
		t.Errorf("camera refusing the password: %+v", d)
	}
}

// TestDiscoverProbesOnlyInsideTheCameraNetworks: without loopback listed,
// a camera found on loopback is listed unprobed, with the rule as its error
// (the address is judged before any request is sent).
func TestDiscoverProbesOnlyInsideTheCameraNetworks(t *testing.T) {
	cam := startCamera(t, "cli-outside", false)
	code, stdout, stderr := edgeAgent(t, "discover", "--json", "--multicast-ip", "127.0.0.1", "--discovery-timeout", "1s",
		"--user", camUser, "--pass", camPass, "--camera-networks", "10.0.0.0/8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d, ok := decodeDiscovery(t, stdout)[cam.XAddr()]
	if !ok {
		t.Fatalf("%s missing from\n%s", cam.Name(), stdout)
	}
	if !strings.Contains(d.Error, "camera URL host 127.0.0.1 is loopback; not inside --camera-networks (10.0.0.0/8)") ||
		d.Manufacturer != "" || len(d.Profiles) != 0 {
		t.Fatalf("camera outside the networks: %+v", d)
	}
}

func TestDiscoverWithoutCredentialsListsCamerasUnprobed(t *testing.T) {
	cam := startCamera(t, "cli-unprobed", false)
	code, stdout, stderr := edgeAgent(t, "discover", "--json", "--multicast-ip", "127.0.0.1", "--discovery-timeout", "500ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d, ok := decodeDiscovery(t, stdout)[cam.XAddr()]
	if !ok || d.IP != "127.0.0.1" || d.Model != "CamSim-1" || d.Error != "" || d.Manufacturer != "" || len(d.Profiles) != 0 {
		t.Fatalf("unprobed camera: %+v (found %v)", d, ok)
	}

	// The same discovery as text: one line per camera, the count on stderr.
	code, stdout, stderr = edgeAgent(t, "discover", "--multicast-ip", "127.0.0.1", "--discovery-timeout", "500ms")
	if code != 0 || !strings.Contains(stdout, cam.XAddr()) || !strings.Contains(stderr, "camera(s)") {
		t.Fatalf("text output: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestCommandLineMistakesAreReported(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: edge-agent"},
		{[]string{"frobnicate"}, 2, "usage: edge-agent"},
		{[]string{"discover", "--no-such-flag"}, 1, "flag provided but not defined"},
		{[]string{"discover", "--multicast-ip", "not-an-ip", "--discovery-timeout", "100ms"}, 1, "not an IPv4 address"},
		{[]string{"enroll", "--server", "http://127.0.0.1:1"}, 1, "--server and --code are required"},
		{[]string{"run", "--state", "/nonexistent/edge-state"}, 1, "run edge-agent enroll first"},
		{[]string{"add", "--xaddr", "http://127.0.0.1:1/onvif/device_service"}, 1, "are required"},
		{[]string{"discover", "--user", "u", "--camera-networks", "10.0.0.0/33"}, 1, `--camera-networks: "10.0.0.0/33" is not a CIDR`},
	} {
		code, _, stderr := edgeAgent(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("edge-agent %q: exit %d, stderr %q; want exit %d with %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	if code, stdout, _ := edgeAgent(t, "help"); code != 0 || !strings.Contains(stdout, "discover") {
		t.Errorf("help: exit %d, %q", code, stdout)
	}
}
