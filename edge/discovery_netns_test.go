package edge

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/internal/netnstest"
)

// TestDiscoverCamerasFindsCamerasOnANamespaceLAN puts the agent and two
// cameras on their own hosts of a namespace LAN (veth links named tyc0, a
// 224.0.0.0/4 route in each) and finds exactly those two, at their own
// addresses: by multicast on a named interface, by multicast pinned to the
// agent's address, and by a unicast sweep alone. Nothing else can answer on
// such a LAN, so the count is exact.
func TestDiscoverCamerasFindsCamerasOnANamespaceLAN(t *testing.T) {
	lan := netnstest.New(t, 3)
	agent := lan.Hosts[0]
	want := map[string]*camsim.Camera{} // by IP
	for i, h := range lan.Hosts[1:] {
		cfg := camConfig("ns-cam")
		cfg.Model = []string{"NS-A", "NS-B"}[i]
		cfg.ProbeReplyDelay = 50 * time.Millisecond
		want[h.IP.String()] = startCameraIn(t, h, cfg)
	}

	for _, tc := range []struct {
		name string
		d    DiscoveryConfig
	}{
		{"multicast on the LAN interface", DiscoveryConfig{Interfaces: []string{netnstest.Link}, Timeout: 500 * time.Millisecond}},
		{"multicast pinned to the agent's address", DiscoveryConfig{MulticastIP: agent.IP.String(), Timeout: 500 * time.Millisecond}},
		// Multicast on lo reaches no camera here: only the sweep can find them.
		{"unicast sweep", DiscoveryConfig{Interfaces: []string{"lo"}, CIDRs: []string{"10.231.1.2/31"}, Timeout: 300 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var found []Discovered
			// Discovery opens its sockets on the calling goroutine, so
			// running it inside the namespace probes the namespace's LAN.
			err := agent.Do(func() error {
				var err error
				found, err = DiscoverCameras(ctx, tc.d, nil, "", "")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != len(want) {
				t.Fatalf("found %d cameras, want %d: %+v", len(found), len(want), found)
			}
			for _, f := range found {
				cam := want[f.IP]
				if cam == nil {
					t.Fatalf("a camera answered from %s, where none runs: %+v", f.IP, f)
				}
				if f.XAddr != cam.XAddr() || f.Model != map[string]string{"10.231.1.2": "NS-A", "10.231.1.3": "NS-B"}[f.IP] || f.Error != "" {
					t.Errorf("camera at %s: %+v, want xaddr %s", f.IP, f, cam.XAddr())
				}
			}
		})
	}

	t.Run("rediscovery into the camera book", func(t *testing.T) {
		book := NewCameraBook(t.TempDir(), testLogger(t))
		book.SetDiscovery(DiscoveryConfig{Interfaces: []string{netnstest.Link}, Timeout: 500 * time.Millisecond})
		var ids [2][]string
		for i := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := agent.Do(func() error { return book.Rediscover(ctx) })
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range book.List() {
				ids[i] = append(ids[i], c.ID)
				if cam := want[c.IP]; cam == nil || c.ID != CameraID(cam.Endpoint(), "") || c.XAddr != cam.XAddr() {
					t.Errorf("book entry %+v matches no camera", c)
				}
			}
		}
		// The same cameras keep their IDs: a second round adds nothing.
		if len(ids[0]) != 2 || !slices.Equal(ids[0], ids[1]) {
			t.Errorf("IDs after two rediscoveries: %v then %v", ids[0], ids[1])
		}
	})
}
