package audit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func seqsOf(rs []Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQueryReturnsNewestFirstWithADefaultLimit(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 150)
	got, next, err := f.log.Query(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != DefaultLimit || got[0].Seq != 150 || got[99].Seq != 51 || next != 51 {
		t.Fatalf("got %d records %d..%d, next %d", len(got), got[0].Seq, got[len(got)-1].Seq, next)
	}
}

func TestQueryFiltersByUserPointActionPrefixAndTime(t *testing.T) {
	f := newFixture(t, 0)
	start := f.clock.now()
	// Records 1..6, one second apart.
	for _, r := range []Record{
		{User: "alice", Action: "login.ok"},
		{User: "bob", Action: "login.fail"},
		{User: "alice", Action: "view.start", Point: "cam1"},
		{User: "alice", Action: "view.stop", Point: "cam1"},
		{User: "bob", Action: "view.start", Point: "cam2"},
		{User: "alice", Action: "loginx", Point: "cam2"},
	} {
		f.mustAppend(t, r)
		f.clock.advance(time.Second)
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"user", Filter{User: "alice"}, []uint64{6, 4, 3, 1}},
		{"user is exact", Filter{User: "ali"}, []uint64{}},
		{"point", Filter{Point: "cam1"}, []uint64{4, 3}},
		{"action prefix", Filter{Action: "login."}, []uint64{2, 1}},
		{"action prefix without dot", Filter{Action: "login"}, []uint64{6, 2, 1}},
		{"from is inclusive", Filter{From: start.Add(3 * time.Second)}, []uint64{6, 5, 4}},
		{"to is exclusive", Filter{To: start.Add(2 * time.Second)}, []uint64{2, 1}},
		{"everything at once", Filter{User: "alice", Action: "view.", From: start.Add(time.Second), To: start.Add(4 * time.Second)}, []uint64{4, 3}},
	} {
		got, next, err := f.log.Query(tc.f)
		if err != nil || next != 0 || !equalSeqs(seqsOf(got), tc.want) {
			t.Errorf("%s: got %v next %d err %v, want %v", tc.name, seqsOf(got), next, err, tc.want)
		}
	}
}

func TestQueryCursorPagesThroughEveryMatchOnce(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 40) // users cycle alice, bob, carol
	var all []uint64
	pages := 0
	filter := Filter{User: "bob", Limit: 4}
	for {
		got, next, err := f.log.Query(filter)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, seqsOf(got)...)
		if next == 0 {
			break
		}
		if next != got[len(got)-1].Seq {
			t.Fatalf("next %d, last returned %d", next, got[len(got)-1].Seq)
		}
		filter.Before = next
	}
	var want []uint64
	for s := 38; s >= 2; s -= 3 { // bob is every third record from seq 2
		want = append(want, uint64(s))
	}
	if !equalSeqs(all, want) {
		t.Fatalf("paged %v, want %v", all, want)
	}
	if pages != 4 {
		t.Errorf("%d pages for 13 matches at 4 per page, want 4 (no empty last page)", pages)
	}
}

func TestQueryBeforeIsExclusiveAndToleratesOutOfRangeCursors(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 5)
	for _, tc := range []struct {
		before uint64
		want   []uint64
	}{
		{3, []uint64{2, 1}},
		{1, []uint64{}},
		{1000, []uint64{5, 4, 3, 2, 1}},
	} {
		got, _, err := f.log.Query(Filter{Before: tc.before})
		if err != nil || !equalSeqs(seqsOf(got), tc.want) {
			t.Errorf("Before %d: %v, %v; want %v", tc.before, seqsOf(got), err, tc.want)
		}
	}
}

func TestQueryLimitIsCappedAtMaxLimit(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 3)
	got, _, err := f.log.Query(Filter{Limit: MaxLimit * 10})
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d, %v", len(got), err)
	}
	got, next, _ := f.log.Query(Filter{Limit: 2})
	if len(got) != 2 || next != 2 {
		t.Errorf("limit 2: %v next %d", seqsOf(got), next)
	}
}

func TestQueryOfAnEmptyLogIsEmptyNotNil(t *testing.T) {
	f := newFixture(t, 0)
	got, next, err := f.log.Query(Filter{})
	if got == nil || len(got) != 0 || next != 0 || err != nil {
		t.Fatalf("Query = %v, %d, %v", got, next, err)
	}
}

func TestExportCSVWritesTheHeaderAndOneRowPerMatchNewestFirst(t *testing.T) {
	f := newFixture(t, 0)
	r1 := f.mustAppend(t, Record{User: "alice", Action: "login.ok", ClientIP: "192.0.2.1"})
	f.clock.advance(time.Second)
	r2 := f.mustAppend(t, Record{User: "alice", Action: "view.stop", Point: "cam1", DurationMs: 61000,
		Detail: map[string]string{"transport": "webrtc", "bytes": "1024"}})
	f.mustAppend(t, Record{User: "bob", Action: "login.ok"})

	var buf bytes.Buffer
	if err := f.log.ExportCSV(&buf, Filter{User: "alice"}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "seq,time,user,action,point,ip,duration_ms,detail,prev,hash" {
		t.Fatalf("header = %s", got)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want header + 2", len(rows))
	}
	want2 := []string{"2", r2.Time.Format(time.RFC3339Nano), "alice", "view.stop", "cam1", "", "61000",
		`{"bytes":"1024","transport":"webrtc"}`, r1.Hash, r2.Hash}
	want1 := []string{"1", "2025-03-01T08:00:00.123456789Z", "alice", "login.ok", "", "192.0.2.1", "", "", Genesis, r1.Hash}
	for i, want := range [][]string{want2, want1} {
		if got := rows[i+1]; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("row %d = %q\nwant    %q", i+1, got, want)
		}
	}
	var d map[string]string
	if err := json.Unmarshal([]byte(rows[1][7]), &d); err != nil || d["bytes"] != "1024" {
		t.Errorf("detail column does not decode: %v", err)
	}
}

func TestExportCSVPagesPastMaxLimitAndHonoursATotalLimit(t *testing.T) {
	f := newFixture(t, 0)
	f.appendN(t, 25)
	count := func(flt Filter) int {
		var buf bytes.Buffer
		if err := f.log.ExportCSV(&buf, flt); err != nil {
			t.Fatal(err)
		}
		rows, _ := csv.NewReader(&buf).ReadAll()
		return len(rows) - 1
	}
	if n := count(Filter{}); n != 25 {
		t.Errorf("export all: %d rows", n)
	}
	if n := count(Filter{Limit: 7}); n != 7 {
		t.Errorf("export limit 7: %d rows", n)
	}
}

func TestExportCSVDefusesSpreadsheetFormulas(t *testing.T) {
	f := newFixture(t, 0)
	f.mustAppend(t, Record{User: "=HYPERLINK(\"http://evil\")", Action: "login.fail", ClientIP: "+1"})
	var buf bytes.Buffer
	if err := f.log.ExportCSV(&buf, Filter{}); err != nil {
		t.Fatal(err)
	}
	rows, _ := csv.NewReader(&buf).ReadAll()
	if rows[1][2] != `'=HYPERLINK("http://evil")` || rows[1][5] != "'+1" {
		t.Errorf("row = %q", rows[1])
	}
}

func TestQueryPointInKeepsOnlyRecordsOfAcceptedPoints(t *testing.T) {
	f := newFixture(t, 0)
	for _, r := range []Record{
		{User: "alice", Action: "login.ok"},
		{User: "alice", Action: "view.start", Point: "cam1"},
		{User: "bob", Action: "view.start", Point: "cam2"},
		{User: "admin", Action: "user.create", Detail: map[string]string{"username": "x"}},
		{User: "bob", Action: "point.update", Point: "cam1"},
	} {
		f.mustAppend(t, r)
	}
	got, _, err := f.log.Query(Filter{PointIn: func(id string) bool { return id == "cam1" }})
	if err != nil {
		t.Fatal(err)
	}
	if !equalSeqs(seqsOf(got), []uint64{5, 2}) {
		t.Errorf("records %v, want 5 and 2 (cam1 only, no login or account records)", seqsOf(got))
	}
}
