package gb28181

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gbsim"
)

// simDevice starts a gbsim device against s; it is stopped with the test.
func simDevice(t *testing.T, s *Server, cfg gbsim.DeviceConfig) *gbsim.Device {
	t.Helper()
	cfg.Server = s.UDPAddr().String()
	if strings.EqualFold(cfg.Transport, "tcp") {
		cfg.Server = s.TCPAddr().String()
	}
	cfg.ServerID, cfg.Domain = testServerID, testDomain
	if cfg.Password == "" {
		cfg.Password = "secret-12345"
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 200 * time.Millisecond
	}
	cfg.RequestTimeout = 2 * time.Second
	cfg.Logger = quietLogger()
	d, err := gbsim.NewDevice(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Start(context.Background())
	t.Cleanup(d.Stop)
	return d
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGbsimNVRsRegisterOverUDPAndTCPAndTheirPagedGBKCatalogsBecomePoints(t *testing.T) {
	w := newCatalogWorld(t, nil)
	if _, err := w.s.CreateRule(Rule{CivilCodePrefix: "440307001", Category: "river", Level: 2}, "admin"); err != nil {
		t.Fatal(err)
	}
	channels := func(dev string) []gbsim.ChannelConfig {
		first := 0
		if dev == "44030700001180000102" {
			first = 100 // channel IDs are unique across devices
		}
		out := gbsim.GenerateChannels(dev, first, 6, true)
		for i := range out {
			out[i].CivilCode = []string{"440307001", "440307001002", "", "340202", "440307002", "440307"}[i]
		}
		return out
	}
	// Hikvision style over UDP: one item per MESSAGE, GB2312. Dahua style over TCP: pages of five,
	// from behind a NAT (its Via and Contact name an address that is not where it sends from).
	hik := simDevice(t, w.s, gbsim.DeviceConfig{ID: "44030700001180000101", Transport: "udp", NVR: true, GBK: true, PageSize: 1,
		Channels: channels("44030700001180000101"), KeepaliveInterval: time.Second})
	dahua := simDevice(t, w.s, gbsim.DeviceConfig{ID: "44030700001180000102", Transport: "tcp", NVR: true, PageSize: 5,
		Manufacturer: "Dahua", Channels: channels("44030700001180000102"), KeepaliveInterval: time.Second,
		Faults: gbsim.Faults{NATAddress: "127.0.0.254:5060"}})
	for _, d := range []*gbsim.Device{hik, dahua} {
		w.waitPoints(t, d.ID(), 6)
	}
	for _, dev := range []string{hik.ID(), dahua.ID()} {
		d, _ := w.s.Devices().Get(dev)
		if !d.Online || d.Flagged != 4 || d.Manufacturer == "" {
			t.Fatalf("device %+v", d)
		}
		chs := channels(dev)
		p0, _ := w.cat.Get(chs[0].ID)
		p1, _ := w.cat.Get(chs[1].ID)
		p2, _ := w.cat.Get(chs[2].ID)
		p3, _ := w.cat.Get(chs[3].ID)
		if p0.Category != "river" || p0.Region != "440307001" || p1.Category != "river" || p1.Region != "440307001002" {
			t.Fatalf("classified channels %+v %+v", p0, p1)
		}
		if p2.Region != "440307" || p3.Region != "440307" || p2.Category != catalog.Unclassified || !slices.Contains(p3.Tags, TagCheckRegion) {
			t.Fatalf("channels without a usable civil code %+v %+v", p2, p3)
		}
		if !slices.Contains(p0.Tags, "gb:parent:"+dev) || p0.Name != chs[0].Name || p0.Main.Device != dev {
			t.Fatalf("channel %+v", p0)
		}
	}
	d, _ := w.s.Devices().Get(dahua.ID())
	if d.Transport != "TCP" || strings.Contains(d.Addr, "127.0.0.254") || !strings.Contains(d.Contact, "127.0.0.254") {
		t.Fatalf("NAT'd device: address %s contact %s (requests must go to where it sends from)", d.Addr, d.Contact)
	}
	// A query to the NAT'd device reaches it at its source address.
	if res, err := w.s.QueryCatalog(context.Background(), dahua.ID()); err != nil || !res.Complete || res.Channels != 6 {
		t.Fatalf("catalog of the NAT'd device: %+v %v", res, err)
	}
}

func TestGbsimWrongPasswordIsRefusedAndASilentDeviceGoesOfflineWithinThreeIntervals(t *testing.T) {
	const interval = 300 * time.Millisecond
	w := newCatalogWorld(t, func(c *Config) { c.KeepaliveInterval = interval })
	var mu sync.Mutex
	offlineAt := map[string]time.Time{}
	w.s.Devices().OnChange(func(ev DeviceEvent) {
		if ev.Kind == DeviceOffline {
			mu.Lock()
			if _, seen := offlineAt[ev.Device.ID]; !seen {
				offlineAt[ev.Device.ID] = time.Now()
			}
			mu.Unlock()
		}
	})
	liar := simDevice(t, w.s, gbsim.DeviceConfig{ID: "44030700001320000201", Faults: gbsim.Faults{WrongPassword: true}})
	steady := simDevice(t, w.s, gbsim.DeviceConfig{ID: "44030700001320000202", KeepaliveInterval: interval})
	silent := simDevice(t, w.s, gbsim.DeviceConfig{ID: "44030700001320000203", Transport: "tcp", KeepaliveInterval: interval,
		Faults: gbsim.Faults{DropKeepalives: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, d := range []*gbsim.Device{steady, silent} {
		if err := d.WaitRegistered(ctx); err != nil {
			t.Fatal(err)
		}
	}
	registeredAt := time.Now()
	waitFor(t, "the wrong password refused", 10*time.Second, func() bool { return liar.Stats().AuthFailures > 0 })
	if _, ok := w.s.Devices().Get(liar.ID()); ok || liar.Registered() {
		t.Fatal("a device with a wrong password registered")
	}
	// Hold for many intervals: the steady device stays online throughout; the silent one goes
	// offline within 3 intervals of its registration (plus the watcher's tick and slack).
	for time.Since(registeredAt) < 25*interval {
		if d, _ := w.s.Devices().Get(steady.ID()); !d.Online {
			t.Fatalf("device with flowing keepalives offline after %v", time.Since(registeredAt))
		}
		time.Sleep(interval / 4)
	}
	mu.Lock()
	at, ok := offlineAt[silent.ID()]
	_, steadyOff := offlineAt[steady.ID()]
	mu.Unlock()
	if !ok {
		t.Fatal("the silent device never went offline")
	}
	if gap := at.Sub(registeredAt); gap > 3*interval+time.Second {
		t.Fatalf("silent device offline %v after registering, want within ~%v", gap, 3*interval)
	}
	if steadyOff {
		t.Fatal("the steady device went offline")
	}
	if st := steady.Stats(); st.Keepalives < 15 {
		t.Fatalf("steady device sent only %d keepalives", st.Keepalives)
	}
}

func TestGbsimCatalogNotifyAndRestartKeepPointsInStep(t *testing.T) {
	w := newCatalogWorld(t, nil)
	chs := gbsim.GenerateChannels("44030700001180000301", 0, 3, true)
	for i := range chs {
		chs[i].CivilCode = "440307001"
	}
	dev := simDevice(t, w.s, gbsim.DeviceConfig{ID: "44030700001180000301", NVR: true, Channels: chs, KeepaliveInterval: time.Second,
		RebootTime: 300 * time.Millisecond})
	w.waitPoints(t, dev.ID(), 3)
	// The server subscribed; the device reports a channel deleted: marked gone, never deleted.
	waitFor(t, "the subscription", 5*time.Second, func() bool {
		w.s.mu.RLock()
		defer w.s.mu.RUnlock()
		sub := w.s.subs[dev.ID()]
		return sub != nil && !sub.failed
	})
	if err := dev.NotifyCatalog(context.Background(), "DEL", chs[2].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted channel marked gone", 5*time.Second, func() bool {
		p, err := w.cat.Get(chs[2].ID)
		return err == nil && slices.Contains(p.Tags, TagGone) && p.Status.State == catalog.StateOffline
	})
	// A restart (new registration) syncs the whole catalog again: the channel is back.
	registered := make(chan struct{}, 4)
	w.s.Devices().OnChange(func(ev DeviceEvent) {
		if ev.Kind == DeviceRegistered && ev.Device.ID == dev.ID() {
			registered <- struct{}{}
		}
	})
	dev.Restart(300 * time.Millisecond)
	select {
	case <-registered:
	case <-time.After(10 * time.Second):
		t.Fatal("the restarted device did not register again")
	}
	waitFor(t, "the channel back after the full catalog", 10*time.Second, func() bool {
		p, err := w.cat.Get(chs[2].ID)
		return err == nil && !slices.Contains(p.Tags, TagGone)
	})
}
