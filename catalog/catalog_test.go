package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

func newCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, _ := newCatalogAt(t, t.TempDir())
	return c
}

// newCatalogAt opens dir and returns the catalog and its database.
func newCatalogAt(t testing.TB, dir string) (*Catalog, *store.DB) {
	t.Helper()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	c, err := New(db)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, db
}

func rtspPoint(id, name string) Point {
	return Point{
		ID:       id,
		Name:     name,
		Category: "road",
		Main:     Source{Type: SourceRTSP, URL: "rtsp://admin:secret@10.0.0.5:554/Streaming/Channels/101"},
		OnDemand: true,
	}
}

// pointDiff describes how got differs from want, comparing times with Equal; "" when equal.
func pointDiff(got, want Point) string {
	var diffs []string
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) || !got.Status.Since.Equal(want.Status.Since) {
		diffs = append(diffs, fmt.Sprintf("times %v/%v/%v, want %v/%v/%v", got.CreatedAt, got.UpdatedAt, got.Status.Since, want.CreatedAt, want.UpdatedAt, want.Status.Since))
	}
	got.CreatedAt, got.UpdatedAt, got.Status.Since = time.Time{}, time.Time{}, time.Time{}
	want.CreatedAt, want.UpdatedAt, want.Status.Since = time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		diffs = append(diffs, fmt.Sprintf("\n got %+v\nwant %+v", got, want))
	}
	return strings.Join(diffs, "; ")
}

func wantSamePoint(t *testing.T, got, want Point) {
	t.Helper()
	if d := pointDiff(got, want); d != "" {
		t.Errorf("point %s differs: %s", want.ID, d)
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
	wantSamePoint(t, got, created)
}

func TestCreateRTSPWithoutTransportDefaultsToTCP(t *testing.T) {
	c := newCatalog(t)
	p := mustCreate(t, c, rtspPoint("cam", "Cam"))
	if p.Main.Transport != TransportTCP {
		t.Errorf("Transport = %q, want tcp", p.Main.Transport)
	}
}

func TestCreatePublishPointHasNoURLOrTransport(t *testing.T) {
	c := newCatalog(t)
	p := mustCreate(t, c, Point{ID: "edge", Name: "Edge box", Category: "road", Main: Source{Type: SourcePublish}})
	if p.Main != (Source{Type: SourcePublish}) {
		t.Errorf("Main = %+v", p.Main)
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
	withSource := func(s Source) Point { return Point{ID: "cam", Name: "Cam", Category: "road", Main: s} }
	withID := func(id string) Point { return rtspPoint(id, "Cam") }
	withName := func(n string) Point { return rtspPoint("cam", n) }
	with := func(f func(*Point)) Point { p := rtspPoint("cam", "Cam"); f(&p); return p }
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
		{"missing source type", withSource(Source{}), "main.type"},
		{"unknown source type", withSource(Source{Type: "http"}), "main.type"},
		{"upper-case source type", withSource(Source{Type: "RTSP", URL: "rtsp://h/"}), "main.type"},
		{"rtsp without URL", withSource(Source{Type: SourceRTSP}), "main.url"},
		{"rtsp with http URL", withSource(Source{Type: SourceRTSP, URL: "http://h/x"}), "main.url"},
		{"rtsp URL without host", withSource(Source{Type: SourceRTSP, URL: "rtsp:///x"}), "main.url"},
		{"rtsp opaque URL", withSource(Source{Type: SourceRTSP, URL: "rtsp:h:554"}), "main.url"},
		{"rtsp URL with bad port", withSource(Source{Type: SourceRTSP, URL: "rtsp://h:70000/x"}), "main.url"},
		{"rtsp unparseable URL", withSource(Source{Type: SourceRTSP, URL: "rtsp://h/\x7f"}), "main.url"},
		{"rtsp URL with placeholder password", withSource(Source{Type: SourceRTSP, URL: "rtsp://u:***@h/"}), "main.url"},
		{"rtsp with unknown transport", withSource(Source{Type: SourceRTSP, URL: "rtsp://h/", Transport: "sctp"}), "main.transport"},
		{"publish with URL", withSource(Source{Type: SourcePublish, URL: "rtsp://h/"}), "main.url"},
		{"publish with transport", withSource(Source{Type: SourcePublish, Transport: "tcp"}), "main.transport"},
		{"GB ID with type 133", withID("44030700001330000001"), "id"},
		{"GB ID with type 000", withID("44030700000000000001"), "id"},
		{"unknown kind", with(func(p *Point) { p.Kind = "dome" }), "kind"},
		{"missing category", with(func(p *Point) { p.Category = "" }), "category"},
		{"unknown category", with(func(p *Point) { p.Category = "zoo" }), "category"},
		{"region of 7 digits", with(func(p *Point) { p.Region = "4403071" }), "region"},
		{"region with letters", with(func(p *Point) { p.Region = "44030a" }), "region"},
		{"region not in the catalog", with(func(p *Point) { p.Region = "440307" }), "region"},
		{"lat without lon", with(func(p *Point) { p.Lat = new(22.5) }), "lon"},
		{"lon without lat", with(func(p *Point) { p.Lon = new(113.9) }), "lat"},
		{"lat above 90", with(func(p *Point) { p.Lat, p.Lon = new(90.5), new(113.9) }), "lat"},
		{"lon below -180", with(func(p *Point) { p.Lat, p.Lon = new(22.5), new(-180.1) }), "lon"},
		{"lat NaN", with(func(p *Point) { p.Lat, p.Lon = new(math.NaN()), new(113.9) }), "lat"},
		{"level 5", with(func(p *Point) { p.Level = 5 }), "level"},
		{"level -1", with(func(p *Point) { p.Level = -1 }), "level"},
		{"address of 257 runes", with(func(p *Point) { p.Address = strings.Repeat("路", 257) }), "address"},
		{"17 tags", with(func(p *Point) { p.Tags = strings.Split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", ",") }), "tags"},
		{"tag of 33 runes", with(func(p *Point) { p.Tags = []string{strings.Repeat("t", 33)} }), "tags"},
		{"tag with semicolon", with(func(p *Point) { p.Tags = []string{"a;b"} }), "tags"},
		{"sub publish", with(func(p *Point) { p.Sub = &Source{Type: SourcePublish} }), "sub.type"},
		{"sub with bad URL", with(func(p *Point) { p.Sub = &Source{Type: SourceRTSP, URL: "http://h/"} }), "sub.url"},
		{"agent with control character", with(func(p *Point) { p.Agent = "a\nb" }), "agent"},
		{"camera of 129 bytes", with(func(p *Point) { p.Camera = strings.Repeat("c", 129) }), "camera"},
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
	mustCreate(t, c, rtspPoint("44030700001310000001", "GB camera"))
	mustCreate(t, c, rtspPoint("44030700001320000001", "GB IPC"))
	mustCreate(t, c, rtspPoint("123456789012345678901", "21 digits: a legacy ID"))
	mustCreate(t, c, rtspPoint("cam1", "Short legacy ID"))
	p := rtspPoint("lat-lon-limits", "Cam")
	p.Lat, p.Lon, p.Level = new(-90.0), new(180.0), MaxLevel
	mustCreate(t, c, p)
	mustCreate(t, c, Point{ID: "A.b_c-1", Name: "UDP", Category: "road", Main: Source{Type: SourceRTSP, URL: "rtsps://[fe80::1]:322/s", Transport: TransportUDP}})
}

func TestValidationErrorsNeverEchoTheSourceURL(t *testing.T) {
	c := newCatalog(t)
	_, err := c.Create(Point{ID: "cam", Name: "Cam", Category: "road", Main: Source{Type: SourceRTSP, URL: "rtsp://admin:hunter2@h:99999/x"}})
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
	if got.Name != "New" || got.Main != orig.Main || got.OnDemand != orig.OnDemand || !got.CreatedAt.Equal(orig.CreatedAt) {
		t.Errorf("Update = %+v, from %+v", got, orig)
	}
	if got.UpdatedAt.Before(orig.UpdatedAt) {
		t.Errorf("UpdatedAt went backwards")
	}
	off := false
	got, err = c.Update("cam", PointPatch{OnDemand: &off, Main: &Source{Type: SourcePublish}})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := c.Get("cam")
	wantSamePoint(t, stored, got)
	if stored.OnDemand || stored.Main != (Source{Type: SourcePublish}) || stored.Name != "New" {
		t.Errorf("stored = %+v", stored)
	}
}

func TestUpdateWithInvalidPatchWritesNothing(t *testing.T) {
	c := newCatalog(t)
	orig := mustCreate(t, c, rtspPoint("cam", "Cam"))
	empty := ""
	off := false
	_, err := c.Update("cam", PointPatch{Name: &empty, OnDemand: &off})
	wantValidationError(t, err, "name")
	_, err = c.Update("cam", PointPatch{Main: &Source{Type: SourceRTSP, URL: "ftp://h/"}})
	wantValidationError(t, err, "main.url")
	got, _ := c.Get("cam")
	wantSamePoint(t, got, orig)
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
	shown := orig.Main.Redacted()
	shown.URL = strings.Replace(shown.URL, "/101", "/102", 1)
	if _, err := c.Update("cam", PointPatch{Main: &shown}); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Get("cam")
	if want := "rtsp://admin:secret@10.0.0.5:554/Streaming/Channels/102"; got.Main.URL != want {
		t.Errorf("URL = %q, want %q", got.Main.URL, want)
	}
}

func TestUpdateWithRedactedURLForAnotherHostIsRejected(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, rtspPoint("cam", "Cam"))
	for _, u := range []string{"rtsp://admin:***@attacker.example/x", "rtsp://***:***@attacker.example/x", "rtsp://***@attacker.example/x"} {
		evil := Source{Type: SourceRTSP, URL: u}
		_, err := c.Update("cam", PointPatch{Main: &evil})
		wantValidationError(t, err, "main.url")
	}
}

func TestUpdateWithFullyRedactedURLKeepsTheStoredCredentials(t *testing.T) {
	c := newCatalog(t)
	p := mustCreate(t, c, rtspPoint("cam", "Cam"))
	shown := p.Main.Redacted()
	if strings.Contains(shown.URL, "admin") {
		t.Fatalf("redacted URL %q still names the camera user", shown.URL)
	}
	shown.URL = strings.Replace(shown.URL, "/Streaming/Channels/101", "/Streaming/Channels/102", 1)
	got, err := c.Update("cam", PointPatch{Main: &shown})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(p.Main.URL, "/101", "/102", 1); got.Main.URL != want {
		t.Errorf("URL = %q, want %q", got.Main.URL, want)
	}
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

func TestRedactedMasksUserNameAndPassword(t *testing.T) {
	tests := []struct{ in, want string }{
		{"rtsp://admin:secret@10.0.0.5:554/Streaming/Channels/101?transportmode=unicast", "rtsp://***:***@10.0.0.5:554/Streaming/Channels/101?transportmode=unicast"},
		{"rtsps://u:p%40ss@cam.local/live", "rtsps://***:***@cam.local/live"},
		{"rtsp://user@h/x", "rtsp://***@h/x"},
		{"rtsp://h/x", "rtsp://h/x"},
		{"rtsp://u:***@h/x", "rtsp://***:***@h/x"},
		{"rtsp://***:***@h/x", "rtsp://***:***@h/x"},
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
	if !strings.Contains(p.Main.URL, "secret") || strings.Contains(r.Main.URL, "secret") {
		t.Errorf("original %q, redacted %q", p.Main.URL, r.Main.URL)
	}
}

func TestLoggingASourceNeverPrintsThePassword(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("test", "source", rtspPoint("cam", "Cam").Main)
	if strings.Contains(buf.String(), "secret") || !strings.Contains(buf.String(), "***") {
		t.Errorf("log output %s", buf.String())
	}
}

func TestCreateWithoutIDTakesCentreFromRegionAndTypeFromKind(t *testing.T) {
	c := newCatalog(t)
	for _, r := range []Region{{"110105", "Chaoyang", ""}, {"110105012", "Street", "110105"}, {"110105012003", "Community", "110105012"}} {
		if _, err := c.CreateRegion(r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ region, kind, prefix string }{
		{"110105", KindHD, "11010500" + "00" + "132" + "0"},
		{"110105012", KindPanoramic, "11010501" + "00" + "131" + "0"},
		{"110105012003", KindHD, "11010501" + "00" + "132" + "0"},
		{"", KindPanoramic, "44030700" + "00" + "131" + "0"},
	}
	for i, tt := range tests {
		p := rtspPoint("", "Cam")
		p.Region, p.Kind = tt.region, tt.kind
		got := mustCreate(t, c, p)
		if want := fmt.Sprintf("%s%06d", tt.prefix, i+1); got.ID != want {
			t.Errorf("region %q kind %s: ID = %s, want %s", tt.region, tt.kind, got.ID, want)
		}
	}
}

func TestCreateFillsDefaultsForKindLevelStatusAndTags(t *testing.T) {
	c := newCatalog(t)
	p := rtspPoint("cam", "Cam")
	p.Tags = []string{" gate ", "", "gate", "north"}
	p.Status = Status{State: StateOnline}
	got := mustCreate(t, c, p)
	if got.Kind != KindHD || got.Level != 1 || got.Status.State != StateUnknown || got.Status.Since.IsZero() {
		t.Errorf("defaults: kind %q level %d status %+v", got.Kind, got.Level, got.Status)
	}
	if !reflect.DeepEqual(got.Tags, []string{"gate", "north"}) {
		t.Errorf("Tags = %q, want trimmed and de-duplicated", got.Tags)
	}
}

func TestCreateAcceptsEveryFieldAndGetReturnsThemAll(t *testing.T) {
	c := newCatalog(t)
	mustCreateRegion(t, c, Region{"440307", "District", ""})
	p := Point{
		ID: "44030700001310000042", Name: "Reservoir mast", Kind: KindPanoramic, Category: "reservoir", Region: "440307",
		Lat: new(22.61), Lon: new(113.98), Address: "1 Dam Road", Level: 4, Tags: []string{"dam"}, PTZ: true,
		Main: Source{Type: SourceRTSP, URL: "rtsp://u:p@h/main", Transport: TransportUDP},
		Sub:  &Source{Type: SourceRTSP, URL: "rtsp://u:p@h/sub"}, Agent: "edge-1", Camera: "cam-3", OnDemand: false,
	}
	created := mustCreate(t, c, p)
	got, err := c.Get(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantSamePoint(t, got, created)
	if got.Sub.Transport != TransportTCP || *got.Lat != 22.61 || got.Level != 4 || got.OnDemand {
		t.Errorf("Get = %+v", got)
	}
}

func TestGetReturnsACopyThatCallersMayChange(t *testing.T) {
	c := newCatalog(t)
	p := rtspPoint("cam", "Cam")
	p.Tags, p.Lat, p.Lon = []string{"a"}, new(22.5), new(113.9)
	p.Sub = &Source{Type: SourceRTSP, URL: "rtsp://h/s"}
	mustCreate(t, c, p)
	got, _ := c.Get("cam")
	got.Tags[0], *got.Lat, got.Sub.URL = "changed", 0, "rtsp://evil/"
	again, _ := c.Get("cam")
	if again.Tags[0] != "a" || *again.Lat != 22.5 || again.Sub.URL != "rtsp://h/s" {
		t.Errorf("index changed through a returned point: %+v", again)
	}
}

func TestUpdatePatchesEveryFieldAndClearsLocationAndSub(t *testing.T) {
	c := newCatalog(t)
	mustCreateRegion(t, c, Region{"440307", "District", ""})
	p := rtspPoint("cam", "Cam")
	p.Lat, p.Lon, p.Sub = new(22.5), new(113.9), &Source{Type: SourceRTSP, URL: "rtsp://u:pw@h/sub"}
	mustCreate(t, c, p)
	kind, cat, region, addr, level, ptz, agent := KindPanoramic, "river", "440307", "Bank 2", 2, true, "edge-9"
	tags := []string{"x", "y"}
	got, err := c.Update("cam", PointPatch{Kind: &kind, Category: &cat, Region: &region, Address: &addr, Level: &level,
		PTZ: &ptz, Agent: &agent, Tags: &tags, Lat: new(22.6)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != kind || got.Category != cat || got.Region != region || got.Address != addr || got.Level != 2 ||
		!got.PTZ || got.Agent != agent || !reflect.DeepEqual(got.Tags, tags) || *got.Lat != 22.6 || *got.Lon != 113.9 {
		t.Errorf("Update = %+v", got)
	}
	shownSub := got.Redacted().Sub
	got, err = c.Update("cam", PointPatch{Sub: shownSub})
	if err != nil || got.Sub.URL != "rtsp://u:pw@h/sub" {
		t.Fatalf("redacted sub URL did not keep the password: %+v, %v", got.Sub, err)
	}
	got, err = c.Update("cam", PointPatch{ClearLocation: true, ClearSub: true})
	if err != nil || got.Lat != nil || got.Lon != nil || got.Sub != nil {
		t.Fatalf("clear: %+v, %v", got, err)
	}
	_, err = c.Update("cam", PointPatch{Lat: new(22.6)})
	wantValidationError(t, err, "lon")
	unknown := "440399"
	_, err = c.Update("cam", PointPatch{Region: &unknown})
	wantValidationError(t, err, "region")
}

func TestSetStatusRecordsStateAndSinceButNotUpdatedAt(t *testing.T) {
	dir := t.TempDir()
	c, db := newCatalogAt(t, dir)
	orig := mustCreate(t, c, rtspPoint("cam", "Cam"))
	since := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	if err := c.SetStatus("cam", StateOnline, since); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Get("cam")
	if got.Status.State != StateOnline || !got.Status.Since.Equal(since) || !got.UpdatedAt.Equal(orig.UpdatedAt) {
		t.Errorf("after SetStatus: %+v", got)
	}
	if err := c.SetStatus("cam", StateOnline, since.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get("cam"); !got.Status.Since.Equal(since) {
		t.Errorf("repeating the state moved Since to %v", got.Status.Since)
	}
	wantValidationError(t, c.SetStatus("cam", "sleeping", since), "state")
	if err := c.SetStatus("ghost", StateOffline, since); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown point: err = %v, want ErrNotFound", err)
	}
	_ = db.Close()
	reopened, _ := newCatalogAt(t, dir)
	if got, _ := reopened.Get("cam"); got.Status.State != StateOnline {
		t.Errorf("status not persisted: %+v", got.Status)
	}
}

func TestReopenedCatalogHasTheSamePointsAndRegions(t *testing.T) {
	dir := t.TempDir()
	c, db := newCatalogAt(t, dir)
	mustCreateRegion(t, c, Region{"440307", "District", ""})
	p := rtspPoint("", "Cam")
	p.Region, p.Lat, p.Lon, p.Tags = "440307", new(22.5), new(113.9), []string{"t"}
	mustCreate(t, c, p)
	mustCreate(t, c, rtspPoint("cam2", "Other"))
	before, _ := c.List()
	_ = db.Close()
	reopened, _ := newCatalogAt(t, dir)
	after, _ := reopened.List()
	if len(after) != len(before) {
		t.Fatalf("reopened has %d points, want %d", len(after), len(before))
	}
	for i := range before {
		wantSamePoint(t, after[i], before[i])
	}
	if got := reopened.RegionPath("440307"); !reflect.DeepEqual(got, []string{"440307"}) {
		t.Errorf("regions not reloaded: %v", got)
	}
}

func TestPointsStoredBeforeCategoriesAreUpgradedOnLoad(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	legacy := `{"id":"cam1","name":"Gate","source":{"type":"rtsp","url":"rtsp://u:p@h/x","transport":"tcp"},"on_demand":true,` +
		`"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`
	err = db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(store.BucketPoints).Put([]byte("cam1"), []byte(legacy)) })
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	c, db := newCatalogAt(t, dir)
	got, err := c.Get("cam1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Main.URL != "rtsp://u:p@h/x" || got.Category != DefaultCategory || got.Kind != KindHD || got.Level != 1 || got.Status.State != StateUnknown {
		t.Errorf("upgraded point = %+v", got)
	}
	var raw []byte
	_ = db.View(func(tx *bbolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(store.BucketPoints).Get([]byte("cam1")))
		return nil
	})
	if bytes.Contains(raw, []byte(`"source"`)) || !bytes.Contains(raw, []byte(`"main"`)) {
		t.Errorf("stored form not rewritten: %s", raw)
	}
}

func TestLoggingAPointNeverPrintsPasswords(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	p := rtspPoint("cam", "Cam")
	p.Sub = &Source{Type: SourceRTSP, URL: "rtsp://u:subsecret@h/s"}
	log.Info("test", "point", p)
	if strings.Contains(buf.String(), "secret") || !strings.Contains(buf.String(), "cam") {
		t.Errorf("log output %s", buf.String())
	}
}

func TestSetStatusesChangesManyPointsAtOnce(t *testing.T) {
	c := newCatalog(t)
	for _, id := range []string{"a1", "a2", "a3"} {
		if _, err := c.Create(Point{ID: id, Name: id, Category: "river", Main: Source{Type: SourcePublish}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.SetStatuses([]string{"a1", "a2", "nope"}, StateOffline, time.Time{})
	if err != nil || n != 2 {
		t.Fatalf("SetStatuses: %d %v", n, err)
	}
	for id, want := range map[string]string{"a1": StateOffline, "a2": StateOffline, "a3": StateUnknown} {
		if p, _ := c.Get(id); p.Status.State != want {
			t.Errorf("%s is %q, want %q", id, p.Status.State, want)
		}
	}
	if _, err := c.SetStatuses([]string{"a1"}, "broken", time.Time{}); err == nil {
		t.Error("bad state accepted")
	}
}

// TestAgentStatesAreStatesOfTheirOwn: a point whose edge agent is out of
// touch is stale, then agent_offline; each is kept, searched and counted
// apart from a camera that is offline.
func TestAgentStatesAreStatesOfTheirOwn(t *testing.T) {
	dir := t.TempDir()
	c, db := newCatalogAt(t, dir)
	for _, id := range []string{"s1", "g1", "g2", "o1"} {
		if _, err := c.Create(Point{ID: id, Name: id, Category: "river", Main: Source{Type: SourcePublish}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetStatus("s1", StateStale, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, err := c.SetStatuses([]string{"g1", "g2"}, StateAgentOffline, time.Time{}); err != nil || n != 2 {
		t.Fatalf("SetStatuses agent_offline: %d %v", n, err)
	}
	if err := c.SetStatus("o1", StateOffline, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for state, want := range map[string]int{StateStale: 1, StateAgentOffline: 2, StateOffline: 1} {
		res, err := c.Search(Query{Status: state}, Scope{All: true})
		if err != nil || res.Total != want {
			t.Errorf("search status=%s: %d (%v), want %d", state, res.Total, err, want)
		}
	}
	f, err := c.Facets(Query{}, Scope{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.Status[StateStale] != 1 || f.Status[StateAgentOffline] != 2 || f.Status[StateOffline] != 1 {
		t.Errorf("facets %v", f.Status)
	}
	_ = db.Close()
	reopened, _ := newCatalogAt(t, dir)
	if p, _ := reopened.Get("g1"); p.Status.State != StateAgentOffline {
		t.Errorf("agent_offline not persisted: %+v", p.Status)
	}
}

func TestPointIDsThatNameAPIRoutesAreRefused(t *testing.T) {
	c := newCatalog(t)
	for _, id := range ReservedIDs {
		_, err := c.Create(Point{ID: id, Name: id, Category: "river", Main: Source{Type: SourcePublish}})
		wantValidationError(t, err, "id")
	}
}

func TestGB28181PointNamesItsDeviceAndNoURL(t *testing.T) {
	c := newCatalog(t)
	dev := "34020000001180000001"
	p := mustCreate(t, c, Point{ID: "34020000001320000001", Name: "NVR ch 1", Category: "road", Main: Source{Type: SourceGB28181, Device: dev}})
	if p.Main != (Source{Type: SourceGB28181, Device: dev}) {
		t.Errorf("Main = %+v", p.Main)
	}
	got, err := c.Get(p.ID)
	if err != nil || got.Main.Device != dev {
		t.Fatalf("stored Main = %+v, %v", got.Main, err)
	}
	for _, bad := range []struct {
		src   Source
		field string
	}{
		{Source{Type: SourceGB28181}, "main.device"},
		{Source{Type: SourceGB28181, Device: "3402000000118000000x"}, "main.device"},
		{Source{Type: SourceGB28181, Device: dev, URL: "rtsp://h/x"}, "main.url"},
		{Source{Type: SourceGB28181, Device: dev, Transport: "sctp"}, "main.transport"},
		{Source{Type: SourcePublish, Device: dev}, "main.device"},
	} {
		_, err := c.Create(Point{ID: "34020000001320000009", Name: "bad", Category: "road", Main: bad.src})
		wantValidationError(t, err, bad.field)
	}
}
