package server

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
)

// throttledApp runs the server with a login throttle whose limits make the
// test deterministic: no backoff to wait out, and a lock after 4 failures.
func throttledApp(t *testing.T, tc accounts.ThrottleConfig) *testApp {
	cfg := testConfig(t)
	cfg.LoginThrottle = tc
	return startAppWith(t, cfg)
}

func loginBody(user, pw string) map[string]string {
	return map[string]string{"username": user, "password": pw}
}

func TestBurstOfWrongPasswordsLocksTheUserAndIsAudited(t *testing.T) {
	a := throttledApp(t, accounts.ThrottleConfig{
		PerUser:   accounts.ThrottleLimit{Failures: 4, Window: time.Hour, Lockout: time.Hour},
		PerIP:     accounts.ThrottleLimit{Failures: 1000, Window: time.Hour, Lockout: time.Hour},
		SlowAfter: 1000, // no backoff: only the lock is under test
	})
	a.createUser("water", "water-pass-123")
	login := func(user, pw string) response {
		return a.do(http.MethodPost, "/api/v1/auth/login", "", "", loginBody(user, pw))
	}

	// The same sequence for a user that exists and one that does not: the
	// answers must not tell them apart.
	type step struct {
		status int
		code   string
	}
	run := func(user string) []step {
		var out []step
		for range 4 {
			out = append(out, step{http.StatusUnauthorized, wantError(t, login(user, "wrong-password"), http.StatusUnauthorized).Code})
		}
		res := login(user, "wrong-password")
		e := wantError(t, res, http.StatusTooManyRequests)
		if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 3500 || ra > 3600 {
			t.Fatalf("%s: Retry-After %q, want about an hour in seconds", user, res.Header.Get("Retry-After"))
		}
		out = append(out, step{res.Status, e.Code})
		return out
	}
	got := run("admin")
	ghost := run("ghost")
	if len(got) != len(ghost) {
		t.Fatalf("sequences differ: %v vs %v", got, ghost)
	}
	for i := range got {
		if got[i] != ghost[i] {
			t.Fatalf("attempt %d: existing user %v, unknown user %v", i+1, got[i], ghost[i])
		}
	}

	// While locked, the right password is refused too.
	e := wantError(t, login("admin", adminPassword), http.StatusTooManyRequests)
	if e.Code != "too_many_attempts" {
		t.Fatalf("locked: code %q", e.Code)
	}
	// Another user from the same address is not affected, nor is a
	// session opened before.
	a.loginAs("water", "water-pass-123")
	if res := a.admin(http.MethodGet, "/api/v1/me", nil); res.Status != http.StatusOK {
		t.Fatalf("existing session after the lock: %s", res)
	}

	fails := a.audited("login.fail")
	locks := a.audited("login.locked")
	throttled := a.audited("login.throttled")
	if len(fails) != 8 || len(locks) != 2 || len(throttled) != 3 {
		t.Fatalf("audit: %d login.fail (want 8), %d login.locked (want 2), %d login.throttled (want 3)", len(fails), len(locks), len(throttled))
	}
	for _, r := range append(locks, throttled...) {
		if r.ClientIP != "127.0.0.1" || (r.User != "admin" && r.User != "ghost") {
			t.Fatalf("record %+v lacks the user or address", r)
		}
	}
	if throttled[0].Detail["locked"] != "true" {
		t.Fatalf("login.throttled detail %v", throttled[0].Detail)
	}
}

func TestRepeatedFailuresSlowLoginsDownBeforeTheLock(t *testing.T) {
	a := throttledApp(t, accounts.ThrottleConfig{
		PerUser:   accounts.ThrottleLimit{Failures: 10, Window: time.Hour, Lockout: time.Hour},
		SlowAfter: 2,
		// An hour's backoff makes "too soon" certain without a clock.
		SlowBase: time.Hour,
		SlowMax:  time.Hour,
	})
	for range 2 {
		wantError(t, a.do(http.MethodPost, "/api/v1/auth/login", "", "", loginBody("admin", "wrong-password")), http.StatusUnauthorized)
	}
	res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", loginBody("admin", adminPassword))
	wantError(t, res, http.StatusTooManyRequests)
	if res.Header.Get("Retry-After") != "3600" {
		t.Fatalf("Retry-After %q, want 3600", res.Header.Get("Retry-After"))
	}
	recs := a.audited("login.throttled")
	if len(recs) != 1 || recs[0].Detail["locked"] != "false" || len(a.audited("login.locked")) != 0 {
		t.Fatalf("slowed, not locked: throttled %+v, locked %d", recs, len(a.audited("login.locked")))
	}
}

// loginFrom tries a login claiming, through X-Forwarded-For, to come from ip.
func (a *testApp) loginFrom(ip, user, pw string) int {
	a.t.Helper()
	return a.postJSONFrom(ip, "/api/v1/auth/login", `{"username":"`+user+`","password":"`+pw+`"}`)
}

// postJSONFrom posts body as JSON to path, claiming through X-Forwarded-For
// to come from ip, and answers the status.
func (a *testApp) postJSONFrom(ip, path, body string) int {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.HTTPURL()+path, stringsReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	res, err := a.http.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestForwardedForIsIgnoredWithoutTrustedProxies(t *testing.T) {
	a := startApp(t)
	if st := a.loginFrom("203.0.113.9", "admin", "wrong-password"); st != http.StatusUnauthorized {
		t.Fatalf("status %d", st)
	}
	recs := a.audited("login.fail")
	if len(recs) != 1 || recs[0].ClientIP != "127.0.0.1" {
		t.Fatalf("a client chose its own address with X-Forwarded-For: %+v", recs)
	}
}

func TestStartRefusesAMalformedTrustedProxy(t *testing.T) {
	cfg := testConfig(t)
	cfg.TrustedProxies = []string{"10.0.0.0/8", "not-an-address"}
	app, err := Start(cfg)
	if err == nil {
		app.Close(t.Context())
		t.Fatal("Start accepted a trusted proxy that is neither an IP nor a CIDR")
	}
}

func TestBehindATrustedProxyEachClientAddressHasItsOwnBudget(t *testing.T) {
	cfg := testConfig(t)
	cfg.TrustedProxies = []string{"127.0.0.1"}
	cfg.LoginThrottle = accounts.ThrottleConfig{
		PerUser:   accounts.ThrottleLimit{Failures: 1000, Window: time.Hour, Lockout: time.Hour},
		PerIP:     accounts.ThrottleLimit{Failures: 3, Window: time.Hour, Lockout: time.Hour},
		SlowAfter: 1000,
	}
	a := startAppWith(t, cfg)
	// A password spray from one address: three users, one guess each.
	for _, u := range []string{"u1", "u2", "u3"} {
		if st := a.loginFrom("203.0.113.9", u, "wrong-password"); st != http.StatusUnauthorized {
			t.Fatalf("spray %s: status %d", u, st)
		}
	}
	if st := a.loginFrom("203.0.113.9", "admin", adminPassword); st != http.StatusTooManyRequests {
		t.Fatalf("locked address, right password: status %d, want 429", st)
	}
	if st := a.loginFrom("198.51.100.7", "admin", adminPassword); st != http.StatusOK {
		t.Fatalf("another address: status %d, want 200", st)
	}
	locks := a.audited("login.locked")
	if len(locks) != 1 || locks[0].ClientIP != "203.0.113.9" || locks[0].User != "u3" {
		t.Fatalf("login.locked %+v", locks)
	}
}
