package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// rowJSON is the line and field of one reported bad row.
type rowJSON struct {
	Line  int    `json:"line"`
	Field string `json:"field"`
}

// wantRowsRejected checks a 422 import answer and returns its rows.
func wantRowsRejected(t *testing.T, res response) []rowJSON {
	t.Helper()
	if res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422; body %s", res.Status, res.Body)
	}
	var out struct {
		Error apiErr `json:"error"`
		Rows  []struct {
			rowJSON
			Message string `json:"message"`
		} `json:"rows"`
		RowsTotal int `json:"rows_total"`
	}
	decodeInto(t, res, &out)
	if out.Error.Code != "rows_rejected" || out.Error.Message == "" || out.RowsTotal != len(out.Rows) {
		t.Fatalf("rejection body %s", res.Body)
	}
	var rows []rowJSON
	for _, r := range out.Rows {
		if r.Message == "" {
			t.Fatalf("row without a message: %s", res.Body)
		}
		rows = append(rows, r.rowJSON)
	}
	return rows
}

func sameRows(got, want []rowJSON) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// importRegionsFixture gives the app the district with two streets.
func (a *testApp) importRegionsFixture() {
	a.t.Helper()
	res := a.do(http.MethodPost, "/api/v1/regions/import", a.token, "text/csv",
		"code,name,parent\n440307,District,\n440307001,Street 1,440307\n440307002,Street 2,440307\n")
	if res.Status != http.StatusOK {
		a.t.Fatalf("regions: %s", res)
	}
}

func (a *testApp) pointTotal() int {
	a.t.Helper()
	var l struct{ Total int }
	decodeInto(a.t, a.admin(http.MethodGet, "/api/v1/points", nil), &l)
	if l.Total != a.Catalog.Len() {
		a.t.Fatalf("API total %d, catalog %d", l.Total, a.Catalog.Len())
	}
	return l.Total
}

const pointsHeader = "id,name,kind,category,region,lat,lon,level,address,tags,ptz,main_url,sub_url,on_demand\n"

// pointsCSV has three valid points: two with IDs, one to be generated.
const pointsCSV = pointsHeader +
	"res-1,水库一号,hd,reservoir,440307001,22.55,113.94,2,Dam road 1,water;dam,false,rtsp://127.0.0.1:9/res1,,true\n" +
	"pano-1,Mast,panoramic,forest-fire,440307002,22.6,113.9,1,,,true,,,false\n" +
	",School gate,hd,school,440307002,,,1,,,false,rtsp://127.0.0.1:9/sch,rtsp://127.0.0.1:9/sch-sub,true\n"

func TestPointImportWithBadRowsReportsEveryLineAndWritesNothing(t *testing.T) {
	a := startApp(t)
	a.importRegionsFixture()
	a.createPoint("taken", map[string]string{"type": "publish"})
	before := a.pointTotal()

	bad := pointsHeader +
		"ok-1,Fine,hd,river,440307001,,,1,,,false,,,true\n" + // line 2: fine
		"bad-cat,Volcano,hd,volcano,440307001,,,1,,,false,,,true\n" + // 3: category
		"bad-reg,Nowhere,hd,river,440399001,,,1,,,false,,,true\n" + // 4: region
		"ok-1,Twice,hd,river,440307001,,,1,,,false,,,true\n" + // 5: repeats line 2
		"taken,Exists,hd,river,440307001,,,1,,,false,,,true\n" + // 6: exists
		"short,row\n" + // 7: field count
		"bad-url,Cam,hd,river,440307001,,,1,,,false,http://x/y,,true\n" // 8: main_url
	res := a.do(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", bad)
	got := wantRowsRejected(t, res)
	want := []rowJSON{{3, "category"}, {4, "region"}, {5, "id"}, {6, "id"}, {7, "record"}, {8, "main_url"}}
	if !sameRows(got, want) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
	if n := a.pointTotal(); n != before {
		t.Fatalf("a rejected import wrote: %d points, had %d", n, before)
	}

	geo := `{"type":"FeatureCollection","features":[
		{"type":"Feature","geometry":{"type":"Point","coordinates":[113.9,22.5]},"properties":{"id":"g1","name":"G1","category":"river","region":"440307001","level":1}},
		{"type":"Feature","geometry":{"type":"Point","coordinates":[113.9,95]},"properties":{"id":"g2","name":"G2","category":"river","level":1}},
		{"type":"Feature","geometry":null,"properties":{"id":"g3","name":"G3","category":"river","level":9}}]}`
	got = wantRowsRejected(t, a.do(http.MethodPost, "/api/v1/points/import", a.token, "application/geo+json", geo))
	if len(got) != 2 || got[0].Line != 2 || got[1] != (rowJSON{3, "level"}) {
		t.Fatalf("geojson rows %+v", got)
	}
	if n := a.pointTotal(); n != before {
		t.Fatalf("a rejected GeoJSON import wrote: %d points, had %d", n, before)
	}
	if len(a.audited("point.import")) != 0 {
		t.Fatal("a rejected import was audited as done")
	}
}

func TestPointImportRefusesWrongTypesOversizeBodiesAndNonAdmins(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxImportBytes = 64 << 10
	a := startAppWith(t, cfg)
	a.importRegionsFixture()

	for _, ct := range []string{"text/plain", "", "application/x-www-form-urlencoded"} {
		e := wantError(t, a.do(http.MethodPost, "/api/v1/points/import", a.token, ct, pointsCSV), http.StatusUnsupportedMediaType)
		if e.Code != "bad_content_type" {
			t.Fatalf("%q: code %q", ct, e.Code)
		}
	}
	// One byte over the bound, announced and streamed.
	big := pointsHeader + ",x,hd,river,440307001,,,1," + strings.Repeat("a", 64<<10) + ",,false,,,true\n"
	e := wantError(t, a.do(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", big), http.StatusRequestEntityTooLarge)
	if !strings.Contains(e.Message, "64 KiB") {
		t.Fatalf("413 message %q does not name the limit", e.Message)
	}
	wantError(t, a.doStream(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", strings.NewReader(big)), http.StatusRequestEntityTooLarge)
	wantError(t, a.doStream(http.MethodPost, "/api/v1/points/import", a.token, "application/geo+json",
		strings.NewReader(`{"type":"FeatureCollection","features":[`+strings.Repeat(" ", 64<<10)+`]}`)), http.StatusRequestEntityTooLarge)
	// Within the bound, the same request streamed works.
	res := a.doStream(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", strings.NewReader(pointsCSV))
	if res.Status != http.StatusOK || string(res.Body) != `{"imported":3}` {
		t.Fatalf("streamed import: %s", res)
	}

	wantError(t, a.do(http.MethodPost, "/api/v1/points/import", a.token, "application/geo+json", `{"type":"FeatureCollection","features":[`), http.StatusBadRequest)
	e = wantError(t, a.do(http.MethodPost, "/api/v1/points/import", a.token, "application/geo+json", `{"type":"Feature"}`), http.StatusUnprocessableEntity)
	if e.Field != "type" {
		t.Fatalf("not a collection: field %q", e.Field)
	}
	e = wantError(t, a.do(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", "id,name\n"), http.StatusUnprocessableEntity)
	if e.Field != "header" {
		t.Fatalf("bad header: field %q", e.Field)
	}
	wantError(t, a.do(http.MethodPost, "/api/v1/points/import?dry_run=2", a.token, "text/csv", pointsCSV), http.StatusBadRequest)

	a.createUser("viewer", "viewer-pass-1")
	v := a.loginAs("viewer", "viewer-pass-1")
	wantError(t, a.do(http.MethodPost, "/api/v1/points/import", v, "text/csv", pointsCSV), http.StatusForbidden)
	wantError(t, a.do(http.MethodPost, "/api/v1/points/import", "", "text/csv", pointsCSV), http.StatusUnauthorized)
}

// exportOf downloads the caller's export in format.
func (a *testApp) exportOf(token, format string) []byte {
	a.t.Helper()
	res := a.do(http.MethodGet, "/api/v1/points/export?format="+format, token, "", nil)
	if res.Status != http.StatusOK {
		a.t.Fatalf("export %s: %s", format, res)
	}
	ext := map[string]string{"csv": "csv", "geojson": "geojson"}[format]
	if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="tianyan-points.`+ext+`"` {
		a.t.Fatalf("export %s: Content-Disposition %q", format, cd)
	}
	return res.Body
}

func TestPointImportThenExportRoundTripsInBothFormats(t *testing.T) {
	a := startApp(t)
	a.importRegionsFixture()
	res := a.do(http.MethodPost, "/api/v1/points/import?dry_run=true", a.token, "text/csv", pointsCSV)
	if res.Status != http.StatusOK || string(res.Body) != `{"dry_run":true,"valid":3}` {
		t.Fatalf("dry run: %s", res)
	}
	if n := a.pointTotal(); n != 0 {
		t.Fatalf("dry run wrote %d points", n)
	}
	res = a.do(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", pointsCSV)
	if res.Status != http.StatusOK || string(res.Body) != `{"imported":3}` {
		t.Fatalf("import: %s", res)
	}
	recs := a.audited("point.import")
	if len(recs) != 1 || recs[0].Detail["count"] != "3" || recs[0].User != "admin" {
		t.Fatalf("point.import audit %+v", recs)
	}

	// Imported points are in the hub at once, like created ones: stats
	// answers for every one (it is 404 for a point the hub does not know).
	var list struct {
		Items []struct {
			ID       string   `json:"id"`
			Name     string   `json:"name"`
			Category string   `json:"category"`
			Region   string   `json:"region"`
			Level    int      `json:"level"`
			Tags     []string `json:"tags"`
			Lat      *float64 `json:"lat"`
			OnDemand bool     `json:"on_demand"`
		} `json:"items"`
	}
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/points?sort=id", nil), &list)
	if len(list.Items) != 3 {
		t.Fatalf("points after import: %+v", list.Items)
	}
	for _, p := range list.Items {
		if res := a.admin(http.MethodGet, "/api/v1/points/"+p.ID+"/stats", nil); res.Status != http.StatusOK {
			t.Fatalf("imported point %s unknown to the hub: %s", p.ID, res)
		}
		if p.ID == "res-1" && (p.Name != "水库一号" || p.Category != "reservoir" || p.Region != "440307001" || p.Level != 2 ||
			len(p.Tags) != 2 || p.Lat == nil || *p.Lat != 22.55 || !p.OnDemand) {
			t.Fatalf("res-1 as imported: %+v", p)
		}
	}

	csvA, geoA := a.exportOf(a.token, "csv"), a.exportOf(a.token, "geojson")
	if !bytes.HasPrefix(csvA, []byte("id,name,kind,")) || bytes.Count(csvA, []byte("\n")) != 4 {
		t.Fatalf("CSV export:\n%s", csvA)
	}
	var fc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(geoA, &fc); err != nil || fc.Type != "FeatureCollection" || len(fc.Features) != 3 {
		t.Fatalf("GeoJSON export (%v):\n%s", err, geoA)
	}

	// Each export imported into a fresh server gives the same catalog:
	// both of its exports equal the original's, byte for byte.
	for _, tc := range []struct {
		name, ctype string
		body        []byte
	}{{"csv", "text/csv", csvA}, {"geojson", "application/geo+json", geoA}} {
		b := startApp(t)
		b.importRegionsFixture()
		res := b.do(http.MethodPost, "/api/v1/points/import", b.token, tc.ctype, string(tc.body))
		if res.Status != http.StatusOK || string(res.Body) != `{"imported":3}` {
			t.Fatalf("re-import of the %s export: %s", tc.name, res)
		}
		if got := b.exportOf(b.token, "csv"); !bytes.Equal(got, csvA) {
			t.Fatalf("after a %s round trip the CSV export differs:\n%s\nwant\n%s", tc.name, got, csvA)
		}
		if got := b.exportOf(b.token, "geojson"); !bytes.Equal(got, geoA) {
			t.Fatalf("after a %s round trip the GeoJSON export differs:\n%s\nwant\n%s", tc.name, got, geoA)
		}
	}
}

func TestPointExportIsScopedAndNeverCarriesCameraPasswords(t *testing.T) {
	a := startApp(t)
	a.importRegionsFixture()
	const secret = "Cam-S3cret"
	for _, p := range []map[string]any{
		{"id": "res1", "name": "Reservoir", "category": "reservoir", "region": "440307001", "level": 2,
			"main": map[string]string{"type": "rtsp", "url": "rtsp://cam:" + secret + "@127.0.0.1:9/main"},
			"sub":  map[string]string{"type": "rtsp", "url": "rtsp://cam:" + secret + "@127.0.0.1:9/sub"}},
		{"id": "sch1", "name": "School", "category": "school", "region": "440307002", "level": 1, "main": map[string]string{"type": "publish"}},
	} {
		if res := a.admin(http.MethodPost, "/api/v1/points", p); res.Status != http.StatusCreated {
			t.Fatalf("create: %s", res)
		}
	}
	for _, format := range []string{"csv", "geojson"} {
		body := a.exportOf(a.token, format)
		if bytes.Contains(body, []byte(secret)) || !bytes.Contains(body, []byte("rtsp://***:***@127.0.0.1:9/main")) ||
			!bytes.Contains(body, []byte("rtsp://***:***@127.0.0.1:9/sub")) {
			t.Fatalf("%s export does not redact the camera password:\n%s", format, body)
		}
	}
	res := a.admin(http.MethodGet, "/api/v1/points/export", nil)
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("default export format: %d %q", res.Status, res.Header.Get("Content-Type"))
	}
	wantError(t, a.admin(http.MethodGet, "/api/v1/points/export?format=xlsx", nil), http.StatusBadRequest)

	// A user sees in the export what the grant lets them see, nothing else.
	a.createUser("water", "water-pass-123")
	w := a.loginAs("water", "water-pass-123")
	if got := a.exportOf(w, "csv"); bytes.Count(got, []byte("\n")) != 1 {
		t.Fatalf("ungranted user's export:\n%s", got)
	}
	res = a.admin(http.MethodPost, "/api/v1/grants", map[string]any{
		"user": "water", "categories": []string{"reservoir"}, "regions": []string{"440307"}, "max_level": 2, "actions": []string{"view"},
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("grant: %s", res)
	}
	got := a.exportOf(w, "csv")
	if bytes.Count(got, []byte("\n")) != 2 || !bytes.Contains(got, []byte("\nres1,")) || bytes.Contains(got, []byte("sch1")) {
		t.Fatalf("granted user's export:\n%s", got)
	}
	recs := a.audited("point.export")
	if len(recs) != 5 || recs[0].User != "water" {
		t.Fatalf("point.export audit: %d records, newest %+v", len(recs), recs[0])
	}
}

func TestOversizedPointBodyIs413(t *testing.T) {
	a := startApp(t)
	a.createPoint("p1", map[string]string{"type": "publish"})
	big := fmt.Sprintf(`{"id":"p2","name":"%s","main":{"type":"publish"}}`, strings.Repeat("a", 1<<20))
	patch := fmt.Sprintf(`{"name":"%s"}`, strings.Repeat("a", 1<<20))
	for _, send := range []func(method, path, body string) response{
		func(method, path, body string) response { return a.do(method, path, a.token, "application/json", body) },
		func(method, path, body string) response {
			return a.doStream(method, path, a.token, "application/json", io.MultiReader(strings.NewReader(body)))
		},
	} {
		e := wantError(t, send(http.MethodPost, "/api/v1/points", big), http.StatusRequestEntityTooLarge)
		if e.Code != "too_large" {
			t.Fatalf("POST: code %q", e.Code)
		}
		wantError(t, send(http.MethodPatch, "/api/v1/points/p1", patch), http.StatusRequestEntityTooLarge)
		wantError(t, send(http.MethodPost, "/api/v1/regions", `{"code":"440307","name":"`+strings.Repeat("a", 1<<20)+`"}`), http.StatusRequestEntityTooLarge)
	}
	if n := a.pointTotal(); n != 1 {
		t.Fatalf("%d points after oversized bodies, want 1", n)
	}
}
