package gbsim

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestFleetRegistersAndServesEveryCatalog(t *testing.T) {
	s := newTestServer(t)
	s.setAutoCatalog()
	tmpl := baseConfig(s, "udp", "")
	tmpl.KeepaliveInterval = time.Second
	tmpl.NVR, tmpl.PageSize, tmpl.Logger = true, 5, discard()
	f, err := NewFleet(FleetConfig{Template: tmpl, Devices: 40, TotalChannels: 137, StartSpread: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if f.Channels() != 137 {
		t.Fatalf("channels %d", f.Channels())
	}
	seen := map[string]bool{}
	for _, d := range f.Devices {
		if seen[d.ID()] {
			t.Fatalf("duplicate device %s", d.ID())
		}
		seen[d.ID()] = true
		if n := len(d.Channels()); n != 3 && n != 4 {
			t.Fatalf("device with %d channels", n)
		}
		for _, c := range d.Channels() {
			if seen[c.ID] || c.ParentID != d.ID() {
				t.Fatalf("channel %+v", c.ChannelConfig)
			}
			seen[c.ID] = true
		}
	}
	f.Start(context.Background())
	defer f.Stop()
	waitFor(t, "all registered", 20*time.Second, func() bool { return f.Registered() == 40 })
	waitFor(t, "all catalogs", 20*time.Second, func() bool { d, n := s.totalCatalogItems(); return d == 40 && n == 137 })
	f.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.devices) != 0 || len(s.unregister) != 40 {
		t.Fatalf("after Stop: %d registered, %d unregistered", len(s.devices), len(s.unregister))
	}
}

// BenchmarkFleet1000 starts 1,000 NVRs with 13,635 channels in total
// against the minimal sipgo platform of the tests (which queries each
// catalog at registration), and reports how long registration and the
// catalogs take and the CPU the whole process used per second of steady
// keepalives (simulator and test platform together).
func BenchmarkFleet1000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s := newTestServer(b)
		s.setAutoCatalog()
		tmpl := DeviceConfig{Server: s.udp, ServerID: testServerID, Domain: testDomain, Password: testPassword,
			NVR: true, PageSize: 1, KeepaliveInterval: 10 * time.Second, RequestTimeout: 10 * time.Second,
			RetryInterval: 2 * time.Second, Logger: discard()}
		f, err := NewFleet(FleetConfig{Template: tmpl, Devices: 1000, TotalChannels: 13635, StartSpread: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		f.Start(context.Background())
		waitFor(b, "1000 registered", 120*time.Second, func() bool { return f.Registered() == 1000 })
		reg := time.Since(start)
		waitFor(b, "13635 catalog items", 120*time.Second, func() bool { _, n := s.totalCatalogItems(); return n == 13635 })
		synced := time.Since(start)
		cpu0 := cpuTime()
		time.Sleep(10 * time.Second)
		cpu := cpuTime() - cpu0
		b.ReportMetric(reg.Seconds(), "s-registered")
		b.ReportMetric(synced.Seconds(), "s-catalog-synced")
		b.ReportMetric(100*cpu.Seconds()/10, "%cpu-steady")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		f.Stop()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
