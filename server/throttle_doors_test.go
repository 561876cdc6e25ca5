package server

import (
	"fmt"
	"net/http"
	"testing"
)

// enrollFrom tries an enrollment code claiming, through X-Forwarded-For, to come from ip.
func (a *testApp) enrollFrom(ip, code string) int {
	a.t.Helper()
	return a.postJSONFrom(ip, "/api/v1/agents/enroll", `{"code":"`+code+`","hostname":"site-pc"}`)
}

// newEnrollmentCode creates an agent over the admin API and returns its one-time code.
func (a *testApp) newEnrollmentCode(name string) string {
	a.t.Helper()
	res := a.admin(http.MethodPost, "/api/v1/agents", map[string]string{"name": name})
	if res.Status != http.StatusCreated {
		a.t.Fatalf("create agent: %s", res)
	}
	var created struct {
		Code string `json:"enrollment_code"`
	}
	decodeInto(a.t, res, &created)
	return created.Code
}

// The door: "10 bad enrollment codes from 10 addresses lock *every*
// enrollment for 15 minutes (one throttle key for all)".
func TestBadEnrollmentCodesLockOnlyTheAddressesThatSentThem(t *testing.T) {
	cfg := testConfig(t) // the production throttle: 30 failures lock an address
	cfg.TrustedProxies = []string{"127.0.0.1"}
	a := startAppWith(t, cfg)
	code := a.newEnrollmentCode("dam-east")

	for i := range 10 {
		ip := fmt.Sprintf("203.0.113.%d", i+1)
		if st := a.enrollFrom(ip, fmt.Sprintf("bad-code-%d", i)); st != http.StatusUnauthorized {
			t.Fatalf("bad code %d from %s: status %d, want 401", i+1, ip, st)
		}
	}
	if st := a.enrollFrom("198.51.100.7", code); st != http.StatusOK {
		t.Fatalf("a good code from another site after 10 bad ones elsewhere: status %d, want 200", st)
	}
	fails := a.audited("agent.enroll_fail")
	if len(fails) != 10 {
		t.Fatalf("%d agent.enroll_fail records, want 10", len(fails))
	}
	seen := map[string]bool{}
	for _, r := range fails {
		seen[r.ClientIP] = true
	}
	if len(seen) != 10 {
		t.Fatalf("enroll_fail records name %d addresses, want 10: %+v", len(seen), fails)
	}

	// One address spraying codes is locked out; the others are not.
	for i := range 30 {
		if st := a.enrollFrom("192.0.2.66", fmt.Sprintf("spray-%d", i)); st != http.StatusUnauthorized {
			t.Fatalf("spray %d: status %d, want 401", i+1, st)
		}
	}
	second := a.newEnrollmentCode("dam-west")
	if st := a.enrollFrom("192.0.2.66", second); st != http.StatusTooManyRequests {
		t.Fatalf("locked address, good code: status %d, want 429", st)
	}
	if st := a.enrollFrom("203.0.113.1", second); st != http.StatusOK {
		t.Fatalf("an address with one bad code: status %d, want 200", st)
	}
	locks := a.audited("login.locked")
	if len(locks) != 1 || locks[0].ClientIP != "192.0.2.66" || locks[0].Detail["via"] != "enroll" {
		t.Fatalf("login.locked %+v", locks)
	}
	if th := a.audited("agent.enroll_throttled"); len(th) != 1 || th[0].ClientIP != "192.0.2.66" {
		t.Fatalf("agent.enroll_throttled %+v", th)
	}
}

// createTokenFor makes an API token with the user's session and checks it works.
func (a *testApp) createTokenFor(session, name string) string {
	a.t.Helper()
	res := a.do(http.MethodPost, "/api/v1/me/tokens", session, "", map[string]any{"name": name})
	if res.Status != http.StatusCreated {
		a.t.Fatalf("create token: %s", res)
	}
	var tok tokenJSON
	decodeInto(a.t, res, &tok)
	if res := a.do(http.MethodGet, "/api/v1/me", tok.Token, "", nil); res.Status != http.StatusOK {
		a.t.Fatalf("fresh token: %s", res)
	}
	return tok.Token
}

func TestAPITokensEndWithTheirOwnersPasswordChangeAndReset(t *testing.T) {
	a := startApp(t)
	a.createUser("bob", "bob-pass-1234")
	a.createUser("carol", "carol-pass-1234")
	carolToken := a.createTokenFor(a.loginAs("carol", "carol-pass-1234"), "carol-nvr")

	// Bob changes his own password: his token stops at once.
	session := a.loginAs("bob", "bob-pass-1234")
	token := a.createTokenFor(session, "nvr")
	res := a.do(http.MethodPost, "/api/v1/me/password", session, "",
		map[string]string{"old_password": "bob-pass-1234", "new_password": "bob-new-pass-5678"})
	if res.Status != http.StatusOK {
		t.Fatalf("change: %s", res)
	}
	var fresh struct{ Token string }
	decodeInto(t, res, &fresh)
	wantError(t, a.do(http.MethodGet, "/api/v1/me", token, "", nil), http.StatusUnauthorized)
	res = a.do(http.MethodGet, "/api/v1/me/tokens", fresh.Token, "", nil)
	var list struct{ Items []tokenJSON }
	decodeInto(t, res, &list)
	if res.Status != http.StatusOK || len(list.Items) != 0 {
		t.Fatalf("bob's tokens after the change: %s", res)
	}

	// An admin resets it: the token made since stops too.
	token = a.createTokenFor(fresh.Token, "nvr-2")
	if res := a.admin(http.MethodPost, "/api/v1/users/bob/password", map[string]string{"password": "reset-pass-123"}); res.Status != http.StatusNoContent {
		t.Fatalf("reset: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/me", token, "", nil), http.StatusUnauthorized)

	// Nobody else's tokens are touched.
	if res := a.do(http.MethodGet, "/api/v1/me", carolToken, "", nil); res.Status != http.StatusOK {
		t.Fatalf("carol's token after bob's changes: %s", res)
	}
}
