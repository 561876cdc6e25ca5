package web

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
)

// fakeAuditLog answers queries from the records it holds, applying the
// filter's point predicate as the real log does, and keeps the filter.
type fakeAuditLog struct {
	records []audit.Record
	asked   []audit.Filter
}

func (f *fakeAuditLog) match(flt audit.Filter) []audit.Record {
	f.asked = append(f.asked, flt)
	var out []audit.Record
	for _, r := range f.records {
		if flt.PointIn != nil && !flt.PointIn(r.Point) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func (f *fakeAuditLog) Query(flt audit.Filter) ([]audit.Record, uint64, error) {
	return f.match(flt), 0, nil
}

func (f *fakeAuditLog) ExportCSV(w io.Writer, flt audit.Filter) error {
	for _, r := range f.match(flt) {
		if _, err := io.WriteString(w, r.Action+","+r.Point+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeAuditLog) Verify() (int, error) { return len(f.records), nil }

func (f *fakeAuditLog) Head() (uint64, string, error) { return uint64(len(f.records)), "cafe", nil }

// fakeScopedPoints finds points and says whether a scope admits them: a
// scope rule here admits the points of its categories.
type fakeScopedPoints map[string]catalog.Point

func (f fakeScopedPoints) Get(id string) (catalog.Point, error) {
	p, ok := f[id]
	if !ok {
		return catalog.Point{}, catalog.ErrNotFound
	}
	return p, nil
}

func (f fakeScopedPoints) InScope(p catalog.Point, s catalog.Scope) bool {
	for _, r := range s.Rules {
		for _, c := range r.Categories {
			if c == p.Category {
				return true
			}
		}
	}
	return s.All
}

func TestAuditQueryShowsAnAuditGrantOnlyTheRecordsOfItsPoints(t *testing.T) {
	log := &fakeAuditLog{records: []audit.Record{
		{Action: "login.ok", User: "water"},
		{Action: "view.start", Point: "res-1"},
		{Action: "ptz.move", Point: "road-1"},
		{Action: "point.update", Point: "res-2"},
		{Action: "point.delete", Point: "gone"},
	}}
	points := fakeScopedPoints{
		"res-1":  {ID: "res-1", Category: "reservoir"},
		"res-2":  {ID: "res-2", Category: "reservoir"},
		"road-1": {ID: "road-1", Category: "road"},
	}
	var scoped []string
	decide := &fakeDecider{t: t,
		system: map[string][]permissions.SystemAction{"auditor": {permissions.ReadAudit}},
		scope: func(u accounts.User, a permissions.Action) catalog.Scope {
			scoped = append(scoped, u.Username+":"+string(a))
			return catalog.Scope{Rules: []catalog.ScopeRule{{Categories: []string{"reservoir"}}}}
		}}
	s := &Server{audit: &auditHandler{records: log, decide: decide, points: points, log: quiet}}
	actions := func(who string, format string) string {
		t.Helper()
		a := call(route(t, s, "GET /api/v1/audit", as(who)), "GET", "/api/v1/audit"+format, "")
		a.want(t, http.StatusOK, "")
		if format != "" {
			return strings.TrimSpace(a.Body.String())
		}
		var page struct {
			Items []audit.Record `json:"items"`
		}
		a.decode(t, &page)
		var out []string
		for _, r := range page.Items {
			out = append(out, r.Action)
		}
		return strings.Join(out, " ")
	}

	if got := actions("auditor", ""); got != "login.ok view.start ptz.move point.update point.delete" {
		t.Fatalf("audit.read sees %q; want everything", got)
	}
	if len(scoped) != 0 || log.asked[0].PointIn != nil {
		t.Fatalf("audit.read was scoped: %v", scoped)
	}
	// The reservoir keeper's audit grant: their points' records, nothing
	// about accounts, other points or points since deleted.
	if got := actions("keeper", ""); got != "view.start point.update" {
		t.Fatalf("an audit grant on reservoirs sees %q", got)
	}
	if len(scoped) != 1 || scoped[0] != "keeper:audit" {
		t.Fatalf("scope asked %v; want the caller's audit scope", scoped)
	}
	// The export is scoped alike.
	if got := actions("keeper", "?format=csv"); got != "view.start,res-1\npoint.update,res-2" {
		t.Fatalf("export %q", got)
	}
}

func TestAuditQueryReadsItsFilterFromTheQuery(t *testing.T) {
	log := &fakeAuditLog{}
	decide := &fakeDecider{t: t, system: map[string][]permissions.SystemAction{"auditor": {permissions.ReadAudit}}}
	s := &Server{audit: &auditHandler{records: log, decide: decide, points: fakeScopedPoints{}, log: quiet}}
	h := route(t, s, "GET /api/v1/audit", as("auditor"))

	call(h, "GET", "/api/v1/audit?user=water&point=res-1&action=view.start&from=2026-01-02T03:04:05Z&limit=999999&before=42", "").want(t, http.StatusOK, "")
	f := log.asked[0]
	from, _ := time.Parse(time.RFC3339, "2026-01-02T03:04:05Z")
	if f.User != "water" || f.Point != "res-1" || f.Action != "view.start" || !f.From.Equal(from) || !f.To.IsZero() ||
		f.Limit != audit.MaxLimit || f.Before != 42 {
		t.Fatalf("filter %+v", f)
	}
	for _, q := range []string{"from=yesterday", "to=1", "limit=-1", "before=x"} {
		call(h, "GET", "/api/v1/audit?"+q, "").want(t, http.StatusBadRequest, "bad_query")
	}
	if len(log.asked) != 1 {
		t.Fatalf("a bad query reached the log: %d queries", len(log.asked))
	}
}
