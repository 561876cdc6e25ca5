package permissions

import (
	"errors"
	"slices"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/store"
)

var errRefused = errors.New("hook refused")

func newDecider(t *testing.T) (*Decider, *store.DB) {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	cat, err := catalog.New(db)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(NewGrants(db), cat)
	if err != nil {
		t.Fatal(err)
	}
	return d, db
}

func viewGrant(user, role string) Grant {
	return Grant{User: user, Role: role, Categories: []string{"*"}, Regions: []string{"*"}, MaxLevel: 4, Actions: []Action{View}}
}

// grantIDs lists the grants as the Decider decides with them and as the
// store holds them; the test fails when the two disagree.
func grantIDs(t *testing.T, d *Decider) []string {
	t.Helper()
	var mem, stored []string
	for _, g := range d.Grants() {
		mem = append(mem, g.ID)
	}
	list, err := d.store.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range list {
		stored = append(stored, g.ID)
	}
	slices.Sort(mem)
	slices.Sort(stored)
	if !slices.Equal(mem, stored) {
		t.Fatalf("decisions use grants %v, the store holds %v", mem, stored)
	}
	return mem
}

// TestGrantChangesCommitWithTheirHookOrNotAtAll: creating and deleting a
// grant commit with their hook (an audit record) or not at all, and
// decisions follow what committed.
func TestGrantChangesCommitWithTheirHookOrNotAtAll(t *testing.T) {
	d, _ := newDecider(t)
	alice := accounts.User{Username: "alice"}
	p := catalog.Point{ID: "cam1", Category: "road", Level: 1}

	seen := ""
	_, err := d.CreateGrant(viewGrant("alice", ""), func(tx *bbolt.Tx, g Grant) error {
		if tx.Bucket(store.BucketGrants).Get([]byte(g.ID)) == nil {
			return errors.New("hook ran before the grant was written")
		}
		seen = g.ID
		return errRefused
	})
	if !errors.Is(err, errRefused) || seen == "" {
		t.Fatalf("create with a failing hook: err %v, hook saw %q", err, seen)
	}
	if ids := grantIDs(t, d); len(ids) != 0 || d.Can(alice, View, p) {
		t.Fatalf("a rolled-back grant holds: %v", ids)
	}

	g, err := d.CreateGrant(viewGrant("alice", ""), func(*bbolt.Tx, Grant) error { return nil })
	if err != nil || !d.Can(alice, View, p) {
		t.Fatalf("create with a good hook: %v", err)
	}
	if err := d.DeleteGrant(g.ID, func(*bbolt.Tx) error { return errRefused }); !errors.Is(err, errRefused) {
		t.Fatalf("delete with a failing hook: %v", err)
	}
	if ids := grantIDs(t, d); len(ids) != 1 || !d.Can(alice, View, p) {
		t.Fatalf("a rolled-back delete removed the grant: %v", ids)
	}
	calls := 0
	if err := d.DeleteGrant("nope", func(*bbolt.Tx) error { calls++; return nil }); !errors.Is(err, ErrGrantNotFound) || calls != 0 {
		t.Fatalf("deleting an unknown grant: %v, hook ran %d times", err, calls)
	}
	if _, err := d.CreateGrant(Grant{User: "alice"}, func(*bbolt.Tx, Grant) error { calls++; return nil }); err == nil || calls != 0 {
		t.Fatalf("an invalid grant: %v, hook ran %d times", err, calls)
	}
	if err := d.DeleteGrant(g.ID, func(*bbolt.Tx) error { return nil }); err != nil || d.Can(alice, View, p) {
		t.Fatalf("delete with a good hook: %v", err)
	}
}

// TestDeleteGrantsInAppliesOnlyWhenTheCallersTransactionCommits: grants
// removed with a user or role they name go with that transaction: kept,
// in the store and in decisions, when it rolls back; gone from both once
// it commits.
func TestDeleteGrantsInAppliesOnlyWhenTheCallersTransactionCommits(t *testing.T) {
	d, db := newDecider(t)
	bob := accounts.User{Username: "bob", Roles: []string{"night"}}
	p := catalog.Point{ID: "cam1", Category: "road", Level: 1}
	for _, g := range []Grant{viewGrant("alice", ""), viewGrant("bob", ""), viewGrant("", "night"), viewGrant("bob", "")} {
		if _, err := d.CreateGrant(g); err != nil {
			t.Fatal(err)
		}
	}
	ofBob := func(g Grant) bool { return g.User == "bob" || g.Role == "night" }

	err := db.Update(func(tx *bbolt.Tx) error {
		gone, err := d.DeleteGrantsIn(tx, ofBob)
		if err != nil || len(gone) != 3 {
			t.Errorf("DeleteGrantsIn: %d gone, %v", len(gone), err)
		}
		return errRefused // the user's deletion or its audit record failed
	})
	if !errors.Is(err, errRefused) {
		t.Fatal(err)
	}
	if ids := grantIDs(t, d); len(ids) != 4 || !d.Can(bob, View, p) {
		t.Fatalf("rolled back, yet grants went: %v", ids)
	}

	err = db.Update(func(tx *bbolt.Tx) error {
		_, err := d.DeleteGrantsIn(tx, ofBob)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if ids := grantIDs(t, d); len(ids) != 1 || d.Can(bob, View, p) {
		t.Fatalf("committed, yet bob's grants hold: %v", ids)
	}
}
