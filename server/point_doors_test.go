package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/edge"
)

// dutyRole makes sure a built-in duty role (sysadmin, secadmin, auditor)
// can be given to users, whether or not accounts stores it yet.
func (a *testApp) dutyRole(name string) {
	a.t.Helper()
	res := a.admin(http.MethodPost, "/api/v1/roles", map[string]string{"name": name})
	if res.Status != http.StatusCreated && res.Status != http.StatusConflict {
		a.t.Fatalf("role %s: %s", name, res)
	}
}

// streetsFixture: the district with two streets and one community each.
func (a *testApp) streetsFixture() {
	a.t.Helper()
	for _, r := range []catalog.Region{
		{Code: "440307", Name: "District"},
		{Code: "440307001", Name: "S1", Parent: "440307"}, {Code: "440307001001", Name: "S1 C1", Parent: "440307001"},
		{Code: "440307002", Name: "S2", Parent: "440307"}, {Code: "440307002001", Name: "S2 C1", Parent: "440307002"},
	} {
		mustRegion(a.t, a, r)
	}
}

// Issue 10, door "PATCH": a user with manage on road in one street up to
// level 2 PATCHed a point to level 4 in another category and region (200):
// the check ran on the stored point only.
func TestManagerCannotMoveAPointOutOfTheirGrant(t *testing.T) {
	a := startApp(t)
	a.streetsFixture()
	a.createUser("mgr", "mgr-pass-123")
	a.grant(map[string]any{"user": "mgr", "categories": []string{"road"}, "regions": []string{"440307001"},
		"max_level": 2, "actions": []string{"view", "manage"}})
	mgr := a.loginAs("mgr", "mgr-pass-123")
	point := func(id, category, region string, level int) {
		t.Helper()
		res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": id, "name": "Point " + id,
			"category": category, "region": region, "level": level, "main": map[string]string{"type": "publish"}})
		if res.Status != http.StatusCreated {
			t.Fatalf("create %s: %s", id, res)
		}
	}
	point("r1", "road", "440307001001", 1)
	point("r4", "road", "440307001001", 4)
	stored := func(id string) (p catalog.Point) {
		decodeInto(t, a.admin(http.MethodGet, "/api/v1/points/"+id, nil), &p)
		return p
	}

	for _, patch := range []map[string]any{
		{"level": 4},
		{"level": 3},
		{"category": "reservoir"},
		{"region": "440307002001"},
		{"region": ""},
		{"level": 4, "category": "reservoir", "region": "440307002001"},
	} {
		res := a.do(http.MethodPatch, "/api/v1/points/r1", mgr, "", patch)
		if res.Status != http.StatusForbidden {
			t.Errorf("PATCH %v by a road/S1/≤2 manager: %s, want 403", patch, res)
		}
		if p := stored("r1"); p.Level != 1 || p.Category != "road" || p.Region != "440307001001" {
			t.Fatalf("a refused PATCH %v changed the point: %+v", patch, p)
		}
	}
	// Inside the grant the manager still works.
	if res := a.do(http.MethodPatch, "/api/v1/points/r1", mgr, "", map[string]any{"name": "Renamed", "level": 2}); res.Status != http.StatusOK {
		t.Fatalf("PATCH inside the grant: %s", res)
	}
	// A point above their level is not theirs to bring down: it does not exist for them.
	wantError(t, a.do(http.MethodPatch, "/api/v1/points/r4", mgr, "", map[string]any{"level": 1}), http.StatusNotFound)
	if p := stored("r4"); p.Level != 4 {
		t.Fatalf("r4 changed to level %d", p.Level)
	}

	// Create and import are decided on every point they bring.
	wantError(t, a.do(http.MethodPost, "/api/v1/points", mgr, "", map[string]any{"name": "High", "category": "road",
		"region": "440307001001", "level": 3, "main": map[string]string{"type": "publish"}}), http.StatusForbidden)
	if res := a.do(http.MethodPost, "/api/v1/points", mgr, "", map[string]any{"id": "r2", "name": "Low", "category": "road",
		"region": "440307001001", "level": 2, "main": map[string]string{"type": "publish"}}); res.Status != http.StatusCreated {
		t.Fatalf("create inside the grant: %s", res)
	}
	header := strings.Join(catalog.PointColumns, ",")
	row := func(id, category, region string, level int) string {
		return id + ",Point " + id + ",hd," + category + "," + region + ",,," + string(rune('0'+level)) + ",,,false,,"
	}
	before := a.pointTotal()
	csv := header + "\n" + row("i1", "road", "440307001001", 1) + "\n" + row("i2", "road", "440307002001", 1) + "\n"
	e := wantError(t, a.do(http.MethodPost, "/api/v1/points/import", mgr, "text/csv", csv), http.StatusForbidden)
	if !strings.Contains(e.Message, "line 3") {
		t.Errorf("the refusal does not name the row: %q", e.Message)
	}
	if n := a.pointTotal(); n != before {
		t.Fatalf("a refused import wrote %d points", n-before)
	}
	if res := a.do(http.MethodPost, "/api/v1/points/import", mgr, "text/csv", header+"\n"+row("i1", "road", "440307001001", 1)+"\n"); res.Status != http.StatusOK {
		t.Fatalf("import inside the grant: %s", res)
	}

	// ManageAllPoints (sysadmin) changes any point, without a grant to watch it.
	a.dutyRole("sysadmin")
	a.createUser("sys", "sys-pass-1234", "sysadmin")
	sys := a.loginAs("sys", "sys-pass-1234")
	wantError(t, a.do(http.MethodGet, "/api/v1/points/r4", sys, "", nil), http.StatusNotFound)
	if res := a.do(http.MethodPatch, "/api/v1/points/r4", sys, "", map[string]any{"level": 1, "category": "school"}); res.Status != http.StatusOK {
		t.Fatalf("sysadmin PATCH: %s", res)
	}
	if res := a.do(http.MethodDelete, "/api/v1/points/r4", sys, "", nil); res.Status != http.StatusNoContent {
		t.Fatalf("sysadmin DELETE: %s", res)
	}
}

// Issue 10, door "camera binding": a user with provision on one category
// in one street at level 1 created a point bound to a camera that already
// belonged to a level-4 point elsewhere, then took its snapshot (200) and
// moved its PTZ head (204).
func TestACameraBindsToOnePointSoNoNewPointReachesALevel4Camera(t *testing.T) {
	a := startApp(t)
	a.streetsFixture()
	cam := startONVIFCamera(t, "Panorama-4")
	creds := a.enrollAgent("Street 2 LAN")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	book := edge.NewCameraBook(t.TempDir(), testLogger())
	book.SetCameraNetworks(loopbackCameraNetworks(t))
	probed, err := book.Provision(ctx, "", cam.XAddr(), "admin", "cam-secret-1")
	if err != nil {
		t.Fatal(err)
	}
	mainURL, err := probed.StreamURL(probed.MainToken)
	if err != nil {
		t.Fatal(err)
	}
	agent := edge.New(edge.Config{Credentials: creds, Cameras: book, HealthInterval: time.Second, Logger: testLogger(),
		CameraNetworks: loopbackCameraNetworks(t)})
	actx, acancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(actx) }()
	t.Cleanup(func() { acancel(); <-done })
	waitFor(t, 10*time.Second, "agent online", func() bool { return agent.Online() && a.agentOnline(creds.AgentID) })

	bound := func(id, name, category, region string, level int) map[string]any {
		return map[string]any{"id": id, "name": name, "kind": "panoramic", "category": category, "region": region,
			"level": level, "ptz": true, "agent": creds.AgentID, "camera": probed.ID,
			"main": map[string]string{"type": "rtsp", "url": mainURL}}
	}
	if res := a.admin(http.MethodPost, "/api/v1/points", bound("pano4", "Level-4 panorama", "forest-fire", "440307002001", 4)); res.Status != http.StatusCreated {
		t.Fatalf("create the level-4 point: %s", res)
	}
	if res := a.admin(http.MethodGet, "/api/v1/points/pano4/snapshot.jpg", nil); res.Status != http.StatusOK {
		t.Fatalf("the camera is not reachable through its agent (admin snapshot): %s", res)
	}

	a.createUser("tech1", "tech1-pass-123")
	a.grant(map[string]any{"user": "tech1", "categories": []string{"road"}, "regions": []string{"440307001"},
		"max_level": 1, "actions": []string{"provision", "view", "snapshot", "ptz"}})
	tech := a.loginAs("tech1", "tech1-pass-123")

	res := a.do(http.MethodPost, "/api/v1/points", tech, "", bound("mine", "My road camera", "road", "440307001001", 1))
	if res.Status == http.StatusCreated {
		snap := a.do(http.MethodGet, "/api/v1/points/mine/snapshot.jpg", tech, "", nil)
		ptz := a.do(http.MethodPost, "/api/v1/points/mine/ptz", tech, "", map[string]any{"op": "move", "pan": 0.5, "timeout_ms": 200})
		t.Fatalf("a level-1 technician bound a second point to the level-4 camera (201); its snapshot answered %d, its PTZ %d", snap.Status, ptz.Status)
	}
	e := wantError(t, res, http.StatusConflict)
	if e.Field != "camera" || strings.Contains(string(res.Body), "pano4") {
		t.Errorf("409 should name the field and not the owner the caller may not see: %s", res.Body)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/points/pano4/snapshot.jpg", tech, "", nil), http.StatusNotFound)
	wantError(t, a.do(http.MethodPost, "/api/v1/points/pano4/ptz", tech, "", map[string]any{"op": "stop"}), http.StatusNotFound)
	var list struct{ Items []catalog.Point }
	decodeInto(t, a.do(http.MethodGet, "/api/v1/points", tech, "", nil), &list)
	if len(list.Items) != 0 {
		t.Fatalf("the technician sees %d points", len(list.Items))
	}
	// Outside their grant the decision comes first: 403, which says
	// nothing about the camera's owner.
	wantError(t, a.do(http.MethodPost, "/api/v1/points", tech, "", bound("", "Elsewhere", "road", "440307002001", 1)), http.StatusForbidden)

	// One camera, one point, for everyone and by every path.
	wantError(t, a.admin(http.MethodPost, "/api/v1/points", bound("again", "Again", "forest-fire", "440307002001", 4)), http.StatusConflict)
	other := bound("free", "Another camera", "road", "440307001001", 1)
	other["camera"] = "not-yet-discovered"
	if res := a.admin(http.MethodPost, "/api/v1/points", other); res.Status != http.StatusCreated {
		t.Fatalf("a free camera: %s", res)
	}
	wantError(t, a.admin(http.MethodPatch, "/api/v1/points/free", map[string]any{"camera": probed.ID}), http.StatusConflict)
	header := strings.Join(append(append([]string{}, catalog.PointColumns...), "agent", "camera"), ",")
	csv := header + "\nimp,Imported,hd,road,440307001001,,,1,,,false,,," + creds.AgentID + "," + probed.ID + "\n"
	if res := a.do(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", csv); res.Status != http.StatusConflict || !strings.Contains(string(res.Body), `"camera_bound"`) {
		t.Fatalf("import binding a bound camera: %s", res)
	}
	if _, err := a.Catalog.Get("imp"); err == nil {
		t.Fatal("the refused import wrote its row")
	}
	if id, _ := a.Catalog.CameraOwner(creds.AgentID, probed.ID); id != "pano4" {
		t.Fatalf("the camera's owner is %q", id)
	}
}
