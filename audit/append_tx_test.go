package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

var errChangeFailed = errors.New("the change failed")

// change writes key into BucketMeta and records it with AppendTx in the
// same transaction; with fail, the change fails after the append.
func (f fixture) change(key string, fail bool) (Record, error) {
	var rec Record
	err := f.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(store.BucketMeta).Put([]byte(key), []byte("1")); err != nil {
			return err
		}
		var err error
		if rec, err = f.log.AppendTx(tx, Record{User: "admin", Action: "point.update", Point: key}); err != nil {
			return err
		}
		if fail {
			return errChangeFailed
		}
		return nil
	})
	return rec, err
}

func TestAppendTxCommitsWithTheChangeAndARolledBackOneLeavesNoGap(t *testing.T) {
	f := newFixture(t, 0)
	r1 := f.mustAppend(t, Record{Action: "login.ok"})
	if _, err := f.change("cam1", true); !errors.Is(err, errChangeFailed) {
		t.Fatal(err)
	}
	if seq, hash, _ := f.log.Head(); seq != 1 || hash != r1.Hash {
		t.Fatalf("a rolled-back change left a record: head %d", seq)
	}
	r2, err := f.change("cam2", false)
	if err != nil {
		t.Fatal(err)
	}
	// The rolled-back append took no sequence number: the chain has no gap.
	if r2.Seq != 2 || r2.Prev != r1.Hash {
		t.Fatalf("record after a rollback = %+v", r2)
	}
	recs, _, err := f.log.Query(Filter{Action: "point.update"})
	if err != nil || len(recs) != 1 || recs[0].Seq != r2.Seq || recs[0].Hash != r2.Hash || recs[0].Point != "cam2" {
		t.Fatalf("stored records %+v, %v; want %+v", recs, err, r2)
	}
	if n, err := f.log.Verify(); n != 2 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestAppendTxRefusesARecordWithoutActionSoTheChangeRollsBack(t *testing.T) {
	f := newFixture(t, 0)
	err := f.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(store.BucketMeta).Put([]byte("cam1"), []byte("1")); err != nil {
			return err
		}
		_, err := f.log.AppendTx(tx, Record{User: "admin"})
		return err
	})
	if !errors.Is(err, ErrNoAction) {
		t.Fatalf("err = %v", err)
	}
	_ = f.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(store.BucketMeta).Get([]byte("cam1")) != nil {
			t.Error("the change committed without its record")
		}
		return nil
	})
}

func TestHookAppendsInTheCallersTransactionAndANilLogGivesNoHook(t *testing.T) {
	f := newFixture(t, 0)
	var nilLog *Log
	if h := nilLog.Hook(Record{Action: "x"}); h != nil {
		t.Fatal("a nil Log gave a hook")
	}
	h := f.log.Hook(Record{User: "admin", Action: "region.delete"})
	err := f.db.Update(func(tx *bbolt.Tx) error {
		if err := h(tx); err != nil {
			return err
		}
		return errChangeFailed
	})
	if !errors.Is(err, errChangeFailed) {
		t.Fatal(err)
	}
	if seq, _, _ := f.log.Head(); seq != 0 {
		t.Fatalf("the hook's record outlived its rolled-back transaction: head %d", seq)
	}
	if err := f.db.Update(func(tx *bbolt.Tx) error { return h(tx) }); err != nil {
		t.Fatal(err)
	}
	if n, err := f.log.Verify(); n != 1 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

// TestChangesAppendsAndPruningInterleavedKeepOneChainAndARecordPerChange
// runs changes that commit, changes that roll back, plain appends and
// pruning at once: every committed change has exactly its record (unless
// pruned), no rolled-back one has any, and the chain verifies.
func TestChangesAppendsAndPruningInterleavedKeepOneChainAndARecordPerChange(t *testing.T) {
	f := newFixture(t, time.Minute)
	const goroutines, each = 6, 40
	var committed, rolledBack sync.Map
	var appended atomic.Int64
	stop := make(chan struct{})
	var pruned atomic.Int64
	var pruner sync.WaitGroup
	pruner.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.clock.advance(10 * time.Second)
			n, err := f.log.Prune(f.clock.now())
			if err != nil {
				t.Error(err)
				return
			}
			pruned.Add(int64(n))
			time.Sleep(time.Millisecond)
		}
	})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("p%d-%d", g, i)
				switch i % 3 {
				case 0:
					if _, err := f.log.Append(Record{Action: "login.ok"}); err != nil {
						t.Error(err)
						return
					}
					appended.Add(1)
				case 1:
					r, err := f.change(key, false)
					if err != nil {
						t.Error(err)
						return
					}
					committed.Store(key, r.Seq)
				case 2:
					if _, err := f.change(key, true); !errors.Is(err, errChangeFailed) {
						t.Error(err)
						return
					}
					rolledBack.Store(key, true)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	pruner.Wait()

	nCommitted := 0
	committed.Range(func(any, any) bool { nCommitted++; return true })
	n, err := f.log.Verify()
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if total := int64(nCommitted) + appended.Load(); int64(n)+pruned.Load() != total {
		t.Fatalf("%d records kept + %d pruned, want %d appended", n, pruned.Load(), total)
	}
	err = f.db.View(func(tx *bbolt.Tx) error {
		meta, log := tx.Bucket(store.BucketMeta), tx.Bucket(store.BucketAudit)
		first, _ := log.Cursor().First()
		committed.Range(func(k, v any) bool {
			if meta.Get([]byte(k.(string))) == nil {
				t.Errorf("change %s lost", k)
			}
			seq := v.(uint64)
			if first != nil && seq >= binary.BigEndian.Uint64(first) && log.Get(seqKey(seq)) == nil {
				t.Errorf("change %s kept, its record %d lost", k, seq)
			}
			return true
		})
		rolledBack.Range(func(k, _ any) bool {
			if meta.Get([]byte(k.(string))) != nil {
				t.Errorf("rolled-back change %s kept", k)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := f.log.Query(Filter{Action: "point.update", Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, ok := committed.Load(r.Point); !ok {
			t.Errorf("record %d of change %s that did not commit", r.Seq, r.Point)
		}
	}
	t.Logf("%d changes committed, %d plain appends, %d records pruned, %d kept", nCommitted, appended.Load(), pruned.Load(), n)
}
