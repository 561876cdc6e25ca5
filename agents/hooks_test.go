package agents

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
	"github.com/tianyan/vms/store/storetest"
)

// The shared test hooks (store/storetest), under this file's short names.
var (
	errRefused = storetest.ErrRefused
	witnessKey = storetest.WitnessKey
	txHook     = storetest.TxHook
)

// agentHook is txHook shown the agent the change made; it checks the agent
// is stored as shown inside the transaction.
func agentHook(fail bool, calls *int) store.ResultHook[Agent] {
	return func(tx *bbolt.Tx, a Agent) error {
		var rec record
		if ok, err := store.GetJSON(tx, store.BucketAgents, []byte(a.ID), &rec); err != nil || !ok || rec.Enrolled != a.Enrolled || rec.Hostname != a.Hostname {
			return errors.New("hook not shown the agent as stored")
		}
		return txHook(fail, calls)(tx)
	}
}

// agentsState is every byte of the agents bucket, and whether a good
// hook's mark committed.
func agentsState(t *testing.T, db *store.DB) (raw []byte, witnessed bool) {
	t.Helper()
	err := db.View(func(tx *bbolt.Tx) error {
		witnessed = tx.Bucket(store.BucketMeta).Get(witnessKey) != nil
		return tx.Bucket(store.BucketAgents).ForEach(func(k, v []byte) error {
			raw = append(append(raw, k...), v...)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw, witnessed
}

func newRegistry(t *testing.T) (*Registry, *store.DB) {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	r := New(db, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(r.Close)
	return r, db
}

// TestEveryAgentChangeCommitsWithItsHookOrNotAtAll: creating, enrolling,
// revoking and deleting an agent commit with their hook (an audit record)
// or not at all: a failing hook leaves the agents as they were, and an
// enrollment code stays unspent.
func TestEveryAgentChangeCommitsWithItsHookOrNotAtAll(t *testing.T) {
	cases := []struct {
		name string
		do   func(r *Registry, enrolledID, code, pendingID string, fail bool, calls *int) error
	}{
		{"create", func(r *Registry, _, _, _ string, fail bool, calls *int) error {
			_, _, _, err := r.Create("mast 7", "", "admin", agentHook(fail, calls))
			return err
		}},
		{"enroll", func(r *Registry, _, code, _ string, fail bool, calls *int) error {
			_, err := r.Enroll(code, "edge-7", agentHook(fail, calls))
			return err
		}},
		{"revoke", func(r *Registry, enrolledID, _, _ string, fail bool, calls *int) error {
			return r.Revoke(enrolledID, txHook(fail, calls))
		}},
		{"delete", func(r *Registry, _, _, pendingID string, fail bool, calls *int) error {
			return r.Delete(pendingID, txHook(fail, calls))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, db := newRegistry(t)
			a, code, _, err := r.Create("mast 1", "", "admin")
			if err != nil {
				t.Fatal(err)
			}
			creds, err := r.Enroll(code, "edge-1")
			if err != nil {
				t.Fatal(err)
			}
			pending, code, _, err := r.Create("mast 2", "", "admin")
			if err != nil {
				t.Fatal(err)
			}
			before, _ := agentsState(t, db)

			calls := 0
			if err := tc.do(r, a.ID, code, pending.ID, true, &calls); !errors.Is(err, errRefused) {
				t.Fatalf("with a failing hook: err = %v, want the hook's error", err)
			}
			after, witnessed := agentsState(t, db)
			if calls != 1 || witnessed || !bytes.Equal(after, before) {
				t.Fatalf("failing hook ran %d times; committed: %v; agents changed: %v", calls, witnessed, !bytes.Equal(after, before))
			}
			if _, err := r.Authenticate(a.ID, creds.Secret); err != nil {
				t.Fatalf("a rolled-back change ended the agent's credentials: %v", err)
			}

			calls = 0
			if err := tc.do(r, a.ID, code, pending.ID, false, &calls); err != nil {
				t.Fatalf("with a good hook: %v", err)
			}
			after, witnessed = agentsState(t, db)
			if calls != 1 || !witnessed || bytes.Equal(after, before) {
				t.Fatalf("good hook ran %d times; committed: %v; agents changed: %v", calls, witnessed, !bytes.Equal(after, before))
			}
		})
	}
}

// TestAFailedAgentChangeRunsNoHook: a change the registry refuses never
// reaches its hooks.
func TestAFailedAgentChangeRunsNoHook(t *testing.T) {
	r, db := newRegistry(t)
	a, code, _, err := r.Create("mast 1", "", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Enroll(code, "edge-1"); err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := func(*bbolt.Tx) error { calls++; return nil }
	ha := func(*bbolt.Tx, Agent) error { calls++; return nil }
	for what, err := range map[string]error{
		"create without name": func() error { _, _, _, err := r.Create(" ", "", "admin", ha); return err }(),
		"enroll spent code":   func() error { _, err := r.Enroll(code, "edge-2", ha); return err }(),
		"enroll bad code":     func() error { _, err := r.Enroll("nope", "edge-2", ha); return err }(),
		"revoke unknown":      r.Revoke("agt-nope", h),
		"delete enrolled":     r.Delete(a.ID, h),
		"delete unknown":      r.Delete("agt-nope", h),
	} {
		if err == nil {
			t.Errorf("%s: succeeded", what)
		}
	}
	if _, witnessed := agentsState(t, db); calls != 0 || witnessed {
		t.Fatalf("refused changes ran %d hooks", calls)
	}
}
