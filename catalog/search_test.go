package catalog

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseQueryReadsEveryParameter(t *testing.T) {
	v, _ := url.ParseQuery("category=road,school&category=river&category=road&region=440307001&kind=panoramic&status=online" +
		"&level=2&q=gate+north&bbox=113.8,22.4,114.1,22.7&sort=-updated&limit=20")
	q, err := ParseQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	want := Query{Categories: []string{"road", "school", "river"}, Region: "440307001", Kind: KindPanoramic, Status: StateOnline,
		Level: 2, Q: "gate north", BBox: &[4]float64{113.8, 22.4, 114.1, 22.7}, Sort: SortUpdatedDesc, Limit: 20}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("ParseQuery = %+v\nwant %+v", q, want)
	}
	q, err = ParseQuery(url.Values{"region": {""}, "limit": {""}})
	if err != nil || !reflect.DeepEqual(q, Query{}) {
		t.Errorf("empty values: %+v, %v", q, err)
	}
}

func TestParseQueryRejectsBadValuesNamingTheParameter(t *testing.T) {
	cursorByName := cursor{Sort: SortName, ID: "a", Name: "x"}.encode()
	tests := []struct{ query, field string }{
		{"category=zoo", "category"},
		{"category=road,,", ""},
		{"region=4403", "region"},
		{"region=440307&region=440307", "region"},
		{"kind=dome", "kind"},
		{"status=up", "status"},
		{"level=0", "level"},
		{"level=5", "level"},
		{"level=two", "level"},
		{"bbox=1,2,3", "bbox"},
		{"bbox=1,2,3,x", "bbox"},
		{"bbox=114,22,113,23", "bbox"},
		{"bbox=-181,0,0,0", "bbox"},
		{"bbox=NaN,0,0,0", "bbox"},
		{"bbox=0,0,Inf,0", "bbox"},
		{"sort=updated", "sort"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=-1", "limit"},
		{"cursor=%%%", "cursor"},
		{"cursor=abc", "cursor"},
		{"cursor=" + cursorByName, "cursor"},
		{"q=" + strings.Repeat("x", 129), "q"},
		{"q=a%00b", "q"},
		{"q=a+b+c+d+e+f+g+h+i", "q"},
		{"colour=red", "colour"},
		{"page=2", "page"},
	}
	for _, tt := range tests {
		v, err := url.ParseQuery(tt.query)
		if err != nil {
			v = url.Values{"cursor": {"%%%"}}
		}
		_, err = ParseQuery(v)
		var ve *ValidationError
		if tt.field == "" {
			if err != nil {
				t.Errorf("ParseQuery(%s) = %v, want success", tt.query, err)
			}
			continue
		}
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("ParseQuery(%s) err = %v, want ValidationError on %s", tt.query, err, tt.field)
		}
	}
	if _, err := ParseQuery(url.Values{"sort": {SortName}, "cursor": {cursorByName}}); err != nil {
		t.Errorf("cursor of the same sort rejected: %v", err)
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{
		"category=road,school&region=440307001&kind=hd&status=online&level=2&q=gate&bbox=113.8,22.4,114.1,22.7&sort=name&limit=20",
		"cursor=" + cursor{Sort: SortID, ID: "cam1"}.encode(),
		"sort=-updated&cursor=" + cursor{Sort: SortUpdatedDesc, ID: "x", Updated: 5}.encode(),
		"q=%E5%89%8D%E6%B5%B7&region=440307",
		"bbox=1e308,-1e308,,&limit=999999999999999999999",
		"",
	} {
		f.Add(seed)
	}
	c := memCatalog(variedPoints(), []Region{{"440307", "D", ""}, {"440307001", "S", "440307"}, {"440307001001", "C", "440307001"}})
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("error %v is %T, want *ValidationError", err, err)
			}
			return
		}
		if err := q.validate(); err != nil {
			t.Fatalf("ParseQuery accepted %+v, which validate rejects: %v", q, err)
		}
		scope := Scope{Rules: []ScopeRule{{Regions: []string{"440307001"}, MaxLevel: 2}}}
		res, err := c.Search(q, scope)
		if err != nil {
			if ve, ok := err.(*ValidationError); !ok || ve.Field != "region" {
				t.Fatalf("Search of a parsed query failed: %v", err)
			}
			return
		}
		if len(res.Items) > cmpOr(q.Limit, DefaultLimit) || res.Total < len(res.Items) {
			t.Fatalf("page of %d items, total %d, limit %d", len(res.Items), res.Total, q.Limit)
		}
		if _, err := c.Facets(q, scope); err != nil {
			t.Fatalf("Facets: %v", err)
		}
	})
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// ids returns the IDs of points in order.
func ids(points []Point) []string {
	out := []string{}
	for _, p := range points {
		out = append(out, p.ID)
	}
	return out
}

func mustSearch(t *testing.T, c *Catalog, q Query, s Scope) Result {
	t.Helper()
	res, err := c.Search(q, s)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return res
}

func TestSearchRegionMatchesTheWholeSubtree(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	for id, region := range map[string]string{"a": "440307001001", "b": "440307001002", "c": "440307001", "d": "440307002001", "e": ""} {
		p := rtspPoint(id, "Cam "+id)
		p.Region = region
		mustCreate(t, c, p)
	}
	all := Scope{All: true}
	for region, want := range map[string][]string{
		"440307":       {"a", "b", "c", "d"},
		"440307001":    {"a", "b", "c"},
		"440307001002": {"b"},
		"440307002":    {"d"},
		"":             {"a", "b", "c", "d", "e"},
	} {
		res := mustSearch(t, c, Query{Region: region}, all)
		if got := ids(res.Items); !slices.Equal(got, want) || res.Total != len(want) {
			t.Errorf("region %q: %v (total %d), want %v", region, got, res.Total, want)
		}
	}
	_, err := c.Search(Query{Region: "440399"}, all)
	wantValidationError(t, err, "region")
}

func TestSearchMatchesNameAddressTagsIDAndPinyinInitialsCaseInsensitively(t *testing.T) {
	c := newCatalog(t)
	mk := func(id, name, addr string, tags ...string) {
		p := rtspPoint(id, name)
		p.Address, p.Tags = addr, tags
		mustCreate(t, c, p)
	}
	mk("cam1", "前海水库大坝", "Qianhai Road 1")
	mk("cam2", "North Gate", "南山大道", "Entrance")
	mk("cam3", "Lobby", "", "dam")
	all := Scope{All: true}
	for q, want := range map[string][]string{
		"水库":      {"cam1"},
		"qhsk":    {"cam1"},
		"QHSKDB":  {"cam1"},
		"gate":    {"cam2"},
		"南山":      {"cam2"},
		"entr":    {"cam2"},
		"DAM":     {"cam3"},
		"road":    {"cam1"},
		"CAM3":    {"cam3"},
		"north 南": {"cam2"},
		"north x": {},
		"a":       {"cam1", "cam2", "cam3"},
	} {
		res := mustSearch(t, c, Query{Q: q}, all)
		if got := ids(res.Items); !slices.Equal(got, want) {
			t.Errorf("q=%q: %v, want %v", q, got, want)
		}
	}
}

func TestSearchPagesThroughEverySortOrderWithCursors(t *testing.T) {
	c := newCatalog(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	names := []string{"delta", "alpha", "charlie", "alpha", "bravo", "echo", "alpha"}
	for i, n := range names {
		mustCreate(t, c, rtspPoint(string(rune('g'-i)), n))
	}
	n := "bravo!"
	if _, err := c.Update("e", PointPatch{Name: &n}); err != nil { // e is now the most recently updated
		t.Fatal(err)
	}
	want := map[string][]string{
		SortID:          {"a", "b", "c", "d", "e", "f", "g"},
		SortName:        {"a", "d", "f", "c", "e", "g", "b"},
		SortUpdatedDesc: {"e", "a", "b", "c", "d", "f", "g"},
	}
	for sort, w := range want {
		for _, limit := range []int{1, 2, 3, 7, 50} {
			var got []string
			q := Query{Sort: sort, Limit: limit}
			for pages := 0; ; pages++ {
				res := mustSearch(t, c, q, Scope{All: true})
				if res.Total != len(names) {
					t.Fatalf("total %d", res.Total)
				}
				got = append(got, ids(res.Items)...)
				if res.NextCursor == "" || pages > 10 {
					break
				}
				q.Cursor = res.NextCursor
			}
			if !slices.Equal(got, w) {
				t.Errorf("sort %s limit %d: %v, want %v", sort, limit, got, w)
			}
		}
	}
	res := mustSearch(t, c, Query{Sort: SortName, Limit: 2}, Scope{All: true})
	_, err := c.Search(Query{Sort: SortID, Cursor: res.NextCursor}, Scope{All: true})
	wantValidationError(t, err, "cursor")
}

func TestSearchSeesEveryWriteAtOnce(t *testing.T) {
	c := newCatalog(t)
	all := Scope{All: true}
	mustCreate(t, c, rtspPoint("cam", "Gate"))
	if res := mustSearch(t, c, Query{Q: "gate"}, all); res.Total != 1 {
		t.Fatalf("after create: %+v", res)
	}
	n := "Lobby"
	if _, err := c.Update("cam", PointPatch{Name: &n}); err != nil {
		t.Fatal(err)
	}
	if res := mustSearch(t, c, Query{Q: "gate"}, all); res.Total != 0 {
		t.Errorf("after rename: %+v", res)
	}
	if err := c.SetStatus("cam", StateOffline, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if res := mustSearch(t, c, Query{Status: StateOffline}, all); res.Total != 1 {
		t.Errorf("after SetStatus: %+v", res)
	}
	mustImport(t, c, csvHeader+"cam2,Imported,,road,,,,,,,,,\n", ContentTypeCSV)
	if res := mustSearch(t, c, Query{Q: "imported"}, all); res.Total != 1 {
		t.Errorf("after import: %+v", res)
	}
	if err := c.Delete("cam"); err != nil {
		t.Fatal(err)
	}
	if res := mustSearch(t, c, Query{}, all); res.Total != 1 || res.Items[0].ID != "cam2" {
		t.Errorf("after delete: %+v", res)
	}
}

func TestSearchFiltersByKindStatusLevelAndBBox(t *testing.T) {
	c := newCatalog(t)
	mk := func(id, kind string, level int, lat, lon float64) {
		p := rtspPoint(id, "Cam")
		p.Kind, p.Level = kind, level
		if lat != 0 {
			p.Lat, p.Lon = &lat, &lon
		}
		mustCreate(t, c, p)
	}
	mk("a", KindHD, 1, 22.5, 113.9)
	mk("b", KindPanoramic, 2, 22.6, 114.0)
	mk("c", KindHD, 2, 0, 0)
	all := Scope{All: true}
	for _, tt := range []struct {
		q    Query
		want []string
	}{
		{Query{Kind: KindPanoramic}, []string{"b"}},
		{Query{Level: 2}, []string{"b", "c"}},
		{Query{BBox: &[4]float64{113.8, 22.4, 113.95, 22.55}}, []string{"a"}},
		{Query{BBox: &[4]float64{113.9, 22.5, 114.0, 22.6}}, []string{"a", "b"}},
		{Query{Status: StateOnline}, []string{}},
		{Query{Categories: []string{"road", "river"}}, []string{"a", "b", "c"}},
		{Query{Categories: []string{"river"}}, []string{}},
	} {
		if got := ids(mustSearch(t, c, tt.q, all).Items); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestSearchRejectsInvalidQueriesFromGoCallers(t *testing.T) {
	c := newCatalog(t)
	for field, q := range map[string]Query{
		"category": {Categories: []string{"zoo"}},
		"limit":    {Limit: MaxLimit + 1},
		"level":    {Level: 9},
		"sort":     {Sort: "random"},
	} {
		_, err := c.Search(q, Scope{All: true})
		wantValidationError(t, err, field)
		_, err = c.Facets(q, Scope{All: true})
		wantValidationError(t, err, field)
	}
}

func TestFacetsCountEachDimensionWithoutItsOwnFilter(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	mk := func(id, cat, region string, state string) {
		p := rtspPoint(id, "Cam")
		p.Category, p.Region = cat, region
		mustCreate(t, c, p)
		if err := c.SetStatus(id, state, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("a", "road", "440307001001", StateOnline)
	mk("b", "road", "440307001002", StateOffline)
	mk("c", "school", "440307001001", StateOnline)
	mk("d", "road", "440307002001", StateOnline)
	mk("e", "road", "", StateOnline)
	f, err := c.Facets(Query{Categories: []string{"road"}, Region: "440307001", Status: StateOnline}, Scope{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.Total != 1 {
		t.Errorf("Total = %d, want 1 (a)", f.Total)
	}
	if len(f.Categories) != len(Categories) {
		t.Fatalf("%d category counts, want all %d", len(f.Categories), len(Categories))
	}
	counts := map[string]int{}
	for _, cc := range f.Categories {
		counts[cc.Code] = cc.Count
	}
	if counts["road"] != 1 || counts["school"] != 1 || counts["river"] != 0 {
		t.Errorf("category counts (region 440307001, online) = %v", counts)
	}
	if f.Status[StateOnline] != 1 || f.Status[StateOffline] != 1 || f.Status[StateUnknown] != 0 || len(f.Status) != len(states) {
		t.Errorf("status counts (road in 440307001) = %v", f.Status)
	}
	if len(f.Regions) != 1 {
		t.Fatalf("region roots = %+v", f.Regions)
	}
	root := f.Regions[0]
	// Road and online, any region: a (A1), d (B1), e (none).
	if root.Code != "440307" || root.Count != 2 || root.Children[0].Count != 1 || root.Children[1].Count != 1 || f.Unassigned != 1 {
		t.Errorf("region tree = %+v, unassigned %d", f.Regions, f.Unassigned)
	}
	if a := root.Children[0]; a.Code != "440307001" || len(a.Children) != 2 || a.Children[0].Count != 1 || a.Children[1].Count != 0 {
		t.Errorf("street A = %+v", a)
	}
}

func TestSearchesRunSafelyWhileEveryKindOfWriteHappens(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Search(Query{Region: "440307", Q: "cam", Sort: SortName}, Scope{Rules: []ScopeRule{{MaxLevel: 4}}}); err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Facets(Query{}, Scope{All: true}); err != nil {
					t.Error(err)
					return
				}
				_, _ = c.List()
				_ = c.RegionPath("440307001001")
				_ = c.ExportPoints(io.Discard, FormatGeoJSON, Scope{All: true}, false)
			}
		})
	}
	for i := range 20 {
		p := rtspPoint(fmt.Sprintf("cam%d", i), "Cam")
		p.Region = "440307001001"
		mustCreate(t, c, p)
		_ = c.SetStatus(p.ID, StateOnline, time.Time{})
		name := "Renamed"
		if _, err := c.Update(p.ID, PointPatch{Name: &name}); err != nil {
			t.Fatal(err)
		}
		mustImport(t, c, csvHeader+fmt.Sprintf("imp%d,Imported,,road,440307002001,,,,,,,,\n", i), ContentTypeCSV)
		code := fmt.Sprintf("440307003%03d", i)
		if i == 0 {
			mustCreateRegion(t, c, Region{"440307003", "Street C", "440307"})
		}
		mustCreateRegion(t, c, Region{code, "C", "440307003"})
		if err := c.DeleteRegion(code); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := c.Delete(p.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	readers.Wait()
	if res := mustSearch(t, c, Query{}, Scope{All: true}); res.Total != 30 {
		t.Errorf("Total = %d, want 30", res.Total)
	}
}
