package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// --- API the browser app needs (web/meta.go, web/prefs.go, web/ui.go) ----

func TestCategoriesListsTheTwentyCodesWithNamesThenUnclassified(t *testing.T) {
	a := startApp(t)
	wantError(t, a.do(http.MethodGet, "/api/v1/categories", "", "", nil), http.StatusUnauthorized)
	res := a.admin(http.MethodGet, "/api/v1/categories", nil)
	var out struct {
		Items []struct{ Code, ZH, EN string }
	}
	decodeInto(t, res, &out)
	// The district's 20, then unclassified (GB channels no mapping rule matched; admins only).
	if res.Status != http.StatusOK || len(out.Items) != 21 || out.Items[20].Code != "unclassified" || out.Items[20].ZH != "未分类" {
		t.Fatalf("categories: %s", res)
	}
	if c := out.Items[0]; c.Code != "reservoir" || c.ZH != "水库" || c.EN != "Reservoir" {
		t.Fatalf("first category %+v", c)
	}
}

func TestUIConfigDefaultsToNoTilesAndReportsConfiguredOnes(t *testing.T) {
	a := startApp(t)
	res := a.admin(http.MethodGet, "/api/v1/ui-config", nil)
	var cfg struct {
		URL  string `json:"map_tile_url"`
		CRS  string `json:"map_tile_crs"`
		Zoom int    `json:"map_max_zoom"`
	}
	decodeInto(t, res, &cfg)
	if res.Status != http.StatusOK || cfg.URL != "" || cfg.CRS != "wgs84" || cfg.Zoom != 18 {
		t.Fatalf("default ui-config: %s", res)
	}

	c := testConfig(t)
	c.MapTiles, c.MapTilesCRS = "http://10.0.0.9/tiles/{z}/{x}/{y}.png", "gcj02"
	app, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	b := &testApp{App: app, t: t, http: a.http}
	t.Cleanup(func() { app.Close(t.Context()) })
	b.token = b.login(adminPassword)
	decodeInto(t, b.admin(http.MethodGet, "/api/v1/ui-config", nil), &cfg)
	if cfg.URL != c.MapTiles || cfg.CRS != "gcj02" {
		t.Fatalf("configured ui-config: %+v", cfg)
	}

	for _, bad := range []struct{ url, crs string }{
		{"http://10.0.0.9/tiles.png", ""},      // no {z}/{x}/{y}
		{"ftp://h/{z}/{x}/{y}.png", ""},        // not http(s)
		{"/tiles/{z}/{x}/{y}.png", "mercator"}, // unknown CRS
		{"javascript:{z}{x}{y}", ""},           // not a URL to fetch
	} {
		c := testConfig(t)
		c.MapTiles, c.MapTilesCRS = bad.url, bad.crs
		if app, err := Start(c); err == nil {
			app.Close(t.Context())
			t.Errorf("Start accepted map tiles %q crs %q", bad.url, bad.crs)
		}
	}
}

func TestLayoutsArePerUserAndValidated(t *testing.T) {
	a, water := grantsFixture(t)
	path := "/api/v1/me/layouts/" + url.PathEscape("防汛 四画面")
	layout := map[string]any{"grid": "4", "tiles": []string{"res1", "", "sch1"}}

	wantError(t, a.do(http.MethodPut, path, "", "", layout), http.StatusUnauthorized)
	if res := a.admin(http.MethodPut, path, layout); res.Status != http.StatusCreated {
		t.Fatalf("create layout: %s", res)
	}
	layout["tour"] = map[string]any{"category": "reservoir", "interval_s": 15}
	res := a.admin(http.MethodPut, path, layout)
	if res.Status != http.StatusOK {
		t.Fatalf("replace layout: %s", res)
	}
	var got struct {
		Name  string
		Grid  string
		Tiles []string
		Tour  *struct {
			Category string
			Interval int `json:"interval_s"`
		}
	}
	decodeInto(t, a.admin(http.MethodGet, path, nil), &got)
	if got.Name != "防汛 四画面" || got.Grid != "4" || !slices.Equal(got.Tiles, []string{"res1", "", "sch1"}) || got.Tour == nil || got.Tour.Interval != 15 {
		t.Fatalf("stored layout %+v", got)
	}
	var list struct{ Items []struct{ Name string } }
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/me/layouts", nil), &list)
	if len(list.Items) != 1 {
		t.Fatalf("admin's layouts: %+v", list)
	}

	// Another user neither sees nor deletes it.
	decodeInto(t, a.do(http.MethodGet, "/api/v1/me/layouts", water, "", nil), &list)
	if len(list.Items) != 0 {
		t.Fatalf("water sees admin's layouts: %+v", list)
	}
	wantError(t, a.do(http.MethodGet, path, water, "", nil), http.StatusNotFound)
	wantError(t, a.do(http.MethodDelete, path, water, "", nil), http.StatusNotFound)

	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"grid": "5"}, "grid"},
		{map[string]any{"grid": "1", "tiles": []string{"a", "b"}}, "tiles"},
		{map[string]any{"grid": "4", "name": "other"}, "name"},
		{map[string]any{"grid": "4", "tour": map[string]any{"category": "volcano", "interval_s": 10}}, "tour.category"},
		{map[string]any{"grid": "4", "tour": map[string]any{"points": []string{"res1"}, "interval_s": 0}}, "tour.interval_s"},
	} {
		e := wantError(t, a.admin(http.MethodPut, path, tc.body), http.StatusUnprocessableEntity)
		if e.Field != tc.field {
			t.Errorf("PUT %v: field %q, want %q", tc.body, e.Field, tc.field)
		}
	}
	wantError(t, a.do(http.MethodPut, path, a.token, "application/json", `{"grid":`), http.StatusBadRequest)
	wantError(t, a.admin(http.MethodPut, path, map[string]any{"grid": "4", "colour": "red"}), http.StatusBadRequest)
	wantError(t, a.admin(http.MethodPut, "/api/v1/me/layouts/%20x", layout), http.StatusUnprocessableEntity)
	wantError(t, a.do(http.MethodPut, path, a.token, "application/json", `{"grid":"4","tiles":["`+strings.Repeat("a", 2<<20)+`"]}`), http.StatusRequestEntityTooLarge)

	if res := a.admin(http.MethodDelete, path, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete: %s", res)
	}
	wantError(t, a.admin(http.MethodGet, path, nil), http.StatusNotFound)
	wantError(t, a.admin(http.MethodDelete, path, nil), http.StatusNotFound)
}

func TestFavouritesShowOnlyPointsTheUserMaySee(t *testing.T) {
	a, water := grantsFixture(t)
	res := a.admin(http.MethodPost, "/api/v1/grants", map[string]any{
		"user": "water", "categories": []string{"reservoir"}, "regions": []string{"440307"}, "max_level": 4, "actions": []string{"view"},
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("grant: %s", res)
	}
	type favs struct {
		IDs   []string
		Items []struct{ ID string }
	}
	var f favs
	decodeInto(t, a.do(http.MethodGet, "/api/v1/me/favourites", water, "", nil), &f)
	if f.IDs == nil || len(f.IDs) != 0 || f.Items == nil {
		t.Fatalf("empty favourites: %+v", f)
	}
	res = a.do(http.MethodPut, "/api/v1/me/favourites", water, "", map[string]any{"ids": []string{"sch1", "res1", "sch1", "gone"}})
	decodeInto(t, res, &f)
	if res.Status != http.StatusOK || !slices.Equal(f.IDs, []string{"sch1", "res1", "gone"}) {
		t.Fatalf("PUT favourites: %s", res)
	}
	// sch1 is not granted and "gone" does not exist: kept, not shown.
	decodeInto(t, a.do(http.MethodGet, "/api/v1/me/favourites", water, "", nil), &f)
	if len(f.Items) != 1 || f.Items[0].ID != "res1" {
		t.Fatalf("visible favourites %+v", f.Items)
	}
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/me/favourites", nil), &f)
	if len(f.IDs) != 0 {
		t.Fatalf("admin sees water's favourites: %+v", f)
	}
	e := wantError(t, a.do(http.MethodPut, "/api/v1/me/favourites", water, "", map[string]any{"ids": []string{"bad id!"}}), http.StatusUnprocessableEntity)
	if e.Field != "ids[0]" {
		t.Fatalf("bad id field %q", e.Field)
	}
	wantError(t, a.do(http.MethodPut, "/api/v1/me/favourites", water, "", map[string]any{}), http.StatusUnprocessableEntity)
}

func TestAllowedActionsFollowGrants(t *testing.T) {
	a, water := grantsFixture(t)
	res := a.admin(http.MethodPost, "/api/v1/grants", map[string]any{
		"user": "water", "categories": []string{"reservoir"}, "regions": []string{"440307"}, "max_level": 4, "actions": []string{"view", "ptz"},
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("grant: %s", res)
	}
	var out struct{ Actions []string }
	decodeInto(t, a.do(http.MethodGet, "/api/v1/points/res1/allowed", water, "", nil), &out)
	if !slices.Equal(out.Actions, []string{"view", "ptz"}) {
		t.Fatalf("water on res1: %v", out.Actions)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/points/sch1/allowed", water, "", nil), http.StatusNotFound)
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/points/sch1/allowed", nil), &out)
	if !slices.Contains(out.Actions, "manage") || !slices.Contains(out.Actions, "ptz") {
		t.Fatalf("admin on sch1: %v", out.Actions)
	}
}

func TestUIFilesAreServedGzippedWithETags(t *testing.T) {
	a := startApp(t)
	get := func(path string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, a.HTTPURL()+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, body
	}
	plainRes, plain := get("/ui/js/app.js", map[string]string{"Accept-Encoding": "identity"})
	if plainRes.StatusCode != http.StatusOK || plainRes.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(plainRes.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("plain app.js: %d %v", plainRes.StatusCode, plainRes.Header)
	}
	gzRes, gz := get("/ui/js/app.js", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if gzRes.Header.Get("Content-Encoding") != "gzip" || len(gz) >= len(plain) {
		t.Fatalf("gzip app.js: %v, %d bytes vs %d plain", gzRes.Header, len(gz), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, plain) {
		t.Fatal("gzipped app.js differs from the plain one")
	}
	if res, _ := get("/ui/js/app.js", map[string]string{"Accept-Encoding": "gzip;q=0"}); res.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip sent despite gzip;q=0")
	}
	etag := gzRes.Header.Get("ETag")
	if res, body := get("/ui/js/app.js", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("revalidation with the ETag: %d, %d bytes", res.StatusCode, len(body))
	}
	if res, body := get("/", nil); res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("<html")) {
		t.Fatalf("/: %d", res.StatusCode)
	}
	if res, _ := get("/ui/sw.js", nil); res.Header.Get("Service-Worker-Allowed") != "/" {
		t.Fatalf("sw.js headers %v", res.Header)
	}
	if res, _ := get("/ui/manifest.webmanifest", nil); res.Header.Get("Content-Type") != "application/manifest+json" {
		t.Fatalf("manifest type %q", res.Header.Get("Content-Type"))
	}
	if res, _ := get("/ui/vendor/leaflet/LICENSE", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("vendored licence: %d", res.StatusCode)
	}
	for _, p := range []string{"/ui/nope.js", "/ui/../web/ui.go", "/ui/js/"} {
		if res, _ := get(p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
	}
}
