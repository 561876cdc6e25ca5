package audit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"

	"github.com/tianyan/vms/internal/csvcell"
)

// Query page sizes.
const (
	DefaultLimit = 100   // records per Query page when Filter.Limit is 0
	MaxLimit     = 10000 // largest Query page
)

// Filter selects records; zero fields match everything.
type Filter struct {
	User   string    // exact username
	Point  string    // exact point ID
	Action string    // prefix: "login." matches "login.ok" and "login.fail"
	From   time.Time // records at or after From
	To     time.Time // records before To
	// Limit is the page size for Query (0 = DefaultLimit, capped at MaxLimit)
	// and the total for ExportCSV (0 = everything).
	Limit int
	// Before is the paging cursor: only records with Seq < Before (0 = from the newest).
	Before uint64
	// PointIn, when set, keeps only records about a point it accepts: an
	// auditor whose grant covers some points sees those points' records and
	// nothing else (no logins, no account changes).
	PointIn func(pointID string) bool
}

func (f Filter) match(r Record) bool {
	return (f.User == "" || r.User == f.User) &&
		(f.Point == "" || r.Point == f.Point) &&
		strings.HasPrefix(r.Action, f.Action) &&
		(f.From.IsZero() || !r.Time.Before(f.From)) &&
		(f.To.IsZero() || r.Time.Before(f.To)) &&
		(f.PointIn == nil || r.Point != "" && f.PointIn(r.Point))
}

// Query returns matching records newest first, and the Before cursor for the next page (0 when there is none).
//
// Filters are applied while walking back from Before, so a rare match may
// read much of the log; Time is not assumed to grow with Seq.
func (l *Log) Query(f Filter) (records []Record, next uint64, err error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	records = []Record{}
	err = l.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(store.BucketAudit).Cursor()
		var k, v []byte
		if f.Before == 0 {
			k, v = c.Last()
		} else if k, _ = c.Seek(seqKey(f.Before)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil; k, v = c.Prev() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("audit: decode record %x: %w", k, err)
			}
			if !f.match(r) {
				continue
			}
			if len(records) == limit {
				// One more match exists: the page ends at the last one kept.
				next = records[len(records)-1].Seq
				return nil
			}
			records = append(records, r)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return records, next, nil
}

// csvHeader is the first line of ExportCSV.
var csvHeader = []string{"seq", "time", "user", "action", "point", "ip", "duration_ms", "detail", "prev", "hash"}

// ExportCSV writes matching records, newest first, as CSV with a header line.
//
// time is RFC 3339 UTC with nanoseconds, duration_ms is empty when zero and
// detail is a JSON object with sorted keys (empty when there is none). Free
// text that a spreadsheet would run as a formula (starting with = + - @, tab
// or CR) is prefixed with a single quote; Query returns the raw values.
func (l *Log) ExportCSV(w io.Writer, f Filter) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	remaining := f.Limit // 0: everything
	page := f
	for {
		page.Limit = MaxLimit
		if remaining > 0 {
			page.Limit = min(remaining, MaxLimit)
		}
		records, next, err := l.Query(page)
		if err != nil {
			return err
		}
		for _, r := range records {
			row, err := csvRow(r)
			if err != nil {
				return err
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		if remaining > 0 {
			remaining -= len(records)
		}
		if next == 0 || f.Limit > 0 && remaining <= 0 {
			break
		}
		page.Before = next
	}
	cw.Flush()
	return cw.Error()
}

func csvRow(r Record) ([]string, error) {
	var detail, dur string
	if len(r.Detail) > 0 {
		raw, err := json.Marshal(r.Detail)
		if err != nil {
			return nil, fmt.Errorf("audit: encode detail of record %d: %w", r.Seq, err)
		}
		detail = string(raw)
	}
	if r.DurationMs != 0 {
		dur = strconv.FormatInt(r.DurationMs, 10)
	}
	return []string{
		strconv.FormatUint(r.Seq, 10),
		r.Time.UTC().Format(time.RFC3339Nano),
		csvcell.Neutralize(r.User), csvcell.Neutralize(r.Action), csvcell.Neutralize(r.Point), csvcell.Neutralize(r.ClientIP),
		dur, detail, r.Prev, r.Hash,
	}, nil
}
