package accounts

import (
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// cheap keeps argon2 fast in tests; production uses DefaultArgon2Params.
var cheap = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

// clock is a settable time source for session expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	a     *Accounts
	db    *store.DB
	clock *clock
}

func newFixture(t *testing.T, opts Options) fixture {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if opts.Argon == (Argon2Params{}) {
		opts.Argon = cheap
	}
	a := New(db, opts)
	c := &clock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}
	a.now = c.now
	// Roles the tests hand out; "admin" is built in.
	for _, r := range []string{"operator", "viewer"} {
		if err := a.CreateRole(Role{Name: r}); err != nil {
			t.Fatalf("CreateRole(%q): %v", r, err)
		}
	}
	return fixture{a: a, db: db, clock: c}
}

func (f fixture) mustCreate(t *testing.T, name, password string, roles ...string) User {
	t.Helper()
	u, err := f.a.CreateUser(User{Username: name, DisplayName: name, Roles: roles}, password)
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

// setDisabled flips the stored Disabled flag directly in bbolt, bypassing
// UpdateUser's side effects, to test what authentication does on its own.
func (f fixture) setDisabled(t *testing.T, name string, disabled bool) {
	t.Helper()
	err := f.db.Update(func(tx *bbolt.Tx) error {
		rec, err := getRecord(tx, name)
		if err != nil {
			return err
		}
		rec.Disabled = disabled
		return store.PutJSON(tx, store.BucketUsers, []byte(name), rec)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rawBucket returns every key and value of bucket concatenated, for leak checks.
func (f fixture) rawBucket(t *testing.T, bucket []byte) (keys []string, all []byte) {
	t.Helper()
	_ = f.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			keys = append(keys, string(k))
			all = append(all, k...)
			all = append(all, v...)
			return nil
		})
	})
	return keys, all
}

func (f fixture) login(t *testing.T, name, password string) string {
	t.Helper()
	token, _, _, err := f.a.Login(name, password)
	if err != nil {
		t.Fatalf("Login(%q): %v", name, err)
	}
	return token
}

func (f fixture) mustToken(t *testing.T, name string) (string, TokenInfo) {
	t.Helper()
	token, info, err := f.a.CreateToken(name, "ci", time.Time{})
	if err != nil {
		t.Fatalf("CreateToken(%q): %v", name, err)
	}
	return token, info
}

func ptr[T any](v T) *T { return &v }
