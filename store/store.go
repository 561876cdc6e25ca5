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
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
	// BucketAgents holds edge agents keyed by agent ID (owned by agents).
	BucketAgents = []byte("agents")
	// BucketPrefs holds per-user viewing preferences (saved wall layouts,
	// favourite points) keyed by username, NUL, kind, NUL, name (owned by prefs).
	BucketPrefs = []byte("prefs")
	// BucketGBDevices holds GB/T 28181 devices that register to us, keyed by
	// their 20-digit ID (owned by gb28181).
	BucketGBDevices = []byte("gb_devices")
	// BucketGBRules holds the rules that map GB/T 28181 channels to
	// categories and levels, keyed by rule ID (owned by gb28181).
	BucketGBRules = []byte("gb_rules")
	// BucketGBChannels holds what gb28181 knows of each device channel (its
	// flags and what the catalog sync last wrote), keyed by channel ID.
	BucketGBChannels = []byte("gb_channels")
	// BucketGBPlatforms holds the upstream GB/T 28181 platforms we register
	// to (级联), keyed by the platform's 20-digit ID (owned by gb28181's cascade).
	BucketGBPlatforms = []byte("gb_platforms")
)

var allBuckets = [][]byte{BucketPoints, BucketRegions, BucketUsers, BucketSessions, BucketMeta, BucketRoles, BucketTokens, BucketAudit, BucketGrants, BucketAgents, BucketPrefs,
	BucketGBDevices, BucketGBRules, BucketGBChannels, BucketGBPlatforms}

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

// Tx is a bbolt transaction, named here so that packages composing hooks
// (web) need not import bbolt themselves.
type Tx = bbolt.Tx

// TxHook is run by a domain store's mutating method inside the write
// transaction of its change, after the change is written and checked; an
// error from it rolls the whole change back. It lets a caller add what must
// commit or fail with the change (an audit record, a dependent deletion)
// without the store knowing what it is. A nil hook is skipped.
type TxHook func(tx *bbolt.Tx) error

// ResultHook is a TxHook that is also shown what the change made (a
// generated ID, the stored form, a count), for methods whose result the
// caller cannot know before the call. A nil hook is skipped.
type ResultHook[T any] func(tx *bbolt.Tx, made T) error

// RunHooks runs hooks in order inside tx and returns the first error.
func RunHooks(tx *bbolt.Tx, hooks []TxHook) error {
	for _, h := range hooks {
		if h == nil {
			continue
		}
		if err := h(tx); err != nil {
			return err
		}
	}
	return nil
}

// RunResultHooks runs hooks in order inside tx, showing each made, and returns the first error.
func RunResultHooks[T any](tx *bbolt.Tx, made T, hooks []ResultHook[T]) error {
	for _, h := range hooks {
		if h == nil {
			continue
		}
		if err := h(tx, made); err != nil {
			return err
		}
	}
	return nil
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

// OpenFile opens a database file read-only (a backup, or the data file of
// a stopped server) and checks that it holds Tianyan's core buckets (a
// backup from an older version may lack newer ones; Open adds them). A file
// that a running server holds is refused with ErrLocked after a short wait.
func OpenFile(path string) (*DB, error) {
	// bbolt maps the file into memory and trusts its page count: a torn
	// file would fault (SIGBUS) on the first read past its end, which no
	// recover() catches. So check the size against the header first.
	if err := checkSize(path); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = b.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{BucketPoints, BucketUsers, BucketMeta} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s missing: not a Tianyan database", name)
			}
		}
		return nil
	})
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return &DB{bolt: b}, nil
}

// Check reads every page of the database and reports the first
// inconsistency bbolt finds (a torn or corrupted file).
func (db *DB) Check() error {
	return db.bolt.View(func(tx *bbolt.Tx) error {
		// Drain the channel: its producer goroutine ends only when it has
		// sent every error.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = fmt.Errorf("store: check: %w", err)
			}
		}
		return first
	})
}

// Restore replaces the database of dataDir with the backup file at src.
// The backup is checked first (opens, holds every bucket, passes bbolt's
// consistency check); the data dir must not be in use by a running server.
// The previous database, if any, is kept beside it and its name returned.
func Restore(dataDir, src string) (previous string, err error) {
	db, err := OpenFile(src)
	if err != nil {
		return "", fmt.Errorf("store: restore: backup unusable: %w", err)
	}
	cerr := db.Check()
	_ = db.Close()
	if cerr != nil {
		return "", fmt.Errorf("store: restore: backup unusable: %w", cerr)
	}
	// Taking the lock proves no server is using the data dir, and keeps
	// one from starting while the file is swapped.
	cur, err := open(dataDir, lockTimeout)
	if err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	defer cur.Close()

	dst := filepath.Join(dataDir, FileName)
	tmp := dst + ".restore-tmp"
	if err := copyFile(tmp, src); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("store: restore: %w", err)
	}
	previous = dst + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Link(dst, previous); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("store: restore: keep previous database: %w", err)
	}
	// rename is atomic: the data dir holds either the old or the new file.
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("store: restore: %w", err)
	}
	return previous, nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// boltMagic marks a bbolt meta page.
const boltMagic = 0xED0CDAED

// checkSize reads the two bbolt meta pages and refuses a file shorter than
// the page count the newest valid meta records.
func checkSize(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	const pageHeader, metaLen = 16, 64
	var head [pageHeader + metaLen]byte
	var best struct {
		txid, pages uint64
		pageSize    uint32
		ok          bool
	}
	for i := range 2 {
		off := int64(0)
		if i == 1 {
			if !best.ok {
				break
			}
			off = int64(best.pageSize)
		}
		if _, err := f.ReadAt(head[:], off); err != nil {
			continue
		}
		m := head[pageHeader:]
		le := binary.LittleEndian
		if le.Uint32(m[0:]) != boltMagic {
			continue
		}
		h := fnv.New64a()
		h.Write(m[:56])
		if h.Sum64() != le.Uint64(m[56:]) {
			continue
		}
		pageSize, pages, txid := le.Uint32(m[8:]), le.Uint64(m[40:]), le.Uint64(m[48:])
		if pageSize < 512 || pageSize > 1<<20 {
			continue
		}
		if !best.ok || txid > best.txid {
			best.txid, best.pages, best.pageSize, best.ok = txid, pages, pageSize, true
		}
	}
	if !best.ok {
		return errors.New("not a bbolt database (no valid meta page)")
	}
	if need := best.pages * uint64(best.pageSize); uint64(st.Size()) < need {
		return fmt.Errorf("file is truncated: %d bytes, its header needs %d", st.Size(), need)
	}
	return nil
}
