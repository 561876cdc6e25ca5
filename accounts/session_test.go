package accounts

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/tianyan/vms/store"
)

func TestLoginReturnsATokenThatResolvesToTheUser(t *testing.T) {
	f := newFixture(t, Options{SessionTTL: time.Hour})
	f.mustCreate(t, "alice", "wonderland-42", "viewer")
	token, expires, u, err := f.a.Login("alice", "wonderland-42")
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(token); err != nil || len(raw) != 32 {
		t.Errorf("token %d bytes (%v), want 32 random bytes base64url", len(raw), err)
	}
	if !expires.Equal(f.clock.now().Add(time.Hour)) {
		t.Errorf("expires = %v, want now+1h", expires)
	}
	if u.Username != "alice" {
		t.Errorf("Login user = %+v", u)
	}
	got, err := f.a.SessionUser(token)
	if err != nil || got.Username != "alice" {
		t.Fatalf("SessionUser = %+v, %v", got, err)
	}
}

func TestTwoLoginsGetDistinctTokens(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	t1, _, _, _ := f.a.Login("alice", "wonderland-42")
	t2, _, _, _ := f.a.Login("alice", "wonderland-42")
	if t1 == "" || t1 == t2 {
		t.Fatalf("tokens %q and %q", t1, t2)
	}
}

func TestSessionsAreStoredOnlyAsTokenHashes(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	token, _, _, err := f.a.Login("alice", "wonderland-42")
	if err != nil {
		t.Fatal(err)
	}
	keys, raw := f.rawBucket(t, store.BucketSessions)
	sum := sha256.Sum256([]byte(token))
	if len(keys) != 1 || keys[0] != hex.EncodeToString(sum[:]) {
		t.Errorf("session keys = %v, want [sha256(token) hex]", keys)
	}
	if bytes.Contains(raw, []byte(token)) {
		t.Error("raw token stored in the sessions bucket")
	}
}

func TestDefaultSessionTTLIsTwelveHours(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	_, expires, _, err := f.a.Login("alice", "wonderland-42")
	if err != nil {
		t.Fatal(err)
	}
	if got := expires.Sub(f.clock.now()); got != 12*time.Hour {
		t.Errorf("TTL = %v, want 12h", got)
	}
}

func TestSessionUserWithUnknownTokenFails(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tok := range []string{"", "not-a-token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := f.a.SessionUser(tok); !errors.Is(err, ErrNoSession) {
			t.Errorf("SessionUser(%q) err = %v, want ErrNoSession", tok, err)
		}
	}
}

func TestExpiredSessionFailsAndIsDeleted(t *testing.T) {
	f := newFixture(t, Options{SessionTTL: time.Minute})
	f.mustCreate(t, "alice", "wonderland-42")
	token, _, _, err := f.a.Login("alice", "wonderland-42")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.advance(59 * time.Second)
	if _, err := f.a.SessionUser(token); err != nil {
		t.Fatalf("session expired early: %v", err)
	}
	f.clock.advance(time.Second)
	if _, err := f.a.SessionUser(token); !errors.Is(err, ErrNoSession) {
		t.Fatalf("err = %v, want ErrNoSession at expiry", err)
	}
	if keys, _ := f.rawBucket(t, store.BucketSessions); len(keys) != 0 {
		t.Errorf("expired session not deleted: %v", keys)
	}
}

func TestLoginPurgesOtherExpiredSessions(t *testing.T) {
	f := newFixture(t, Options{SessionTTL: time.Minute})
	f.mustCreate(t, "alice", "wonderland-42")
	for range 3 {
		if _, _, _, err := f.a.Login("alice", "wonderland-42"); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.advance(2 * time.Minute)
	token, _, _, err := f.a.Login("alice", "wonderland-42")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := f.rawBucket(t, store.BucketSessions)
	if len(keys) != 1 {
		t.Errorf("%d sessions stored, want only the fresh one", len(keys))
	}
	if _, err := f.a.SessionUser(token); err != nil {
		t.Errorf("fresh session invalid: %v", err)
	}
}

func TestSessionOfDisabledUserFailsAndStaysDeadAfterReenabling(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	token, _, _, err := f.a.Login("alice", "wonderland-42")
	if err != nil {
		t.Fatal(err)
	}
	f.setDisabled(t, "alice", true)
	if _, err := f.a.SessionUser(token); !errors.Is(err, ErrNoSession) {
		t.Fatalf("err = %v, want ErrNoSession for disabled user", err)
	}
	f.setDisabled(t, "alice", false)
	if _, err := f.a.SessionUser(token); !errors.Is(err, ErrNoSession) {
		t.Fatalf("err = %v, want session to stay revoked", err)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	token, _, _, err := f.a.Login("alice", "wonderland-42")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.a.Logout(token); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.SessionUser(token); !errors.Is(err, ErrNoSession) {
		t.Fatalf("err = %v, want ErrNoSession after logout", err)
	}
}

func TestLogoutOfUnknownTokenSucceeds(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tok := range []string{"", "never-issued"} {
		if err := f.a.Logout(tok); err != nil {
			t.Errorf("Logout(%q) = %v", tok, err)
		}
	}
}

func TestSessionsSurviveReopeningTheStore(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := New(db, Options{Argon: cheap})
	if _, err := a.CreateUser(User{Username: "alice"}, "wonderland-42"); err != nil {
		t.Fatal(err)
	}
	token, _, _, err := a.Login("alice", "wonderland-42")
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if u, err := New(db, Options{Argon: cheap}).SessionUser(token); err != nil || u.Username != "alice" {
		t.Fatalf("SessionUser after reopen = %+v, %v", u, err)
	}
}

func TestListSessionsShowsLiveSessionsByShortIDWithoutTokens(t *testing.T) {
	f := newFixture(t, Options{SessionTTL: time.Hour})
	f.mustCreate(t, "alice", "wonderland-42")
	f.mustCreate(t, "bob", "builder-4242")
	t1 := f.login(t, "alice", "wonderland-42")
	f.clock.advance(time.Minute)
	t2 := f.login(t, "alice", "wonderland-42")
	f.login(t, "bob", "builder-4242")
	sessions, err := f.a.ListSessions("alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 2 {
		t.Fatalf("sessions = %+v, want alice's two", sessions)
	}
	for i, tok := range []string{t1, t2} {
		s := sessions[i]
		if want := string(sessionKey(tok)[:8]); s.ID != want {
			t.Errorf("session %d ID = %q, want first 8 hex of sha256(token) %q", i, s.ID, want)
		}
		if !s.Expires.Equal(s.Created.Add(time.Hour)) {
			t.Errorf("session %d created %v expires %v", i, s.Created, s.Expires)
		}
	}
	if !sessions[0].Created.Before(sessions[1].Created) {
		t.Error("sessions not oldest first")
	}
	f.clock.advance(59*time.Minute + time.Second)
	if sessions, _ := f.a.ListSessions("alice"); len(sessions) != 1 || sessions[0].ID != string(sessionKey(t2)[:8]) {
		t.Errorf("after the first expired: %+v", sessions)
	}
	if _, err := f.a.ListSessions("ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
}

func TestRevokeSessionEndsOnlyThatSessionOfThatUser(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	f.mustCreate(t, "bob", "builder-4242")
	t1 := f.login(t, "alice", "wonderland-42")
	t2 := f.login(t, "alice", "wonderland-42")
	bob := f.login(t, "bob", "builder-4242")
	bobID := string(sessionKey(bob)[:8])
	if err := f.a.RevokeSession("alice", bobID); !errors.Is(err, ErrNoSession) {
		t.Errorf("alice revoking bob's session: err = %v, want ErrNoSession", err)
	}
	for _, id := range []string{"", "zzzzzzzz", "0123", string(sessionKey(t1))} {
		if err := f.a.RevokeSession("alice", id); !errors.Is(err, ErrNoSession) {
			t.Errorf("RevokeSession(%q) err = %v, want ErrNoSession", id, err)
		}
	}
	if err := f.a.RevokeSession("alice", string(sessionKey(t1)[:8])); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Resolve(t1); !errors.Is(err, ErrNoSession) {
		t.Errorf("revoked session works: %v", err)
	}
	for _, tok := range []string{t2, bob} {
		if _, err := f.a.Resolve(tok); err != nil {
			t.Errorf("other session ended: %v", err)
		}
	}
}

func TestRevokeAllSessionsEndsEverySessionOfTheUserAndCountsThem(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	f.mustCreate(t, "bob", "builder-4242")
	for range 3 {
		f.login(t, "alice", "wonderland-42")
	}
	bob := f.login(t, "bob", "builder-4242")
	token, _ := f.mustToken(t, "alice")
	n, err := f.a.RevokeAllSessions("alice")
	if err != nil || n != 3 {
		t.Fatalf("RevokeAllSessions = %d, %v; want 3", n, err)
	}
	if s, _ := f.a.ListSessions("alice"); len(s) != 0 {
		t.Errorf("sessions left: %+v", s)
	}
	if _, err := f.a.Resolve(bob); err != nil {
		t.Errorf("bob's session ended: %v", err)
	}
	if _, err := f.a.Resolve(token); err != nil {
		t.Errorf("API tokens are not sessions, yet: %v", err)
	}
	if _, err := f.a.RevokeAllSessions("ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
}
