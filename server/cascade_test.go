package server

import (
	"net/http"
	"slices"
	"testing"

	"github.com/tianyan/vms/catalog"
)

// gbPoint creates a point with a GB ID in a category, region and level.
func (a *testApp) gbPoint(id, category, region string, level int) {
	a.t.Helper()
	res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": id, "name": "GB " + id, "category": category,
		"region": region, "level": level, "lat": 22.5, "lon": 113.9, "main": map[string]string{"type": "publish"}})
	if res.Status != http.StatusCreated {
		a.t.Fatalf("create point %s: %s", id, res)
	}
}

func ids(ps []catalog.Point) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.ID)
	}
	slices.Sort(out)
	return out
}

func TestCascadeSeesExactlyWhatThePlatformAccountsGrantsAllow(t *testing.T) {
	a := startApp(t)
	for _, r := range []map[string]any{{"code": "440307", "name": "District"}, {"code": "440307001", "name": "S1", "parent": "440307"},
		{"code": "440307002", "name": "S2", "parent": "440307"}} {
		if res := a.admin(http.MethodPost, "/api/v1/regions", r); res.Status != http.StatusCreated {
			t.Fatalf("region: %s", res)
		}
	}
	a.gbPoint("44030700001320000001", "reservoir", "440307001", 2) // granted
	a.gbPoint("44030700001320000002", "reservoir", "440307001", 4) // above the level
	a.gbPoint("44030700001320000003", "school", "440307001", 1)    // other category
	a.gbPoint("44030700001320000004", "reservoir", "440307002", 1) // other street
	a.gbPoint("44030700001320000005", "river", "440307001", 3)     // granted
	res := a.admin(http.MethodPost, "/api/v1/users", map[string]any{"username": "city", "kind": "platform"})
	if res.Status != http.StatusCreated {
		t.Fatalf("platform account: %s", res)
	}
	// A person with the very same grant: the cascade must never act for them.
	a.createUser("alice", "alice-pass-123")
	for _, u := range []string{"city", "alice"} {
		a.grant(map[string]any{"user": u, "categories": []string{"reservoir", "river"}, "regions": []string{"440307001"}, "max_level": 3, "actions": []string{"view"}})
	}
	acc := cascadeAccess{acc: a.Accounts, cat: a.Catalog, perm: a.decider}
	want := []string{"44030700001320000001", "44030700001320000005"}
	if got := ids(acc.PointsVisibleTo("city")); !slices.Equal(got, want) {
		t.Fatalf("platform sees %v, want %v", got, want)
	}
	if !acc.CanView("city", "44030700001320000001") || acc.CanView("city", "44030700001320000002") || acc.CanView("city", "nope") {
		t.Error("CanView disagrees with the grants")
	}
	if got := acc.PointsVisibleTo("alice"); len(got) != 0 || acc.CanView("alice", "44030700001320000001") {
		t.Errorf("a person's account is answered for: %v", ids(got))
	}
	if res := a.admin(http.MethodPatch, "/api/v1/users/city", map[string]any{"disabled": true}); res.Status != http.StatusOK {
		t.Fatalf("disable: %s", res)
	}
	if got := acc.PointsVisibleTo("city"); len(got) != 0 || acc.CanView("city", "44030700001320000001") {
		t.Errorf("a disabled platform still sees %v", ids(got))
	}
}
