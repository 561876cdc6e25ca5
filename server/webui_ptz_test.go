package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/edge"
)

// recordPeerConnections makes every page of b keep the configuration each
// RTCPeerConnection is created with in window.__pcConfigs, before the
// app's scripts run; the connections themselves are the browser's own.
func (b *uiBrowser) recordPeerConnections() {
	b.t.Helper()
	const js = `(() => {
		const Native = window.RTCPeerConnection;
		window.__pcConfigs = [];
		window.RTCPeerConnection = function (config, ...rest) {
			window.__pcConfigs.push(JSON.parse(JSON.stringify(config || {})));
			return new Native(config, ...rest);
		};
		window.RTCPeerConnection.prototype = Native.prototype;
	})()`
	b.do("record peer connections", 5*time.Second, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return err
	}))
}

// press holds the mouse button on the element matched by css for d.
func (b *uiBrowser) press(css string, d time.Duration) {
	b.t.Helper()
	xy := uiEval[[]float64](b, fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`, css))
	b.do("press "+css, 5*time.Second, chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, xy[0], xy[1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
	time.Sleep(d)
	b.do("release "+css, 5*time.Second, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, xy[0], xy[1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
}

// TestPhonePlayerSteersPTZAndSnapshotsThroughTheAgent: a phone user with
// ptz and snapshot grants watches a camera behind an edge agent. The
// player's RTCPeerConnection is given the server's STUN server (from
// ui-config); holding a PTZ arrow moves the head through the real API
// (POST /ptz with op move, repeated while held, then stop on release);
// the snapshot comes from the camera through the agent. With the agent
// gone, the pad says so.
func TestPhonePlayerSteersPTZAndSnapshotsThroughTheAgent(t *testing.T) {
	cfg := testConfig(t)
	// Nothing listens there: the browser's STUN requests fail at once,
	// and on loopback the host candidates connect regardless.
	cfg.ICEServers = []string{"stun:127.0.0.1:9"}
	a := startAppWith(t, cfg)
	for _, r := range []catalog.Region{{Code: "440307", Name: "南山区"}, {Code: "440307001", Name: "第1街道", Parent: "440307"}} {
		if _, err := a.Catalog.CreateRegion(r); err != nil {
			t.Fatal(err)
		}
	}
	cam := startONVIFCamera(t, "Reservoir-PTZ")
	creds := a.enrollAgent("Reservoir LAN")
	book := edge.NewCameraBook(t.TempDir(), testLogger())
	book.SetCameraNetworks(loopbackCameraNetworks(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	camera, err := book.Provision(ctx, "", cam.XAddr(), "admin", "cam-secret-1")
	if err != nil {
		t.Fatalf("provision the camera in the agent's book: %v", err)
	}
	agent := edge.New(edge.Config{Credentials: creds, Cameras: book, HealthInterval: time.Second, Logger: testLogger(),
		CameraNetworks: loopbackCameraNetworks(t)})
	actx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Run(actx) }()
	t.Cleanup(func() { stopAgent(); <-agentDone })
	waitFor(t, 10*time.Second, "agent online", agent.Online)
	raw, err := edge.CreatePoint(ctx, &http.Client{Timeout: 10 * time.Second}, creds, a.token, camera,
		edge.PointSpec{Name: "水库全景", Category: "reservoir", Region: "440307001", Kind: "panoramic", UseSub: true})
	if err != nil {
		t.Fatalf("create the point: %v", err)
	}
	var pt catalog.Point
	if err := json.Unmarshal(raw, &pt); err != nil || !pt.PTZ || pt.Agent != creds.AgentID {
		t.Fatalf("point %s (%v)", raw, err)
	}
	a.createUser("pilot", "pilot-pass-123")
	a.grant(map[string]any{"user": "pilot", "categories": []string{"reservoir"}, "regions": []string{"*"},
		"max_level": 4, "actions": []string{"view", "ptz", "snapshot"}})

	b := newUIBrowser(t, 360, 740, true)
	b.recordPeerConnections()
	b.do("open the point", 15*time.Second, chromedp.Navigate(a.HTTPURL()+"/#/p/"+pt.ID))
	b.login("pilot", "pilot-pass-123")
	b.waitJS("live through the agent", `document.querySelector("#status")?.dataset.state === "live"`, 25*time.Second)
	if got := uiEval[string](b, `JSON.stringify(window.__pcConfigs.map(c => c.iceServers))`); got != `[[{"urls":["stun:127.0.0.1:9"]}]]` {
		t.Errorf("the player's RTCPeerConnection ICE servers: %s, want the server's STUN server", got)
	}
	b.waitJS("the PTZ pad", `document.querySelector("#ptz .btn[data-pan='1'][data-tilt='0']")`, 5*time.Second)
	b.screenshot("phone-player-ptz")

	// Hold → for 1.3 s: moves (repeated after 1 s), then a stop on release.
	before := cam.PTZPosition()
	b.press(`#ptz .btn[data-pan="1"][data-tilt="0"]`, 1300*time.Millisecond)
	waitFor(t, 5*time.Second, "the stop after release", func() bool { return len(a.audited("ptz.stop")) == 1 })
	moved := cam.PTZPosition()
	if moved.Pan < before.Pan+0.2 || moved.Tilt != before.Tilt {
		t.Fatalf("head went from %+v to %+v, want a pan to the right", before, moved)
	}
	if n := len(a.audited("ptz.move")); n < 2 {
		t.Errorf("%d ptz.move records for a 1.3 s hold, want the move repeated while held", n)
	}
	time.Sleep(time.Second)
	if still := cam.PTZPosition(); still != moved {
		t.Errorf("head kept moving after the release: %+v -> %+v", moved, still)
	}
	if note := b.text("#ptz-note"); note != "" {
		t.Errorf("PTZ note after a good move: %q", note)
	}

	// The snapshot comes from the camera itself, through the agent, audited.
	b.click("snapshot", "#snap")
	b.waitJS("snapshot from the camera", `document.querySelector("#snap").dataset.source === "camera"`, 15*time.Second)
	if n := b.requested(a.HTTPURL() + "/api/v1/points/" + pt.ID + "/snapshot.jpg"); n != 1 {
		t.Errorf("snapshot.jpg requested %d times, want 1", n)
	}
	if recs := a.audited("snapshot"); len(recs) != 1 || recs[0].User != "pilot" || recs[0].Point != pt.ID {
		t.Errorf("snapshot audit records: %+v", recs)
	}

	// The agent goes away: the pad says the agent is offline.
	stopAgent()
	<-agentDone
	agentDone <- nil // for the cleanup
	waitFor(t, 10*time.Second, "agent offline at the centre", func() bool { return !a.agentOnline(creds.AgentID) })
	b.press(`#ptz .btn[data-pan="1"][data-tilt="0"]`, 100*time.Millisecond)
	b.waitJS("agent offline on the pad", `document.querySelector("#ptz-note")?.dataset.code === "agent_offline"`, 10*time.Second)
	if note := b.text("#ptz-note"); !strings.Contains(note, "边缘代理离线") {
		t.Errorf("PTZ note with the agent gone: %q", note)
	}
}
