package edge

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/internal/netnstest"
	"github.com/tianyan/vms/onvif"
)

// fleetSize is the figure: one field LAN's worth of cameras.
const fleetSize = 50

// startFleet puts fleetSize cameras on one namespace host, at its address
// and distinct ports, each waiting up to replyDelay before it answers a
// probe (WS-Discovery lets a device wait up to 500 ms).
func startFleet(tb testing.TB, h *netnstest.Host, replyDelay time.Duration) map[string]*camsim.Camera {
	tb.Helper()
	fleet := map[string]*camsim.Camera{}
	for i := range fleetSize {
		cfg := camsim.CameraConfig{Name: fmt.Sprintf("fleet-%02d", i), ProbeReplyDelay: replyDelay}
		cam := startCameraIn(tb, h, cfg)
		fleet[cam.XAddr()] = cam
	}
	return fleet
}

// TestDiscoverCamerasFindsAll50CamerasOnANamespaceLAN: the agent's host
// multicasts once (with the standard repeat) and, within the default 3 s
// window, hears every one of 50 cameras on another host.
// How long it takes is BenchmarkDiscover50CamerasInNamespace's business.
func TestDiscoverCamerasFindsAll50CamerasOnANamespaceLAN(t *testing.T) {
	lan := netnstest.New(t, 2)
	agent, cameras := lan.Hosts[0], lan.Hosts[1]
	// Answering at once is the harder case: a burst of 100 replies.
	fleet := startFleet(t, cameras, 0)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var found []Discovered
	err := agent.Do(func() error {
		var err error
		found, err = DiscoverCameras(ctx, DiscoveryConfig{Interfaces: []string{netnstest.Link}, Timeout: onvif.DefaultDiscoverTimeout}, nil, "", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	seen := map[string]bool{}
	for _, f := range found {
		if fleet[f.XAddr] == nil || f.IP != cameras.IP.String() || seen[f.XAddr] {
			t.Errorf("unexpected or repeated answer %+v", f)
		}
		seen[f.XAddr] = true
	}
	for x, cam := range fleet {
		if !seen[x] {
			missing = append(missing, cam.Name())
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 || len(found) != fleetSize {
		t.Fatalf("found %d of %d cameras; missing %v", len(found), fleetSize, missing)
	}
}

// BenchmarkDiscover50CamerasInNamespace measures, from the first probe,
// how long multicast discovery takes to hear all 50 cameras on a namespace
// LAN. It reports found (the fewest cameras found in any round; 50 when
// none was missed) and the rounds' p50, p95 and max in milliseconds.
//
// "at-once" cameras answer immediately (a burst of 100 replies, the worst
// case for the agent's socket buffer); "within-500ms" ones wait a random
// delay up to the 500 ms WS-Discovery allows, as compliant cameras do.
//
//	go test -run '^$' -bench Discover50 -benchtime 20x ./edge/
func BenchmarkDiscover50CamerasInNamespace(b *testing.B) {
	for _, bc := range []struct {
		name  string
		delay time.Duration
	}{{"at-once", 0}, {"within-500ms", 500 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			lan := netnstest.New(b, 2)
			agent, cameras := lan.Hosts[0], lan.Hosts[1]
			fleet := startFleet(b, cameras, bc.delay)
			minFound := fleetSize
			var rounds []time.Duration
			for b.Loop() {
				n, took, err := discoverFleet(agent, fleet)
				if err != nil {
					b.Fatal(err)
				}
				minFound = min(minFound, n)
				rounds = append(rounds, took)
				// Let stray repeats of this round's replies drain before
				// the next round's socket opens.
				b.StopTimer()
				time.Sleep(100 * time.Millisecond)
				b.StartTimer()
			}
			slices.Sort(rounds)
			pct := func(p int) float64 {
				return float64(rounds[(len(rounds)-1)*p/100].Microseconds()) / 1000
			}
			b.ReportMetric(float64(minFound), "found")
			b.ReportMetric(pct(50), "p50-ms")
			b.ReportMetric(pct(95), "p95-ms")
			b.ReportMetric(pct(100), "max-ms")
			if minFound < fleetSize {
				b.Errorf("a round found only %d of %d cameras", minFound, fleetSize)
			}
		})
	}
}

// discoverFleet runs one discovery from the agent's host and stops it as
// soon as every camera of the fleet has answered, or after the default
// 3 s window. It returns how many answered and how long that took.
func discoverFleet(agent *netnstest.Host, fleet map[string]*camsim.Camera) (int, time.Duration, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	n := 0
	var took time.Duration
	start := time.Now()
	err := agent.Do(func() error {
		_, err := onvif.Discover(ctx, onvif.DiscoverOptions{Interfaces: []string{netnstest.Link}, Timeout: onvif.DefaultDiscoverTimeout,
			OnFound: func(f onvif.Found) {
				if len(f.XAddrs) == 0 || fleet[f.XAddrs[0]] == nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if n++; n == len(fleet) {
					took = time.Since(start)
					cancel()
				}
			}})
		return err
	})
	mu.Lock()
	defer mu.Unlock()
	if n < len(fleet) {
		took = time.Since(start)
	}
	return n, took, err
}
