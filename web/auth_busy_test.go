package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/store"
)

// A login that cannot get an argon2 slot is refused like a throttled one
// (429, Retry-After, login.throttled), and counts as no failure.
func TestLoginWhilePasswordChecksAreSaturatedIsThrottledNotFailed(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// One slot, a short wait, and a hash slow enough (64 MiB, 4 passes) that
	// the slot is certainly still held when the login asks for it.
	acc := accounts.New(db, accounts.Options{HashSlots: 1, HashWait: 20 * time.Millisecond,
		Argon: accounts.Argon2Params{Time: 4, MemoryKiB: 64 << 10, Threads: 1}})
	if _, err := acc.CreateUser(accounts.User{Username: "water"}, "water-pass-123"); err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	th := accounts.NewThrottle(accounts.ThrottleConfig{})
	h := New(Deps{Accounts: acc, Audit: log, Store: db, Throttle: th}).Handler()

	var wg sync.WaitGroup
	defer wg.Wait()
	before := acc.PasswordHashes()
	wg.Go(func() { _, _ = acc.Authenticate("water", "someone-elses-guess") })
	for deadline := time.Now().Add(10 * time.Second); acc.PasswordHashes() == before; time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow check never started")
		}
	}

	req := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login",
		strings.NewReader(`{"username":"water","password":"water-pass-123"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("login with every slot taken: %d (Retry-After %q) %s; want 429 after 1 s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if n := acc.PasswordHashes() - before; n != 1 {
		t.Fatalf("%d argon2 runs, want only the slow one", n)
	}
	recs, _, err := log.Query(audit.Filter{Action: "login.throttled"})
	if err != nil || len(recs) != 1 || recs[0].User != "water" || recs[0].Detail["busy"] != "true" {
		t.Fatalf("login.throttled records %+v, %v", recs, err)
	}
	if fails, _, _ := log.Query(audit.Filter{Action: "login.fail"}); len(fails) != 0 {
		t.Fatalf("a busy refusal was recorded as a failure: %+v", fails)
	}
	if wait, locked := th.Check("water", "192.0.2.1", time.Now()); wait != 0 || locked {
		t.Fatalf("a busy refusal counted against the throttle: wait %v, locked %v", wait, locked)
	}
}
