package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserPlaysAGBChannelAndSteersIt: in real Chromium, a user with
// view and ptz on river points opens a GB/T 28181 channel of a gbsim
// camera in the web app: the player decodes frames continuously (WHEP →
// INVITE → PS over RTP → hub → WebRTC) and says live; holding the pad's
// right arrow pans the simulated head through DeviceControl PTZCmd and
// the release stops it; with the device gone the pad says so.
func TestBrowserPlaysAGBChannelAndSteersIt(t *testing.T) {
	a, dev := startGBLive(t, gbLiveOptions{})
	ch := dev.Channel(gbLiveChannel)
	res := a.admin(http.MethodGet, "/api/v1/points/"+gbLiveChannel, nil)
	if !strings.Contains(string(res.Body), `"ptz":true`) {
		t.Fatalf("the GB channel with PTZType 1 is not a PTZ point: %s", res)
	}
	a.createUser("pilot", "pilot-pass-123")
	a.grant(map[string]any{"user": "pilot", "categories": []string{"river"}, "regions": []string{"*"},
		"max_level": 4, "actions": []string{"view", "ptz"}})

	b := newUIBrowser(t, 360, 740, true)
	b.do("open the channel", 15*time.Second, chromedp.Navigate(a.HTTPURL()+"/#/p/"+gbLiveChannel))
	b.login("pilot", "pilot-pass-123")
	opened := time.Now()
	b.waitJS("a decoded frame", `document.querySelector("#video")?.getVideoPlaybackQuality().totalVideoFrames > 0`, 25*time.Second)
	t.Logf("first decoded frame %v after the player opened", time.Since(opened).Round(time.Millisecond))
	first := b.frames("#video")
	time.Sleep(2 * time.Second)
	if second := b.frames("#video"); second < first+25 {
		t.Errorf("video stalled: totalVideoFrames %d -> %d in 2 s, want at least +25 (25 fps)", first, second)
	}
	b.waitJS("status live", `document.querySelector("#status").dataset.state === "live"`, 5*time.Second)
	if w := uiEval[int](b, `document.querySelector("#video").videoWidth`); w != 640 {
		t.Errorf("video width %d, want the clip's 640", w)
	}
	if n := len(dev.Sessions()); n != 1 {
		t.Fatalf("device sessions while one browser plays: %d", n)
	}
	b.screenshot("gb-player")

	b.waitJS("the PTZ pad", `document.querySelector("#ptz .btn[data-pan='1'][data-tilt='0']")`, 5*time.Second)
	before := ch.PTZ().Position
	b.press(`#ptz .btn[data-pan="1"][data-tilt="0"]`, 1300*time.Millisecond)
	waitFor(t, 5*time.Second, "the stop after release", func() bool { return len(a.audited("ptz.stop")) == 1 })
	waitFor(t, 3*time.Second, "the head at rest", func() bool { return !ch.PTZ().Moving })
	moved := ch.PTZ().Position
	if moved.Pan-before.Pan < 20 || moved.Tilt != before.Tilt {
		t.Fatalf("head went from %+v to %+v, want a pan to the right", before, moved)
	}
	if note := b.text("#ptz-note"); note != "" {
		t.Errorf("PTZ note after a good move: %q", note)
	}

	// The device goes away: the pad says so (not "edge agent offline").
	dev.Stop()
	waitFor(t, 5*time.Second, "the device offline", func() bool { d, ok := a.GB.Devices().Get(gbLiveDevice); return ok && !d.Online })
	b.press(`#ptz .btn[data-pan="1"][data-tilt="0"]`, 100*time.Millisecond)
	b.waitJS("device offline on the pad", `document.querySelector("#ptz-note")?.dataset.code === "device_offline"`, 10*time.Second)
	if note := b.text("#ptz-note"); !strings.Contains(note, "国标设备离线") {
		t.Errorf("PTZ note with the device gone: %q", note)
	}
}

// TestAdminAsksAGBDeviceForItsStatusFromTheGBPage: on the 国标设备 page
// an administrator's 查询状态 asks the device itself (DeviceInfo and
// DeviceStatus over SIP) and shows what it answered.
func TestAdminAsksAGBDeviceForItsStatusFromTheGBPage(t *testing.T) {
	a, _ := startGBLive(t, gbLiveOptions{})
	b := newUIBrowser(t, adminWidth, adminHeight, false)
	b.do("open the GB page", 15*time.Second, chromedp.Navigate(a.HTTPURL()+"/#/admin/gb"))
	b.login("admin", adminPassword)
	b.openAdmin("gb", "")
	b.waitJS("the device online", `document.querySelector('#gb-devices tr[data-device="`+gbLiveDevice+`"][data-online="true"] .act-status')`, 15*time.Second)
	b.click("ask its status", `#gb-devices tr[data-device="`+gbLiveDevice+`"] .act-status`)
	b.waitJS("the answer", `document.querySelector('#gb-msg').textContent.includes("ONLINE")`, 10*time.Second)
	got := b.text("#gb-msg")
	for _, want := range []string{"Tianyan-Sim GB-PTZ 1.0", "ONLINE / OK", gbLiveDevice} {
		if !strings.Contains(got, want) {
			t.Errorf("status message %q lacks %q", got, want)
		}
	}
	b.screenshot("gb-admin-status")
}
