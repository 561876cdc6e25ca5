package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianyan/vms/whepclient"
)

// churnPoint is a point the churn plays, and whether an agent relays it.
type churnPoint struct {
	id    string
	agent bool
}

// churnResult is how one viewer session went.
type churnResult struct {
	err    error  // nil: it got a keyframe and frames
	stage  string // where it failed: connect, keyframe, frames
	frames uint64
}

// viewerSession opens one WHEP session on point/profile, waits for its
// first keyframe, holds it for hold and closes it: with a DELETE when
// polite, or by just closing the peer connection (a tab killed) otherwise.
func viewerSession(admin *api, p churnPoint, profile string, hold time.Duration, polite bool) churnResult {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := whepclient.Options{Interfaces: []string{"lo"}}
	var c *whepclient.Client
	var err error
	if polite {
		c, err = whepclient.ConnectHTTP(ctx, admin.whepURL(p.id, profile), admin.token, opts)
	} else {
		c, err = whepclient.Connect(ctx, whepclient.HTTPExchange(admin.whepURL(p.id, profile), admin.token, &http.Client{Timeout: 20 * time.Second}), opts)
	}
	if err != nil {
		return churnResult{err: err, stage: "connect"}
	}
	defer c.Close()
	if err := c.WaitKeyframe(ctx); err != nil {
		return churnResult{err: err, stage: "keyframe"}
	}
	time.Sleep(hold)
	st := c.Stats()
	if st.Frames < 2 {
		return churnResult{err: fmt.Errorf("%d frames in %v", st.Frames, hold), stage: "frames", frames: st.Frames}
	}
	return churnResult{frames: st.Frames}
}

// serverLoad is what the churn must give back.
type serverLoad struct {
	goroutines int
	rssKiB     int
}

func (l serverLoad) String() string {
	return fmt.Sprintf("%d goroutines, RSS %.1f MiB", l.goroutines, float64(l.rssKiB)/1024)
}

// TestWHEPChurnLeavesNoGoroutinesMemoryOrRelaysBehind: for 60 s, 200 WHEP
// viewers open and close concurrently on points the vms process pulls
// itself and on points an edge-agent process relays, main and sub
// profiles, some closing politely (DELETE) and some just vanishing. At
// least 90% must play. Afterwards, past the idle grace, the server's
// goroutines and RSS are back within 10% of where they were after a
// warm-up round, no stream is left running and the agent relays nothing.
//
// The vms child is an ordinary (not race) build. GODEBUG=madvdontneed=1
// would change nothing: it is the default on Linux since Go 1.16. What does
// blur RSS is the free memory the runtime keeps resident for reuse, up to
// its heap goal (GOGC=100: twice the live heap); on a server of ~35 MiB
// that alone swings RSS by ±7% between two quiet moments, so the child
// runs with GOGC=50, which halves that allowance. Both measurements follow
// a collection brought forward through the profiler (see settled). The
// live heap after each collection is compared too: it tells a leak apart
// from memory the runtime merely holds.
func TestWHEPChurnLeavesNoGoroutinesMemoryOrRelaysBehind(t *testing.T) {
	const (
		sessions = 200
		churnFor = 60 * time.Second
		grace    = 2 * time.Second
		// settle lets the last closes and timers finish before a measurement.
		settle = 3 * time.Second
		// warmup is how many viewers play at once before the baseline: about
		// as many as overlap during the churn.
		warmup = 15
	)
	pprofPort := freeTCPPort(t)
	v := startVMS(t, vmsOptions{IdleGrace: grace, Env: []string{fmt.Sprintf("VMS_PPROF_ADDR=127.0.0.1:%d", pprofPort), "GOGC=50"}})
	admin := login(t, v, "admin", adminPassword)
	ea := startAgent(t, admin, "Churn LAN")
	var points []churnPoint
	for i := range 5 {
		cam := startCamera(t, "127.0.0.1:0")
		p := churnPoint{id: fmt.Sprintf("churn-%d", i), agent: i >= 3}
		agentID := ""
		if p.agent {
			agentID = ea.ID
		}
		createPoint(admin, p.id, agentID, cam)
		points = append(points, p)
	}

	// idle reports whether nothing runs without viewers: every stream idle
	// and the agent relaying nothing.
	idle := func() bool {
		if len(admin.agent(ea.ID).Relays) != 0 {
			return false
		}
		for _, p := range points {
			for _, profile := range []string{"main", "sub"} {
				if admin.stats(p.id, profile).State != "idle" {
					return false
				}
			}
		}
		return true
	}
	// quiet waits for the last WebRTC session to end (a vanished viewer
	// ends with its DTLS close, or at worst ICE's failure timeout), then for
	// every stream and relay to stop within the idle grace (plus slack for
	// the agent's link and a busy machine).
	quiet := func(when string) time.Duration {
		began := time.Now()
		waitFor(t, 30*time.Second, "every WebRTC session to end "+when, func() bool { return admin.metric("tianyan_webrtc_sessions") == 0 })
		waitFor(t, grace+5*time.Second, "every stream idle and no relay "+when, idle)
		return time.Since(began)
	}
	measure := func() serverLoad {
		return serverLoad{goroutines: int(admin.metric("go_goroutines")), rssKiB: v.rssKiB()}
	}
	// settled measures a quiet server. An idle Go heap is collected only by
	// the runtime's periodic GC (every 2 minutes) and freed pages go back to
	// the OS at the scavenger's pace, so a single reading says more about
	// when those last ran than about what the server holds. settled brings
	// the collection forward through the profiler (the operator's
	// VMS_PPROF_ADDR; nothing in the server changes), then reads RSS each
	// second until it stops falling, and returns that with the live heap
	// the collection left.
	settled := func() (serverLoad, uint64) {
		heap := liveHeap(t, pprofPort)
		time.Sleep(settle)
		m := measure()
		for range 20 {
			time.Sleep(time.Second)
			next := measure()
			if next.rssKiB >= m.rssKiB-256 {
				return next, heap
			}
			m = next
		}
		return m, heap
	}

	// Warm-up: as many viewers at once as the churn will have, on every
	// point and profile, so that the code, pools and memory the churn needs
	// are in place before the baseline: what the comparison then sees is
	// what 200 sessions leave behind, not what the first ten set up.
	var wg sync.WaitGroup
	for i := range warmup {
		p, profile := points[i%len(points)], []string{"main", "sub"}[i/len(points)%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := viewerSession(admin, p, profile, 3*time.Second, i%5 != 0); r.err != nil {
				t.Errorf("warm-up %s/%s: %s: %v", p.id, profile, r.stage, r.err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	quiet("after the warm-up")
	start, startHeap := settled()
	peak, peakRelays := start, 0

	// The churn: one session starts every 300 ms and holds 1.5–4.5 s, so
	// about ten overlap; a few more may overlap when starts are slow.
	rng := rand.New(rand.NewPCG(2019, 200))
	results := make([]churnResult, sessions)
	began := time.Now()
	for i := range sessions {
		p := points[i%len(points)]
		profile := "sub"
		if i%4 == 0 {
			profile = "main"
		}
		hold := 1500*time.Millisecond + time.Duration(rng.Int64N(int64(3*time.Second)))
		polite := i%5 != 0
		if at := began.Add(time.Duration(i) * churnFor / sessions); time.Until(at) > 0 {
			time.Sleep(time.Until(at))
		}
		if i%10 == 5 {
			m := measure()
			peak.goroutines, peak.rssKiB = max(peak.goroutines, m.goroutines), max(peak.rssKiB, m.rssKiB)
			peakRelays = max(peakRelays, len(admin.agent(ea.ID).Relays))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = viewerSession(admin, p, profile, hold, polite)
		}()
	}
	wg.Wait()
	churned := time.Since(began)

	ok, byStage := 0, map[string]int{}
	var examples []string
	for _, r := range results {
		if r.err == nil {
			ok++
			continue
		}
		byStage[r.stage]++
		if len(examples) < 5 {
			examples = append(examples, r.stage+": "+r.err.Error())
		}
	}
	t.Logf("churn: %d of %d sessions played in %v; failures by stage %v %v", ok, sessions, churned.Round(time.Millisecond), byStage, examples)
	if peakRelays == 0 {
		t.Error("the agent never relayed during the churn: its points were not played through it")
	}
	if ok < sessions*9/10 {
		t.Errorf("only %d of %d sessions played, want at least 90%%", ok, sessions)
	}

	quieted := quiet("after the churn")
	unsettled := measure()
	after, afterHeap := settled()
	t.Logf("vms before the churn: %v; peak during it: %v, %d relays; every session, stream and relay ended %v after the last viewer left (%v then); settled after a collection: %v",
		start, peak, peakRelays, quieted.Round(time.Millisecond), unsettled, after)
	t.Logf("vms live heap after GC: %.2f MiB before the churn, %.2f MiB after it", float64(startHeap)/(1<<20), float64(afterHeap)/(1<<20))
	within := func(a, b int) bool { return float64(b) <= float64(a)*1.10 && float64(b) >= float64(a)*0.90 }
	// Live heap with a 256 KiB floor: a few buffers in flight at the
	// collection must not count as a leak on a 4 MiB heap.
	if float64(afterHeap) > float64(startHeap)*1.10+256<<10 {
		t.Errorf("live heap %d → %d bytes after GC: the churn left memory behind", startHeap, afterHeap)
	}
	if !within(start.goroutines, after.goroutines) {
		t.Errorf("goroutines %d → %d: not within 10%%\n%s", start.goroutines, after.goroutines, goroutineSummary(pprofPort))
	}
	if !within(start.rssKiB, after.rssKiB) {
		t.Errorf("RSS %d KiB → %d KiB: not within 10%%", start.rssKiB, after.rssKiB)
	}
	if !idle() {
		t.Error("a stream or relay started again without viewers")
	}
}

// liveHeap is the vms process's HeapAlloc right after a garbage collection,
// as its profiler (VMS_PPROF_ADDR) reports it with ?gc=1.
func liveHeap(t *testing.T, pprofPort int) uint64 {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	res, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1&debug=1", pprofPort))
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				t.Fatalf("heap profile line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatal("no HeapAlloc in the heap profile")
	return 0
}

// goroutineSummary is the head of the vms process's goroutine profile
// (pprof lists the biggest groups first), for a failure report.
func goroutineSummary(pprofPort int) string {
	hc := &http.Client{Timeout: 5 * time.Second}
	res, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", pprofPort))
	if err != nil {
		return "goroutine profile: " + err.Error()
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "goroutine profile: " + err.Error()
	}
	groups := strings.Split(string(raw), "\n\n")
	return strings.Join(groups[:min(len(groups), 8)], "\n\n")
}
