package server

import (
	"net/http"
	"testing"
)

type regionJSON struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Parent string `json:"parent"`
}

type regionNodeJSON struct {
	Code     string           `json:"code"`
	Name     string           `json:"name"`
	Children []regionNodeJSON `json:"children"`
}

// createRegion creates a region over HTTP as admin.
func (a *testApp) createRegion(code, name, parent string) {
	a.t.Helper()
	res := a.admin(http.MethodPost, "/api/v1/regions", map[string]string{"code": code, "name": name, "parent": parent})
	if res.Status != http.StatusCreated {
		a.t.Fatalf("create region %s: %s", code, res)
	}
}

func (a *testApp) regionCount() int {
	a.t.Helper()
	var l listJSON[regionJSON]
	decodeInto(a.t, a.admin(http.MethodGet, "/api/v1/regions", nil), &l)
	return len(l.Items)
}

func TestRegionsCRUDOverHTTP(t *testing.T) {
	a := startApp(t)
	res := a.admin(http.MethodPost, "/api/v1/regions", map[string]string{"code": "440307", "name": "District"})
	if res.Status != http.StatusCreated || res.Header.Get("Location") != "/api/v1/regions/440307" {
		t.Fatalf("create: %s", res)
	}
	a.createRegion("440307001", "Street 1", "440307")
	a.createRegion("440307002", "Street 2", "440307")
	a.createRegion("440307001001", "Community 1", "440307001")

	wantError(t, a.admin(http.MethodPost, "/api/v1/regions", map[string]string{"code": "440307001", "name": "Again", "parent": "440307"}), http.StatusConflict)
	for _, tc := range []struct {
		body  map[string]string
		field string
	}{
		{map[string]string{"code": "12", "name": "Short"}, "code"},
		{map[string]string{"code": "440307003", "name": ""}, "name"},
		{map[string]string{"code": "440307003", "name": "Orphan", "parent": "440399"}, "parent"},
	} {
		e := wantError(t, a.admin(http.MethodPost, "/api/v1/regions", tc.body), http.StatusUnprocessableEntity)
		if e.Field != tc.field {
			t.Errorf("%v: field %q, want %q", tc.body, e.Field, tc.field)
		}
	}
	wantError(t, a.do(http.MethodPost, "/api/v1/regions", a.token, "application/json", `{"code":`), http.StatusBadRequest)
	wantError(t, a.admin(http.MethodPost, "/api/v1/regions", map[string]string{"code": "440307003", "name": "x", "level": "street"}), http.StatusBadRequest)

	// Any user may read the tree; only administrators change it.
	a.createUser("viewer", "viewer-pass-1")
	v := a.loginAs("viewer", "viewer-pass-1")
	res = a.do(http.MethodGet, "/api/v1/regions", v, "", nil)
	var flat listJSON[regionJSON]
	decodeInto(t, res, &flat)
	if res.Status != http.StatusOK || len(flat.Items) != 4 || flat.Items[0] != (regionJSON{"440307", "District", ""}) ||
		flat.Items[1] != (regionJSON{"440307001", "Street 1", "440307"}) {
		t.Fatalf("list: %s", res)
	}
	res = a.do(http.MethodGet, "/api/v1/regions?tree=1", v, "", nil)
	var tree listJSON[regionNodeJSON]
	decodeInto(t, res, &tree)
	if len(tree.Items) != 1 || len(tree.Items[0].Children) != 2 || tree.Items[0].Children[0].Children[0].Code != "440307001001" {
		t.Fatalf("tree: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/regions?tree=yes", v, "", nil), http.StatusBadRequest)
	res = a.do(http.MethodGet, "/api/v1/regions/440307002", v, "", nil)
	var r regionJSON
	decodeInto(t, res, &r)
	if r != (regionJSON{"440307002", "Street 2", "440307"}) {
		t.Fatalf("get: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/regions/440399", v, "", nil), http.StatusNotFound)
	wantError(t, a.do(http.MethodPost, "/api/v1/regions", v, "", map[string]string{"code": "440308", "name": "Mine"}), http.StatusForbidden)
	wantError(t, a.do(http.MethodPatch, "/api/v1/regions/440307002", v, "", map[string]string{"name": "Mine"}), http.StatusForbidden)
	wantError(t, a.do(http.MethodDelete, "/api/v1/regions/440307002", v, "", nil), http.StatusForbidden)
	wantError(t, a.do(http.MethodPost, "/api/v1/regions/import", v, "text/csv", "code,name,parent\n"), http.StatusForbidden)

	// PATCH changes what it names and keeps the rest.
	res = a.admin(http.MethodPatch, "/api/v1/regions/440307002", map[string]string{"name": "Street Two"})
	decodeInto(t, res, &r)
	if res.Status != http.StatusOK || r != (regionJSON{"440307002", "Street Two", "440307"}) {
		t.Fatalf("rename: %s", res)
	}
	res = a.admin(http.MethodPatch, "/api/v1/regions/440307001001", map[string]string{"parent": "440307002"})
	decodeInto(t, res, &r)
	if res.Status != http.StatusOK || r != (regionJSON{"440307001001", "Community 1", "440307002"}) {
		t.Fatalf("move: %s", res)
	}
	e := wantError(t, a.admin(http.MethodPatch, "/api/v1/regions/440307", map[string]string{"parent": "440307002"}), http.StatusUnprocessableEntity)
	if e.Field != "parent" {
		t.Fatalf("cycle: field %q", e.Field)
	}
	wantError(t, a.admin(http.MethodPatch, "/api/v1/regions/440399", map[string]string{"name": "x"}), http.StatusNotFound)
	wantError(t, a.admin(http.MethodPatch, "/api/v1/regions/440307002", map[string]string{"code": "440399"}), http.StatusBadRequest)

	// A region holding points or children cannot go.
	if res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "p1", "name": "P1", "region": "440307001", "main": map[string]string{"type": "publish"}}); res.Status != http.StatusCreated {
		t.Fatalf("point: %s", res)
	}
	for _, code := range []string{"440307001", "440307"} {
		if e := wantError(t, a.admin(http.MethodDelete, "/api/v1/regions/"+code, nil), http.StatusConflict); e.Code != "in_use" {
			t.Fatalf("delete %s: code %q", code, e.Code)
		}
	}
	if res := a.admin(http.MethodDelete, "/api/v1/points/p1", nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete point: %s", res)
	}
	if res := a.admin(http.MethodDelete, "/api/v1/regions/440307001", nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete emptied region: %s", res)
	}
	wantError(t, a.admin(http.MethodDelete, "/api/v1/regions/440307001", nil), http.StatusNotFound)
	if n := a.regionCount(); n != 3 {
		t.Fatalf("%d regions left, want 3", n)
	}
	for action, want := range map[string]int{"region.create": 4, "region.update": 2, "region.delete": 1} {
		if n := len(a.audited(action)); n != want {
			t.Errorf("%d %s records, want %d", n, action, want)
		}
	}
}

func TestRegionImportIsAllOrNothingAndListsEveryBadRow(t *testing.T) {
	a := startApp(t)
	a.createRegion("440307", "District", "")
	bad := "code,name,parent\n" +
		"440307001,Street 1,440307\n" + // line 2: fine
		"4403,Too short,440307\n" + // line 3: code
		"440307002,Street 2,440399\n" + // line 4: unknown parent
		"440307001,Street 1 again,440307\n" + // line 5: repeats line 2
		"440307,District again,\n" // line 6: exists
	before := a.regionCount()
	res := a.do(http.MethodPost, "/api/v1/regions/import", a.token, "text/csv", bad)
	rej := wantRowsRejected(t, res)
	want := []rowJSON{{3, "code"}, {4, "parent"}, {5, "code"}, {6, "code"}}
	if !sameRows(rej, want) {
		t.Fatalf("rows %+v, want lines/fields %+v", rej, want)
	}
	if n := a.regionCount(); n != before {
		t.Fatalf("a rejected import wrote: %d regions, had %d", n, before)
	}

	good := "\ufeffcode,name,parent\n" +
		"440307001001,Community 1,440307001\n" + // parent defined further down
		"440307001,Street 1,440307\n" +
		"440307002,Street 2,440307\n"
	res = a.do(http.MethodPost, "/api/v1/regions/import?dry_run=1", a.token, "text/csv; charset=utf-8", good)
	if res.Status != http.StatusOK || string(res.Body) != `{"dry_run":true,"valid":3}` {
		t.Fatalf("dry run: %s", res)
	}
	if n := a.regionCount(); n != before {
		t.Fatalf("a dry run wrote: %d regions", n)
	}
	res = a.do(http.MethodPost, "/api/v1/regions/import", a.token, "text/csv", good)
	if res.Status != http.StatusOK || string(res.Body) != `{"imported":3}` {
		t.Fatalf("import: %s", res)
	}
	if n := a.regionCount(); n != before+3 {
		t.Fatalf("%d regions after import, want %d", n, before+3)
	}
	recs := a.audited("region.import")
	if len(recs) != 1 || recs[0].Detail["count"] != "3" {
		t.Fatalf("region.import audit %+v", recs)
	}

	e := wantError(t, a.do(http.MethodPost, "/api/v1/regions/import", a.token, "text/csv", "name,code\nx,440308\n"), http.StatusUnprocessableEntity)
	if e.Field != "header" {
		t.Fatalf("bad header: field %q", e.Field)
	}
	wantError(t, a.do(http.MethodPost, "/api/v1/regions/import", a.token, "application/json", `[]`), http.StatusUnsupportedMediaType)
	wantError(t, a.do(http.MethodPost, "/api/v1/regions/import?dry_run=maybe", a.token, "text/csv", good), http.StatusBadRequest)
}
