package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// backupBytes returns a real database file's bytes with a little data in it.
func backupBytes(t *testing.T) []byte {
	t.Helper()
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		for i := range 2000 {
			if err := PutJSON(tx, BucketMeta, []byte{byte(i >> 8), byte(i)}, bytes.Repeat([]byte("x"), 50)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := db.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOpenFileRefusesTornAndForeignFilesWithoutFaulting(t *testing.T) {
	good := backupBytes(t)
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty":        nil,
		"text":         []byte("hello, this is not a database"),
		"first page":   good[:4096],
		"half":         good[:len(good)/2],
		"one byte off": good[:len(good)-1],
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := OpenFile(p)
		if err == nil {
			db.Close()
			t.Errorf("%s: opened", name)
		}
	}
	p := filepath.Join(dir, "good")
	if err := os.WriteFile(p, good, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := OpenFile(p)
	if err != nil {
		t.Fatalf("a whole backup: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatalf("a whole backup fails its check: %v", err)
	}
}

func FuzzOpenFile(f *testing.F) {
	f.Add([]byte("x"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.db")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if db, err := OpenFile(p); err == nil {
			_ = db.Check()
			db.Close()
		}
	})
}
