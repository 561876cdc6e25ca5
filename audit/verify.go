package audit

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// ChainError reports the first place where the chain does not hold.
type ChainError struct {
	Seq    uint64 // the first sequence number that is missing, misplaced or altered
	Reason string
}

// Error returns "audit: chain broken at seq N: reason".
func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: chain broken at seq %d: %s", e.Seq, e.Reason)
}

// Verify walks the whole chain from the anchor and returns how many records
// hold; on the first broken link it returns a *ChainError naming its seq.
//
// It detects an altered record (its hash no longer matches), a record
// removed from the middle or the start (a gap in the sequence), records
// swapped or moved (a seq that disagrees with its key, or a broken Prev
// link), and records cut from the end (the bucket's sequence counter is
// ahead of the last record).
func (l *Log) Verify() (n int, err error) {
	err = l.db.View(func(tx *bbolt.Tx) error {
		a, err := readAnchor(tx)
		if err != nil {
			return err
		}
		b := tx.Bucket(store.BucketAudit)
		next, prev := a.Seq+1, a.Hash
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r, cerr := checkLink(k, v, next, prev)
			if cerr != nil {
				return cerr
			}
			n++
			next, prev = r.Seq+1, r.Hash
		}
		switch last := b.Sequence(); {
		case last >= next:
			return &ChainError{Seq: next, Reason: fmt.Sprintf("records %d..%d missing at the end", next, last)}
		case last < next-1:
			return &ChainError{Seq: last + 1, Reason: fmt.Sprintf("sequence counter %d is behind the last record %d", last, next-1)}
		}
		return nil
	})
	return n, err
}

// checkLink checks that the record stored under k (value v) is number want,
// links to prev and hashes to its stored Hash.
func checkLink(k, v []byte, want uint64, prev string) (Record, *ChainError) {
	if len(k) != 8 {
		return Record{}, &ChainError{Seq: want, Reason: fmt.Sprintf("malformed key %x", k)}
	}
	seq := binary.BigEndian.Uint64(k)
	switch {
	case seq > want:
		if seq == want+1 {
			return Record{}, &ChainError{Seq: want, Reason: fmt.Sprintf("record %d missing", want)}
		}
		return Record{}, &ChainError{Seq: want, Reason: fmt.Sprintf("records %d..%d missing", want, seq-1)}
	case seq < want:
		return Record{}, &ChainError{Seq: seq, Reason: fmt.Sprintf("record %d precedes the anchor (expected %d)", seq, want)}
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return Record{}, &ChainError{Seq: seq, Reason: "undecodable record: " + err.Error()}
	}
	if r.Seq != seq {
		return Record{}, &ChainError{Seq: seq, Reason: fmt.Sprintf("key %d holds record %d (moved)", seq, r.Seq)}
	}
	if r.Prev != prev {
		return Record{}, &ChainError{Seq: seq, Reason: "prev does not match the previous record's hash"}
	}
	h, err := r.ComputeHash()
	if err != nil {
		return Record{}, &ChainError{Seq: seq, Reason: err.Error()}
	}
	if h != r.Hash {
		return Record{}, &ChainError{Seq: seq, Reason: "hash mismatch: record altered"}
	}
	return r, nil
}
