package accounts

import (
	"encoding/base64"
	"errors"
	"sync"
	"testing"
)

func TestStreamKeyIsCreatedOnFirstCallAndThenStable(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	k1, err := f.a.StreamKey("alice")
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(k1); err != nil || len(raw) != 24 {
		t.Errorf("key %q: %d bytes (%v), want 24 random bytes base64url", k1, len(raw), err)
	}
	k2, err := f.a.StreamKey("alice")
	if err != nil || k2 != k1 {
		t.Fatalf("second StreamKey = %q, %v; want %q", k2, err, k1)
	}
	if !f.a.VerifyStreamKey("alice", k1) {
		t.Error("VerifyStreamKey rejects the issued key")
	}
}

func TestStreamKeyIsNotThePasswordAndDiffersBetweenUsers(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	f.mustCreate(t, "bob", "builder-4242")
	ka, _ := f.a.StreamKey("alice")
	kb, _ := f.a.StreamKey("bob")
	if ka == kb || ka == "wonderland-42" {
		t.Fatalf("keys %q %q", ka, kb)
	}
	if f.a.VerifyStreamKey("alice", kb) || f.a.VerifyStreamKey("alice", "wonderland-42") {
		t.Error("alice verified with bob's key or her password")
	}
}

func TestRotateStreamKeyReplacesTheOldKey(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	old, _ := f.a.StreamKey("alice")
	fresh, err := f.a.RotateStreamKey("alice")
	if err != nil || fresh == old || fresh == "" {
		t.Fatalf("RotateStreamKey = %q, %v", fresh, err)
	}
	if f.a.VerifyStreamKey("alice", old) {
		t.Error("old key still verifies")
	}
	if !f.a.VerifyStreamKey("alice", fresh) {
		t.Error("new key does not verify")
	}
	if got, _ := f.a.StreamKey("alice"); got != fresh {
		t.Errorf("StreamKey = %q after rotation, want %q", got, fresh)
	}
}

func TestVerifyStreamKeyRejectsWrongKeysAndUnknownUsers(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	if f.a.VerifyStreamKey("alice", "") {
		t.Error("empty key verified for a user who has no key yet")
	}
	key, _ := f.a.StreamKey("alice")
	for _, tc := range []struct{ user, key string }{
		{"alice", ""},
		{"alice", key[:len(key)-1]},
		{"alice", key + "x"},
		{"ghost", key},
		{"ghost", ""},
		{"", ""},
	} {
		if f.a.VerifyStreamKey(tc.user, tc.key) {
			t.Errorf("VerifyStreamKey(%q, %q) = true", tc.user, tc.key)
		}
	}
}

func TestStreamKeyOfDisabledUserIsRefused(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	key, _ := f.a.StreamKey("alice")
	f.setDisabled(t, "alice", true)
	if _, err := f.a.StreamKey("alice"); !errors.Is(err, ErrDisabled) {
		t.Errorf("StreamKey err = %v, want ErrDisabled", err)
	}
	if f.a.VerifyStreamKey("alice", key) {
		t.Error("disabled user's key verified")
	}
	if _, err := f.a.RotateStreamKey("alice"); err != nil {
		t.Errorf("admins must still be able to rotate a disabled user's key: %v", err)
	}
}

func TestStreamKeyOfUnknownUserFailsWithErrNotFound(t *testing.T) {
	f := newFixture(t, Options{})
	if _, err := f.a.StreamKey("ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("StreamKey err = %v, want ErrNotFound", err)
	}
	if _, err := f.a.RotateStreamKey("ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RotateStreamKey err = %v, want ErrNotFound", err)
	}
}

func TestConcurrentFirstStreamKeyCallsAgreeOnOneKey(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	const n = 8
	keys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := f.a.StreamKey("alice")
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k != keys[0] {
			t.Fatalf("concurrent StreamKey calls returned different keys: %v", keys)
		}
	}
}
