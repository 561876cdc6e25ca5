package accounts

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBearerCredentialStaysValidUntilItsSessionEnds(t *testing.T) {
	f := newFixture(t, Options{SessionTTL: time.Hour})
	f.mustCreate(t, "alice", "wonderland-42")
	s1, s2 := f.login(t, "alice", "wonderland-42"), f.login(t, "alice", "wonderland-42")
	c1, c2 := BearerCredential(s1), BearerCredential(s2)
	if strings.Contains(string(c1), s1) {
		t.Fatal("the credential holds the session token")
	}
	if err := f.a.CheckCredential("alice", c1); err != nil {
		t.Fatalf("live session: %v", err)
	}
	// Someone else's session does not admit alice.
	f.mustCreate(t, "bob", "builder-1234")
	if err := f.a.CheckCredential("bob", c1); !errors.Is(err, ErrNoSession) {
		t.Fatalf("alice's session checked as bob's: %v", err)
	}
	if err := f.a.Logout(s1); err != nil {
		t.Fatal(err)
	}
	if err := f.a.CheckCredential("alice", c1); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after logout: %v, want ErrNoSession", err)
	}
	if err := f.a.CheckCredential("alice", c2); err != nil {
		t.Fatalf("the other session ended with the first: %v", err)
	}
	f.clock.advance(time.Hour)
	if err := f.a.CheckCredential("alice", c2); !errors.Is(err, ErrNoSession) {
		t.Fatalf("expired session: %v, want ErrNoSession", err)
	}
}

func TestBearerCredentialOfATokenEndsWithRevokeAndWithTheUser(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "ci-bot", "password-1", "operator")
	f.mustCreate(t, "keeper", "password-2", "admin")
	tok, info := f.mustToken(t, "ci-bot")
	c := BearerCredential(tok)
	if err := f.a.CheckCredential("ci-bot", c); err != nil {
		t.Fatalf("live token: %v", err)
	}
	disabled := true
	if _, err := f.a.UpdateUser("ci-bot", UserPatch{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if err := f.a.CheckCredential("ci-bot", c); !errors.Is(err, ErrDisabled) {
		t.Fatalf("disabled user: %v, want ErrDisabled", err)
	}
	disabled = false
	if _, err := f.a.UpdateUser("ci-bot", UserPatch{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if err := f.a.RevokeToken("ci-bot", info.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.a.CheckCredential("ci-bot", c); !errors.Is(err, ErrNoToken) {
		t.Fatalf("revoked token: %v, want ErrNoToken", err)
	}
	if err := f.a.DeleteUser("ci-bot"); err != nil {
		t.Fatal(err)
	}
	if err := f.a.CheckCredential("ci-bot", c); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted user: %v, want ErrNotFound", err)
	}
}

func TestRTSPCredentialIsTheStreamKeyOrThePasswordAndEndsWhenItChanges(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "cam-op", "first-password")
	key, err := f.a.StreamKey("cam-op")
	if err != nil {
		t.Fatal(err)
	}
	byKey := f.a.RTSPCredential("cam-op", key, true)
	byDigest := f.a.RTSPCredential("cam-op", "", false)
	byPassword := f.a.RTSPCredential("cam-op", "first-password", true)
	if byKey != byDigest || byKey == byPassword || byKey == "" || byPassword == "" {
		t.Fatalf("basic stream key %q, digest %q, password %q: want key == digest != password", byKey, byDigest, byPassword)
	}
	if strings.Contains(string(byKey), key) {
		t.Fatal("the credential holds the stream key")
	}
	if c := f.a.RTSPCredential("nobody", key, true); c != "" {
		t.Fatalf("unknown user named %q", c)
	}
	for _, c := range []Credential{byKey, byPassword} {
		if err := f.a.CheckCredential("cam-op", c); err != nil {
			t.Fatalf("%q before any change: %v", c, err)
		}
	}

	if _, err := f.a.RotateStreamKey("cam-op"); err != nil {
		t.Fatal(err)
	}
	if err := f.a.CheckCredential("cam-op", byKey); !errors.Is(err, ErrStreamKeyRotated) {
		t.Fatalf("after rotation: %v, want ErrStreamKeyRotated", err)
	}
	if err := f.a.CheckCredential("cam-op", byPassword); err != nil {
		t.Fatalf("rotating the stream key ended a password stream: %v", err)
	}

	if err := f.a.ChangePassword("cam-op", "first-password", "second-password"); err != nil {
		t.Fatal(err)
	}
	if err := f.a.CheckCredential("cam-op", byPassword); !errors.Is(err, ErrPasswordChanged) {
		t.Fatalf("after password change: %v, want ErrPasswordChanged", err)
	}
	if err := f.a.CheckCredential("cam-op", Credential("made-up")); !errors.Is(err, ErrBadCredential) {
		t.Fatalf("made-up credential: %v, want ErrBadCredential", err)
	}
}
