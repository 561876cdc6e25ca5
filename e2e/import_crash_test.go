package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tianyan/vms/demo"
)

// catalogBefore is what a server holds before the big import: the
// district's regions, one point, a user and their grant.
type catalogBefore struct {
	regions int
	grantID string
	point   string
}

// seedBeforeImport fills a fresh server with what the import must not
// disturb.
func seedBeforeImport(t *testing.T, admin *api, regionsCSV []byte) catalogBefore {
	t.Helper()
	var imported struct{ Imported int }
	if err := admin.call(http.MethodPost, "/api/v1/regions/import", "text/csv", regionsCSV, &imported); err != nil {
		t.Fatalf("import regions: %v", err)
	}
	admin.must(http.MethodPost, "/api/v1/points", map[string]any{"id": "before-import", "name": "已有点位",
		"category": "reservoir", "region": demo.CommunityCode(0, 0), "level": 2,
		"main": map[string]string{"type": "publish"}}, nil)
	admin.must(http.MethodPost, "/api/v1/users", map[string]any{"username": "water", "password": "water-pass-123", "display_name": "水务局"}, nil)
	var g struct{ ID string }
	admin.must(http.MethodPost, "/api/v1/grants", map[string]any{"user": "water", "categories": []string{"reservoir", "river"},
		"regions": []string{demo.DistrictCode}, "max_level": 3, "actions": []string{"view"}}, &g)
	return catalogBefore{regions: imported.Imported, grantID: g.ID, point: "before-import"}
}

// importPoints posts the CSV; it returns the answer's error (a dropped
// connection when the server was killed under it).
func importPoints(admin *api, csvData []byte) error {
	var out struct{ Imported int }
	return admin.call(http.MethodPost, "/api/v1/points/import", "text/csv", csvData, &out)
}

// checkAfterRestart asserts what must hold after any crash: the import is
// all there or not at all, what was there before is intact, the audit
// chain verifies, and the import's audit record is there exactly when its
// rows are (they commit in one transaction). It returns how many imported
// rows the server holds.
func checkAfterRestart(t *testing.T, v *vmsServer, before catalogBefore, rows int, ids []string) (kept int) {
	t.Helper()
	admin := login(t, v, "admin", adminPassword)
	var facets struct{ Total int }
	admin.must(http.MethodGet, "/api/v1/points/facets", nil, &facets)
	switch facets.Total {
	case 1:
	case 1 + rows:
		for _, id := range []string{ids[0], ids[len(ids)/2], ids[len(ids)-1]} {
			admin.must(http.MethodGet, "/api/v1/points/"+id, nil, nil)
		}
	default:
		t.Fatalf("after kill -9 the catalog holds %d points: want 1 (import lost whole) or %d (import kept whole)", facets.Total, 1+rows)
	}
	admin.must(http.MethodGet, "/api/v1/points/"+before.point, nil, nil)
	var regions struct{ Items []struct{ Code string } }
	admin.must(http.MethodGet, "/api/v1/regions", nil, &regions)
	if len(regions.Items) != before.regions {
		t.Fatalf("regions after kill -9: %d, want %d", len(regions.Items), before.regions)
	}
	var grants struct{ Items []struct{ ID string } }
	admin.must(http.MethodGet, "/api/v1/grants", nil, &grants)
	if !slices.ContainsFunc(grants.Items, func(g struct{ ID string }) bool { return g.ID == before.grantID }) {
		t.Fatalf("grant %s lost by kill -9: %+v", before.grantID, grants.Items)
	}
	var verify struct {
		OK      bool
		Records int
		Reason  string
	}
	admin.must(http.MethodGet, "/api/v1/audit/verify", nil, &verify)
	if !verify.OK || verify.Records == 0 {
		t.Fatalf("audit chain after kill -9: %+v", verify)
	}
	// The user and their grant still work together.
	water := login(t, v, "water", "water-pass-123")
	var seen struct{ Total int }
	water.must(http.MethodGet, "/api/v1/points/facets", nil, &seen)
	if seen.Total < 1 {
		t.Fatal("the granted user sees nothing after kill -9")
	}
	var audit struct {
		Items []struct {
			Action string
			Detail map[string]string
		}
	}
	admin.must(http.MethodGet, "/api/v1/audit?action=point.import", nil, &audit)
	kept = facets.Total - 1
	switch {
	case kept == 0 && len(audit.Items) != 0:
		t.Fatalf("after kill -9 the import's rows are gone but its audit record is there: %+v", audit.Items)
	case kept == rows && len(audit.Items) != 1:
		t.Fatalf("after kill -9 the import's %d rows are there with %d audit records, want 1", rows, len(audit.Items))
	case kept == rows && audit.Items[0].Detail["count"] != strconv.Itoa(rows):
		t.Fatalf("the import's audit record says %+v, want count %d", audit.Items[0], rows)
	}
	return kept
}

// TestVMSKilledDuringA13635RowImportKeepsAllOrNone: the district's 13,635
// points are imported into a server that already holds regions, a point,
// a user and a grant; the server process is killed with SIGKILL at moments
// spread over the import. After each restart the catalog holds all the
// rows or none, what was there before is intact, the audit chain
// verifies, and the import's audit record is there if and only if its rows
// are.
func TestVMSKilledDuringA13635RowImportKeepsAllOrNone(t *testing.T) {
	regionsCSV := demo.RegionsCSV()
	pointsCSV, ids := demo.CatalogCSV(2019, nil)
	rows := len(ids)
	if rows != demo.HDPoints+demo.PanoramicPoints {
		t.Fatalf("generated %d rows, want %d", rows, demo.HDPoints+demo.PanoramicPoints)
	}

	// One uninterrupted import measures how long it takes here.
	v := startVMS(t, vmsOptions{})
	before := seedBeforeImport(t, login(t, v, "admin", adminPassword), regionsCSV)
	start := time.Now()
	if err := importPoints(login(t, v, "admin", adminPassword), pointsCSV); err != nil {
		t.Fatalf("uninterrupted import: %v", err)
	}
	took := time.Since(start)
	v.kill9()
	v.restart()
	if kept := checkAfterRestart(t, v, before, rows, ids); kept != rows {
		t.Fatalf("uninterrupted import kept %d of %d rows", kept, rows)
	}
	v.proc.stop()

	// Kill moments spread over the import, and one right after the
	// catalog's transaction (rows and audit record) committed (it logs the
	// count) while the server still announces the points to the hub.
	type moment struct {
		name string
		wait func(v *vmsServer)
	}
	var moments []moment
	for _, f := range []float64{0.05, 0.25, 0.5, 0.75} {
		d := time.Duration(float64(took) * f)
		moments = append(moments, moment{d.Round(time.Millisecond).String(), func(*vmsServer) { time.Sleep(d) }})
	}
	moments = append(moments, moment{"commit", func(v *vmsServer) {
		select {
		case <-v.proc.out.watch(fmt.Sprintf("msg=\"points imported\" count=%d\n", rows)):
		case <-time.After(60 * time.Second):
			t.Fatal("the catalog never logged the import's commit")
		}
	}})
	var outcomes []string
	for _, m := range moments {
		v := startVMS(t, vmsOptions{})
		admin := login(t, v, "admin", adminPassword)
		before := seedBeforeImport(t, admin, regionsCSV)
		answered := make(chan error, 1)
		go func() { answered <- importPoints(admin, pointsCSV) }()
		m.wait(v)
		v.kill9()
		err := <-answered
		var ae *apiError
		if errors.As(err, &ae) {
			t.Fatalf("import answered %v before the kill", err)
		}
		v.restart()
		outcome := "none"
		if checkAfterRestart(t, v, before, rows, ids) == rows {
			outcome = "all, audited"
			if err == nil {
				outcome += " (answered before the kill)"
			}
		}
		outcomes = append(outcomes, m.name+"→"+outcome)
		v.proc.stop()
	}
	t.Logf("import of %d rows takes %v uninterrupted (%d KiB of CSV); kill -9 at: %v", rows, took.Round(time.Millisecond), len(pointsCSV)>>10, outcomes)
}
