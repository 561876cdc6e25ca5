package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/whepclient"
)

// grantsFixture: two streets, a reservoir camera in street 1 and a school
// camera in street 2, and a water-bureau user with no grants yet.
func grantsFixture(t *testing.T) (*testApp, string) {
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	for _, r := range []catalog.Region{{Code: "440307", Name: "District"}, {Code: "440307001", Name: "S1", Parent: "440307"}, {Code: "440307002", Name: "S2", Parent: "440307"}} {
		if _, err := a.Catalog.CreateRegion(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []map[string]any{
		{"id": "res1", "name": "Reservoir", "category": "reservoir", "region": "440307001", "level": 2, "main": map[string]string{"type": "rtsp", "url": cam.URL("main")}},
		{"id": "sch1", "name": "School", "category": "school", "region": "440307002", "level": 1, "main": map[string]string{"type": "rtsp", "url": cam.URL("main")}},
	} {
		if res := a.admin(http.MethodPost, "/api/v1/points", p); res.Status != http.StatusCreated {
			t.Fatalf("create point: %s", res)
		}
	}
	if _, err := a.Accounts.CreateUser(accounts.User{Username: "water", DisplayName: "Water bureau"}, "water-pass-123"); err != nil {
		t.Fatal(err)
	}
	res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "water", "password": "water-pass-123"})
	if res.Status != http.StatusOK {
		t.Fatalf("login water: %s", res)
	}
	var tok struct{ Token string }
	decodeInto(t, res, &tok)
	return a, tok.Token
}

func TestUserWithoutGrantSeesNothingAndGetsNotFound(t *testing.T) {
	a, tok := grantsFixture(t)
	res := a.do(http.MethodGet, "/api/v1/points", tok, "", nil)
	var list struct{ Total int }
	decodeInto(t, res, &list)
	if res.Status != http.StatusOK || list.Total != 0 {
		t.Fatalf("ungranted user lists %d points: %s", list.Total, res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/points/res1", tok, "", nil), http.StatusNotFound)
	wantError(t, a.do(http.MethodPost, "/api/v1/points/res1/whep", tok, "application/sdp", "v=0\r\n"), http.StatusNotFound)
	wantError(t, a.do(http.MethodPost, "/api/v1/grants", tok, "", map[string]any{}), http.StatusForbidden)
}

func TestGrantShowsItsPointsOnlyAndRevokingItEndsTheLiveView(t *testing.T) {
	a, tok := grantsFixture(t)
	res := a.admin(http.MethodPost, "/api/v1/grants", map[string]any{
		"user": "water", "categories": []string{"reservoir", "river"}, "regions": []string{"440307"},
		"max_level": 2, "actions": []string{"view"},
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("create grant: %s", res)
	}
	var g struct{ ID string }
	decodeInto(t, res, &g)

	res = a.do(http.MethodGet, "/api/v1/points", tok, "", nil)
	var list struct {
		Items []struct{ ID string }
		Total int
	}
	decodeInto(t, res, &list)
	if list.Total != 1 || list.Items[0].ID != "res1" {
		t.Fatalf("granted list: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/points/sch1", tok, "", nil), http.StatusNotFound)
	res = a.do(http.MethodGet, "/api/v1/points/facets", tok, "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("facets: %s", res)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := whepclient.ConnectHTTP(ctx, a.whepURL("res1"), tok, whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatalf("granted user cannot play: %v", err)
	}
	t.Cleanup(c.Close)
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := whepclient.ConnectHTTP(ctx, a.whepURL("sch1"), tok, whepclient.Options{Interfaces: []string{"lo"}}); err == nil {
		t.Fatal("user played a point outside the grant")
	}

	if res := a.admin(http.MethodDelete, "/api/v1/grants/"+g.ID, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete grant: %s", res)
	}
	revoked := time.Now()
	for a.WebRTC.SessionCount() > 0 {
		if time.Since(revoked) > 5*time.Second {
			t.Fatal("live view still running 5 s after its grant was removed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/points/res1", tok, "", nil), http.StatusNotFound)
}

func TestRTSPReadFollowsGrantsAndRevokingEndsTheReader(t *testing.T) {
	a, _ := grantsFixture(t)
	res := a.admin(http.MethodPost, "/api/v1/grants", map[string]any{
		"user": "water", "categories": []string{"reservoir"}, "regions": []string{"440307"},
		"max_level": 2, "actions": []string{"view"},
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("create grant: %s", res)
	}
	var g struct{ ID string }
	decodeInto(t, res, &g)

	_, err := readRTSP(t, "rtsp://water:water-pass-123@"+a.RTSP.Addr()+"/sch1", true)
	wantRTSPStatus(t, err, base.StatusNotFound)
	r, err := readRTSP(t, "rtsp://water:water-pass-123@"+a.RTSP.Addr()+"/res1", true)
	if err != nil {
		t.Fatalf("granted RTSP read: %v", err)
	}
	waitFor(t, 10*time.Second, "RTP packets", func() bool { return r.packets.Load() >= 50 })
	ended := make(chan error, 1)
	go func() { ended <- r.client.Wait() }()

	if res := a.admin(http.MethodDelete, "/api/v1/grants/"+g.ID, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete grant: %s", res)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("RTSP reader still connected 5 s after its grant was removed")
	}
	waitFor(t, 5*time.Second, "view.stop via rtsp in the audit log", func() bool {
		recs, _, err := a.Audit.Query(audit.Filter{Action: "view.stop", Point: "res1", User: "water"})
		return err == nil && len(recs) == 1 && recs[0].Detail["via"] == "rtsp"
	})
}
