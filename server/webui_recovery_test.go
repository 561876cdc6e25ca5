package server

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPlayerKeepsItsSessionWhileTheAgentIsAwayAndPlaysWhenItReturns: the
// phone plays a camera its edge agent relays; the agent goes away for
// longer than the player's stall timeout. The player asks the server, hears
// that the stream is waiting for its source and that the point's agent is
// out of touch, says so (not "camera offline": nothing is known of the
// camera) and keeps its session (so the relay stays wanted); when the agent connects again
// the centre resumes the relay and the same session plays within 5 s,
// instead of the player abandoning it and backing off for up to 30 s.
func TestPlayerKeepsItsSessionWhileTheAgentIsAwayAndPlaysWhenItReturns(t *testing.T) {
	a := startApp(t)
	uiDistrict(t, a)
	cam := startDualCamera(t)
	creds := a.enrollAgent("Reservoir LAN")
	ea := a.runAgent(creds)
	if res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "dam", "name": "水库大坝",
		"category": "reservoir", "region": "440307001001", "agent": ea.ID, "camera": "cam-1",
		"main": map[string]string{"type": "rtsp", "url": cam.URL("main")},
		"sub":  map[string]string{"type": "rtsp", "url": cam.URL("sub")}}); res.Status != http.StatusCreated {
		t.Fatalf("create bound point: %s", res)
	}

	b := newUIBrowser(t, 360, 740, true)
	b.do("open the player", 15*time.Second, chromedp.Navigate(a.HTTPURL()+"/#/p/dam"))
	b.login("admin", adminPassword)
	b.waitJS("live through the agent", `document.querySelector("#status")?.dataset.state === "live" && document.querySelector("#video").getVideoPlaybackQuality().totalVideoFrames > 25`, 30*time.Second)
	session := uiEval[string](b, `document.querySelector("#video").dataset.session`)

	// The agent's host goes down: its relay and its control link end.
	ea.stop()
	select {
	case err := <-ea.done:
		ea.done <- err // for runAgent's cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("edge agent did not stop")
	}
	away := time.Now()
	b.waitJS("the player to say the agent is away", `document.querySelector("#status").dataset.state === "agentOffline"`, 20*time.Second)
	t.Logf("player says the agent is away %v after it left", time.Since(away).Round(time.Millisecond))
	if s := uiEval[string](b, `document.querySelector("#video").dataset.session`); s != session {
		t.Fatalf("the player dropped its session while the source was away: %q → %q", session, s)
	}

	back := time.Now()
	a.runAgent(creds)
	before := b.frames("#video")
	b.waitJS("playing again", fmt.Sprintf(`document.querySelector("#status").dataset.state === "live" && document.querySelector("#video").getVideoPlaybackQuality().totalVideoFrames > %d`, before+10), 5*time.Second)
	t.Logf("playing again %v after the agent was started again", time.Since(back).Round(time.Millisecond))
	if s := uiEval[string](b, `document.querySelector("#video").dataset.session`); s != session {
		t.Errorf("the player plays on a new session %q, want the one it kept (%q)", s, session)
	}
}
