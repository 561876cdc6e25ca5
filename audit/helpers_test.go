package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/tianyan/vms/store"
)

// clock is a settable time source.
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
	log   *Log
	db    *store.DB
	clock *clock
}

func newFixture(t testing.TB, retention time.Duration) fixture {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	c := &clock{t: time.Date(2025, 3, 1, 8, 0, 0, 123456789, time.UTC)}
	l, err := New(db, Options{Retention: retention, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{log: l, db: db, clock: c}
}

func (f fixture) mustAppend(t testing.TB, r Record) Record {
	t.Helper()
	got, err := f.log.Append(r)
	if err != nil {
		t.Fatalf("Append(%+v): %v", r, err)
	}
	return got
}

// appendN appends n records one second apart, cycling users and actions.
func (f fixture) appendN(t testing.TB, n int) []Record {
	t.Helper()
	users := []string{"alice", "bob", "carol"}
	actions := []string{"login.ok", "view.start", "view.stop", "ptz"}
	var out []Record
	for i := range n {
		out = append(out, f.mustAppend(t, Record{User: users[i%len(users)], Action: actions[i%len(actions)], Point: "cam1"}))
		f.clock.advance(time.Second)
	}
	return out
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
