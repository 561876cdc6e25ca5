// Package storetest holds the hooks the domain stores' tests share: a hook
// that refuses (standing for an audit record that cannot be written) or
// leaves a witness mark in store.BucketMeta, and the check of that mark.
// With them each store's test shows that a change commits with its hooks
// or not at all.
//
// It is for tests only and must never be imported by production code.
package storetest

import (
	"errors"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// ErrRefused is what a failing hook returns.
var ErrRefused = errors.New("hook refused")

// WitnessKey is where a good hook leaves its mark, in store.BucketMeta.
var WitnessKey = []byte("test.witness")

// TxHook returns a hook that refuses when fail is set and otherwise marks
// BucketMeta, counting its calls.
func TxHook(fail bool, calls *int) store.TxHook {
	return func(tx *bbolt.Tx) error {
		*calls++
		if fail {
			return ErrRefused
		}
		return tx.Bucket(store.BucketMeta).Put(WitnessKey, []byte("1"))
	}
}

// ResultHook is TxHook for methods that show the hook what they made;
// check says whether that is right and visible inside the transaction.
func ResultHook[T any](fail bool, calls *int, check func(tx *bbolt.Tx, made T) error) store.ResultHook[T] {
	return func(tx *bbolt.Tx, made T) error {
		if err := check(tx, made); err != nil {
			return err
		}
		return TxHook(fail, calls)(tx)
	}
}

// Witnessed reports whether a good hook's transaction committed.
func Witnessed(tb testing.TB, db *store.DB) bool {
	tb.Helper()
	var ok bool
	if err := db.View(func(tx *bbolt.Tx) error { ok = tx.Bucket(store.BucketMeta).Get(WitnessKey) != nil; return nil }); err != nil {
		tb.Fatal(err)
	}
	return ok
}
