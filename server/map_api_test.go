package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
)

// mapFixture: two streets; in street 1 reservoirs at levels 1–3 (one
// without a location) and a school, in street 2 a reservoir; and the user
// "water" granted reservoirs of street 1 up to level 2. It returns water's
// token.
func mapFixture(t *testing.T) (*testApp, string) {
	a := startApp(t)
	for _, r := range []catalog.Region{{Code: "440307", Name: "District"}, {Code: "440307001", Name: "S1", Parent: "440307"}, {Code: "440307002", Name: "S2", Parent: "440307"}} {
		if _, err := a.Catalog.CreateRegion(r); err != nil {
			t.Fatal(err)
		}
	}
	publish := map[string]string{"type": "publish"}
	for _, p := range []map[string]any{
		{"id": "res1", "name": `南头水库 "大坝"`, "category": "reservoir", "region": "440307001", "level": 2, "lat": 22.5412345678, "lon": 113.9012344, "main": publish},
		{"id": "res2", "name": "Level 3 reservoir", "category": "reservoir", "region": "440307001", "level": 3, "lat": 22.5, "lon": 113.9, "main": publish},
		{"id": "res3", "name": "Street 2 reservoir", "category": "reservoir", "region": "440307002", "level": 1, "lat": 22.6, "lon": 113.8, "main": publish},
		{"id": "res4", "name": "Reservoir without a place", "category": "reservoir", "region": "440307001", "level": 1, "main": publish},
		{"id": "res5", "name": "Spillway", "category": "reservoir", "region": "440307001", "level": 1, "lat": 22.55, "lon": 113.95, "main": publish},
		{"id": "sch1", "name": "School", "category": "school", "region": "440307001", "level": 1, "lat": 22.52, "lon": 113.92, "main": publish},
	} {
		if res := a.admin(http.MethodPost, "/api/v1/points", p); res.Status != http.StatusCreated {
			t.Fatalf("create point: %s", res)
		}
	}
	if err := a.Catalog.SetStatus("res5", catalog.StateOffline, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Accounts.CreateUser(accounts.User{Username: "water", DisplayName: "Water bureau"}, "water-pass-123"); err != nil {
		t.Fatal(err)
	}
	if res := a.admin(http.MethodPost, "/api/v1/grants", map[string]any{
		"user": "water", "categories": []string{"reservoir"}, "regions": []string{"440307001"}, "max_level": 2, "actions": []string{"view"},
	}); res.Status != http.StatusCreated {
		t.Fatalf("create grant: %s", res)
	}
	res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "water", "password": "water-pass-123"})
	if res.Status != http.StatusOK {
		t.Fatalf("login water: %s", res)
	}
	var tok struct{ Token string }
	decodeInto(t, res, &tok)
	return a, tok.Token
}

// TestMapLocationsListOnlyGrantedPointsInCompactForm: GET
// /api/v1/points/geo answers, for a restricted user, exactly the located
// points of their grant as parallel arrays (coordinates to six decimals),
// counts the one without a location, and leaves out every other point.
func TestMapLocationsListOnlyGrantedPointsInCompactForm(t *testing.T) {
	a, water := mapFixture(t)

	res := a.do(http.MethodGet, "/api/v1/points/geo", water, "", nil)
	want := `{"total":3,"unlocated":1,"id":["res1","res5"],"name":["南头水库 \"大坝\"","Spillway"],` +
		`"lat":[22.541235,22.55],"lon":[113.901234,113.95],"category":["reservoir","reservoir"],"status":["unknown","offline"]}`
	if res.Status != http.StatusOK || string(res.Body) != want {
		t.Fatalf("water's map points:\n%s\nwant\n%s", res, want)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}

	// The administrator sees every located point; filters narrow it.
	var all catalog.Locations
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/points/geo", nil), &all)
	if all.Total != 6 || all.Unlocated != 1 || len(all.ID) != 5 || len(all.Lat) != 5 || len(all.Status) != 5 {
		t.Errorf("admin's map points: %+v", all)
	}
	for query, wantIDs := range map[string]string{
		"?category=school":               "[sch1]",
		"?status=offline":                "[res5]",
		"?category=reservoir&level=1":    "[res3 res5]",
		"?region=440307002":              "[res3]",
		"?bbox=113.85,22.5,114,22.6":     "[res1 res2 res5 sch1]",
		"?category=reservoir&q=spill":    "[res5]",
		"?category=school&status=online": "[]",
	} {
		var got catalog.Locations
		decodeInto(t, a.admin(http.MethodGet, "/api/v1/points/geo"+query, nil), &got)
		if s := fmt.Sprint(got.ID); s != wantIDs {
			t.Errorf("%s: %s, want %s", query, s, wantIDs)
		}
	}
	// A filter cannot widen a grant.
	res = a.do(http.MethodGet, "/api/v1/points/geo?category=school", water, "", nil)
	if res.Status != http.StatusOK || string(res.Body) != `{"total":0,"unlocated":0,"id":[],"name":[],"lat":[],"lon":[],"category":[],"status":[]}` {
		t.Errorf("water asking for schools: %s", res)
	}

	for _, bad := range []struct{ query, field string }{
		{"?sort=name", "sort"}, {"?limit=10", "limit"}, {"?cursor=x", "cursor"}, {"?category=zoo", "category"}, {"?colour=red", "colour"},
	} {
		e := wantError(t, a.admin(http.MethodGet, "/api/v1/points/geo"+bad.query, nil), http.StatusBadRequest)
		if e.Code != "bad_query" {
			t.Errorf("%s: %+v", bad.query, e)
		}
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/points/geo", "", "", nil), http.StatusUnauthorized)
}

// TestMapLocationsRevalidateByETagAndGoOutGzipped: the same answer twice
// costs a 304; a status change makes a new one; gzip when asked for.
func TestMapLocationsRevalidateByETagAndGoOutGzipped(t *testing.T) {
	a, water := mapFixture(t)
	get := func(inm string) response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, a.HTTPURL()+"/api/v1/points/geo", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+water)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		res, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return response{Status: res.StatusCode, Header: res.Header, Body: body}
	}
	first := get("")
	etag := first.Header.Get("ETag")
	if first.Status != http.StatusOK || len(etag) < 10 || etag[:3] != `W/"` || first.Header.Get("Cache-Control") != "private, no-cache" {
		t.Fatalf("first answer: %d ETag %q Cache-Control %q", first.Status, etag, first.Header.Get("Cache-Control"))
	}
	if again := get(`"other", ` + etag); again.Status != http.StatusNotModified || len(again.Body) != 0 || again.Header.Get("ETag") != etag {
		t.Errorf("revalidation with the same ETag: %d %q ETag %q", again.Status, again.Body, again.Header.Get("ETag"))
	}
	if other := get(`W/"0000"`); other.Status != http.StatusOK || string(other.Body) != string(first.Body) {
		t.Errorf("a stale ETag: %s", other)
	}
	if err := a.Catalog.SetStatus("res1", catalog.StateOnline, time.Time{}); err != nil {
		t.Fatal(err)
	}
	changed := get(etag)
	if changed.Status != http.StatusOK || changed.Header.Get("ETag") == etag || string(changed.Body) == string(first.Body) {
		t.Errorf("after res1 went online, revalidation gave %d ETag %q", changed.Status, changed.Header.Get("ETag"))
	}
}

// TestMapLocationsOfTheDistrictGoOutGzipped: the map's list of 13,635
// points is gzipped for clients that ask, the same bytes once unpacked.
func TestMapLocationsOfTheDistrictGoOutGzipped(t *testing.T) {
	a := startApp(t)
	uiDistrictPoints(t, a, 13_635)
	plainRes, plain := a.rawGet("/api/v1/points/geo", "")
	gzRes, gz := a.rawGet("/api/v1/points/geo", "gzip")
	if plainRes.StatusCode != http.StatusOK || plainRes.Header.Get("Content-Encoding") != "" || gzRes.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("plain %d %v; gzip %d %v", plainRes.StatusCode, plainRes.Header, gzRes.StatusCode, gzRes.Header)
	}
	if unpacked := gunzip(t, gz); string(unpacked) != string(plain) {
		t.Errorf("gzipped answer unpacks to %d bytes, plain is %d", len(unpacked), len(plain))
	}
	var loc catalog.Locations
	if err := json.Unmarshal(plain, &loc); err != nil || len(loc.ID) != 13_635 {
		t.Fatalf("%d points, %v", len(loc.ID), err)
	}
	t.Logf("/api/v1/points/geo with 13,635 points: %d bytes plain, %d gzipped", len(plain), len(gz))
}
