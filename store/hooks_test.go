package store

import (
	"errors"
	"testing"

	"go.etcd.io/bbolt"
)

func TestHooksRunInOrderSkippingNilAndStopAtTheFirstError(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	refused := errors.New("refused")
	var order []string
	mark := func(name string, err error) TxHook {
		return func(tx *bbolt.Tx) error {
			order = append(order, name)
			if err == nil {
				err = tx.Bucket(BucketMeta).Put([]byte(name), []byte("1"))
			}
			return err
		}
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return RunHooks(tx, []TxHook{mark("a", nil), nil, mark("b", refused), mark("c", nil)})
	})
	if !errors.Is(err, refused) || len(order) != 2 || order[1] != "b" {
		t.Fatalf("err %v, ran %v", err, order)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(BucketMeta).Get([]byte("a")) != nil {
			t.Error("a hook's write outlived the failed transaction")
		}
		return nil
	})

	var shown []int
	err = db.Update(func(tx *bbolt.Tx) error {
		return RunResultHooks(tx, 7, []ResultHook[int]{nil, func(_ *bbolt.Tx, n int) error { shown = append(shown, n); return nil }})
	})
	if err != nil || len(shown) != 1 || shown[0] != 7 {
		t.Fatalf("result hooks: %v, shown %v", err, shown)
	}
}
