package accounts

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

func TestCreateTokenReturnsAPrefixedRandomTokenThatResolvesToTheUser(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "ci-bot", "password-1", "operator")
	token, info, err := f.a.CreateToken("ci-bot", "nightly export", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(token, "tyk_")
	if b, err := base64.RawURLEncoding.DecodeString(raw); !ok || err != nil || len(b) != 32 {
		t.Fatalf("token %q: want tyk_ + 32 random bytes base64url", token)
	}
	if info.ID != string(sessionKey(token)[:8]) || info.Name != "nightly export" ||
		!info.Created.Equal(f.clock.now()) || !info.Expires.IsZero() || !info.LastUsed.IsZero() {
		t.Errorf("info = %+v", info)
	}
	u, err := f.a.Resolve(token)
	if err != nil || u.Username != "ci-bot" || strings.Join(u.Roles, ",") != "operator" {
		t.Fatalf("Resolve = %+v, %v", u, err)
	}
	if _, err := f.a.SessionUser(token); !errors.Is(err, ErrNoSession) {
		t.Errorf("SessionUser accepted an API token: %v", err)
	}
}

func TestAPITokensAreStoredOnlyAsHashes(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	token, _ := f.mustToken(t, "alice")
	keys, raw := f.rawBucket(t, store.BucketTokens)
	if len(keys) != 1 || keys[0] != string(sessionKey(token)) {
		t.Errorf("token keys = %v, want [sha256(token) hex]", keys)
	}
	if bytes.Contains(raw, []byte(token)) || bytes.Contains(raw, []byte(strings.TrimPrefix(token, "tyk_"))) {
		t.Error("raw token stored")
	}
}

func TestResolveAcceptsLoginSessionsToo(t *testing.T) {
	f := newFixture(t, Options{SessionTTL: time.Minute})
	f.mustCreate(t, "alice", "wonderland-42")
	s := f.login(t, "alice", "wonderland-42")
	if u, err := f.a.Resolve(s); err != nil || u.Username != "alice" {
		t.Fatalf("Resolve(session) = %+v, %v", u, err)
	}
	f.clock.advance(time.Minute)
	if _, err := f.a.Resolve(s); !errors.Is(err, ErrNoSession) {
		t.Fatalf("expired session: err = %v, want ErrNoSession", err)
	}
	if keys, _ := f.rawBucket(t, store.BucketSessions); len(keys) != 0 {
		t.Errorf("expired session not deleted by Resolve: %v", keys)
	}
}

func TestResolveRefusesUnknownAndOversizedTokens(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tok := range []string{"", "tyk_", "tyk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("a", 10000)} {
		if _, err := f.a.Resolve(tok); !errors.Is(err, ErrNoSession) {
			t.Errorf("Resolve(%.20q) err = %v, want ErrNoSession", tok, err)
		}
	}
}

func TestAPITokenStopsWorkingAtItsExpiry(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	token, info, err := f.a.CreateToken("alice", "short-lived", f.clock.now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Expires.Equal(f.clock.now().Add(time.Hour)) {
		t.Errorf("Expires = %v", info.Expires)
	}
	f.clock.advance(time.Hour - time.Second)
	if _, err := f.a.Resolve(token); err != nil {
		t.Fatalf("token expired early: %v", err)
	}
	f.clock.advance(time.Second)
	if _, err := f.a.Resolve(token); !errors.Is(err, ErrNoSession) {
		t.Fatalf("err = %v, want ErrNoSession at expiry", err)
	}
	if list, _ := f.a.ListTokens("alice"); len(list) != 1 {
		t.Errorf("expired token should stay listed until purged: %+v", list)
	}
	f.mustToken(t, "alice") // purges expired tokens
	if list, _ := f.a.ListTokens("alice"); len(list) != 1 || list[0].ID == info.ID {
		t.Errorf("after purge: %+v", list)
	}
}

func TestCreateTokenWithInvalidInputFails(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	for _, tc := range []struct {
		field, name string
		expires     time.Time
	}{
		{"name", "", time.Time{}},
		{"name", "tab\there", time.Time{}},
		{"name", strings.Repeat("n", 65), time.Time{}},
		{"expires", "ci", f.clock.now()},
		{"expires", "ci", f.clock.now().Add(-time.Hour)},
	} {
		var ve *ValidationError
		if _, _, err := f.a.CreateToken("alice", tc.name, tc.expires); !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("CreateToken(%q, %v) err = %v, want ValidationError on %q", tc.name, tc.expires, err, tc.field)
		}
	}
	if _, _, err := f.a.CreateToken("ghost", "ci", time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
	f.mustCreate(t, "mallory", "password-1")
	if _, err := f.a.UpdateUser("mallory", UserPatch{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.a.CreateToken("mallory", "ci", time.Time{}); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled user: err = %v, want ErrDisabled", err)
	}
}

func TestAUserHoldsAtMostMaxTokensPerUserLiveTokens(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	f.mustCreate(t, "bob", "builder-4242")
	ids := map[string]bool{}
	for range MaxTokensPerUser {
		_, info := f.mustToken(t, "alice")
		ids[info.ID] = true
	}
	if len(ids) != MaxTokensPerUser {
		t.Errorf("%d distinct IDs for %d tokens", len(ids), MaxTokensPerUser)
	}
	if _, _, err := f.a.CreateToken("alice", "one too many", time.Time{}); !errors.Is(err, ErrTooManyTokens) {
		t.Fatalf("err = %v, want ErrTooManyTokens", err)
	}
	f.mustToken(t, "bob")
}

func TestListAndRevokeTokensOfOneUser(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	f.mustCreate(t, "bob", "builder-4242")
	t1, i1 := f.mustToken(t, "alice")
	f.clock.advance(time.Second)
	t2, i2 := f.mustToken(t, "alice")
	_, bobInfo := f.mustToken(t, "bob")
	list, err := f.a.ListTokens("alice")
	if err != nil || len(list) != 2 || list[0].ID != i1.ID || list[1].ID != i2.ID {
		t.Fatalf("ListTokens = %+v, %v", list, err)
	}
	if err := f.a.RevokeToken("alice", bobInfo.ID); !errors.Is(err, ErrNoToken) {
		t.Errorf("alice revoking bob's token: err = %v, want ErrNoToken", err)
	}
	if err := f.a.RevokeToken("alice", "nothex!!"); !errors.Is(err, ErrNoToken) {
		t.Errorf("bad id: err = %v, want ErrNoToken", err)
	}
	if err := f.a.RevokeToken("alice", i1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Resolve(t1); !errors.Is(err, ErrNoSession) {
		t.Errorf("revoked token works: %v", err)
	}
	if _, err := f.a.Resolve(t2); err != nil {
		t.Errorf("other token broken: %v", err)
	}
	if _, err := f.a.ListTokens("ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
	if err := f.a.RevokeToken("ghost", i2.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
}

// storedLastUsed reads LastUsed straight from bbolt.
func (f fixture) storedLastUsed(t *testing.T, token string) time.Time {
	t.Helper()
	var rec tokenRecord
	_ = f.db.View(func(tx *bbolt.Tx) error {
		_, err := store.GetJSON(tx, store.BucketTokens, sessionKey(token), &rec)
		return err
	})
	return rec.LastUsed
}

func TestResolveRecordsLastUsedAtMostOnceAMinute(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	token, _ := f.mustToken(t, "alice")
	t0 := f.clock.now()
	if _, err := f.a.Resolve(token); err != nil {
		t.Fatal(err)
	}
	if got := f.storedLastUsed(t, token); !got.Equal(t0) {
		t.Fatalf("LastUsed = %v after first use, want %v", got, t0)
	}
	f.clock.advance(59 * time.Second)
	if _, err := f.a.Resolve(token); err != nil {
		t.Fatal(err)
	}
	if got := f.storedLastUsed(t, token); !got.Equal(t0) {
		t.Fatalf("LastUsed rewritten within a minute: %v", got)
	}
	f.clock.advance(time.Second)
	if _, err := f.a.Resolve(token); err != nil {
		t.Fatal(err)
	}
	if got := f.storedLastUsed(t, token); !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("LastUsed = %v a minute later, want %v", got, t0.Add(time.Minute))
	}
	if list, _ := f.a.ListTokens("alice"); !list[0].LastUsed.Equal(t0.Add(time.Minute)) {
		t.Errorf("ListTokens LastUsed = %v", list[0].LastUsed)
	}
}

func TestConcurrentResolvesOfOneTokenAllSucceed(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	token, _ := f.mustToken(t, "alice")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 20 {
				if i == 0 && j%5 == 0 {
					f.clock.advance(time.Minute)
				}
				if _, err := f.a.Resolve(token); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if f.storedLastUsed(t, token).IsZero() {
		t.Error("LastUsed never recorded")
	}
}

func TestNoPasswordOrTokenEverReachesTheLog(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	f := newFixture(t, Options{})
	secrets := []string{"wonderland-42", "looking-glass-7", "reset-by-admin"}
	f.mustCreate(t, "alice", secrets[0], "viewer")
	f.mustCreate(t, "root", "root-password", RoleAdmin)
	secrets = append(secrets, "root-password")
	s := f.login(t, "alice", secrets[0])
	token, info := f.mustToken(t, "alice")
	secrets = append(secrets, s, token, strings.TrimPrefix(token, "tyk_"))
	_, _ = f.a.Resolve(token)
	_ = f.a.ChangePassword("alice", secrets[0], secrets[1])
	_ = f.a.ChangePassword("alice", "wrong-password", secrets[2])
	_ = f.a.ResetPassword("alice", secrets[2])
	_, _ = f.a.UpdateUser("alice", UserPatch{Disabled: ptr(true)})
	_ = f.a.RevokeToken("alice", info.ID)
	_ = f.a.DeleteUser("alice")
	th := NewThrottle(ThrottleConfig{PerUser: ThrottleLimit{Failures: 1}})
	th.Failure("alice", "192.0.2.1", f.clock.now())

	out := buf.String()
	if !strings.Contains(out, "user deleted") {
		t.Fatalf("log capture did not work: %s", out)
	}
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("log contains secret %q:\n%s", secret, out)
		}
	}
	if hash := string(sessionKey(token)); strings.Contains(out, hash) {
		t.Errorf("log contains a full token hash %s", hash)
	}
}
