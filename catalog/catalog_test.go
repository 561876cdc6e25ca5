package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/tianyan/vms/store"
)

func newCatalog(t *testing.T) *Catalog {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return New(db)
}

func rtspPoint(id, name string) Point {
	return Point{
		ID:       id,
		Name:     name,
		Source:   Source{Type: SourceRTSP, URL: "rtsp://admin:secret@10.0.0.5:554/Streaming/Channels/101"},
		OnDemand: true,
	}
}

func mustCreate(t *testing.T, c *Catalog, p Point) Point {
	t.Helper()
	got, err := c.Create(p)
	if err != nil {
		t.Fatalf("Create(%q): %v", p.ID, err)
	}
	return got
}

func wantValidationError(t *testing.T, err error, field string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v (%T), want *ValidationError", err, err)
	}
	if ve.Field != field {
		t.Fatalf("ValidationError.Field = %q (%v), want %q", ve.Field, ve, field)
	}
}

func TestCreateWithoutIDGeneratesGB28181StyleID(t *testing.T) {
	c := newCatalog(t)
	p := mustCreate(t, c, rtspPoint("", "Gate"))
	if p.ID != "44030700001320000001" {
		t.Fatalf("ID = %q, want 44030700001320000001", p.ID)
	}
	p2 := mustCreate(t, c, rtspPoint("", "Lobby"))
	if p2.ID != "44030700001320000002" {
		t.Fatalf("second ID = %q, want 44030700001320000002", p2.ID)
	}
}

func TestCreateWithoutIDSkipsGeneratedIDsThatAlreadyExist(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, rtspPoint("44030700001320000001", "Taken by hand"))
	p := mustCreate(t, c, rtspPoint("", "Generated"))
	if p.ID != "44030700001320000002" {
		t.Fatalf("ID = %q, want the next free serial", p.ID)
	}
}

func TestCreateThenGetReturnsTheStoredPoint(t *testing.T) {
	c := newCatalog(t)
	created := mustCreate(t, c, rtspPoint("cam-1", "  Front door  "))
	if created.Name != "Front door" {
		t.Errorf("Name = %q, want trimmed", created.Name)
	}
	if created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.UpdatedAt) {
		t.Errorf("times not stamped: %v %v", created.CreatedAt, created.UpdatedAt)
	}
	got, err := c.Get("cam-1")
	if err != nil {
		t.Fatal(err)
	}
	if got != created {
		t.Errorf("Get = %+v\nwant  %+v", got, created)
	}
}

func TestCreateRTSPWithoutTransportDefaultsToTCP(t *testing.T) {
	c := newCatalog(t)
	p := mustCreate(t, c, rtspPoint("cam", "Cam"))
	if p.Source.Transport != TransportTCP {
		t.Errorf("Transport = %q, want tcp", p.Source.Transport)
	}
}

func TestCreatePublishPointHasNoURLOrTransport(t *testing.T) {
	c := newCatalog(t)
	p := mustCreate(t, c, Point{ID: "edge", Name: "Edge box", Source: Source{Type: SourcePublish}})
	if p.Source != (Source{Type: SourcePublish}) {
		t.Errorf("Source = %+v", p.Source)
	}
}

func TestCreateWithExistingIDFailsWithErrExists(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, rtspPoint("cam", "One"))
	_, err := c.Create(rtspPoint("cam", "Two"))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	got, _ := c.Get("cam")
	if got.Name != "One" {
		t.Errorf("existing point overwritten: %+v", got)
	}
}

func TestCreateWithInvalidInputFailsWithValidationErrorAndWritesNothing(t *testing.T) {
	withSource := func(s Source) Point { return Point{ID: "cam", Name: "Cam", Source: s} }
	withID := func(id string) Point { return rtspPoint(id, "Cam") }
	withName := func(n string) Point { return rtspPoint("cam", n) }
	tests := []struct {
		name  string
		p     Point
		field string
	}{
		{"id starting with dash", withID("-cam"), "id"},
		{"id with slash", withID("a/b"), "id"},
		{"id with space", withID("a b"), "id"},
		{"id with non-ASCII", withID("摄像头"), "id"},
		{"id of 65 characters", withID(strings.Repeat("a", 65)), "id"},
		{"empty name", withName(""), "name"},
		{"blank name", withName(" \t "), "name"},
		{"name of 129 runes", withName(strings.Repeat("门", 129)), "name"},
		{"name with control character", withName("a\x00b"), "name"},
		{"name with invalid UTF-8", withName("a\xffb"), "name"},
		{"missing source type", withSource(Source{}), "source.type"},
		{"unknown source type", withSource(Source{Type: "http"}), "source.type"},
		{"upper-case source type", withSource(Source{Type: "RTSP", URL: "rtsp://h/"}), "source.type"},
		{"rtsp without URL", withSource(Source{Type: SourceRTSP}), "source.url"},
		{"rtsp with http URL", withSource(Source{Type: SourceRTSP, URL: "http://h/x"}), "source.url"},
		{"rtsp URL without host", withSource(Source{Type: SourceRTSP, URL: "rtsp:///x"}), "source.url"},
		{"rtsp opaque URL", withSource(Source{Type: SourceRTSP, URL: "rtsp:h:554"}), "source.url"},
		{"rtsp URL with bad port", withSource(Source{Type: SourceRTSP, URL: "rtsp://h:70000/x"}), "source.url"},
		{"rtsp unparseable URL", withSource(Source{Type: SourceRTSP, URL: "rtsp://h/\x7f"}), "source.url"},
		{"rtsp URL with placeholder password", withSource(Source{Type: SourceRTSP, URL: "rtsp://u:***@h/"}), "source.url"},
		{"rtsp with unknown transport", withSource(Source{Type: SourceRTSP, URL: "rtsp://h/", Transport: "sctp"}), "source.transport"},
		{"publish with URL", withSource(Source{Type: SourcePublish, URL: "rtsp://h/"}), "source.url"},
		{"publish with transport", withSource(Source{Type: SourcePublish, Transport: "tcp"}), "source.transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCatalog(t)
			_, err := c.Create(tt.p)
			wantValidationError(t, err, tt.field)
			if list, _ := c.List(); len(list) != 0 {
				t.Errorf("invalid point was written: %+v", list)
			}
		})
	}
}

func TestCreateAcceptsBoundaryValues(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, rtspPoint(strings.Repeat("a", 64), strings.Repeat("门", 128)))
	mustCreate(t, c, Point{ID: "A.b_c-1", Name: "UDP", Source: Source{Type: SourceRTSP, URL: "rtsps://[fe80::1]:322/s", Transport: TransportUDP}})
}

func TestValidationErrorsNeverEchoTheSourceURL(t *testing.T) {
	c := newCatalog(t)
	_, err := c.Create(Point{ID: "cam", Name: "Cam", Source: Source{Type: SourceRTSP, URL: "rtsp://admin:hunter2@h:99999/x"}})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v, want an error that does not contain the password", err)
	}
}

func TestGetUnknownIDFailsWithErrNotFound(t *testing.T) {
	c := newCatalog(t)
	for _, id := range []string{"nope", ""} {
		if _, err := c.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) err = %v, want ErrNotFound", id, err)
		}
	}
}

func TestListOfEmptyCatalogIsEmptyNotNil(t *testing.T) {
	c := newCatalog(t)
	list, err := c.List()
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("List = %#v, %v; want empty non-nil slice", list, err)
	}
}

func TestListIsSortedByID(t *testing.T) {
	c := newCatalog(t)
	for _, id := range []string{"c", "A", "b", "a"} {
		mustCreate(t, c, rtspPoint(id, "Cam "+id))
	}
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range list {
		ids = append(ids, p.ID)
	}
	if got := strings.Join(ids, ","); got != "A,a,b,c" {
		t.Errorf("List order = %s, want A,a,b,c", got)
	}
}

func TestUpdateChangesOnlyPatchedFields(t *testing.T) {
	c := newCatalog(t)
	orig := mustCreate(t, c, rtspPoint("cam", "Old"))
	name := "New"
	got, err := c.Update("cam", PointPatch{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "New" || got.Source != orig.Source || got.OnDemand != orig.OnDemand || !got.CreatedAt.Equal(orig.CreatedAt) {
		t.Errorf("Update = %+v, from %+v", got, orig)
	}
	if got.UpdatedAt.Before(orig.UpdatedAt) {
		t.Errorf("UpdatedAt went backwards")
	}
	off := false
	got, err = c.Update("cam", PointPatch{OnDemand: &off, Source: &Source{Type: SourcePublish}})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := c.Get("cam")
	if stored != got || stored.OnDemand || stored.Source != (Source{Type: SourcePublish}) || stored.Name != "New" {
		t.Errorf("stored = %+v, returned = %+v", stored, got)
	}
}

func TestUpdateWithInvalidPatchWritesNothing(t *testing.T) {
	c := newCatalog(t)
	orig := mustCreate(t, c, rtspPoint("cam", "Cam"))
	empty := ""
	off := false
	_, err := c.Update("cam", PointPatch{Name: &empty, OnDemand: &off})
	wantValidationError(t, err, "name")
	_, err = c.Update("cam", PointPatch{Source: &Source{Type: SourceRTSP, URL: "ftp://h/"}})
	wantValidationError(t, err, "source.url")
	got, _ := c.Get("cam")
	if got != orig {
		t.Errorf("point changed by rejected patches: %+v, want %+v", got, orig)
	}
}

func TestUpdateUnknownIDFailsWithErrNotFound(t *testing.T) {
	c := newCatalog(t)
	name := "x"
	if _, err := c.Update("ghost", PointPatch{Name: &name}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestUpdateWithRedactedURLKeepsStoredPassword(t *testing.T) {
	c := newCatalog(t)
	orig := mustCreate(t, c, rtspPoint("cam", "Cam"))
	shown := orig.Source.Redacted()
	shown.URL = strings.Replace(shown.URL, "/101", "/102", 1)
	if _, err := c.Update("cam", PointPatch{Source: &shown}); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Get("cam")
	if want := "rtsp://admin:secret@10.0.0.5:554/Streaming/Channels/102"; got.Source.URL != want {
		t.Errorf("URL = %q, want %q", got.Source.URL, want)
	}
}

func TestUpdateWithRedactedURLForAnotherHostIsRejected(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, rtspPoint("cam", "Cam"))
	evil := Source{Type: SourceRTSP, URL: "rtsp://admin:***@attacker.example/x"}
	_, err := c.Update("cam", PointPatch{Source: &evil})
	wantValidationError(t, err, "source.url")
}

func TestDeleteRemovesThePoint(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, rtspPoint("cam", "Cam"))
	if err := c.Delete("cam"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("cam"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
	}
}

func TestDeleteUnknownIDFailsWithErrNotFound(t *testing.T) {
	c := newCatalog(t)
	if err := c.Delete("ghost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestConcurrentCreatesWithoutIDGetDistinctIDs(t *testing.T) {
	c := newCatalog(t)
	const n = 16
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			p, err := c.Create(rtspPoint("", fmt.Sprintf("Cam %d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			ids <- p.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("duplicate ID %s", id)
		}
		seen[id] = true
	}
	if list, _ := c.List(); len(list) != n {
		t.Errorf("List has %d points, want %d", len(list), n)
	}
}

func TestRedactedReplacesOnlyThePassword(t *testing.T) {
	tests := []struct{ in, want string }{
		{"rtsp://admin:secret@10.0.0.5:554/Streaming/Channels/101?transportmode=unicast", "rtsp://admin:***@10.0.0.5:554/Streaming/Channels/101?transportmode=unicast"},
		{"rtsps://u:p%40ss@cam.local/live", "rtsps://u:***@cam.local/live"},
		{"rtsp://user@h/x", "rtsp://user@h/x"},
		{"rtsp://h/x", "rtsp://h/x"},
		{"rtsp://u:***@h/x", "rtsp://u:***@h/x"},
		{"", ""},
		{"rtsp://u:secret@h/\x7f", "***"},
		{"rtsp:u:secret@h", "***"},
	}
	for _, tt := range tests {
		got := Source{Type: SourceRTSP, URL: tt.in}.Redacted()
		if got.URL != tt.want {
			t.Errorf("Redacted(%q) = %q, want %q", tt.in, got.URL, tt.want)
		}
	}
}

func TestRedactedDoesNotModifyTheOriginal(t *testing.T) {
	p := rtspPoint("cam", "Cam")
	r := p.Redacted()
	if !strings.Contains(p.Source.URL, "secret") || strings.Contains(r.Source.URL, "secret") {
		t.Errorf("original %q, redacted %q", p.Source.URL, r.Source.URL)
	}
}

func TestLoggingASourceNeverPrintsThePassword(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("test", "source", rtspPoint("cam", "Cam").Source)
	if strings.Contains(buf.String(), "secret") || !strings.Contains(buf.String(), "***") {
		t.Errorf("log output %s", buf.String())
	}
}
