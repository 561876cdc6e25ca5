// Package store owns the single bbolt database file of Tianyan VMS and the
// set of buckets inside it.
//
// It is the only package that opens the bbolt file or creates buckets; every
// other package receives a *DB and works inside the transactions it hands
// out. Store knows nothing about what the buckets contain beyond the generic
// JSON helpers: it must never import domain packages (catalog, accounts, audit,
// streaming, web) and must never log stored values, which may hold secrets.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// FileName is the name of the database file inside the data directory.
const FileName = "tianyan.db"

// lockTimeout bounds how long Open waits for the file lock held by another process.
const lockTimeout = 2 * time.Second

// Bucket names; Open creates every one of them.
var (
	// BucketPoints holds camera points keyed by point ID (owned by catalog).
	BucketPoints = []byte("points")
	// BucketRegions holds administrative regions keyed by region code (owned by catalog).
	BucketRegions = []byte("regions")
	// BucketUsers holds user records keyed by username (owned by accounts).
	BucketUsers = []byte("users")
	// BucketSessions holds login sessions keyed by token hash (owned by accounts).
	BucketSessions = []byte("sessions")
	// BucketMeta holds small server-wide metadata values.
	BucketMeta = []byte("meta")
	// BucketRoles holds role definitions keyed by role name (owned by accounts).
	BucketRoles = []byte("roles")
	// BucketTokens holds API tokens keyed by token hash (owned by accounts).
	BucketTokens = []byte("tokens")
	// BucketAudit holds the hash-chained audit log keyed by big-endian sequence number (owned by audit).
	BucketAudit = []byte("audit")
	// BucketGrants holds access grants keyed by grant ID (owned by permissions).
	BucketGrants = []byte("grants")
	// BucketPrefs holds per-user viewing preferences (saved wall layouts,
	// favourite points) keyed by username, NUL, kind, NUL, name (owned by prefs).
	BucketPrefs = []byte("prefs")
)

var allBuckets = [][]byte{BucketPoints, BucketRegions, BucketUsers, BucketSessions, BucketMeta, BucketRoles, BucketTokens, BucketAudit, BucketGrants, BucketPrefs}

// ErrLocked reports that another process holds the database file lock.
var ErrLocked = errors.New("data dir locked by another process")

// ErrNoBucket reports that a JSON helper was given a bucket that does not exist.
var ErrNoBucket = errors.New("bucket does not exist")

// DB is the opened Tianyan database.
type DB struct {
	bolt *bbolt.DB
}

// Open creates dir if needed, opens dir/tianyan.db and ensures every bucket exists.
func Open(dir string) (*DB, error) {
	return open(dir, lockTimeout)
}

func open(dir string, timeout time.Duration) (*DB, error) {
	if dir == "" {
		return nil, errors.New("store: empty data dir")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      timeout,
		FreelistType: bbolt.FreelistArrayType,
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	slog.Info("store opened", "path", path)
	return &DB{bolt: b}, nil
}

// Close releases the database file and its lock.
func (db *DB) Close() error {
	return db.bolt.Close()
}

// Update runs fn in a read-write transaction, committed only if fn returns nil.
func (db *DB) Update(fn func(tx *bbolt.Tx) error) error {
	return db.bolt.Update(fn)
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(tx *bbolt.Tx) error) error {
	return db.bolt.View(fn)
}

// Backup writes a consistent snapshot of the whole database file to w.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup: %w", err)
	}
	return n, nil
}

// GetJSON decodes the value stored under key into v, reporting whether it existed.
func GetJSON(tx *bbolt.Tx, bucket, key []byte, v any) (bool, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return false, fmt.Errorf("store: %s: %w", bucket, ErrNoBucket)
	}
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("store: decode %s/%q: %w", bucket, key, err)
	}
	return true, nil
}

// PutJSON stores v encoded as JSON under key.
func PutJSON(tx *bbolt.Tx, bucket, key []byte, v any) error {
	b := tx.Bucket(bucket)
	if b == nil {
		return fmt.Errorf("store: %s: %w", bucket, ErrNoBucket)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s/%q: %w", bucket, key, err)
	}
	if err := b.Put(key, raw); err != nil {
		return fmt.Errorf("store: put %s/%q: %w", bucket, key, err)
	}
	return nil
}
