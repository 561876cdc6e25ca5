package e2e

import (
	"testing"
	"time"
)

// TestEdgeAgentKilledDuringPlaybackPlaysAgainWithin5sOfRestart: Chromium
// plays a point its edge agent relays, and the agent process is killed
// with SIGKILL twice. Once it is started again (same state directory) as
// soon as the centre has noticed, as a supervisor would; once only after
// the player has given the picture up and said the agent is out of touch
// (never "camera offline": nothing is known of the camera then), as when
// the agent's host takes a while to come back. Both times the browser must be
// decoding new frames within 5 s of the restart.
func TestEdgeAgentKilledDuringPlaybackPlaysAgainWithin5sOfRestart(t *testing.T) {
	// The production idle grace: the relay's lifetime without viewers is
	// what it would be in the field.
	v := startVMS(t, vmsOptions{IdleGrace: 15 * time.Second})
	admin := login(t, v, "admin", adminPassword)
	cam := startCamera(t, "127.0.0.1:0")
	ea := startAgent(t, admin, "Reservoir LAN")
	const point = "res-dam"
	createPoint(admin, point, ea.ID, cam)
	waitFor(t, 15*time.Second, "point online from the agent's health report", func() bool { return admin.pointState(point) == "online" })

	b := startBrowser(t)
	b.openPoint(v.URL(), "admin", adminPassword, point)
	coldStart := waitFor(t, 30*time.Second, "Chromium decoding the relayed camera", func() bool { return b.frames() > 25 })
	t.Logf("cold start through the agent: 25 frames decoded %v after the page opened", coldStart.Round(time.Millisecond))

	for _, outage := range []struct {
		name string
		wait func()
	}{
		{"restart at once", func() {}},
		{"restart after the player said the agent is away", func() {
			waitFor(t, 30*time.Second, "the player to say the agent is away", func() bool { return b.playerState() == "agentOffline" })
			time.Sleep(3 * time.Second)
		}},
	} {
		session := b.session()
		ea.kill9()
		killed := time.Now()
		waitFor(t, 15*time.Second, "the centre to see the agent's link drop", func() bool { return !admin.agent(ea.ID).Online })
		waitFor(t, 10*time.Second, "the stream to lose its publisher", func() bool { return admin.stats(point, "sub").State == "waiting_source" })
		noticed := time.Since(killed)
		outage.wait()
		down := time.Since(killed)

		ea.restart()
		restarted := time.Now()
		f0 := b.frames()
		var recovered time.Duration
		for deadline := restarted.Add(5 * time.Second); ; {
			if b.frames() >= f0+10 {
				recovered = time.Since(restarted)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Chromium not playing 5 s after the agent restarted: frames %d → %d, player %q, stream %+v, agent %+v",
					outage.name, f0, b.frames(), b.playerState(), admin.stats(point, "sub"), admin.agent(ea.ID))
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Recovered means playing on, not a few frames of a dying stream.
		f1 := b.frames()
		waitFor(t, 5*time.Second, "25 more frames after recovery", func() bool { return b.frames() >= f1+25 })
		t.Logf("%s: centre noticed the kill in %v; agent down %v; Chromium playing again %v after the restart (same WHEP session: %v)",
			outage.name, noticed.Round(time.Millisecond), down.Round(time.Millisecond), recovered.Round(time.Millisecond), b.session() == session)
	}
	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %v", errs)
	}
}
