package gb28181

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/gb28181/manscdp"
)

const (
	testDeviceID  = "34020000001320000001"
	testChannelID = "34020000001320000011"
)

// captureOutput is the hub's side of an ExternalSource in these tests: it
// keeps the announced session and depacketizes the video into access
// units, as a viewer would.
type captureOutput struct {
	mu        sync.Mutex
	desc      *description.Session
	readies   int
	ready     chan struct{}
	dec       *rtph264.Decoder
	aus       int
	firstKey  bool // the first access unit was a keyframe with SPS and PPS
	keyframes int
	packets   int
	gotAU     chan struct{}
}

func newCaptureOutput() *captureOutput {
	return &captureOutput{ready: make(chan struct{}), gotAU: make(chan struct{}, 1)}
}

func (o *captureOutput) Ready(desc *description.Session) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.readies++
	if o.desc == nil {
		o.desc = desc
		close(o.ready)
	}
	if f, ok := desc.Medias[0].Formats[0].(*format.H264); ok {
		o.dec, _ = f.CreateDecoder()
	}
	return nil
}

func (o *captureOutput) WriteRTP(medi *description.Media, pkt *rtp.Packet) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.packets++
	if o.dec == nil || medi != o.desc.Medias[0] {
		return
	}
	au, err := o.dec.Decode(pkt)
	if err != nil {
		return
	}
	if o.aus == 0 {
		var sps, pps bool
		for _, n := range au {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				sps = true
			case h264.NALUTypePPS:
				pps = true
			}
		}
		o.firstKey = sps && pps && h264.IsRandomAccess(au)
	}
	if h264.IsRandomAccess(au) {
		o.keyframes++
	}
	o.aus++
	select {
	case o.gotAU <- struct{}{}:
	default:
	}
}

func (o *captureOutput) state() (aus, keyframes int, firstKey bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.aus, o.keyframes, o.firstKey
}

// waitAUs waits until n access units have been decoded.
func (o *captureOutput) waitAUs(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		if aus, _, _ := o.state(); aus >= n {
			return
		}
		select {
		case <-o.gotAU:
		case <-deadline:
			aus, _, _ := o.state()
			t.Fatalf("%d access units after %v, want %d", aus, d, n)
		}
	}
}

// runSource runs src in the background. stop cancels it and returns what
// Run returned; done is closed when Run has returned, with err then set.
func runSource(src *ChannelSource, out *captureOutput) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = src.Run(ctx, out)
	}()
	return r
}

type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (r *running) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// ended waits at most d for Run to return by itself.
func (r *running) ended(d time.Duration) (err error, ok bool) {
	select {
	case <-r.done:
		return r.err, true
	case <-time.After(d):
		return nil, false
	}
}

func newTestLive(t *testing.T, s *Server, mod func(*LiveConfig)) *Live {
	cfg := LiveConfig{MediaBind: "127.0.0.1", ReadTimeout: 2 * time.Second, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	l := NewLive(s, cfg)
	t.Cleanup(l.Close)
	return l
}

func TestChannelSourcePlaysAKeyframeFirstAndByesWhenStopped(t *testing.T) {
	for _, sipTransport := range []string{"UDP", "TCP"} {
		t.Run("sip-over-"+sipTransport, func(t *testing.T) {
			s := newTestServer(t, nil)
			live := newTestLive(t, s, nil)
			dev := newLiveDevice(t, s, testDeviceID, testChannelID, sipTransport)
			dev.register(s)

			out := newCaptureOutput()
			run := runSource(live.Source(testDeviceID, testChannelID), out)
			defer run.stop()
			select {
			case <-out.ready:
			case <-time.After(5 * time.Second):
				t.Fatal("the source never announced its session")
			}
			out.waitAUs(t, 25, 5*time.Second)
			if _, _, first := out.state(); !first {
				t.Error("the first access unit handed to the hub is not a keyframe with SPS and PPS")
			}
			if n := dev.keyframes.Load(); n != 1 {
				t.Errorf("the device got %d IFameCmd, want 1 per INVITE", n)
			}
			f := out.desc.Medias[0].Formats[0].(*format.H264)
			if sps, pps := f.SafeParams(); len(sps) == 0 || len(pps) == 0 {
				t.Error("the announced H.264 format has no SPS/PPS")
			}

			// The offer says what GB/T 28181 devices look for.
			offer := parseSDPLines([]byte(dev.lastOffer()))
			for _, want := range []string{"s=Play", "u=" + testChannelID + ":0", "a=rtpmap:96 PS/90000", "a=rtpmap:98 H264/90000", "a=recvonly"} {
				if !offer.has(want) {
					t.Errorf("offer lacks %q:\n%s", want, dev.lastOffer())
				}
			}
			if y := offer.get("y"); len(y) != 10 || y[0] != '0' || y[1:6] != testDomain[3:8] {
				t.Errorf("y=%s, want 0 + domain digits 4-8 + 4-digit sequence", y)
			}
			if m := offer.get("m"); !strings.HasPrefix(m, "video ") || !strings.Contains(m, " RTP/AVP 96") {
				t.Errorf("m=%s, want video over RTP/AVP with PS first", m)
			}

			if err := run.stop(); err != nil {
				t.Fatalf("Run after the hub stopped it: %v, want nil", err)
			}
			if dev.byes.Load() != 1 || dev.openCalls() != 0 {
				t.Fatalf("device saw %d BYE, has %d calls open; want the call ended with one BYE", dev.byes.Load(), dev.openCalls())
			}
			if live.Calls() != 0 {
				t.Fatalf("%d calls left open", live.Calls())
			}
		})
	}
}

func TestEverySessionOffersItsOwnSSRC(t *testing.T) {
	s := newTestServer(t, nil)
	live := newTestLive(t, s, nil)
	dev := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP")
	dev.register(s)
	seen := map[string]bool{}
	for range 3 {
		out := newCaptureOutput()
		run := runSource(live.Source(testDeviceID, testChannelID), out)
		out.waitAUs(t, 1, 5*time.Second)
		if err := run.stop(); err != nil {
			t.Fatal(err)
		}
		y := parseSDPLines([]byte(dev.lastOffer())).get("y")
		if seen[y] {
			t.Fatalf("y=%s offered twice", y)
		}
		seen[y] = true
	}
}

func TestTCPDeviceIsOfferedPassiveTCPAndPlays(t *testing.T) {
	s := newTestServer(t, nil)
	live := newTestLive(t, s, nil)
	dev := newLiveDevice(t, s, testDeviceID, testChannelID, "TCP")
	dev.register(s)
	s.Devices().Update(testDeviceID, false, func(d *Device) DeviceEventKind { d.StreamTransport = "tcp"; return 0 })

	out := newCaptureOutput()
	run := runSource(live.Source(testDeviceID, testChannelID), out)
	defer run.stop()
	out.waitAUs(t, 25, 5*time.Second)
	offer := parseSDPLines([]byte(dev.lastOffer()))
	if !offer.tcp() || !offer.has("a=setup:passive") || !offer.has("a=connection:new") {
		t.Fatalf("offer to a TCP device:\n%s", dev.lastOffer())
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceRefusingUDPIsPlayedOverTCP(t *testing.T) {
	for _, fault := range []string{"488-to-udp", "answers-tcp"} {
		t.Run(fault, func(t *testing.T) {
			s := newTestServer(t, nil)
			live := newTestLive(t, s, nil)
			dev := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP", func(d *liveDevice) {
				d.refuseUDP = fault == "488-to-udp"
				d.answerTCP = fault == "answers-tcp"
			})
			dev.register(s)
			out := newCaptureOutput()
			run := runSource(live.Source(testDeviceID, testChannelID), out)
			out.waitAUs(t, 25, 8*time.Second)
			if err := run.stop(); err != nil {
				t.Fatal(err)
			}
			if n := dev.invites.Load(); n != 2 {
				t.Fatalf("%d INVITEs, want a UDP one then a TCP one", n)
			}
			// The next viewer is offered TCP at once.
			out = newCaptureOutput()
			run = runSource(live.Source(testDeviceID, testChannelID), out)
			out.waitAUs(t, 1, 5*time.Second)
			run.stop()
			if n := dev.invites.Load(); n != 3 || !parseSDPLines([]byte(dev.lastOffer())).tcp() {
				t.Fatalf("%d INVITEs, last offer:\n%s\nwant TCP straight away", n, dev.lastOffer())
			}
		})
	}
}

func TestDeviceSendingAnotherSSRCIsPlayed(t *testing.T) {
	s := newTestServer(t, nil)
	live := newTestLive(t, s, nil)
	dev := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP", func(d *liveDevice) { d.otherSSRC = 123456789 })
	dev.register(s)
	out := newCaptureOutput()
	run := runSource(live.Source(testDeviceID, testChannelID), out)
	defer run.stop()
	out.waitAUs(t, 25, 5*time.Second)
}

func TestDeviceByeEndsTheSourceWithAnError(t *testing.T) {
	s := newTestServer(t, nil)
	live := newTestLive(t, s, nil)
	dev := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP")
	dev.register(s)
	out := newCaptureOutput()
	run := runSource(live.Source(testDeviceID, testChannelID), out)
	defer run.stop()
	out.waitAUs(t, 5, 5*time.Second)
	dev.hangUp()
	if err, ok := run.ended(3 * time.Second); !ok {
		t.Fatal("Run did not end after the device's BYE")
	} else if !errors.Is(err, errDeviceBye) {
		t.Fatalf("Run after the device's BYE: %v", err)
	}
	if dev.byes.Load() != 0 {
		t.Fatalf("we sent BYE for a call the device ended")
	}
	if live.Calls() != 0 {
		t.Fatalf("%d calls left open", live.Calls())
	}
}

func TestDeviceThatNeverSendsMediaFailsAfterTheReadTimeout(t *testing.T) {
	s := newTestServer(t, nil)
	live := newTestLive(t, s, func(c *LiveConfig) { c.ReadTimeout = 700 * time.Millisecond })
	dev := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP", func(d *liveDevice) { d.noMedia = true })
	dev.register(s)
	out := newCaptureOutput()
	start := time.Now()
	run := runSource(live.Source(testDeviceID, testChannelID), out)
	defer run.stop()
	err, ok := run.ended(5 * time.Second)
	switch {
	case !ok:
		t.Fatal("Run kept waiting for media that never came")
	case err == nil:
		t.Fatal("Run returned nil for a device that sends nothing")
	case time.Since(start) < 600*time.Millisecond:
		t.Fatalf("gave up after %v, before the read timeout", time.Since(start))
	}
	waitUntil(t, 3*time.Second, "the BYE for the silent call", func() bool { return dev.byes.Load() == 1 })
}

func TestSourceStopsAtOnceWhileTheInviteIsUnanswered(t *testing.T) {
	s := newTestServer(t, nil)
	live := newTestLive(t, s, nil)
	dev := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP", func(d *liveDevice) { d.noAnswer = true })
	dev.register(s)
	run := runSource(live.Source(testDeviceID, testChannelID), newCaptureOutput())
	waitUntil(t, 3*time.Second, "the INVITE", func() bool { return dev.invites.Load() > 0 })
	start := time.Now()
	if err := run.stop(); err != nil {
		t.Fatalf("Run stopped by the hub: %v, want nil", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Run took %v to stop while waiting for an answer (the hub waits for it)", el)
	}
	if live.Calls() != 0 {
		t.Fatalf("%d calls left", live.Calls())
	}
}

func TestSourceWaitsForItsDeviceAndResumesAfterARestart(t *testing.T) {
	s := newTestServer(t, nil)
	live := newTestLive(t, s, nil)
	dev := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP")
	out := newCaptureOutput()
	// Not registered yet: Run waits.
	run := runSource(live.Source(testDeviceID, testChannelID), out)
	defer run.stop()
	time.Sleep(300 * time.Millisecond)
	if dev.invites.Load() != 0 {
		t.Fatal("INVITE sent to a device that is not registered")
	}
	dev.register(s)
	out.waitAUs(t, 5, 5*time.Second)

	// The device restarts: it registers again (its calls are gone).
	dev2 := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP")
	dev.close()
	dev2.register(s)
	if err, ok := run.ended(3 * time.Second); !ok {
		t.Fatal("a restarted device's call was not ended")
	} else if err == nil {
		t.Fatal("Run returned nil when the device restarted under it")
	}
	// The hub runs the source again: it plays from the new device.
	out2 := newCaptureOutput()
	run2 := runSource(live.Source(testDeviceID, testChannelID), out2)
	defer run2.stop()
	out2.waitAUs(t, 5, 5*time.Second)
}

func TestPTZMovesStopsByItselfAndGoesToPresets(t *testing.T) {
	s := newTestServer(t, nil)
	live := newTestLive(t, s, nil)
	dev := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP")
	dev.register(s)
	ctx := context.Background()

	if err := live.PTZ(ctx, testDeviceID, testChannelID, PTZCommand{Op: PTZMove, Pan: 0.5, Tilt: -1, Timeout: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	cmds := dev.ptzCommands()
	if len(cmds) != 1 || cmds[0].Op != manscdp.PTZMove || cmds[0].Pan != 1 || cmds[0].Tilt != -1 || cmds[0].PanSpeed < 120 || cmds[0].PanSpeed > 135 || cmds[0].TiltSpeed != 255 {
		t.Fatalf("device got %+v, want a move right at half speed and down at full speed", cmds)
	}
	waitUntil(t, 2*time.Second, "the stop after the move's timeout", func() bool { return len(dev.ptzCommands()) == 2 })
	if c := dev.ptzCommands()[1]; !c.Stop() {
		t.Fatalf("after the timeout: %+v, want a stop", c)
	}

	if err := live.PTZ(ctx, testDeviceID, testChannelID, PTZCommand{Op: PTZPresetSet, Preset: 3}); err != nil {
		t.Fatal(err)
	}
	if err := live.PTZ(ctx, testDeviceID, testChannelID, PTZCommand{Op: PTZPresetGoto, Preset: 3}); err != nil {
		t.Fatal(err)
	}
	cmds = dev.ptzCommands()
	if len(cmds) != 4 || cmds[2].Op != manscdp.PTZPresetSet || cmds[2].Preset != 3 || cmds[3].Op != manscdp.PTZPresetGoto || cmds[3].Preset != 3 {
		t.Fatalf("preset commands: %+v", cmds[2:])
	}

	for _, bad := range []PTZCommand{{Op: PTZMove, Pan: 2}, {Op: PTZPresetGoto, Preset: 0}, {Op: PTZPresetGoto, Preset: 256}, {Op: "spin"}} {
		if err := live.PTZ(ctx, testDeviceID, testChannelID, bad); !errors.Is(err, ErrBadPTZ) {
			t.Errorf("PTZ %+v: %v, want ErrBadPTZ", bad, err)
		}
	}
	if err := live.PTZ(ctx, "34020000001320000099", testChannelID, PTZCommand{Op: PTZStop}); !errors.Is(err, ErrDeviceOffline) {
		t.Errorf("PTZ on an unknown device: %v", err)
	}
	if n := len(dev.ptzCommands()); n != 4 {
		t.Fatalf("bad commands reached the device: %d commands", n)
	}
}

func TestDeviceInfoAndStatusQueries(t *testing.T) {
	s := newTestServer(t, nil)
	live := newTestLive(t, s, nil)
	dev := newLiveDevice(t, s, testDeviceID, testChannelID, "UDP")
	dev.register(s)
	ctx := context.Background()
	info, err := live.DeviceInfo(ctx, testDeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Manufacturer != "Tianyan-Test" || info.Channel != 1 || info.DeviceName != "测试摄像机" {
		t.Fatalf("device info %+v", info)
	}
	st, err := live.DeviceStatus(ctx, testDeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Online != "ONLINE" || st.Status != "OK" {
		t.Fatalf("device status %+v", st)
	}
	dev.silent.Store(true)
	if _, err := live.DeviceStatus(ctx, testDeviceID); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("status of a device that never answers: %v", err)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
