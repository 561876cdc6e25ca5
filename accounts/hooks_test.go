package accounts

import (
	"bytes"
	"errors"
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

func resultHook[T any](fail bool, calls *int, check func(tx *bbolt.Tx, made T) error) store.ResultHook[T] {
	return storetest.ResultHook(fail, calls, check)
}

// state is every byte of the buckets accounts owns, and whether a good
// hook's mark committed.
func (f fixture) state(t *testing.T) (raw []byte, witnessed bool) {
	t.Helper()
	for _, b := range [][]byte{store.BucketUsers, store.BucketSessions, store.BucketTokens, store.BucketRoles} {
		_, all := f.rawBucket(t, b)
		raw = append(raw, all...)
		raw = append(raw, 0)
	}
	_ = f.db.View(func(tx *bbolt.Tx) error { witnessed = tx.Bucket(store.BucketMeta).Get(witnessKey) != nil; return nil })
	return raw, witnessed
}

// TestEveryAccountChangeCommitsWithItsHookOrNotAtAll: for each kind of
// change to users, passwords, sessions, tokens and roles, a failing hook
// (an audit record that cannot be written) rolls the whole change back;
// a good hook commits with it and sees it inside the transaction.
func TestEveryAccountChangeCommitsWithItsHookOrNotAtAll(t *testing.T) {
	userStored := func(tx *bbolt.Tx, u User) error {
		if _, err := getRecord(tx, u.Username); err != nil {
			return errors.New("hook ran before the user was written")
		}
		return nil
	}
	cases := []struct {
		name string
		do   func(f fixture, sessionID, tokenID string, fail bool, calls *int) error
	}{
		{"user create", func(f fixture, _, _ string, fail bool, calls *int) error {
			_, err := f.a.CreateUser(User{Username: "carol", Roles: []string{"viewer", "viewer"}}, "carol-pass-123", resultHook(fail, calls, func(tx *bbolt.Tx, u User) error {
				if len(u.Roles) != 1 {
					return errors.New("hook not shown the user as stored")
				}
				return userStored(tx, u)
			}))
			return err
		}},
		{"user disable", func(f fixture, _, _ string, fail bool, calls *int) error {
			_, err := f.a.UpdateUser("alice", UserPatch{Disabled: ptr(true), Roles: &[]string{"operator"}}, resultHook(fail, calls, func(tx *bbolt.Tx, u User) error {
				rec, err := getRecord(tx, u.Username)
				if err != nil || !rec.Disabled || !u.Disabled {
					return errors.New("hook ran before the change was written")
				}
				return nil
			}))
			return err
		}},
		{"user delete", func(f fixture, _, _ string, fail bool, calls *int) error {
			return f.a.DeleteUser("alice", txHook(fail, calls))
		}},
		{"password reset", func(f fixture, _, _ string, fail bool, calls *int) error {
			return f.a.ResetPassword("alice", "alice-new-pass-1", txHook(fail, calls))
		}},
		{"password change", func(f fixture, _, _ string, fail bool, calls *int) error {
			return f.a.ChangePassword("alice", "alice-pass-123", "alice-new-pass-1", txHook(fail, calls))
		}},
		{"session revoke", func(f fixture, sessionID, _ string, fail bool, calls *int) error {
			return f.a.RevokeSession("alice", sessionID, txHook(fail, calls))
		}},
		{"sessions revoke all", func(f fixture, _, _ string, fail bool, calls *int) error {
			_, err := f.a.RevokeAllSessions("alice", resultHook(fail, calls, func(_ *bbolt.Tx, n int) error {
				if n != 1 {
					return errors.New("hook not shown the count")
				}
				return nil
			}))
			return err
		}},
		{"token create", func(f fixture, _, _ string, fail bool, calls *int) error {
			_, _, err := f.a.CreateToken("alice", "backup job", f.clock.now().AddDate(1, 0, 0), resultHook(fail, calls, func(tx *bbolt.Tx, info TokenInfo) error {
				if info.ID == "" || info.Name != "backup job" {
					return errors.New("hook not shown the token")
				}
				return nil
			}))
			return err
		}},
		{"token revoke", func(f fixture, _, tokenID string, fail bool, calls *int) error {
			return f.a.RevokeToken("alice", tokenID, txHook(fail, calls))
		}},
		{"role create", func(f fixture, _, _ string, fail bool, calls *int) error {
			return f.a.CreateRole(Role{Name: "night-shift"}, txHook(fail, calls))
		}},
		{"role delete", func(f fixture, _, _ string, fail bool, calls *int) error {
			return f.a.DeleteRole("spare", txHook(fail, calls))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.mustCreate(t, "root", "root-pass-123", RoleAdmin)
			f.mustCreate(t, "alice", "alice-pass-123", "viewer")
			if err := f.a.CreateRole(Role{Name: "spare"}); err != nil {
				t.Fatal(err)
			}
			session := f.login(t, "alice", "alice-pass-123")
			sessions, err := f.a.ListSessions("alice")
			if err != nil || len(sessions) != 1 {
				t.Fatalf("sessions %v %v", sessions, err)
			}
			_, tok := f.mustToken(t, "alice")
			before, _ := f.state(t)

			calls := 0
			if err := tc.do(f, sessions[0].ID, tok.ID, true, &calls); !errors.Is(err, errRefused) {
				t.Fatalf("with a failing hook: err = %v, want the hook's error", err)
			}
			after, witnessed := f.state(t)
			if calls != 1 || witnessed || !bytes.Equal(after, before) {
				t.Fatalf("failing hook ran %d times; its transaction committed: %v; accounts changed: %v", calls, witnessed, !bytes.Equal(after, before))
			}
			// What the change would have ended still works.
			if _, err := f.a.SessionUser(session); err != nil {
				t.Fatalf("session ended by a rolled-back change: %v", err)
			}
			if _, err := f.a.Authenticate("alice", "alice-pass-123"); err != nil {
				t.Fatalf("password changed by a rolled-back change: %v", err)
			}

			calls = 0
			if err := tc.do(f, sessions[0].ID, tok.ID, false, &calls); err != nil {
				t.Fatalf("with a good hook: %v", err)
			}
			after, witnessed = f.state(t)
			if calls != 1 || !witnessed || bytes.Equal(after, before) {
				t.Fatalf("good hook ran %d times; committed: %v; accounts changed: %v", calls, witnessed, !bytes.Equal(after, before))
			}
		})
	}
}

// TestAFailedAccountChangeRunsNoHook: a change accounts refuses never
// reaches its hooks, so it leaves no audit record behind.
func TestAFailedAccountChangeRunsNoHook(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "root", "root-pass-123", RoleAdmin)
	f.mustCreate(t, "alice", "alice-pass-123", "viewer")
	calls := 0
	h := func(*bbolt.Tx) error { calls++; return nil }
	hu := func(*bbolt.Tx, User) error { calls++; return nil }
	for what, err := range map[string]error{
		"create taken": func() error { _, err := f.a.CreateUser(User{Username: "alice"}, "some-pass-123", hu); return err }(),
		"create unknown role": func() error {
			_, err := f.a.CreateUser(User{Username: "bob", Roles: []string{"nope"}}, "some-pass-123", hu)
			return err
		}(),
		"disable last admin": func() error { _, err := f.a.UpdateUser("root", UserPatch{Disabled: ptr(true)}, hu); return err }(),
		"delete last admin":  f.a.DeleteUser("root", h),
		"delete unknown":     f.a.DeleteUser("nobody", h),
		"wrong old password": f.a.ChangePassword("alice", "wrong-pass-123", "alice-new-pass-1", h),
		"reset unknown":      f.a.ResetPassword("nobody", "alice-new-pass-1", h),
		"revoke no session":  f.a.RevokeSession("alice", "abcdefgh", h),
		"revoke no token":    f.a.RevokeToken("alice", "abcdefgh", h),
		"role exists":        f.a.CreateRole(Role{Name: "viewer"}, h),
		"role in use":        f.a.DeleteRole("viewer", h),
		"token for nobody": func() error {
			_, _, err := f.a.CreateToken("nobody", "x", f.clock.now().AddDate(1, 0, 0), func(*bbolt.Tx, TokenInfo) error { calls++; return nil })
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s: succeeded", what)
		}
	}
	if _, witnessed := f.state(t); calls != 0 || witnessed {
		t.Fatalf("refused changes ran %d hooks", calls)
	}
}
