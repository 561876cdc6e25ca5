package catalog

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

const csvHeader = "id,name,kind,category,region,lat,lon,level,address,tags,ptz,main_url,sub_url\n"

func mustImport(t testing.TB, c *Catalog, body, contentType string) int {
	t.Helper()
	n, rowErrs, err := c.ImportPoints(strings.NewReader(body), contentType, false)
	if err != nil || rowErrs != nil {
		t.Fatalf("ImportPoints: n=%d rowErrs=%v err=%v", n, rowErrs, err)
	}
	return n
}

func TestImportCSVWritesEveryRowWithDefaultsAndGeneratedIDs(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	body := csvHeader +
		"cam1,Gate,,road,440307001,22.5,113.9,,North gate,gate;north,true,rtsp://u:p@10.0.0.1/s,rtsp://u:p@10.0.0.1/sub\n" +
		",Mast,panoramic,reservoir,440307002001,,,3,,,0,,\n" +
		"44030700001320000009,Lobby,hd,school,,,,4,,,FALSE,,\n"
	n := mustImport(t, c, body, "text/csv; charset=utf-8")
	if n != 3 {
		t.Fatalf("n = %d, want 3", n)
	}
	gate, err := c.Get("cam1")
	if err != nil {
		t.Fatal(err)
	}
	if gate.Kind != KindHD || gate.Level != 1 || *gate.Lat != 22.5 || !gate.PTZ || !reflect.DeepEqual(gate.Tags, []string{"gate", "north"}) ||
		gate.Main.Type != SourceRTSP || gate.Main.Transport != TransportTCP || gate.Sub == nil || !gate.OnDemand || gate.Status.State != StateUnknown {
		t.Errorf("cam1 = %+v", gate)
	}
	list, _ := c.List()
	var mast Point
	for _, p := range list {
		if p.Name == "Mast" {
			mast = p
		}
	}
	if mast.ID != "44030700001310000001" || mast.Main.Type != SourcePublish || mast.Lat != nil || mast.Level != 3 || mast.PTZ {
		t.Errorf("generated point = %+v", mast)
	}
}

func TestImportCSVWithBadRowsReportsEveryBadLineAndWritesNothing(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	mustCreate(t, c, rtspPoint("taken", "Existing"))
	body := csvHeader +
		"ok1,Fine,,road,,,,,,,,,\n" + // 2
		"bad id!,Name,,road,,,,,,,,,\n" + // 3
		"ok2,,,road,,,,,,,,,\n" + // 4: no name
		"ok3,Name,,zoo,,,,,,,,,\n" + // 5: category
		"ok4,Name,,road,440399,,,,,,,,\n" + // 6: unknown region
		"ok5,Name,,road,,22.5,,,,,,,\n" + // 7: lat without lon
		"ok6,Name,,road,,x,113,9,,,maybe,ftp://h/,\n" + // 8: lat, level, ptz, main_url
		"taken,Name,,road,,,,,,,,,\n" + // 9: exists
		"ok1,Again,,road,,,,,,,,,\n" + // 10: repeated id
		"ok7,Name,,road\n" + // 11: field count
		"\"ok8\",\"Multi\nline\",,road,,,,,,,,,rtsp://u:***@h/\n" // 12-13: placeholder password
	n, rowErrs, err := c.ImportPoints(strings.NewReader(body), ContentTypeCSV, false)
	if !errors.Is(err, ErrRowsRejected) || n != 0 {
		t.Fatalf("ImportPoints = %d, %v; want ErrRowsRejected", n, err)
	}
	got := map[int][]string{}
	for _, re := range rowErrs {
		got[re.Line] = append(got[re.Line], re.Field)
	}
	want := map[int][]string{
		3: {"id"}, 4: {"name"}, 5: {"category"}, 6: {"region"}, 7: {"lon"},
		8: {"lat", "ptz", "level", "main_url"}, 9: {"id"}, 10: {"id"}, 11: {"record"}, 12: {"name", "sub_url"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("row errors = %v\nwant %v\n(%v)", got, want, rowErrs)
	}
	for _, re := range rowErrs {
		if strings.Contains(re.Message, "***@") || strings.Contains(re.Message, "ftp://") {
			t.Errorf("row error echoes a URL: %v", re)
		}
	}
	if list, _ := c.List(); len(list) != 1 {
		t.Errorf("rejected import wrote %d points", len(list)-1)
	}
}

func TestImportDryRunValidatesButWritesNothing(t *testing.T) {
	c := newCatalog(t)
	body := csvHeader + "cam1,Gate,,road,,,,,,,,,\n,Generated,,road,,,,,,,,,\n"
	n, rowErrs, err := c.ImportPoints(strings.NewReader(body), ContentTypeCSV, true)
	if err != nil || rowErrs != nil || n != 2 {
		t.Fatalf("dry run = %d, %v, %v", n, rowErrs, err)
	}
	if list, _ := c.List(); len(list) != 0 {
		t.Errorf("dry run wrote %v", list)
	}
	// The dry run consumed no serial either.
	if p := mustCreate(t, c, rtspPoint("", "First")); p.ID != "44030700001320000001" {
		t.Errorf("first generated ID after dry run = %s", p.ID)
	}
	n, rowErrs, err = c.ImportPoints(strings.NewReader(csvHeader+"x,,,road,,,,,,,,,\n"), ContentTypeCSV, true)
	if !errors.Is(err, ErrRowsRejected) || len(rowErrs) != 1 || n != 0 {
		t.Errorf("dry run of a bad file = %d, %v, %v", n, rowErrs, err)
	}
}

func TestImportGeneratedIDsSkipIDsOfTheSameFile(t *testing.T) {
	c := newCatalog(t)
	body := csvHeader + ",First,,road,,,,,,,,,\n44030700001320000001,Explicit,,road,,,,,,,,,\n"
	mustImport(t, c, body, ContentTypeCSV)
	list, _ := c.List()
	if len(list) != 2 || list[0].ID != "44030700001320000001" || list[1].ID != "44030700001320000002" || list[1].Name != "First" {
		t.Errorf("points = %+v", list)
	}
}

func TestImportRejectsBadHeadersContentTypesAndDocuments(t *testing.T) {
	c := newCatalog(t)
	tests := []struct{ body, contentType, field string }{
		{"", ContentTypeCSV, "header"},
		{"id,name\n", ContentTypeCSV, "header"},
		{strings.Replace(csvHeader, "lat,lon", "lon,lat", 1), ContentTypeCSV, "header"},
		{strings.TrimSuffix(csvHeader, "\n") + ",colour\n", ContentTypeCSV, "header"},
		{strings.TrimSuffix(csvHeader, "\n") + ",agent,agent\n", ContentTypeCSV, "header"},
		{csvHeader, "application/xml", "content_type"},
		{csvHeader, "", "content_type"},
		{`{"type":"Feature"}`, ContentTypeGeoJSON, "type"},
		{`{"type":"FeatureCollection","features":[]} {}`, ContentTypeGeoJSON, "body"},
		{`[1,2]`, ContentTypeGeoJSON, "body"},
	}
	for _, tt := range tests {
		_, rowErrs, err := c.ImportPoints(strings.NewReader(tt.body), tt.contentType, false)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field || rowErrs != nil {
			t.Errorf("ImportPoints(%.40q, %s) = %v, %v; want ValidationError on %s", tt.body, tt.contentType, rowErrs, err, tt.field)
		}
	}
}

func TestImportAcceptsAByteOrderMarkAndOptionalColumns(t *testing.T) {
	c := newCatalog(t)
	body := "\xef\xbb\xbf" + strings.TrimSuffix(csvHeader, "\n") + ",camera,on_demand,main_transport,agent\n" +
		"cam1,Gate,,road,,,,,,,,rtsp://h/s,,ch1,false,udp,edge-1\n"
	mustImport(t, c, body, ContentTypeCSV)
	p, _ := c.Get("cam1")
	if p.Camera != "ch1" || p.OnDemand || p.Main.Transport != TransportUDP || p.Agent != "edge-1" {
		t.Errorf("point = %+v", p)
	}
}

func TestImportRefusesInputOverTheLimits(t *testing.T) {
	c := newCatalog(t)
	defer func(b int64, r int) { maxImportBytes, maxImportRows = b, r }(maxImportBytes, maxImportRows)
	maxImportRows = 3
	body := csvHeader + strings.Repeat(",x,,road,,,,,,,,,\n", 4)
	if _, _, err := c.ImportPoints(strings.NewReader(body), ContentTypeCSV, false); !errors.Is(err, ErrTooManyRows) {
		t.Errorf("4 rows over a limit of 3: err = %v", err)
	}
	geo := `{"type":"FeatureCollection","features":[{},{},{},{}]}`
	if _, _, err := c.ImportPoints(strings.NewReader(geo), ContentTypeGeoJSON, false); !errors.Is(err, ErrTooManyRows) {
		t.Errorf("4 features over a limit of 3: err = %v", err)
	}
	maxImportRows = 200_000
	maxImportBytes = int64(len(csvHeader) + 10)
	if _, _, err := c.ImportPoints(strings.NewReader(body), ContentTypeCSV, false); !errors.Is(err, ErrTooLarge) {
		t.Errorf("CSV over the byte limit: err = %v", err)
	}
	if _, _, err := c.ImportPoints(strings.NewReader(geo+strings.Repeat(" ", 100)), ContentTypeGeoJSON, false); !errors.Is(err, ErrTooLarge) {
		t.Errorf("GeoJSON over the byte limit: err = %v", err)
	}
	maxImportBytes = int64(len(csvHeader))
	if n, _, err := c.ImportPoints(strings.NewReader(csvHeader), ContentTypeCSV, false); err != nil || n != 0 {
		t.Errorf("input of exactly the limit: %d, %v", n, err)
	}
	long := csvHeader + "cam1," + strings.Repeat("n", maxFieldBytes+1) + ",,road,,,,,,,,,\n"
	maxImportBytes = 1 << 20
	_, rowErrs, err := c.ImportPoints(strings.NewReader(long), ContentTypeCSV, false)
	if !errors.Is(err, ErrRowsRejected) || len(rowErrs) != 1 || rowErrs[0].Field != "name" {
		t.Errorf("over-long field: %v, %v", rowErrs, err)
	}
}

func TestImportGeoJSONReadsPointFeaturesAndReportsFeatureNumbers(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	good := `{"type":"FeatureCollection","features":[
		{"type":"Feature","geometry":{"type":"Point","coordinates":[113.9,22.5]},
		 "properties":{"id":"cam1","name":"Gate","category":"road","region":"440307001","level":2,"tags":["a","b"],"ptz":true,
		 "main_url":"rtsp://h/s","fid":7}},
		{"type":"Feature","geometry":null,"properties":{"id":"cam2","name":"Edge","category":"school","tags":"x;y","on_demand":false}}
	]}`
	mustImport(t, c, good, ContentTypeGeoJSON)
	p1, _ := c.Get("cam1")
	if *p1.Lon != 113.9 || *p1.Lat != 22.5 || p1.Level != 2 || !p1.PTZ || !reflect.DeepEqual(p1.Tags, []string{"a", "b"}) || p1.Region != "440307001" {
		t.Errorf("cam1 = %+v", p1)
	}
	p2, _ := c.Get("cam2")
	if p2.Lat != nil || p2.Main.Type != SourcePublish || p2.OnDemand || !reflect.DeepEqual(p2.Tags, []string{"x", "y"}) {
		t.Errorf("cam2 = %+v", p2)
	}
	bad := `{"type":"FeatureCollection","features":[
		{"type":"Feature","geometry":{"type":"Point","coordinates":[113.9,22.5]},"properties":{"id":"cam3","name":"ok","category":"road"}},
		{"type":"Feature","geometry":{"type":"LineString","coordinates":[[1,2],[3,4]]},"properties":{"id":"cam4","name":"x","category":"road"}},
		{"type":"Feature","geometry":{"type":"Point","coordinates":[200,22.5]},"properties":{"id":"cam5","name":"x","category":"road"}},
		{"type":"Feature","properties":{"id":"cam6","name":{"zh":"x"},"category":"road"}},
		{"type":"Feature","properties":{"id":"cam1","name":"dup of stored","category":"road"}},
		"not an object",
		{"type":"Point"}
	]}`
	n, rowErrs, err := c.ImportPoints(strings.NewReader(bad), ContentTypeGeoJSON, false)
	if !errors.Is(err, ErrRowsRejected) || n != 0 {
		t.Fatalf("bad GeoJSON = %d, %v", n, err)
	}
	got := map[int]string{}
	for _, re := range rowErrs {
		got[re.Line] = re.Field
	}
	want := map[int]string{2: "geometry", 3: "lon", 4: "name", 5: "id", 6: "feature", 7: "type"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("row errors = %v, want %v (%v)", got, want, rowErrs)
	}
	if _, err := c.Get("cam3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("valid feature of a rejected file was written")
	}
}

// variedPoints returns points that use every field, for round trips.
func variedPoints() []Point {
	return []Point{
		{ID: "44030700001310000001", Name: "前海水库 mast", Kind: KindPanoramic, Category: "reservoir", Region: "440307001001",
			Lat: new(22.512345678901234), Lon: new(113.8999999999), Address: "1 Dam Rd, \"north\"", Level: 4, Tags: []string{"dam", "北"},
			PTZ: true, Main: Source{Type: SourceRTSP, URL: "rtsp://admin:p%40ss@10.0.0.1:554/main?x=1", Transport: TransportUDP},
			Sub: &Source{Type: SourceRTSP, URL: "rtsps://admin:pw@10.0.0.1/sub", Transport: TransportTCP}, Agent: "edge-1", Camera: "ch,1", OnDemand: false},
		{ID: "cam-b", Name: "Edge pushed", Category: "school", Main: Source{Type: SourcePublish}, OnDemand: true},
		{ID: "cam.c", Name: "Plain name", Category: "road", Region: "440307", Lat: new(-0.0), Lon: new(0.0),
			Level: 2, Main: Source{Type: SourceRTSP, URL: "rtsp://h/x"}, OnDemand: true},
	}
}

func TestExportThenImportRoundTripsEveryField(t *testing.T) {
	for _, format := range []string{FormatCSV, FormatGeoJSON} {
		t.Run(format, func(t *testing.T) {
			src := newCatalog(t)
			smallTree(t, src)
			for _, p := range variedPoints() {
				mustCreate(t, src, p)
			}
			var buf bytes.Buffer
			if err := src.ExportPoints(&buf, format, Scope{All: true}, true); err != nil {
				t.Fatal(err)
			}
			dst := newCatalog(t)
			smallTree(t, dst)
			contentType := map[string]string{FormatCSV: ContentTypeCSV, FormatGeoJSON: ContentTypeGeoJSON}[format]
			mustImport(t, dst, buf.String(), contentType)
			want, _ := src.List()
			got, _ := dst.List()
			if len(got) != len(want) {
				t.Fatalf("imported %d points, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				g.Status, w.Status = Status{}, Status{}
				g.CreatedAt, g.UpdatedAt = w.CreatedAt, w.UpdatedAt
				wantSamePoint(t, g, w)
			}
		})
	}
}

func TestExportWithoutSecretsRedactsPasswordsAndCannotBeReimported(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, rtspPoint("cam", "Cam"))
	for _, format := range []string{FormatCSV, FormatGeoJSON} {
		var buf bytes.Buffer
		if err := c.ExportPoints(&buf, format, Scope{All: true}, false); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "secret") || strings.Contains(buf.String(), "admin") || !strings.Contains(buf.String(), "***:***@") {
			t.Errorf("%s export: %s", format, buf.String())
		}
	}
	var buf bytes.Buffer
	_ = c.ExportPoints(&buf, FormatCSV, Scope{All: true}, false)
	_, rowErrs, err := newCatalog(t).ImportPoints(&buf, ContentTypeCSV, false)
	if !errors.Is(err, ErrRowsRejected) || len(rowErrs) != 1 || rowErrs[0].Field != "main_url" {
		t.Errorf("re-import of redacted export = %v, %v", rowErrs, err)
	}
}

func TestExportWritesOnlyPointsInScope(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	for i, cat := range []string{"road", "school", "road"} {
		p := rtspPoint(string(rune('a'+i)), "Cam")
		p.Category, p.Region = cat, "440307001001"
		mustCreate(t, c, p)
	}
	var buf bytes.Buffer
	scope := Scope{Rules: []ScopeRule{{Categories: []string{"road"}, Regions: []string{"440307001"}, MaxLevel: MaxLevel}}}
	if err := c.ExportPoints(&buf, FormatGeoJSON, scope, false); err != nil {
		t.Fatal(err)
	}
	var doc struct{ Features []struct{ ID string } }
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Features) != 2 || doc.Features[0].ID != "a" || doc.Features[1].ID != "c" {
		t.Errorf("features = %+v", doc.Features)
	}
	if err := c.ExportPoints(&buf, "xlsx", scope, false); err == nil {
		t.Error("unknown format accepted")
	}
}

func BenchmarkImport13635(b *testing.B) {
	points := syntheticPoints(rand.New(rand.NewPCG(1, 2)), 13635)
	body := pointsCSV(b, points)
	regions := regionsCSV(syntheticRegions())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		b.StopTimer()
		c := newCatalog(b)
		if _, _, err := c.ImportRegionsCSV(strings.NewReader(regions), false); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, rowErrs, err := c.ImportPoints(bytes.NewReader(body), ContentTypeCSV, false)
		if err != nil || n != len(points) {
			b.Fatalf("import: %d, %v, %v", n, rowErrs, err)
		}
	}
}

func FuzzImportPoints(f *testing.F) {
	f.Add([]byte(csvHeader+"cam1,Gate,,road,,22.5,113.9,2,addr,a;b,true,rtsp://u:p@h/s,\n,x,panoramic,river,,,,,,,,,\n"), false, true)
	f.Add([]byte(csvHeader+"\"a\"b,x\n"), false, false)
	f.Add([]byte(strings.TrimSuffix(csvHeader, "\n")+",on_demand,agent\ncam1,x,,road,,,,,,,,,,0,e\n"), false, false)
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[113.9,22.5]},"properties":{"id":"c","name":"n","category":"road","tags":["a"],"level":1e400}}]}`), true, false)
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[]},"properties":null},null,1]}`), true, true)
	c := newCatalog(f)
	smallTree(f, c)
	f.Fuzz(func(t *testing.T, data []byte, geo, dryRun bool) {
		ct := ContentTypeCSV
		if geo {
			ct = ContentTypeGeoJSON
		}
		before := c.Len()
		n, rowErrs, err := c.ImportPoints(bytes.NewReader(data), ct, dryRun)
		switch {
		case err == nil && rowErrs != nil:
			t.Fatalf("row errors without an error: %v", rowErrs)
		case errors.Is(err, ErrRowsRejected) && len(rowErrs) == 0:
			t.Fatal("ErrRowsRejected without row errors")
		case err != nil && n != 0:
			t.Fatalf("n = %d with error %v", n, err)
		}
		want := before
		if err == nil && !dryRun {
			want += n
		}
		if got := c.Len(); got != want {
			t.Fatalf("catalog has %d points, want %d (n=%d err=%v dry=%v)", got, want, n, err, dryRun)
		}
		for _, re := range rowErrs {
			if re.Line < 1 {
				t.Fatalf("row error with line %d", re.Line)
			}
		}
	})
}

func TestCSVExportNeutralizesFormulaCellsAndReimportsThem(t *testing.T) {
	c := newCatalog(t)
	p := rtspPoint("cam", `=HYPERLINK("http://evil.example/","点我")`)
	p.Address = "@SUM(1+1)*cmd|' /C calc'!A0"
	p.Tags = []string{"+1+1"}
	mustCreate(t, c, p)
	var buf bytes.Buffer
	if err := c.ExportPoints(&buf, FormatCSV, Scope{All: true}, true); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %q would run as a formula in a spreadsheet", cell)
			}
		}
	}
	c2 := newCatalog(t)
	if _, _, err := c2.ImportPoints(bytes.NewReader(buf.Bytes()), ContentTypeCSV, false); err != nil {
		t.Fatal(err)
	}
	got, err := c2.Get("cam")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != p.Name || got.Address != p.Address || len(got.Tags) != 1 || got.Tags[0] != "+1+1" {
		t.Errorf("re-imported point = %q %q %q, want the original values", got.Name, got.Address, got.Tags)
	}
}
