package gb28181

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/store"
)

// register sends REGISTER (expires seconds), answers the challenge with password and returns the
// first and the final response.
func (d *sipDevice) register(password string, expires int) (first, final *sip.Response) {
	d.t.Helper()
	exp := sip.ExpiresHeader(uint32(expires))
	req := d.request(sip.REGISTER, "", nil, &exp, sip.NewHeader("X-GB-Ver", "2.0"))
	first = d.do(req)
	if first.StatusCode != 401 {
		return first, first
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	final, err := d.cli.DoDigestAuth(ctx, req, first, sipgo.DigestAuth{Username: d.id, Password: password})
	if err != nil {
		d.t.Fatalf("register with digest: %v", err)
	}
	return first, final
}

func openTestDB(t testing.TB) (*store.DB, *audit.Log) {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	al, err := audit.New(db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db, al
}

func auditActions(t testing.TB, al *audit.Log, action string) []audit.Record {
	t.Helper()
	recs, _, err := al.Query(audit.Filter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestDeviceRegistersWithDigestOverUDPAndTCP(t *testing.T) {
	for _, tp := range []string{"UDP", "TCP"} {
		t.Run(tp, func(t *testing.T) {
			db, al := openTestDB(t)
			s := newTestServer(t, func(c *Config) { c.DB, c.Audit = db, al })
			var events []DeviceEvent
			var mu sync.Mutex
			s.Devices().OnChange(func(ev DeviceEvent) { mu.Lock(); events = append(events, ev); mu.Unlock() })
			d := newSIPDevice(t, s, "34020000001320000011", tp)
			first, final := d.register("secret-12345", 3600)
			if first.StatusCode != 401 {
				t.Fatalf("first REGISTER answered %d, want 401", first.StatusCode)
			}
			if h := first.GetHeader("WWW-Authenticate"); h == nil || !containsAll(h.Value(), `realm="`+testDomain+`"`, "nonce=", "MD5") {
				t.Fatalf("challenge %v", h)
			}
			if final.StatusCode != 200 {
				t.Fatalf("REGISTER with the right password answered %d", final.StatusCode)
			}
			if to := final.To(); to == nil || to.Params == nil || !to.Params.Has("tag") {
				t.Fatalf("final answer without a To tag: %v", to)
			}
			if h := final.GetHeader("Date"); h == nil || len(h.Value()) != len("2006-01-02T15:04:05.000") {
				t.Fatalf("Date header %v (devices set their clock from it)", h)
			}
			dev, ok := s.Devices().Get(d.id)
			if !ok || !dev.Online || dev.Transport != tp || dev.Expires != time.Hour || dev.Version != "2016" {
				t.Fatalf("device %+v", dev)
			}
			if tp == "UDP" && dev.Addr != net.JoinHostPort("127.0.0.1", strconv.Itoa(d.localPort)) {
				t.Fatalf("registered address %s, device port %d", dev.Addr, d.localPort)
			}
			mu.Lock()
			if len(events) != 1 || events[0].Kind != DeviceRegistered {
				t.Fatalf("events %+v", events)
			}
			mu.Unlock()
			if recs := auditActions(t, al, "gb.register"); len(recs) != 1 || recs[0].Detail["device"] != d.id {
				t.Fatalf("audit %+v", recs)
			}
			// A refresh from the same place is no new registration.
			if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
				t.Fatalf("refresh answered %d", final.StatusCode)
			}
			if recs := auditActions(t, al, "gb.register"); len(recs) != 1 {
				t.Fatalf("refresh audited again: %d records", len(recs))
			}
			// The device survives a restart of the server (store), offline until it talks again.
			s.Close()
			s2, err := New(Config{ID: testServerID, Domain: testDomain, Listen: "127.0.0.1:0", DB: db, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if dev, ok := s2.Devices().Get(d.id); !ok || dev.Online || dev.Addr == "" {
				t.Fatalf("reloaded device %+v", dev)
			}
		})
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !contains(s, sub) {
			return false
		}
	}
	return true
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestWrongPasswordIsRefusedAuditedAndThrottled(t *testing.T) {
	db, al := openTestDB(t)
	th := accounts.NewThrottle(accounts.ThrottleConfig{PerUser: accounts.ThrottleLimit{Failures: 3, Window: time.Minute, Lockout: time.Minute}})
	s := newTestServer(t, func(c *Config) { c.DB, c.Audit, c.Throttle = db, al, th })
	d := newSIPDevice(t, s, "34020000001320000012", "UDP")
	first, final := d.register("wrong", 3600)
	if first.StatusCode != 401 || final.StatusCode != 403 {
		t.Fatalf("wrong password: %d then %d, want 401 then 403", first.StatusCode, final.StatusCode)
	}
	if _, ok := s.Devices().Get(d.id); ok {
		t.Fatal("a refused device is in the registry")
	}
	if recs := auditActions(t, al, "gb.register_fail"); len(recs) != 1 || recs[0].Detail["device"] != d.id || recs[0].ClientIP != "127.0.0.1" {
		t.Fatalf("audit %+v", recs)
	}
	// Keep guessing: the throttle refuses before checking, even the right password, until it lifts.
	for i := 0; i < 4; i++ {
		d.register("wrong", 3600)
	}
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 403 {
		t.Fatalf("right password while throttled answered %d", final.StatusCode)
	}
	if recs := auditActions(t, al, "login.locked"); len(recs) != 1 {
		t.Fatalf("lock audited %d times", len(recs))
	}
	// Another device is unaffected.
	other := newSIPDevice(t, s, "34020000001320000013", "TCP")
	if _, final := other.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatalf("other device answered %d", final.StatusCode)
	}
}

// TestWrongAnswersFromElsewhereDoNotLockTheRealDeviceOut: a device's ID
// is printed on its label and in every catalog; whoever knows it must not
// be able to keep the real device from registering by guessing from
// another address.
func TestWrongAnswersFromElsewhereDoNotLockTheRealDeviceOut(t *testing.T) {
	db, al := openTestDB(t)
	th := accounts.NewThrottle(accounts.ThrottleConfig{PerUser: accounts.ThrottleLimit{Failures: 3, Window: time.Minute, Lockout: time.Minute}})
	s := newTestServer(t, func(c *Config) { c.DB, c.Audit, c.Throttle = db, al, th })
	const id = "34020000001320000016"
	attacker := newSIPDeviceAt(t, s, id, "UDP", net.IPv4(127, 0, 0, 9))
	for range 5 {
		attacker.register("guess", 3600)
	}
	if _, final := attacker.register("secret-12345", 3600); final.StatusCode != 403 {
		t.Fatalf("the guessing address, even with the right password, answered %d: want it locked", final.StatusCode)
	}
	real := newSIPDevice(t, s, id, "UDP")
	if _, final := real.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatalf("the real device at its own address answered %d after guesses from elsewhere", final.StatusCode)
	}
}

func TestDeviceOwnPasswordReplacesTheDefault(t *testing.T) {
	db, al := openTestDB(t)
	s := newTestServer(t, func(c *Config) { c.DB, c.Audit = db, al })
	const id = "34020000001320000014"
	pw := "own-pass-1"
	if _, err := s.PrepareDevice(id, DevicePatch{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	d := newSIPDevice(t, s, id, "UDP")
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 403 {
		t.Fatalf("default password for a device with its own answered %d", final.StatusCode)
	}
	if _, final := d.register(pw, 3600); final.StatusCode != 200 {
		t.Fatalf("own password answered %d", final.StatusCode)
	}
	// The password is stored as an HA1, never in clear.
	db.View(func(tx *store.Tx) error {
		raw := tx.Bucket(store.BucketGBDevices).Get([]byte(id))
		if contains(string(raw), pw) {
			t.Errorf("password stored in clear: %s", raw)
		}
		return nil
	})
}

func TestNoPasswordAnywhereRefusesEveryone(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Password = "" })
	d := newSIPDevice(t, s, "34020000001320000015", "UDP")
	if _, final := d.register("", 3600); final.StatusCode != 403 {
		t.Fatalf("empty password answered %d", final.StatusCode)
	}
}

func TestForeignNonceGetsAFreshChallenge(t *testing.T) {
	s := newTestServer(t, nil)
	a := newSIPDevice(t, s, "34020000001320000016", "UDP")
	b := newSIPDevice(t, s, "34020000001320000017", "UDP")
	exp := sip.ExpiresHeader(3600)
	reqA := a.request(sip.REGISTER, "", nil, &exp)
	chalA := a.do(reqA)
	// b answers a's challenge with its own (right) password: the nonce is bound to a.
	reqB := b.request(sip.REGISTER, "", nil, &exp)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := b.cli.DoDigestAuth(ctx, reqB, chalA, sipgo.DigestAuth{Username: b.id, Password: "secret-12345"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 {
		t.Fatalf("borrowed nonce answered %d, want a fresh 401", res.StatusCode)
	}
}

func TestUnregisterTakesTheDeviceOffline(t *testing.T) {
	db, al := openTestDB(t)
	s := newTestServer(t, func(c *Config) { c.DB, c.Audit = db, al })
	d := newSIPDevice(t, s, "34020000001320000018", "TCP")
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	if _, final := d.register("secret-12345", 0); final.StatusCode != 200 {
		t.Fatalf("unregister answered %d", final.StatusCode)
	}
	dev, ok := s.Devices().Get(d.id)
	if !ok || dev.Online {
		t.Fatalf("after unregister %+v", dev)
	}
	if len(auditActions(t, al, "gb.unregister")) != 1 {
		t.Fatal("unregister not audited")
	}
	// A keepalive after unregistering is told to register.
	if res := d.message(keepaliveBody(d.id, 9)); res.StatusCode != 404 {
		t.Fatalf("keepalive after unregister answered %d", res.StatusCode)
	}
}

func TestKeepalivesKeepADeviceOnlineAndSilenceTakesItOfflineWithinThreeIntervals(t *testing.T) {
	for _, tp := range []string{"UDP", "TCP"} {
		t.Run(tp, func(t *testing.T) {
			const interval = 300 * time.Millisecond
			s := newTestServer(t, func(c *Config) { c.KeepaliveInterval = interval })
			offline := make(chan time.Time, 1)
			s.Devices().OnChange(func(ev DeviceEvent) {
				if ev.Kind == DeviceOffline {
					offline <- time.Now()
				}
			})
			d := newSIPDevice(t, s, "34020000001320000019", tp)
			if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
				t.Fatal(final.StatusCode)
			}
			// Many intervals of keepalives: it stays online throughout.
			for i := 0; i < 15; i++ {
				if res := d.message(keepaliveBody(d.id, i+1)); res.StatusCode != 200 {
					t.Fatalf("keepalive %d answered %d", i, res.StatusCode)
				}
				time.Sleep(interval)
				if dev, _ := s.Devices().Get(d.id); !dev.Online {
					t.Fatalf("offline after keepalive %d although keepalives flow", i)
				}
			}
			if dev, _ := s.Devices().Get(d.id); dev.LastKeepalive.IsZero() {
				t.Fatal("last keepalive not recorded")
			}
			// Silence.
			stopped := time.Now()
			select {
			case at := <-offline:
				gap := at.Sub(stopped)
				// 3 intervals from the last keepalive (one interval before we stopped) plus the
				// watcher's tick; generous for a shared box.
				if gap > 3*interval+time.Second {
					t.Fatalf("offline %v after keepalives stopped, want about %v", gap, 3*interval)
				}
				if gap < 3*interval-interval-50*time.Millisecond {
					t.Fatalf("offline after only %v", gap)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("device never went offline")
			}
			// A keepalive brings it back.
			if res := d.message(keepaliveBody(d.id, 99)); res.StatusCode != 200 {
				t.Fatalf("keepalive after offline answered %d", res.StatusCode)
			}
			if dev, _ := s.Devices().Get(d.id); !dev.Online {
				t.Fatal("keepalive did not bring the device back")
			}
		})
	}
}

func TestKeepaliveFromAnotherAddressIsNotBelieved(t *testing.T) {
	s := newTestServer(t, nil)
	d := newSIPDevice(t, s, "34020000001320000020", "UDP")
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	// The same ID over another transport (another connection the device never registered on).
	spoof := newSIPDevice(t, s, d.id, "TCP")
	if res := spoof.message(keepaliveBody(d.id, 1)); res.StatusCode != 404 {
		t.Fatalf("keepalive over another transport answered %d", res.StatusCode)
	}
	if dev, _ := s.Devices().Get(d.id); dev.Transport != "UDP" {
		t.Fatalf("spoofed keepalive moved the device: %+v", dev)
	}
	// An unknown device is told to register.
	u := newSIPDevice(t, s, "34020000001320000021", "UDP")
	if res := u.message(keepaliveBody(u.id, 1)); res.StatusCode != 404 {
		t.Fatalf("unknown device keepalive answered %d", res.StatusCode)
	}
}

func TestRegistrationExpiryTakesTheDeviceOffline(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newTestServer(t, func(c *Config) { c.Now = clock; c.KeepaliveInterval = time.Hour })
	d := newSIPDevice(t, s, "34020000001320000022", "UDP")
	if _, final := d.register("secret-12345", 120); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	s.expireDevices(now.Add(119 * time.Second))
	if dev, _ := s.Devices().Get(d.id); !dev.Online {
		t.Fatal("offline before expiry")
	}
	s.expireDevices(now.Add(121 * time.Second))
	if dev, _ := s.Devices().Get(d.id); dev.Online {
		t.Fatal("online after its registration expired")
	}
}

func TestCapturedRegisterReplayedFromAnotherAddressIsChallengedAfresh(t *testing.T) {
	s := newTestServer(t, nil)
	d := newSIPDevice(t, s, "34020000001320000023", "UDP")
	exp := sip.ExpiresHeader(3600)
	req := d.request(sip.REGISTER, "", nil, &exp)
	chal := d.do(req)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if res, err := d.cli.DoDigestAuth(ctx, req, chal, sipgo.DigestAuth{Username: d.id, Password: "secret-12345"}); err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	authz := req.GetHeader("Authorization").Value()
	// An eavesdropper elsewhere replays the device's REGISTER, Authorization and all.
	attacker := newSIPDeviceAt(t, s, d.id, "UDP", net.IPv4(127, 0, 0, 2))
	replay := attacker.request(sip.REGISTER, "", nil, &exp, sip.NewHeader("Authorization", authz))
	if res := attacker.do(replay); res.StatusCode != 401 {
		t.Fatalf("replayed REGISTER answered %d, want a fresh challenge", res.StatusCode)
	}
	if dev, _ := s.Devices().Get(d.id); hostOf(dev.Addr) != "127.0.0.1" {
		t.Fatalf("the replay moved the device to %s", dev.Addr)
	}
}
