package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

func TestAppendAssignsSeqTimePrevAndHash(t *testing.T) {
	f := newFixture(t, 0)
	r1 := f.mustAppend(t, Record{User: "alice", Action: "login.ok", ClientIP: "192.0.2.1"})
	if r1.Seq != 1 || r1.Prev != Genesis || len(r1.Hash) != 64 || !r1.Time.Equal(f.clock.now()) || r1.Time.Location() != time.UTC {
		t.Fatalf("first record = %+v", r1)
	}
	f.clock.advance(time.Second)
	r2 := f.mustAppend(t, Record{User: "alice", Action: "view.start", Point: "cam1", Seq: 99, Prev: "forged", Hash: "forged"})
	if r2.Seq != 2 || r2.Prev != r1.Hash || r2.Hash == "forged" {
		t.Fatalf("second record = %+v", r2)
	}
	if h, _ := r2.ComputeHash(); h != r2.Hash {
		t.Errorf("Hash %s, ComputeHash %s", r2.Hash, h)
	}
	if seq, hash, err := f.log.Head(); err != nil || seq != 2 || hash != r2.Hash {
		t.Errorf("Head = %d, %s, %v", seq, hash, err)
	}
}

func TestAppendKeepsACallerTimeInUTC(t *testing.T) {
	f := newFixture(t, 0)
	at := time.Date(2025, 2, 1, 12, 0, 0, 0, time.FixedZone("CST", 8*3600))
	r := f.mustAppend(t, Record{Action: "view.stop", Time: at, DurationMs: 1500})
	if !r.Time.Equal(at) || r.Time.Location() != time.UTC {
		t.Errorf("Time = %v", r.Time)
	}
}

func TestAppendWithoutActionFails(t *testing.T) {
	f := newFixture(t, 0)
	if _, err := f.log.Append(Record{User: "alice"}); !errors.Is(err, ErrNoAction) {
		t.Fatalf("err = %v, want ErrNoAction", err)
	}
	if seq, _, _ := f.log.Head(); seq != 0 {
		t.Errorf("a record was stored: head seq %d", seq)
	}
}

func TestAppendCleansOversizedAndInvalidValuesButKeepsTheEvent(t *testing.T) {
	f := newFixture(t, 0)
	detail := map[string]string{"reason": strings.Repeat("é", 1000)}
	r := f.mustAppend(t, Record{User: "bad\xffname" + strings.Repeat("u", 500), Action: "login.fail", Detail: detail})
	if len(r.User) > maxField || !strings.HasPrefix(r.User, "bad\uFFFDname") {
		t.Errorf("User = %q (%d bytes)", r.User, len(r.User))
	}
	if v := r.Detail["reason"]; len(v) > maxDetailValue || !strings.HasPrefix(v, "éé") || strings.ContainsRune(v, '\uFFFD') {
		t.Errorf("detail value %d bytes, cut mid-rune: %v", len(v), strings.ContainsRune(v, '\uFFFD'))
	}
	if len(detail["reason"]) != 2000 {
		t.Error("Append modified the caller's map")
	}
	if _, err := f.log.Verify(); err != nil {
		t.Fatal(err)
	}
	big := map[string]string{}
	for i := range maxDetail + 1 {
		big[string(rune('a'+i%26))+strings.Repeat("k", i)] = "v"
	}
	if _, err := f.log.Append(Record{Action: "x", Detail: big}); !errors.Is(err, ErrDetailTooLarge) {
		t.Errorf("err = %v, want ErrDetailTooLarge", err)
	}
}

func TestTheCanonicalEncodingIsTheDocumentedJSON(t *testing.T) {
	r := Record{
		Seq: 7, Time: time.Date(2025, 3, 1, 16, 0, 0, 500000000, time.FixedZone("CST", 8*3600)),
		User: "alice", Action: "ptz", Point: "cam<1>", Detail: map[string]string{"z": "1", "a": "2"},
		Prev: Genesis, Hash: "ignored",
	}
	want := Genesis + `{"seq":7,"time":"2025-03-01T08:00:00.5Z","user":"alice","action":"ptz","point":"cam\u003c1\u003e","detail":{"a":"2","z":"1"},"prev":"` + Genesis + `"}`
	got, err := r.ComputeHash()
	if err != nil {
		t.Fatal(err)
	}
	if wantHash := sha256Hex(want); got != wantHash {
		t.Fatalf("ComputeHash = %s, want sha256 of %s = %s", got, want, wantHash)
	}
}

func TestVerifyOfAnUntouchedLogCountsEveryRecord(t *testing.T) {
	f := newFixture(t, 0)
	if n, err := f.log.Verify(); n != 0 || err != nil {
		t.Fatalf("empty log: Verify = %d, %v", n, err)
	}
	f.appendN(t, 25)
	if n, err := f.log.Verify(); n != 25 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

// rewrite edits the stored JSON of record seq in place, bypassing Append.
func (f fixture) rewrite(t *testing.T, seq uint64, edit func(m map[string]any)) {
	t.Helper()
	err := f.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketAudit)
		var m map[string]any
		if err := json.Unmarshal(b.Get(seqKey(seq)), &m); err != nil {
			return err
		}
		edit(m)
		raw, _ := json.Marshal(m)
		return b.Put(seqKey(seq), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func wantChainError(t *testing.T, err error, seq uint64, reason string) {
	t.Helper()
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != seq || !strings.Contains(ce.Reason, reason) {
		t.Fatalf("err = %v, want *ChainError at seq %d mentioning %q", err, seq, reason)
	}
	if !strings.Contains(err.Error(), "seq ") {
		t.Errorf("message %q does not name the seq", err)
	}
}

func TestVerifyAfterAStoredRecordsUserWasEditedFailsNamingItsSeq(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 10)
	f.rewrite(t, 6, func(m map[string]any) { m["user"] = "mallory" })
	n, err := f.log.Verify()
	wantChainError(t, err, 6, "altered")
	if n != 5 {
		t.Errorf("n = %d, want the 5 good records before it", n)
	}
}

func TestVerifyAfterARecordWasRehashedFailsAtTheNextLink(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 10)
	// A careful forger recomputes the edited record's own hash; the next
	// record's Prev still gives it away.
	f.rewrite(t, 4, func(m map[string]any) {
		m["user"] = "mallory"
		raw, _ := json.Marshal(m)
		var r Record
		_ = json.Unmarshal(raw, &r)
		m["hash"], _ = r.ComputeHash()
	})
	_, err := f.log.Verify()
	wantChainError(t, err, 5, "prev")
}

func TestVerifyAfterAMiddleRecordWasDeletedFailsNamingTheGap(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 10)
	_ = f.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(store.BucketAudit).Delete(seqKey(5)) })
	_, err := f.log.Verify()
	wantChainError(t, err, 5, "missing")
}

func TestVerifyAfterTheFirstOrLastRecordWasDeletedFails(t *testing.T) {
	for _, tc := range []struct {
		name     string
		del, seq uint64
	}{{"first", 1, 1}, {"last", 10, 10}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 0)
			f.appendN(t, 10)
			_ = f.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(store.BucketAudit).Delete(seqKey(tc.del)) })
			_, err := f.log.Verify()
			wantChainError(t, err, tc.seq, "missing")
		})
	}
}

func TestVerifyAfterTwoRecordsWereSwappedFails(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 10)
	_ = f.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketAudit)
		v3, v4 := bytes.Clone(b.Get(seqKey(3))), bytes.Clone(b.Get(seqKey(4)))
		_ = b.Put(seqKey(3), v4)
		return b.Put(seqKey(4), v3)
	})
	_, err := f.log.Verify()
	wantChainError(t, err, 3, "moved")

	// Renumbering the swapped records to match their keys breaks the links instead.
	f.rewrite(t, 3, func(m map[string]any) { m["seq"] = 3 })
	f.rewrite(t, 4, func(m map[string]any) { m["seq"] = 4 })
	_, err = f.log.Verify()
	wantChainError(t, err, 3, "")
}

func TestConcurrentAppendsFormOneValidChainWithContiguousSeqs(t *testing.T) {
	f := newFixture(t, 0)
	const goroutines, each = 8, 40
	seqs := make(chan uint64, goroutines*each)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r, err := f.log.Append(Record{User: "u" + string(rune('a'+g)), Action: "view.start", Detail: map[string]string{"i": string(rune('0' + i%10))}})
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- r.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d assigned twice", s)
		}
		seen[s] = true
	}
	for s := uint64(1); s <= goroutines*each; s++ {
		if !seen[s] {
			t.Fatalf("seq %d never assigned", s)
		}
	}
	if n, err := f.log.Verify(); n != goroutines*each || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestPruneDeletesOldRecordsAndVerifyStillPasses(t *testing.T) {
	f := newFixture(t, time.Hour)
	old := f.appendN(t, 5)
	f.clock.advance(2 * time.Hour)
	young := f.appendN(t, 3)
	n, err := f.log.Prune(f.clock.now())
	if err != nil || n != 5 {
		t.Fatalf("Prune = %d, %v; want 5", n, err)
	}
	if v, err := f.log.Verify(); v != 3 || err != nil {
		t.Fatalf("Verify after prune = %d, %v", v, err)
	}
	var a anchor
	_ = f.db.View(func(tx *bbolt.Tx) error {
		_, err := store.GetJSON(tx, store.BucketMeta, []byte("audit.anchor"), &a)
		return err
	})
	if a.Seq != 5 || a.Hash != old[4].Hash {
		t.Errorf("anchor = %+v, want seq 5 and the hash of the last pruned record", a)
	}
	if n, _ := f.log.Prune(f.clock.now()); n != 0 {
		t.Errorf("second Prune removed %d", n)
	}
	// Appending continues the chain from where it was.
	r := f.mustAppend(t, Record{Action: "login.ok"})
	if r.Seq != 9 || r.Prev != young[2].Hash {
		t.Errorf("next record = %+v", r)
	}
	if v, err := f.log.Verify(); v != 4 || err != nil {
		t.Fatalf("Verify = %d, %v", v, err)
	}
}

func TestPruningEverythingKeepsTheChainGoing(t *testing.T) {
	f := newFixture(t, time.Minute)
	recs := f.appendN(t, 4)
	f.clock.advance(time.Hour)
	if n, err := f.log.Prune(f.clock.now()); n != 4 || err != nil {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if v, err := f.log.Verify(); v != 0 || err != nil {
		t.Fatalf("Verify of an emptied log = %d, %v", v, err)
	}
	if seq, hash, _ := f.log.Head(); seq != 4 || hash != recs[3].Hash {
		t.Errorf("Head = %d, %s; want the anchor", seq, hash)
	}
	r := f.mustAppend(t, Record{Action: "login.ok"})
	if r.Seq != 5 || r.Prev != recs[3].Hash {
		t.Errorf("record after emptying = %+v", r)
	}
	if v, err := f.log.Verify(); v != 1 || err != nil {
		t.Fatalf("Verify = %d, %v", v, err)
	}
}

func TestPruneWithZeroRetentionKeepsEverything(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 3)
	if n, err := f.log.Prune(f.clock.now().Add(100 * 365 * 24 * time.Hour)); n != 0 || err != nil {
		t.Fatalf("Prune = %d, %v", n, err)
	}
}

func TestPruneRefusesToDestroyEvidenceOfTampering(t *testing.T) {
	f := newFixture(t, time.Hour)
	f.appendN(t, 5)
	f.clock.advance(2 * time.Hour)
	f.rewrite(t, 2, func(m map[string]any) { m["action"] = "nothing.to.see" })
	n, err := f.log.Prune(f.clock.now())
	wantChainError(t, err, 2, "altered")
	if n != 0 {
		t.Errorf("pruned %d records", n)
	}
	if _, err := f.log.Verify(); err == nil {
		t.Error("evidence gone")
	}
}

func TestPruneWorksThroughMoreThanOneBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("appends over 10k records")
	}
	f := newFixture(t, time.Hour)
	err := f.db.Update(func(tx *bbolt.Tx) error {
		// Build a long valid chain in one transaction; Append would fsync each.
		b := tx.Bucket(store.BucketAudit)
		prev := Genesis
		for i := range pruneBatch + 5 {
			seq, _ := b.NextSequence()
			r := Record{Seq: seq, Time: f.clock.now().Add(time.Duration(i) * time.Millisecond), Action: "ptz", Prev: prev}
			r.Hash, _ = r.ComputeHash()
			raw, _ := json.Marshal(r)
			if err := b.Put(seqKey(seq), raw); err != nil {
				return err
			}
			prev = r.Hash
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.advance(2 * time.Hour)
	f.mustAppend(t, Record{Action: "login.ok"})
	if n, err := f.log.Prune(f.clock.now()); n != pruneBatch+5 || err != nil {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if v, err := f.log.Verify(); v != 1 || err != nil {
		t.Fatalf("Verify = %d, %v", v, err)
	}
}

func TestRecordsSurviveReopeningTheStore(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := New(db, Options{})
	r, err := l.Append(Record{User: "alice", Action: "login.ok", Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	db, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, _ = New(db, Options{})
	if n, err := l.Verify(); n != 1 || err != nil {
		t.Fatalf("Verify after reopen = %d, %v", n, err)
	}
	got, _, _ := l.Query(Filter{})
	if len(got) != 1 || got[0].Hash != r.Hash || !got[0].Time.Equal(r.Time) {
		t.Errorf("after reopen: %+v", got)
	}
}

func TestNewRejectsNilStoreAndNegativeRetention(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	f := newFixture(t, 0)
	if _, err := New(f.db, Options{Retention: -time.Hour}); err == nil {
		t.Error("negative retention accepted")
	}
}

func BenchmarkAppend(b *testing.B) {
	f := newFixture(b, 0)
	r := Record{User: "alice", Action: "view.start", Point: "cam-0042", ClientIP: "192.0.2.10",
		Detail: map[string]string{"transport": "webrtc"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.log.Append(r); err != nil {
			b.Fatal(err)
		}
	}
}
