// Package audit owns Tianyan's append-only, hash-chained audit log: who did
// what to which point, when and from where. Records live in
// store.BucketAudit under their big-endian sequence number; the chain anchor
// left by retention pruning lives in store.BucketMeta under "audit.anchor".
//
// Each record carries the hash of the one before it, so Verify detects a
// record that was altered, removed from the middle or moved. The chain
// proves internal consistency only: someone able to rewrite the database
// file can recompute every hash, so publish Head somewhere else (a log
// shipper, a printout) if that matters.
//
// A record of a change is appended inside the write transaction that makes
// the change (AppendTx, or Hook for a domain store's store.TxHook), so the
// two commit together or not at all; Append is for events that change
// nothing else (logins, views).
//
// It must never import any package of ours except store, and never records
// or logs secrets: callers must keep passwords, tokens and keys out of
// Detail. It runs no goroutines; the server calls Prune on its own schedule
// (hourly).
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// Genesis is the Prev of the first record ever appended: 64 zero hex digits.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// anchorKey is where Prune leaves the last pruned record's seq and hash, in store.BucketMeta.
var anchorKey = []byte("audit.anchor")

// Size limits applied by Append. Values users can influence (names,
// addresses, detail values) are truncated rather than refused, so an
// oversized input still leaves a trace; keys and counts are ours to choose,
// so exceeding them is an error.
const (
	maxField       = 256  // bytes of User, Point, Action and ClientIP
	maxDetail      = 32   // entries in Detail
	maxDetailKey   = 64   // bytes of a Detail key
	maxDetailValue = 1024 // bytes of a Detail value
)

// Errors returned by Append; match them with errors.Is.
var (
	// ErrNoAction reports a record without an Action.
	ErrNoAction = errors.New("audit: record has no action")
	// ErrDetailTooLarge reports a Detail with too many entries or too long a key.
	ErrDetailTooLarge = errors.New("audit: detail too large")
)

// Record is one audited event.
type Record struct {
	Seq        uint64            `json:"seq"`
	Time       time.Time         `json:"time"`
	User       string            `json:"user"`
	Action     string            `json:"action"` // dotted verb: "login.ok", "login.fail", "view.start", "point.update", …
	Point      string            `json:"point,omitempty"`
	ClientIP   string            `json:"ip,omitempty"`
	DurationMs int64             `json:"duration_ms,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
	Prev       string            `json:"prev"` // Hash of the previous record, of the retention anchor, or Genesis
	Hash       string            `json:"hash"` // see Record.ComputeHash
}

// canonicalRecord is the hashed form of a Record: every field but Hash,
// in this order, with Time as an RFC 3339 UTC string with nanoseconds.
type canonicalRecord struct {
	Seq        uint64            `json:"seq"`
	Time       string            `json:"time"`
	User       string            `json:"user"`
	Action     string            `json:"action"`
	Point      string            `json:"point,omitempty"`
	ClientIP   string            `json:"ip,omitempty"`
	DurationMs int64             `json:"duration_ms,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
	Prev       string            `json:"prev"`
}

// ComputeHash returns hex(sha256(Prev || canonical(r))), the value Hash must hold.
//
// Prev is the 64 lowercase hex digits as ASCII. canonical(r) is Go's
// encoding/json.Marshal of the object {"seq","time","user","action","point",
// "ip","duration_ms","detail","prev"} in exactly that order, without
// insignificant whitespace; "point", "ip", "duration_ms" and "detail" are
// left out when empty or zero; "time" is Time in UTC formatted with
// time.RFC3339Nano (trailing fractional zeros dropped, "Z" suffix); "detail"
// keys are sorted bytewise; strings use encoding/json's escaping (including
// \u003c, \u003e, \u0026 for <, >, &). Hash itself is not part of it.
func (r Record) ComputeHash() (string, error) {
	raw, err := json.Marshal(canonicalRecord{
		Seq: r.Seq, Time: r.Time.UTC().Format(time.RFC3339Nano), User: r.User, Action: r.Action,
		Point: r.Point, ClientIP: r.ClientIP, DurationMs: r.DurationMs, Detail: r.Detail, Prev: r.Prev,
	})
	if err != nil {
		return "", fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	h := sha256.New()
	h.Write([]byte(r.Prev))
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Options configures a Log.
type Options struct {
	Retention time.Duration    // how long Prune keeps records; 0 keeps them forever
	Now       func() time.Time // clock for records appended without a Time; default time.Now
}

// Log is the audit log; it is safe for concurrent use.
type Log struct {
	db        *store.DB
	retention time.Duration
	now       func() time.Time
}

// New returns the Log kept in db.
func New(db *store.DB, opts Options) (*Log, error) {
	if db == nil {
		return nil, errors.New("audit: nil store")
	}
	if opts.Retention < 0 {
		return nil, fmt.Errorf("audit: negative retention %v", opts.Retention)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Log{db: db, retention: opts.Retention, now: opts.Now}, nil
}

// Append stores r as the next record in a transaction of its own,
// assigning Seq, Prev and Hash, and returns it as stored. Use it for events
// that change nothing else (logins, views); a record of a change belongs in
// the change's transaction: see AppendTx and Hook.
//
// A zero Time is set from the log's clock; any Time is stored in UTC.
// Invalid UTF-8 is replaced and over-long values truncated (see the limits
// above), so the returned record may differ from r.
func (l *Log) Append(r Record) (Record, error) {
	var out Record
	err := l.db.Update(func(tx *bbolt.Tx) error {
		var err error
		out, err = l.AppendTx(tx, r)
		return err
	})
	if err != nil {
		return Record{}, err
	}
	return out, nil
}

// AppendTx stores r as the next record inside tx, a write transaction of
// the caller's (the one that makes the change r records), and returns it
// as it will be stored if tx commits. Nothing is kept if tx rolls back;
// an error here should roll tx back, so a change is never without its
// record. Otherwise it is Append.
func (l *Log) AppendTx(tx *bbolt.Tx, r Record) (Record, error) {
	r, err := l.normalize(r)
	if err != nil {
		return Record{}, err
	}
	// The chain head is read and the record written in the same write
	// transaction, and bbolt runs one writer at a time: appends from any
	// transaction link in commit order, and a rolled-back one leaves no gap
	// (its sequence number is rolled back with it).
	b := tx.Bucket(store.BucketAudit)
	if b == nil {
		return Record{}, fmt.Errorf("audit: %s: %w", store.BucketAudit, store.ErrNoBucket)
	}
	prev, err := headHash(tx)
	if err != nil {
		return Record{}, err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return Record{}, fmt.Errorf("audit: next sequence: %w", err)
	}
	r.Seq, r.Prev = seq, prev
	if r.Hash, err = r.ComputeHash(); err != nil {
		return Record{}, err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit: encode record %d: %w", seq, err)
	}
	if err := b.Put(seqKey(seq), raw); err != nil {
		return Record{}, fmt.Errorf("audit: put record %d: %w", seq, err)
	}
	return r, nil
}

// Hook returns a hook that appends r inside the transaction of the change
// it records (see store.TxHook); a nil Log gives a nil hook, which stores
// skip.
func (l *Log) Hook(r Record) store.TxHook {
	if l == nil {
		return nil
	}
	return func(tx *bbolt.Tx) error {
		_, err := l.AppendTx(tx, r)
		return err
	}
}

func (l *Log) normalize(r Record) (Record, error) {
	r.Action = clean(r.Action, maxField)
	if r.Action == "" {
		return Record{}, ErrNoAction
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC() // also drops the monotonic reading
	if y := r.Time.Year(); y < 1 || y > 9999 {
		return Record{}, fmt.Errorf("audit: time %v out of range", r.Time)
	}
	r.User = clean(r.User, maxField)
	r.Point = clean(r.Point, maxField)
	r.ClientIP = clean(r.ClientIP, maxField)
	if len(r.Detail) > maxDetail {
		return Record{}, fmt.Errorf("%w: %d entries, at most %d", ErrDetailTooLarge, len(r.Detail), maxDetail)
	}
	var detail map[string]string
	if len(r.Detail) > 0 {
		detail = make(map[string]string, len(r.Detail))
		for k, v := range r.Detail {
			if len(k) > maxDetailKey || k == "" {
				return Record{}, fmt.Errorf("%w: key of %d bytes", ErrDetailTooLarge, len(k))
			}
			detail[strings.ToValidUTF8(k, "\uFFFD")] = clean(v, maxDetailValue)
		}
	}
	r.Detail = detail // a copy: the caller's map stays theirs
	r.Seq, r.Prev, r.Hash = 0, "", ""
	return r, nil
}

// clean makes s valid UTF-8 of at most n bytes, cutting at a rune boundary.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Head returns the seq and hash of the newest record (or of the anchor, or 0 and Genesis), to publish elsewhere.
func (l *Log) Head() (seq uint64, hash string, err error) {
	err = l.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketAudit)
		if k, v := b.Cursor().Last(); k != nil {
			var h recordHead
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("audit: decode record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			seq, hash = h.Seq, h.Hash
			return nil
		}
		a, err := readAnchor(tx)
		seq, hash = a.Seq, a.Hash
		return err
	})
	return seq, hash, err
}

// recordHead decodes just what chaining and pruning need.
type recordHead struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Hash string    `json:"hash"`
}

// headHash is the Prev for the next record.
func headHash(tx *bbolt.Tx) (string, error) {
	if k, v := tx.Bucket(store.BucketAudit).Cursor().Last(); k != nil {
		var h recordHead
		if err := json.Unmarshal(v, &h); err != nil {
			return "", fmt.Errorf("audit: decode last record: %w", err)
		}
		return h.Hash, nil
	}
	a, err := readAnchor(tx)
	return a.Hash, err
}

// anchor stands in for the records Prune removed: the next record links to Hash.
type anchor struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// readAnchor returns the stored anchor, or {0, Genesis} before the first prune.
func readAnchor(tx *bbolt.Tx) (anchor, error) {
	a := anchor{Hash: Genesis}
	if _, err := store.GetJSON(tx, store.BucketMeta, anchorKey, &a); err != nil {
		return anchor{}, fmt.Errorf("audit: read anchor: %w", err)
	}
	return a, nil
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// pruneBatch bounds the records one Prune transaction deletes, so pruning a
// long backlog does not build one huge transaction.
const pruneBatch = 10_000

// Prune deletes records older than the retention, oldest first, and returns how many went.
//
// It stops at the first record that is young enough, so a record with an
// earlier Time behind it waits for its turn. Before deleting, it checks the
// links of what it deletes and refuses (with a *ChainError) to destroy the
// evidence of a broken chain. The last deleted record's seq and hash become
// the anchor that Verify starts from. With Retention 0 it does nothing.
func (l *Log) Prune(now time.Time) (int, error) {
	if l.retention <= 0 {
		return 0, nil
	}
	cutoff := now.Add(-l.retention)
	total := 0
	for {
		n, err := l.pruneOnce(cutoff)
		total += n
		if err != nil || n < pruneBatch {
			if total > 0 {
				slog.Info("audit log pruned", "records", total, "before", cutoff)
			}
			return total, err
		}
	}
}

func (l *Log) pruneOnce(cutoff time.Time) (int, error) {
	var n int
	err := l.db.Update(func(tx *bbolt.Tx) error {
		a, err := readAnchor(tx)
		if err != nil {
			return err
		}
		b := tx.Bucket(store.BucketAudit)
		var doomed [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(doomed) < pruneBatch; k, v = c.Next() {
			r, cerr := checkLink(k, v, a.Seq+1, a.Hash)
			if cerr != nil {
				return cerr
			}
			if !r.Time.Before(cutoff) {
				break
			}
			doomed = append(doomed, bytes.Clone(k))
			a = anchor{Seq: r.Seq, Hash: r.Hash}
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("audit: prune: %w", err)
			}
		}
		n = len(doomed)
		if n == 0 {
			return nil
		}
		return store.PutJSON(tx, store.BucketMeta, anchorKey, a)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
