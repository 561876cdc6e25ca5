package agents_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/store"
)

// TestIdleLinkHoldsOnKeepalivesAloneWithZeroReconnects holds a link with
// nothing to say (no cameras, no viewers, health only once at connect) for
// many keepalive intervals: it must never drop. Each side waits by the
// other's interval, so the link holds however differently the two ends are
// configured, and it fails if either end stops sending: on main the centre
// sent nothing periodic and an idle agent dropped its link every 20 s.
func TestIdleLinkHoldsOnKeepalivesAloneWithZeroReconnects(t *testing.T) {
	for _, tc := range []struct {
		name          string
		centre, agent time.Duration // keepalive intervals
		hold          time.Duration
	}{
		// 12 of the other side's intervals each way; without the centre's
		// keepalives the agent would give up after 1.6 s.
		{"both every 200ms", 200 * time.Millisecond, 200 * time.Millisecond, 2400 * time.Millisecond},
		// Had the centre waited by its own 100 ms (1.3 s), it would cut an
		// agent that speaks every 1.5 s; and the other way round.
		{"slow agent", 100 * time.Millisecond, 1500 * time.Millisecond, 4 * time.Second},
		{"slow centre", 1500 * time.Millisecond, 100 * time.Millisecond, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCentre(t, agents.Options{KeepaliveInterval: tc.centre})
			p := startProxy(t, c.URL)
			a := runAgent(t, c.enroll(p.URL()), tc.agent, time.Hour)
			waitFor(t, 10*time.Second, "link up", func() bool { return a.Online() && c.Reg.Online(a.ID) })

			end := time.Now().Add(tc.hold)
			for time.Now().Before(end) {
				if !a.Online() || !c.Reg.Online(a.ID) {
					t.Fatalf("idle link dropped (agent online %v, centre sees it %v)", a.Online(), c.Reg.Online(a.ID))
				}
				time.Sleep(10 * time.Millisecond)
			}
			if n, up, conns := c.links.Load(), a.linkUp.Load(), p.connections(); n != 1 || up != 1 || conns != 1 {
				t.Fatalf("reconnects: centre accepted %d links, agent brought %d up, %d TCP connections; want 1 each", n, up, conns)
			}
			t.Logf("idle %v: centre every %v (agent waits %v), agent every %v (centre waits %v): 0 reconnects",
				tc.hold, tc.centre, agentlink.ReadDeadline(tc.centre), tc.agent, agentlink.ReadDeadline(tc.agent))
		})
	}
}

// TestCutLinkIsDetectedOnBothSidesAndResumes cuts the link two ways, a
// partition (every byte dropped, both ends still connected: only the
// keepalive deadlines can tell) and closed connections, and measures how
// long each side takes to notice and how long the link takes to come back.
func TestCutLinkIsDetectedOnBothSidesAndResumes(t *testing.T) {
	const interval = 200 * time.Millisecond
	deadline := agentlink.ReadDeadline(interval)
	for _, tc := range []struct {
		name         string
		cut          func(*linkProxy)
		minDetection time.Duration
		maxDetection time.Duration
		silent       bool // each side should say the other fell silent
	}{
		// A side notices when the deadline runs out after the last keepalive
		// that got through: about deadline−interval…deadline after the cut
		// (less if a loaded box sent that keepalive late). A closed
		// connection is noticed at once: half the deadline tells them apart.
		{"partition", (*linkProxy).partition, deadline / 2, deadline + 4*time.Second, true},
		{"connections closed", func(p *linkProxy) { p.partition(); p.cut() }, 0, 3 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var centreLog keptRecords
			c := startCentre(t, agents.Options{KeepaliveInterval: interval,
				Logger: testLoggerKeeping(t, map[string]*atomic.Int64{"agent disconnected": {}}, &centreLog)})
			p := startProxy(t, c.URL)
			a := runAgent(t, c.enroll(p.URL()), interval, time.Hour)
			waitFor(t, 10*time.Second, "link up", func() bool { return a.Online() && c.Reg.Online(a.ID) })
			time.Sleep(3 * interval) // settled into keepalives

			cutAt := time.Now()
			tc.cut(p)
			var agentSaw, centreSaw time.Duration
			waitFor(t, 30*time.Second, "both sides to notice", func() bool {
				if agentSaw == 0 && !a.Online() {
					agentSaw = time.Since(cutAt)
				}
				if centreSaw == 0 && !c.Reg.Online(a.ID) {
					centreSaw = time.Since(cutAt)
				}
				return agentSaw > 0 && centreSaw > 0
			})
			p.heal()
			resume := waitFor(t, 30*time.Second, "link back", func() bool { return a.Online() && c.Reg.Online(a.ID) })
			t.Logf("%s: agent noticed after %v, centre after %v (deadline %v); link back %v after the network",
				tc.name, agentSaw.Round(time.Millisecond), centreSaw.Round(time.Millisecond), deadline, resume.Round(time.Millisecond))

			for side, d := range map[string]time.Duration{"agent": agentSaw, "centre": centreSaw} {
				if d < tc.minDetection || d > tc.maxDetection {
					t.Errorf("%s noticed after %v, want %v…%v", side, d, tc.minDetection, tc.maxDetection)
				}
			}
			if resume > 15*time.Second {
				t.Errorf("link back only after %v", resume)
			}
			if n := c.links.Load(); n != 2 {
				t.Errorf("centre accepted %d links, want 2 (the first and one after the cut)", n)
			}
			// Each side says why: silence only when it was silence.
			for side, lines := range map[string][]string{"centre": centreLog.all(), "agent": a.kept.all()} {
				var down []string
				for _, l := range lines {
					if strings.HasPrefix(l, "agent disconnected") || strings.HasPrefix(l, "control link down") {
						down = append(down, l)
					}
				}
				if len(down) != 1 || strings.Contains(down[0], "silent for") != tc.silent {
					t.Errorf("%s logged %q; want one drop, silence %v", side, down, tc.silent)
				}
			}
		})
	}
}

// boundPoint wires a registry to one point, p1, bound to the agent whose ID
// is set later, with its camera at camAddr.
func boundPoint(opts *agents.Options, agentID *atomic.Value, camAddr string, log *stateLog) {
	id := func() string { s, _ := agentID.Load().(string); return s }
	opts.PointsOf = func(a string) []string {
		if a != "" && a == id() {
			return []string{"p1"}
		}
		return nil
	}
	opts.Binding = func(p string) (agents.Binding, bool) {
		if p != "p1" || id() == "" {
			return agents.Binding{}, false
		}
		return agents.Binding{Agent: id(), Camera: "cam-1", Main: "rtsp://" + camAddr + "/main"}, true
	}
	opts.OnPointHealth, opts.OnPointsState = log.health, log.states
}

// TestLinkBlipLeavesPointsStaleAndAnAbsentAgentIsNotACameraOffline: a link
// that drops and comes back within the health window turns its points
// stale, never offline, and the agent's next report puts them back; an
// agent gone for longer than the window leaves them agent_offline, still
// never offline: nothing is known of the cameras.
func TestLinkBlipLeavesPointsStaleAndAnAbsentAgentIsNotACameraOffline(t *testing.T) {
	const window = 4 * time.Second
	camAddr, _ := cameraPort(t)
	var states stateLog
	var agentID atomic.Value
	opts := agents.Options{KeepaliveInterval: 200 * time.Millisecond, HealthWindow: window}
	boundPoint(&opts, &agentID, camAddr, &states)
	c := startCentre(t, opts)
	p := startProxy(t, c.URL)
	creds := c.enroll(p.URL())
	agentID.Store(creds.AgentID)
	a := runAgent(t, creds, 200*time.Millisecond, 300*time.Millisecond)
	waitFor(t, 10*time.Second, "p1 online from the agent's report", func() bool { return states.last() == "p1=online" })

	// A blip: the connections drop, the agent is back within a second.
	p.cut()
	waitFor(t, 5*time.Second, "p1 stale", func() bool { return states.seen("p1=stale") })
	back := waitFor(t, window, "p1 online again", func() bool { return states.last() == "p1=online" && c.Reg.Online(a.ID) })
	t.Logf("blip: %s (back in %v)", &states, back.Round(time.Millisecond))
	if states.seen("p1=offline") || states.seen("p1=agent_offline") {
		t.Fatalf("a blip shorter than the health window flipped the point: %s", &states)
	}

	// The agent goes away for good.
	a.stop()
	goneAt := time.Now()
	waitFor(t, 5*time.Second, "p1 stale after the agent left", func() bool { return states.last() == "p1=stale" })
	waitFor(t, window+5*time.Second, "p1 agent_offline", func() bool { return states.last() == "p1=agent_offline" })
	after := time.Since(goneAt)
	t.Logf("agent gone: %s (agent_offline after %v, window %v)", &states, after.Round(time.Millisecond), window)
	if after < window {
		t.Errorf("agent_offline after %v, before the %v window ran out", after, window)
	}
	if states.seen("p1=offline") {
		t.Fatalf("an absent agent's point was called offline: %s", &states)
	}
}

// TestCentreStartTreatsEveryAgentAsJustGone: the status the catalog kept
// from before a restart is old news. On start an enrolled agent's points are
// stale until it reports (and agent_offline if it never comes back); a
// revoked agent's are agent_offline at once.
func TestCentreStartTreatsEveryAgentAsJustGone(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first := agents.New(db, agents.Options{Logger: testLogger(t, nil)})
	enroll := func() string {
		a, code, _, err := first.Create("LAN", "", "admin")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := first.Enroll(code, "host"); err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	live, revoked := enroll(), enroll()
	if err := first.Revoke(revoked); err != nil {
		t.Fatal(err)
	}
	first.Close()

	var states stateLog
	const window = 300 * time.Millisecond
	second := agents.New(db, agents.Options{Logger: testLogger(t, nil), HealthWindow: window,
		PointsOf:      func(a string) []string { return map[string][]string{live: {"live-1"}, revoked: {"gone-1"}}[a] },
		OnPointsState: states.states})
	defer second.Close()
	if !states.seen("live-1=stale") || !states.seen("gone-1=agent_offline") || states.seen("live-1=agent_offline") {
		t.Fatalf("on start: %s", &states)
	}
	waitFor(t, 10*time.Second, "live-1 agent_offline after the window", func() bool { return states.seen("live-1=agent_offline") })
	t.Logf("%s", &states)
}
