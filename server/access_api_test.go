package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"
)

type accessJSON struct {
	Point string `json:"point"`
	Users []struct {
		Username string   `json:"username"`
		Via      []string `json:"via"`
		Actions  []string `json:"actions"`
	} `json:"users"`
}

// grant creates a grant over HTTP as admin and returns its ID.
func (a *testApp) grant(g map[string]any) string {
	a.t.Helper()
	res := a.admin(http.MethodPost, "/api/v1/grants", g)
	if res.Status != http.StatusCreated {
		a.t.Fatalf("grant %v: %s", g, res)
	}
	var out struct{ ID string }
	decodeInto(a.t, res, &out)
	return out.ID
}

// accessFixture: a reservoir camera in street 1 and a school camera in
// street 2; water holds two grants on reservoirs (one of them for PTZ
// only), street1 holds the role street, which sees street 2; gone has a
// grant but is disabled.
func accessFixture(t *testing.T) (a *testApp, viewGrant, ptzGrant, roleGrant string) {
	a = startApp(t)
	a.importRegionsFixture()
	for _, p := range []map[string]any{
		{"id": "res1", "name": "Reservoir", "category": "reservoir", "region": "440307001", "level": 2, "main": map[string]string{"type": "publish"}},
		{"id": "sch1", "name": "School", "category": "school", "region": "440307002", "level": 1, "main": map[string]string{"type": "publish"}},
	} {
		if res := a.admin(http.MethodPost, "/api/v1/points", p); res.Status != http.StatusCreated {
			t.Fatalf("point: %s", res)
		}
	}
	if res := a.admin(http.MethodPost, "/api/v1/roles", map[string]string{"name": "street"}); res.Status != http.StatusCreated {
		t.Fatalf("role: %s", res)
	}
	a.createUser("water", "water-pass-123")
	a.createUser("street1", "street-pass-123", "street")
	a.createUser("gone", "gone-pass-1234")
	viewGrant = a.grant(map[string]any{"user": "water", "categories": []string{"reservoir", "river"}, "regions": []string{"440307"}, "max_level": 2, "actions": []string{"view", "snapshot"}})
	ptzGrant = a.grant(map[string]any{"user": "water", "categories": []string{"reservoir"}, "regions": []string{"440307001"}, "max_level": 4, "actions": []string{"ptz"}})
	roleGrant = a.grant(map[string]any{"role": "street", "categories": []string{"*"}, "regions": []string{"440307002"}, "max_level": 1, "actions": []string{"view"}})
	a.grant(map[string]any{"user": "gone", "categories": []string{"*"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}})
	if res := a.admin(http.MethodPatch, "/api/v1/users/gone", map[string]any{"disabled": true}); res.Status != http.StatusOK {
		t.Fatalf("disable: %s", res)
	}
	return a, viewGrant, ptzGrant, roleGrant
}

func TestPointAccessListsWhoMaySeeItAndThroughWhichGrants(t *testing.T) {
	a, viewGrant, ptzGrant, roleGrant := accessFixture(t)

	res := a.admin(http.MethodGet, "/api/v1/points/res1/access", nil)
	var acc accessJSON
	decodeInto(t, res, &acc)
	if res.Status != http.StatusOK || acc.Point != "res1" || len(acc.Users) != 2 {
		t.Fatalf("res1 access: %s", res)
	}
	admin, water := acc.Users[0], acc.Users[1]
	if admin.Username != "admin" || !slices.Equal(admin.Via, []string{"admin role"}) || !slices.Contains(admin.Actions, "manage") {
		t.Fatalf("admin entry %+v", admin)
	}
	wantVia := []string{viewGrant, ptzGrant}
	slices.Sort(wantVia)
	gotVia := slices.Sorted(slices.Values(water.Via))
	if water.Username != "water" || !slices.Equal(gotVia, wantVia) || !slices.Equal(water.Actions, []string{"view", "ptz", "snapshot"}) {
		t.Fatalf("water entry %+v, want via %v and view, ptz, snapshot", water, wantVia)
	}

	decodeInto(t, a.admin(http.MethodGet, "/api/v1/points/sch1/access", nil), &acc)
	if len(acc.Users) != 2 || acc.Users[1].Username != "street1" || !slices.Equal(acc.Users[1].Via, []string{roleGrant}) ||
		!slices.Equal(acc.Users[1].Actions, []string{"view"}) {
		t.Fatalf("sch1 access %+v", acc)
	}

	// The preview agrees with what the users get.
	wTok, sTok := a.loginAs("water", "water-pass-123"), a.loginAs("street1", "street-pass-123")
	for _, tc := range []struct {
		tok, point string
		status     int
	}{{wTok, "res1", 200}, {wTok, "sch1", 404}, {sTok, "sch1", 200}, {sTok, "res1", 404}} {
		if res := a.do(http.MethodGet, "/api/v1/points/"+tc.point, tc.tok, "", nil); res.Status != tc.status {
			t.Fatalf("GET %s: %d, want %d", tc.point, res.Status, tc.status)
		}
	}

	wantError(t, a.admin(http.MethodGet, "/api/v1/points/nope/access", nil), http.StatusNotFound)
	wantError(t, a.do(http.MethodGet, "/api/v1/points/res1/access", wTok, "", nil), http.StatusForbidden)
}

func TestUserAccessEqualsTheFacetsThatUserGets(t *testing.T) {
	a, _, _, _ := accessFixture(t)
	for _, user := range []struct{ name, pw string }{{"water", "water-pass-123"}, {"street1", "street-pass-123"}, {"admin", adminPassword}} {
		tok := a.loginAs(user.name, user.pw)
		for _, q := range []string{"", "?category=reservoir", "?region=440307002"} {
			own := a.do(http.MethodGet, "/api/v1/points/facets"+q, tok, "", nil)
			if own.Status != http.StatusOK {
				t.Fatalf("%s facets: %s", user.name, own)
			}
			res := a.admin(http.MethodGet, "/api/v1/users/"+user.name+"/access"+q, nil)
			var preview struct {
				Username string          `json:"username"`
				Total    int             `json:"total"`
				Facets   json.RawMessage `json:"facets"`
			}
			decodeInto(t, res, &preview)
			var got, want any
			if err := json.Unmarshal(preview.Facets, &got); err != nil {
				t.Fatalf("preview facets %s: %v", res.Body, err)
			}
			if err := json.Unmarshal(own.Body, &want); err != nil {
				t.Fatal(err)
			}
			if res.Status != http.StatusOK || preview.Username != user.name || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s%s: preview %s\nown facets %s", user.name, q, res.Body, own.Body)
			}
			if wantTotal := int(want.(map[string]any)["total"].(float64)); preview.Total != wantTotal {
				t.Fatalf("%s%s: total %d, want %d", user.name, q, preview.Total, wantTotal)
			}
		}
	}
	var water struct{ Total int }
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/users/water/access", nil), &water)
	if water.Total != 1 {
		t.Fatalf("water sees %d points, want 1", water.Total)
	}
	var gone struct{ Total int }
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/users/gone/access", nil), &gone)
	if gone.Total != 0 {
		t.Fatalf("a disabled user's preview shows %d points", gone.Total)
	}
	wantError(t, a.admin(http.MethodGet, "/api/v1/users/nobody/access", nil), http.StatusNotFound)
	wantError(t, a.admin(http.MethodGet, "/api/v1/users/water/access?level=9", nil), http.StatusBadRequest)
}
