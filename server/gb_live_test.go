package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gbsim"
	"github.com/tianyan/vms/whepclient"
)

// The live side of GB/T 28181, end to end: gbsim devices register to the
// app over real SIP, their channels become points, and viewers play them
// through the hub (WHEP and RTSP), steer them (PTZ) and wait through a
// device restart.

const (
	gbLiveDevice  = "44030700001320000001"
	gbLiveChannel = "44030700001310000001"
)

// gbLiveOptions shape the simulated device of a live test.
type gbLiveOptions struct {
	transport string // SIP transport: "udp" (default) or "tcp"
	faults    gbsim.Faults
	clip      string // camsim clip (default H.264 640x360)
	audio     bool   // G.711 A-law alongside the video
}

// startGBLive starts an app with SIP, a mapping rule that classifies the
// device's channel as a river point (so grants apply to it), and a gbsim
// camera with one PTZ channel; it returns when the channel is a point.
func startGBLive(t *testing.T, opts gbLiveOptions) (*testApp, *gbsim.Device) {
	t.Helper()
	a := startGBApp(t)
	a.importRegionsFixture()
	if res := a.admin(http.MethodPost, "/api/v1/gb/rules", map[string]any{"civil_code_prefix": "440307001", "category": "river", "level": 1}); res.Status != http.StatusCreated {
		t.Fatalf("rule: %s", res)
	}
	dev := startGBSimDevice(t, a.SIPAddr(), opts)
	waitFor(t, 15*time.Second, "the GB channel as a point", func() bool {
		return a.admin(http.MethodGet, "/api/v1/points/"+gbLiveChannel, nil).Status == http.StatusOK
	})
	return a, dev
}

// startGBSimDevice starts a gbsim camera (one PTZ channel, 25 fps with a
// 2 s GOP) registering to sipAddr; it is stopped with the test.
func startGBSimDevice(t testing.TB, sipAddr string, opts gbLiveOptions) *gbsim.Device {
	t.Helper()
	dev, err := gbsim.NewDevice(gbsim.DeviceConfig{
		ID: gbLiveDevice, Name: "水库球机", Manufacturer: "Tianyan-Sim", Model: "GB-PTZ", Firmware: "1.0",
		Server: sipAddr, ServerID: "44030700002000000001", Domain: "4403070000", Password: gbTestPassword,
		Transport: opts.transport, KeepaliveInterval: 5 * time.Second, RetryInterval: 200 * time.Millisecond, RebootTime: 300 * time.Millisecond,
		RequestTimeout: 3 * time.Second,
		Channels: []gbsim.ChannelConfig{{ID: gbLiveChannel, Name: "水库大坝", CivilCode: "440307001", PTZType: 1,
			Longitude: 113.93, Latitude: 22.53}},
		Faults: opts.faults, Clip: opts.clip, Audio: opts.audio, Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	dev.Start(context.Background())
	t.Cleanup(dev.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dev.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	return dev
}

// TestGBChannelPlaysOverWHEPAndRTSPAndIdleSendsBye: the first viewer's
// WHEP POST INVITEs the device (with IFameCmd, so the keyframe comes at
// once although gbsim has a 2 s GOP); the frames decode with ffmpeg; an
// RTSP reader joins the same stream; a grant-less user gets 404; once
// both leave, the idle grace ends the call with a BYE.
func TestGBChannelPlaysOverWHEPAndRTSPAndIdleSendsBye(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	a, dev := startGBLive(t, gbLiveOptions{})

	var rec annexBRecorder
	start := time.Now()
	c := a.connectViewer(gbLiveChannel, whepclient.Options{OnAccessUnit: rec.add})
	waitKeyframe(t, c, 10*time.Second)
	t.Logf("WHEP POST → first keyframe: %v", time.Since(start))
	if got := dev.Channel(gbLiveChannel).KeyframeRequests(); got < 1 {
		t.Error("the device got no keyframe request (IFameCmd on INVITE)")
	}
	if s := dev.Sessions(); len(s) != 1 || s[0].Transport != "udp" {
		t.Fatalf("device sessions %+v, want one over UDP", s)
	}

	r, err := readRTSP(t, "rtsp://admin:"+adminPassword+"@"+a.RTSP.Addr()+"/"+gbLiveChannel, true)
	if err != nil {
		t.Fatalf("RTSP read of the GB channel: %v", err)
	}
	if len(r.desc.Medias) != 1 || r.desc.Medias[0].Formats[0].Codec() != "H264" {
		t.Fatalf("RTSP described %+v", r.desc.Medias)
	}
	waitFor(t, 10*time.Second, "RTP over RTSP", func() bool { return r.packets.Load() >= 100 })
	if n := len(dev.Sessions()); n != 1 {
		t.Fatalf("an RTSP reader joining made %d device sessions, want the one call shared", n)
	}

	a.createUser("nogrant", "nogrant-pass-1")
	_, err = whepclient.ConnectHTTP(context.Background(), a.whepURL(gbLiveChannel), a.loginAs("nogrant", "nogrant-pass-1"), whepclient.Options{Interfaces: []string{"lo"}})
	if status, _ := whepStatus(t, err); status != http.StatusNotFound {
		t.Fatalf("grant-less WHEP on a GB channel: %d, want 404", status)
	}

	waitFor(t, 10*time.Second, "50 access units", func() bool { return rec.count() >= 50 })
	c.Close()
	r.client.Close()
	decodesCleanly(t, ffmpeg, rec.bytes(), "gb.h264", "the GB channel as viewed")

	// Idle grace (500 ms in tests) → BYE: the device's session ends.
	waitFor(t, 5*time.Second, "the BYE after the idle grace", func() bool { return len(dev.Sessions()) == 0 })
	if a.GBLive.Calls() != 0 {
		t.Fatalf("%d live calls open after idle", a.GBLive.Calls())
	}
}

// TestGBChannelThatNeverStartsIs504: the device reboots for longer than
// the start timeout (its registration still looks current, so the INVITE
// goes out and nothing answers or streams); the viewer gets the hub's
// start timeout as 504, as for a camera that never answers.
func TestGBChannelThatNeverStartsIs504(t *testing.T) {
	a, dev := startGBLive(t, gbLiveOptions{})
	dev.Restart(time.Minute)
	waitFor(t, 5*time.Second, "the device down", func() bool { return !dev.Registered() })
	start := time.Now()
	_, err := a.tryViewer(gbLiveChannel, whepclient.Options{})
	status, body := whepStatus(t, err)
	if status != http.StatusGatewayTimeout {
		t.Fatalf("WHEP on a channel that never starts: %d %s, want 504", status, body)
	}
	if el := time.Since(start); el > a.Hub.StartTimeout()+3*time.Second {
		t.Fatalf("504 after %v, start timeout %v", el, a.Hub.StartTimeout())
	}
}

// TestGBDeviceRestartResumesTheViewer: a viewer is watching when the
// device reboots (its streams and registration vanish without BYE); when
// it registers again the call is made anew and the same viewer gets
// frames again without reconnecting.
func TestGBDeviceRestartResumesTheViewer(t *testing.T) {
	a, dev := startGBLive(t, gbLiveOptions{})
	c := a.connectViewer(gbLiveChannel, whepclient.Options{})
	waitKeyframe(t, c, 10*time.Second)
	waitFor(t, 5*time.Second, "frames", func() bool { return c.Stats().Frames >= 10 })
	invites := dev.Stats().Invites

	dev.Restart(300 * time.Millisecond)
	waitFor(t, 10*time.Second, "a new INVITE after the restart", func() bool { return dev.Stats().Invites > invites })
	before := c.Stats().Frames
	waitFor(t, 10*time.Second, "frames again after the restart", func() bool { return c.Stats().Frames >= before+25 })
	if c.ConnectionState().String() != "connected" {
		t.Fatalf("viewer state %s after the restart", c.ConnectionState())
	}
}

// TestGBDeviceQuirksStillPlay: a device that refuses UDP media (488) is
// played over TCP, one that sends its own SSRC is followed, and a device
// registered over TCP is answered over TCP.
func TestGBDeviceQuirksStillPlay(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts gbLiveOptions
		want string // the device's transport
	}{
		{"tcp-only", gbLiveOptions{faults: gbsim.Faults{TCPOnly: true}}, "tcp-active"},
		{"own-ssrc", gbLiveOptions{faults: gbsim.Faults{IgnoreSSRC: true}}, "udp"},
		{"sip-over-tcp", gbLiveOptions{transport: "tcp"}, "udp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, dev := startGBLive(t, tc.opts)
			c := a.connectViewer(gbLiveChannel, whepclient.Options{})
			waitKeyframe(t, c, 10*time.Second)
			waitFor(t, 5*time.Second, "frames", func() bool { return c.Stats().Frames >= 25 })
			if s := dev.Sessions(); len(s) != 1 || s[0].Transport != tc.want {
				t.Fatalf("device sessions %+v, want one over %s", s, tc.want)
			}
		})
	}
}

// TestGBPTZMovesTheCameraUnderThePTZGrant: the points' PTZ route steers a
// GB channel through DeviceControl PTZCmd, under the ptz grant (view only
// → 403, nothing → 404) and PTZ priority, as it steers ONVIF cameras.
func TestGBPTZMovesTheCameraUnderThePTZGrant(t *testing.T) {
	a, dev := startGBLive(t, gbLiveOptions{})
	ch := dev.Channel(gbLiveChannel)
	a.createUser("pilot", "pilot-pass-123")
	a.grant(map[string]any{"user": "pilot", "categories": []string{"river"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view", "ptz"}})
	a.createUser("watcher", "watcher-pass-1")
	a.grant(map[string]any{"user": "watcher", "categories": []string{"river"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}})
	a.createUser("nogrant", "nogrant-pass-1")
	pilot, watcher, nog := a.loginAs("pilot", "pilot-pass-123"), a.loginAs("watcher", "watcher-pass-1"), a.loginAs("nogrant", "nogrant-pass-1")
	url := "/api/v1/points/" + gbLiveChannel + "/ptz"

	if res := a.do(http.MethodPost, url, nog, "", map[string]any{"op": "stop"}); res.Status != http.StatusNotFound {
		t.Fatalf("grant-less PTZ: %s, want 404", res)
	}
	if res := a.do(http.MethodPost, url, watcher, "", map[string]any{"op": "stop"}); res.Status != http.StatusForbidden {
		t.Fatalf("view-only PTZ: %s, want 403", res)
	}
	if n := ch.PTZ().Commands; n != 0 {
		t.Fatalf("refused requests reached the camera: %d commands", n)
	}

	before := ch.PTZ().Position
	if res := a.do(http.MethodPost, url, pilot, "", map[string]any{"op": "move", "pan": 1, "timeout_ms": 600}); res.Status != http.StatusNoContent {
		t.Fatalf("move: %s", res)
	}
	if !ch.PTZ().Moving {
		t.Fatal("the camera is not moving after the move")
	}
	// The move stops by itself after its timeout (GB has no timed move).
	waitFor(t, 3*time.Second, "the automatic stop", func() bool { return !ch.PTZ().Moving })
	moved := ch.PTZ().Position
	if d := moved.Pan - before.Pan; d < 20 || moved.Tilt != before.Tilt {
		t.Fatalf("head went from %+v to %+v, want a pan right of ≥ 20°", before, moved)
	}

	if res := a.do(http.MethodPost, url, pilot, "", map[string]any{"op": "preset_set", "preset": "7"}); res.Status != http.StatusNoContent {
		t.Fatalf("preset_set: %s", res)
	}
	if res := a.do(http.MethodPost, url, pilot, "", map[string]any{"op": "move", "tilt": 1, "timeout_ms": 300}); res.Status != http.StatusNoContent {
		t.Fatalf("move: %s", res)
	}
	if res := a.do(http.MethodPost, url, pilot, "", map[string]any{"op": "stop"}); res.Status != http.StatusNoContent {
		t.Fatalf("stop: %s", res)
	}
	if ch.PTZ().Moving || ch.PTZ().Position == moved {
		t.Fatalf("after move up and stop: %+v", ch.PTZ())
	}
	if res := a.do(http.MethodPost, url, pilot, "", map[string]any{"op": "preset", "preset": "7"}); res.Status != http.StatusNoContent {
		t.Fatalf("preset goto: %s", res)
	}
	waitFor(t, 3*time.Second, "the head back at preset 7", func() bool { p := ch.PTZ(); return !p.Moving && p.Position == moved })
	if res := a.do(http.MethodPost, url, pilot, "", map[string]any{"op": "preset", "preset": "home"}); res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("a preset that is not a number: %s, want 422", res)
	}
	if recs := a.audited("ptz.move"); len(recs) != 2 || recs[0].User != "pilot" || recs[0].Point != gbLiveChannel {
		t.Fatalf("ptz.move audit records %+v", recs)
	}

	// PTZ priority: the admin (higher priority) takes the head; the pilot
	// waits for the lease.
	if res := a.admin(http.MethodPost, url, map[string]any{"op": "stop"}); res.Status != http.StatusNoContent {
		t.Fatalf("admin stop: %s", res)
	}
	if res := a.do(http.MethodPost, url, pilot, "", map[string]any{"op": "stop"}); res.Status != http.StatusConflict || !strings.Contains(string(res.Body), "ptz_busy") {
		t.Fatalf("pilot while the admin holds the head: %s, want 409 ptz_busy", res)
	}
}

// TestGBDeviceInfoAndStatusAreAskedOverSIP: an administrator asks the
// device itself, through the API, for its DeviceInfo and DeviceStatus;
// someone without agents.manage may not; a device that is not online is
// 503.
func TestGBDeviceInfoAndStatusAreAskedOverSIP(t *testing.T) {
	a, dev := startGBLive(t, gbLiveOptions{})
	var info struct {
		Device, Name, Manufacturer, Model, Firmware string
		Channels                                    int
	}
	res := a.admin(http.MethodGet, "/api/v1/gb/devices/"+gbLiveDevice+"/info", nil)
	decodeInto(t, res, &info)
	if res.Status != http.StatusOK || info.Device != gbLiveDevice || info.Name != "水库球机" || info.Manufacturer != "Tianyan-Sim" || info.Channels != 1 {
		t.Fatalf("device info: %s", res)
	}
	var st struct{ Online, Status, Encode string }
	res = a.admin(http.MethodGet, "/api/v1/gb/devices/"+gbLiveDevice+"/status", nil)
	decodeInto(t, res, &st)
	if res.Status != http.StatusOK || st.Online != "ONLINE" || st.Status != "OK" || st.Encode != "ON" {
		t.Fatalf("device status: %s", res)
	}
	a.createUser("watcher", "watcher-pass-1")
	a.grant(map[string]any{"user": "watcher", "categories": []string{"river"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}})
	if res := a.do(http.MethodGet, "/api/v1/gb/devices/"+gbLiveDevice+"/status", a.loginAs("watcher", "watcher-pass-1"), "", nil); res.Status != http.StatusForbidden {
		t.Fatalf("device status for a viewer: %s, want 403", res)
	}
	dev.Stop() // unregisters
	waitFor(t, 5*time.Second, "the device offline", func() bool {
		return a.admin(http.MethodGet, "/api/v1/gb/devices/"+gbLiveDevice+"/info", nil).Status == http.StatusServiceUnavailable
	})
}

// TestGBChannelWithH265AndG711IsReservedOverRTSP: a device sending H.265
// with G.711 A-law audio in its PS is re-served with both tracks, the
// video described with its parameter sets.
func TestGBChannelWithH265AndG711IsReservedOverRTSP(t *testing.T) {
	a, _ := startGBLive(t, gbLiveOptions{clip: camsim.ClipH265Sub, audio: true})
	r, err := readRTSP(t, "rtsp://admin:"+adminPassword+"@"+a.RTSP.Addr()+"/"+gbLiveChannel, true)
	if err != nil {
		t.Fatalf("RTSP read: %v", err)
	}
	if len(r.desc.Medias) != 2 {
		t.Fatalf("described %d medias, want H.265 and G.711", len(r.desc.Medias))
	}
	h, ok := r.desc.Medias[0].Formats[0].(*format.H265)
	if !ok || len(h.VPS) == 0 || len(h.SPS) == 0 || len(h.PPS) == 0 {
		t.Fatalf("video %#v, want H.265 with VPS/SPS/PPS", r.desc.Medias[0].Formats[0])
	}
	if g, ok := r.desc.Medias[1].Formats[0].(*format.G711); !ok || g.MULaw || g.SampleRate != 8000 {
		t.Fatalf("audio %#v, want G.711 A-law at 8 kHz", r.desc.Medias[1].Formats[0])
	}
	waitFor(t, 10*time.Second, "RTP from the channel", func() bool { return r.packets.Load() >= 100 })
}
