package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, dir
}

func TestOpenCreatesEveryBucket(t *testing.T) {
	db, _ := openTemp(t)
	err := db.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{BucketPoints, BucketRegions, BucketUsers, BucketSessions, BucketMeta, BucketRoles, BucketTokens, BucketAudit, BucketGrants, BucketPrefs} {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s missing", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenCreatesMissingDataDirWithPrivateModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("data dir mode = %v, want no group/other access", perm)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("db file mode = %v, want no group/other access", perm)
	}
}

func TestOpenWithEmptyDirFails(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestSecondOpenOfLockedDataDirFailsWithErrLocked(t *testing.T) {
	_, dir := openTemp(t)
	// bbolt uses flock, which also conflicts within one process; a short
	// timeout keeps the test fast while exercising the same path as Open.
	db2, err := open(dir, 50*time.Millisecond)
	if err == nil {
		db2.Close()
		t.Fatal("second open succeeded while the first still holds the lock")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("data dir locked by another process")) {
		t.Errorf("error text %q does not explain the lock", err)
	}
}

func TestReopenKeepsCommittedData(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return PutJSON(tx, BucketMeta, []byte("k"), map[string]int{"n": 7})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got map[string]int
	err = db.View(func(tx *bbolt.Tx) error {
		found, err := GetJSON(tx, BucketMeta, []byte("k"), &got)
		if !found {
			t.Error("value lost after reopen")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["n"] != 7 {
		t.Errorf("got %v", got)
	}
}

func TestUpdateThatReturnsErrorWritesNothing(t *testing.T) {
	db, _ := openTemp(t)
	boom := errors.New("boom")
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := PutJSON(tx, BucketMeta, []byte("k"), "v"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		var s string
		found, err := GetJSON(tx, BucketMeta, []byte("k"), &s)
		if err != nil || found {
			t.Errorf("found=%v err=%v, want nothing written", found, err)
		}
		return nil
	})
}

func TestGetJSONOfMissingKeyReportsNotFound(t *testing.T) {
	db, _ := openTemp(t)
	_ = db.View(func(tx *bbolt.Tx) error {
		var v any
		found, err := GetJSON(tx, BucketUsers, []byte("nobody"), &v)
		if found || err != nil {
			t.Errorf("found=%v err=%v", found, err)
		}
		return nil
	})
}

func TestGetJSONOfCorruptValueFails(t *testing.T) {
	db, _ := openTemp(t)
	_ = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(BucketMeta).Put([]byte("bad"), []byte("{not json"))
	})
	_ = db.View(func(tx *bbolt.Tx) error {
		var v map[string]any
		found, err := GetJSON(tx, BucketMeta, []byte("bad"), &v)
		if !found || err == nil {
			t.Errorf("found=%v err=%v, want found with error", found, err)
		}
		return nil
	})
}

func TestJSONHelpersOnUnknownBucketFail(t *testing.T) {
	db, _ := openTemp(t)
	err := db.Update(func(tx *bbolt.Tx) error {
		return PutJSON(tx, []byte("nope"), []byte("k"), 1)
	})
	if !errors.Is(err, ErrNoBucket) {
		t.Errorf("PutJSON err = %v, want ErrNoBucket", err)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		var v int
		if _, err := GetJSON(tx, []byte("nope"), []byte("k"), &v); !errors.Is(err, ErrNoBucket) {
			t.Errorf("GetJSON err = %v, want ErrNoBucket", err)
		}
		return nil
	})
}

func TestBackupWritesAnOpenableConsistentSnapshot(t *testing.T) {
	db, _ := openTemp(t)
	err := db.Update(func(tx *bbolt.Tx) error {
		return PutJSON(tx, BucketPoints, []byte("cam1"), map[string]string{"name": "Gate"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := db.Backup(&buf)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup reported %d bytes, wrote %d", n, buf.Len())
	}

	restored := t.TempDir()
	if err := os.WriteFile(filepath.Join(restored, FileName), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(restored)
	if err != nil {
		t.Fatalf("open restored backup: %v", err)
	}
	defer db2.Close()
	var got map[string]string
	_ = db2.View(func(tx *bbolt.Tx) error {
		found, err := GetJSON(tx, BucketPoints, []byte("cam1"), &got)
		if !found || err != nil {
			t.Errorf("found=%v err=%v", found, err)
		}
		return nil
	})
	if got["name"] != "Gate" {
		t.Errorf("restored value = %v", got)
	}
}
