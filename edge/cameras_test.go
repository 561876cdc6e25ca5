package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/onvif"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// provisioned starts a PTZ camera and provisions it into a book kept in
// dir.
func provisioned(t *testing.T, dir string) (*camsim.Camera, *CameraBook, Camera) {
	t.Helper()
	cfg := camConfig("book-cam")
	cfg.PTZ = true
	cam := startCamera(t, cfg)
	book := NewCameraBook(dir, testLogger(t))
	book.SetCameraNetworks(loopbackNetworks(t))
	got, err := book.Provision(ctxFor(t, 20*time.Second), "", cam.XAddr(), camUser, camPass)
	if err != nil {
		t.Fatal(err)
	}
	return cam, book, got
}

// describe asks an RTSP server for a stream's description.
func describe(rawURL string) error {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return err
	}
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	if err := c.Start2(); err != nil {
		return err
	}
	defer c.Close()
	_, _, err = c.Describe(u)
	return err
}

func TestProvisionLearnsTheCameraAndStreamURLCarriesItsCredentials(t *testing.T) {
	cam, book, got := provisioned(t, t.TempDir())
	if got.ID != CameraID("", cam.XAddr()) || got.XAddr != cam.XAddr() || got.IP != "127.0.0.1" ||
		got.Manufacturer != "Tianyan Simulated" || got.Model != "CamSim-1" || got.Error != "" {
		t.Errorf("identity: %+v", got)
	}
	if got.MainToken != camsim.ProfileMain || got.SubToken != camsim.ProfileSub || !got.PTZ || got.PTZToken != camsim.ProfileMain {
		t.Errorf("main %q, sub %q, ptz %v on %q", got.MainToken, got.SubToken, got.PTZ, got.PTZToken)
	}
	if got.SnapshotURI == "" || len(got.Presets) != 3 || len(got.Profiles) != 2 {
		t.Errorf("snapshot %q, %d presets, profiles %+v", got.SnapshotURI, len(got.Presets), got.Profiles)
	}
	for _, p := range got.Profiles {
		if p.StreamURI != cam.RTSPURL(p.Token) || p.Codec != "H264" || p.Width == 0 || p.Height == 0 {
			t.Errorf("profile %+v (camera streams at %s)", p, cam.RTSPURL(p.Token))
		}
	}
	if main, sub := got.Profiles[0], got.Profiles[1]; main.Width*main.Height <= sub.Width*sub.Height {
		t.Errorf("main %dx%d is not larger than sub %dx%d", main.Width, main.Height, sub.Width, sub.Height)
	}

	stream, err := got.StreamURL(got.SubToken)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(stream)
	if err != nil {
		t.Fatal(err)
	}
	if pass, _ := u.User.Password(); u.User.Username() != camUser || pass != camPass {
		t.Errorf("stream URL %s does not carry the camera's credentials", stream)
	}
	// The camera itself is the judge: with them it describes the stream,
	// without them it refuses.
	if err := describe(stream); err != nil {
		t.Errorf("DESCRIBE with the stream URL: %v", err)
	}
	if err := describe(cam.RTSPURL(camsim.ProfileSub)); err == nil {
		t.Error("the camera described its stream without credentials; the check above proves nothing")
	}
	if _, err := got.StreamURL("no-such-profile"); err == nil {
		t.Error("a stream URL for an unknown profile")
	}

	if c, ok := book.Get(got.ID); !ok || c.Password != camPass {
		t.Errorf("book entry %+v", c)
	}
	for _, c := range book.List() {
		if c.Password != "***" {
			t.Errorf("List shows the password as %q", c.Password)
		}
	}
}

func TestInventoryNeverCarriesCameraPasswords(t *testing.T) {
	_, book, _ := provisioned(t, t.TempDir())
	inv := book.Inventory()
	if len(inv) != 1 || len(inv[0].Profiles) != 2 {
		t.Fatalf("inventory %+v", inv)
	}
	raw, err := json.Marshal(agentlink.Inventory{Cameras: inv})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{camPass, url.QueryEscape(camPass), url.PathEscape(camPass), url.UserPassword(camUser, camPass).String(), "s3cret"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("inventory carries %q: %s", secret, raw)
		}
	}

	// Some cameras put the credentials into the stream URIs they report.
	dir := t.TempDir()
	leaky := []Camera{{ID: "cam-leaky", XAddr: "http://10.0.0.5/onvif/device_service", Username: camUser, Password: camPass,
		Profiles: []agentlink.Profile{{Token: "main", StreamURI: "rtsp://" + url.UserPassword(camUser, camPass).String() + "@10.0.0.5:554/main"}}}}
	raw, _ = json.Marshal(leaky)
	if err := os.WriteFile(filepath.Join(dir, CamerasFile), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	inv = NewCameraBook(dir, testLogger(t)).Inventory()
	if len(inv) != 1 || len(inv[0].Profiles) != 1 {
		t.Fatalf("inventory %+v", inv)
	}
	if u, err := url.Parse(inv[0].Profiles[0].StreamURI); err != nil || u.Host != "10.0.0.5:554" || u.User.String() != camUser {
		t.Errorf("inventory stream URI %q, want it without the password", inv[0].Profiles[0].StreamURI)
	}
}

func TestCameraBookFileIsPrivateAndReloads(t *testing.T) {
	dir := t.TempDir()
	_, _, got := provisioned(t, dir)
	path := filepath.Join(dir, CamerasFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600: it holds camera passwords", path, st.Mode().Perm())
	}
	reloaded, ok := NewCameraBook(dir, testLogger(t)).Get(got.ID)
	if !ok {
		t.Fatal("the camera is gone after a reload")
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(reloaded)
	if !bytes.Equal(a, b) {
		t.Errorf("reloaded\n%s\nwant\n%s", b, a)
	}
}

func TestCameraBookDrivesPTZSnapshotsAndKeyframes(t *testing.T) {
	cam, book, got := provisioned(t, "")
	ctx := ctxFor(t, 30*time.Second)

	if err := book.PTZ(ctx, agentlink.PTZRequest{Camera: got.ID, Op: agentlink.PTZMove, Pan: 1, TimeoutMs: 5000}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the head to pan right", func() bool { return cam.PTZPosition().Pan > 0.05 })
	if err := book.PTZ(ctx, agentlink.PTZRequest{Camera: got.ID, Op: agentlink.PTZStop}); err != nil {
		t.Fatal(err)
	}
	if err := book.PTZ(ctx, agentlink.PTZRequest{Camera: got.ID, Op: agentlink.PTZPreset, Preset: "3"}); err != nil {
		t.Fatal(err)
	}
	if p := cam.PTZPosition(); p.Pan < 0.55 || p.Pan > 0.65 || p.Zoom < 0.75 {
		t.Errorf("after preset River the head is at %+v", p)
	}
	if err := book.PTZ(ctx, agentlink.PTZRequest{Camera: got.ID, Op: agentlink.PTZPreset, Preset: "no-such-preset"}); err == nil {
		t.Error("an unknown preset was accepted")
	}
	if err := book.PTZ(ctx, agentlink.PTZRequest{Camera: got.ID, Op: agentlink.PTZMove, Pan: 2}); err == nil {
		t.Error("a pan speed of 2 was accepted")
	}

	data, ct, err := book.Snapshot(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jpeg.Decode(bytes.NewReader(data)); ct != "image/jpeg" || err != nil {
		t.Errorf("snapshot %s, %d bytes: %v", ct, len(data), err)
	}
	for _, profile := range []string{"main", "sub"} {
		if err := book.RequestKeyframe(ctx, got.ID, profile); err != nil {
			t.Errorf("keyframe on %s: %v", profile, err)
		}
	}

	for name, call := range map[string]func(id string) error{
		"ptz":      func(id string) error { return book.PTZ(ctx, agentlink.PTZRequest{Camera: id, Op: agentlink.PTZStop}) },
		"snapshot": func(id string) error { _, _, err := book.Snapshot(ctx, id); return err },
		"keyframe": func(id string) error { return book.RequestKeyframe(ctx, id, "main") },
	} {
		if err := call("cam-unknown"); err == nil || !strings.Contains(err.Error(), "unknown to this agent") {
			t.Errorf("%s on an unknown camera: %v", name, err)
		}
	}

	// The camera's password changed behind the agent's back.
	cam.SetFaults(camsim.Faults{WrongPassword: true})
	var oe *onvif.Error
	if _, _, err := book.Snapshot(ctx, got.ID); !errors.As(err, &oe) || oe.Kind != onvif.KindAuth {
		t.Errorf("snapshot with a changed password: %v", err)
	}
	if err := book.PTZ(ctx, agentlink.PTZRequest{Camera: got.ID, Op: agentlink.PTZStop}); !errors.As(err, &oe) || oe.Kind != onvif.KindAuth {
		t.Errorf("PTZ with a changed password: %v", err)
	}
}

func TestPTZOnACameraWithoutPTZIsRefused(t *testing.T) {
	cam := startCamera(t, camConfig("fixed-cam"))
	book := NewCameraBook("", testLogger(t))
	book.SetCameraNetworks(loopbackNetworks(t))
	got, err := book.Provision(ctxFor(t, 20*time.Second), "", cam.XAddr(), camUser, camPass)
	if err != nil {
		t.Fatal(err)
	}
	if got.PTZ || got.PTZToken != "" {
		t.Errorf("a fixed camera provisioned with PTZ: %+v", got)
	}
	if err := book.PTZ(ctxFor(t, 10*time.Second), agentlink.PTZRequest{Camera: got.ID, Op: agentlink.PTZStop}); err == nil || !strings.Contains(err.Error(), "no PTZ") {
		t.Errorf("PTZ on a fixed camera: %v", err)
	}
}

func TestProvisionFailuresStayWithTheirCamera(t *testing.T) {
	cam, book, good := provisioned(t, t.TempDir())
	ctx := ctxFor(t, 30*time.Second)

	// A wrong password marks the known camera and keeps what worked.
	_, err := book.Provision(ctx, good.ID, cam.XAddr(), camUser, "wrong")
	var oe *onvif.Error
	if !errors.As(err, &oe) || oe.Kind != onvif.KindAuth {
		t.Fatalf("wrong password: %v", err)
	}
	if c, _ := book.Get(good.ID); c.Error == "" || c.Password != camPass || c.MainToken != good.MainToken {
		t.Errorf("after a failed probe the book holds %+v", c)
	}

	// A web server that answers HTML, as a router's admin page does.
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body><h1>Login</h1></body></html>"))
	}))
	defer html.Close()
	_, err = book.Provision(ctx, "", html.URL+"/onvif/device_service", camUser, camPass)
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "camera answered HTML") {
		t.Fatalf("HTML page: %v", err)
	}
	if n := len(book.List()); n != 1 {
		t.Errorf("the book has %d cameras after probing an HTML page, want 1", n)
	}
	if _, err := book.Provision(ctx, "", "not a url", camUser, camPass); err == nil {
		t.Error("a malformed address was accepted")
	}

	// The good camera is untouched by its neighbours' failures.
	if _, err := book.Provision(ctx, good.ID, cam.XAddr(), camUser, camPass); err != nil {
		t.Fatal(err)
	}
	if c, _ := book.Get(good.ID); c.Error != "" {
		t.Errorf("a successful probe left the error %q", c.Error)
	}
}

// TestDiscoverCamerasOnLoopbackGivesEachCameraItsOwnError runs the
// discover command's path against real simulated cameras on loopback, with
// the multicast interface pinned to 127.0.0.1: the camera whose password
// changed reports its own error and the others are fully probed.
func TestDiscoverCamerasOnLoopbackGivesEachCameraItsOwnError(t *testing.T) {
	ptzCfg := camConfig("loop-ptz")
	ptzCfg.PTZ = true
	good := []*camsim.Camera{startCamera(t, ptzCfg), startCamera(t, camConfig("loop-fixed"))}
	bad := startCamera(t, camConfig("loop-badpass"))
	bad.SetFaults(camsim.Faults{WrongPassword: true})

	found, err := DiscoverCameras(ctxFor(t, 60*time.Second), DiscoveryConfig{MulticastIP: "127.0.0.1", Timeout: time.Second}, loopbackNetworks(t), camUser, camPass)
	if err != nil {
		t.Fatal(err)
	}
	// Other test processes may have cameras on loopback too: only ours count.
	byXAddr := map[string]Discovered{}
	for _, d := range found {
		byXAddr[d.XAddr] = d
	}
	for i, cam := range good {
		d, ok := byXAddr[cam.XAddr()]
		if !ok {
			t.Fatalf("%s not found among %d cameras", cam.Name(), len(found))
		}
		if d.Error != "" || d.IP != "127.0.0.1" || d.Manufacturer != "Tianyan Simulated" || d.Model != "CamSim-1" ||
			len(d.Profiles) != 2 || d.SnapshotURI == "" || d.PTZ != (i == 0) {
			t.Errorf("%s: %+v", cam.Name(), d)
		}
	}
	d, ok := byXAddr[bad.XAddr()]
	if !ok {
		t.Fatalf("%s not found", bad.Name())
	}
	if !strings.Contains(d.Error, "auth") || len(d.Profiles) != 0 || d.Profiles == nil {
		t.Errorf("camera with a changed password: %+v", d)
	}

	// Without credentials nothing is probed, and nothing fails.
	found, err = DiscoverCameras(ctxFor(t, 30*time.Second), DiscoveryConfig{MulticastIP: "127.0.0.1", Timeout: 500 * time.Millisecond}, nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range found {
		if d.XAddr == bad.XAddr() && (d.Error != "" || d.Manufacturer != "") {
			t.Errorf("unprobed camera: %+v", d)
		}
	}
}

// TestCameraBookHandsOutCopiesUnderConcurrentDiscoveryAndProvisioning
// hammers one camera's record from every side at once, as a running agent
// does (periodic discovery, a technician provisioning, the page and the
// inventory listing), and scribbles on everything the book hands out.
// Under -race it fails if any record or slice is shared between the book
// and a caller: it did on main, where Provision kept a pointer to the
// record it returned while Rediscover wrote through it.
func TestCameraBookHandsOutCopiesUnderConcurrentDiscoveryAndProvisioning(t *testing.T) {
	cfg := camConfig("race-cam")
	cfg.PTZ = true
	cam := startCamera(t, cfg)
	id := CameraID(cam.Endpoint(), cam.XAddr())
	book := NewCameraBook(t.TempDir(), testLogger(t))
	book.SetCameraNetworks(loopbackNetworks(t))
	book.SetDiscovery(DiscoveryConfig{MulticastIP: "127.0.0.1", Timeout: 150 * time.Millisecond})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var rediscovered, provisioned, listed atomic.Int64
	run := func(n *atomic.Int64, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := fn(); err != nil && ctx.Err() == nil {
					t.Errorf("%v", err)
					return
				}
				n.Add(1)
			}
		}()
	}
	scribble := func(c Camera) {
		// A caller may do what it likes with its copy.
		c.Name, c.Error = "scribbled", "scribbled"
		for i := range c.Profiles {
			c.Profiles[i].StreamURI = "rtsp://scribbled/"
		}
		for i := range c.Presets {
			c.Presets[i].Name = "scribbled"
		}
	}
	for range 2 {
		run(&rediscovered, func() error { return book.Rediscover(ctx) })
		run(&provisioned, func() error {
			got, err := book.Provision(ctx, id, cam.XAddr(), camUser, camPass)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("provision: %w", err)
			}
			scribble(got)
			return nil
		})
		run(&listed, func() error {
			for _, c := range book.List() {
				scribble(c)
			}
			if c, ok := book.Get(id); ok {
				scribble(c)
			}
			for _, c := range book.Inventory() {
				for i := range c.Profiles {
					c.Profiles[i].Name = "scribbled"
				}
			}
			return nil
		})
	}
	wg.Wait()
	t.Logf("%d rediscoveries, %d provisions, %d listings", rediscovered.Load(), provisioned.Load(), listed.Load())
	if rediscovered.Load() == 0 || provisioned.Load() == 0 || listed.Load() == 0 {
		t.Fatal("one side never ran; the test proves nothing")
	}

	// Nothing scribbled reached the book, and what both sides learnt is
	// there (one more provision, not cut short by the end of the hammering).
	if _, err := book.Provision(ctxFor(t, 20*time.Second), id, cam.XAddr(), camUser, camPass); err != nil {
		t.Fatal(err)
	}
	got, ok := book.Get(id)
	if !ok {
		t.Fatal("camera missing from the book")
	}
	if got.Name == "scribbled" || got.Error != "" || got.XAddr != cam.XAddr() || got.IP != "127.0.0.1" || got.Password != camPass {
		t.Errorf("book record %+v", got)
	}
	if len(got.Profiles) != 2 || len(got.Presets) != 3 {
		t.Fatalf("profiles %+v presets %+v", got.Profiles, got.Presets)
	}
	for _, p := range got.Profiles {
		if p.StreamURI != cam.RTSPURL(p.Token) {
			t.Errorf("profile %s stream %q, camera streams at %s", p.Token, p.StreamURI, cam.RTSPURL(p.Token))
		}
	}
	for _, p := range got.Presets {
		if p.Name == "scribbled" {
			t.Errorf("preset %+v was changed through a copy", p)
		}
	}
	// The file agrees with memory.
	reloaded, ok := NewCameraBook(filepath.Dir(book.path), testLogger(t)).Get(id)
	if !ok || reloaded.XAddr != got.XAddr || len(reloaded.Profiles) != 2 {
		t.Errorf("reloaded %+v", reloaded)
	}
}
