package web

import (
	"net/http"
	"slices"
	"testing"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
)

func newGrantsFixture(t *testing.T) (*fakeGrantStore, *fakeAudit, *Server) {
	g, a := &fakeGrantStore{}, &fakeAudit{}
	return g, a, &Server{grants: &grantHandler{grants: g, trail: a.trail(), log: quiet}}
}

const waterGrant = `{"user":"water","actions":["view"],"categories":["reservoir"],"regions":["440307001"],"max_level":2}`

func TestGrantCreateTakesItsIDAndGrantorFromTheServer(t *testing.T) {
	store, log, s := newGrantsFixture(t)
	h := route(t, s, "POST /api/v1/grants", as("sec"))

	forged := `{"id":"chosen","created_by":"mallory",` + waterGrant[1:]
	a := call(h, "POST", "/api/v1/grants", forged)
	a.want(t, http.StatusCreated, "")
	var got permissions.Grant
	a.decode(t, &got)
	if got.ID != "g1" || got.CreatedBy != "sec" || len(store.grants) != 1 || store.grants[0].CreatedBy != "sec" {
		t.Fatalf("answered %+v, stored %+v; want the store's ID and the caller as grantor", got, store.grants)
	}
	if r := log.inTx; len(r) != 1 || r[0].Action != "grant.create" || r[0].User != "sec" || r[0].Detail["grant"] != "g1" || r[0].Detail["to_user"] != "water" {
		t.Fatalf("records %+v", r)
	}
}

func TestGrantCreateRefusesAnInvalidGrantBeforeTheStore(t *testing.T) {
	store, log, s := newGrantsFixture(t)
	store.fail = errStore // the store must not even be asked
	h := route(t, s, "POST /api/v1/grants", as("sec"))
	for _, body := range []string{
		`{"actions":["view"],"categories":["reservoir"],"regions":["*"],"max_level":2}`,        // nobody
		`{"user":"water","role":"x","actions":["view"],"categories":["*"],"max_level":2}`,      // both
		`{"user":"water","actions":["fly"],"categories":["*"],"regions":["*"],"max_level":2}`,  // no such action
		`{"user":"water","actions":["view"],"categories":["*"],"regions":["*"],"max_level":9}`, // no such level
	} {
		call(h, "POST", "/api/v1/grants", body).want(t, http.StatusUnprocessableEntity, "invalid")
	}
	call(h, "POST", "/api/v1/grants", `{"user":"water","colour":"red"}`).want(t, http.StatusBadRequest, "bad_json")
	call(h, "POST", "/api/v1/grants", waterGrant, "text/plain").want(t, http.StatusUnsupportedMediaType, "bad_content_type")
	if len(log.inTx) != 0 {
		t.Fatalf("records %v", log.txActions())
	}
	// A valid grant the store cannot keep is the server's failure.
	call(h, "POST", "/api/v1/grants", waterGrant).want(t, http.StatusInternalServerError, "internal")
}

func TestGrantDeleteAnswers(t *testing.T) {
	store, log, s := newGrantsFixture(t)
	store.grants = []permissions.Grant{{ID: "g7", User: "water"}}
	h := route(t, s, "DELETE /api/v1/grants/:id", as("sec"))

	call(h, "DELETE", "/api/v1/grants/g8", "").want(t, http.StatusNotFound, "not_found")
	call(h, "DELETE", "/api/v1/grants/g7", "").want(t, http.StatusNoContent, "")
	if len(store.grants) != 0 || !slices.Equal(log.txActions(), []string{"grant.delete"}) || log.inTx[0].Detail["grant"] != "g7" {
		t.Fatalf("grants %v, records %+v", store.grants, log.inTx)
	}
	log.fail = errStore
	store.grants = []permissions.Grant{{ID: "g9"}}
	call(h, "DELETE", "/api/v1/grants/g9", "").want(t, http.StatusInternalServerError, "internal")
	if len(store.grants) != 1 {
		t.Fatal("a grant went without its record")
	}
}

// fakeAccessPoints is the catalog the access previews read.
type fakeAccessPoints struct {
	points map[string]catalog.Point
	// faceted is the scope of the last Facets.
	faceted *catalog.Scope
}

func (f *fakeAccessPoints) Get(id string) (catalog.Point, error) {
	p, ok := f.points[id]
	if !ok {
		return catalog.Point{}, catalog.ErrNotFound
	}
	return p, nil
}

func (f *fakeAccessPoints) Facets(_ catalog.Query, s catalog.Scope) (catalog.Facets, error) {
	f.faceted = &s
	return catalog.Facets{Total: 7}, nil
}

func TestPointAccessListsWhoMayViewAndThrough(t *testing.T) {
	points := &fakeAccessPoints{points: map[string]catalog.Point{"road-1": road}}
	users := newFakeAccounts(
		accounts.User{Username: "root", Roles: []string{accounts.RoleAdmin}},
		accounts.User{Username: "street"},
		accounts.User{Username: "steerer"},
		accounts.User{Username: "nobody"})
	decide := &fakeDecider{t: t, explain: func(u accounts.User, p catalog.Point) ([]permissions.Action, []string) {
		switch u.Username {
		case "root":
			return permissions.AllActions, nil
		case "street":
			return []permissions.Action{permissions.View}, []string{"grant g1"}
		case "steerer":
			// ptz without view lets nobody watch: not listed
			return []permissions.Action{permissions.PTZ}, []string{"grant g2"}
		}
		return nil, nil
	}}
	s := &Server{access: &accessHandler{points: points, users: users, decide: decide, log: quiet}}
	h := route(t, s, "GET /api/v1/points/:id/access", as("sec"))

	var got struct {
		Point string             `json:"point"`
		Users []pointAccessEntry `json:"users"`
	}
	a := call(h, "GET", "/api/v1/points/road-1/access", "")
	a.want(t, http.StatusOK, "")
	a.decode(t, &got)
	slices.SortFunc(got.Users, func(x, y pointAccessEntry) int {
		if x.Username < y.Username {
			return -1
		}
		return 1
	})
	if got.Point != "road-1" || len(got.Users) != 2 ||
		got.Users[0].Username != "root" || !slices.Equal(got.Users[0].Via, []string{viaAdminRole}) ||
		got.Users[1].Username != "street" || !slices.Equal(got.Users[1].Via, []string{"grant g1"}) {
		t.Fatalf("access %+v", got)
	}
	call(h, "GET", "/api/v1/points/nope/access", "").want(t, http.StatusNotFound, "not_found")
}

func TestUserAccessIsTheFacetsOfTheUsersOwnViewScope(t *testing.T) {
	points := &fakeAccessPoints{}
	users := newFakeAccounts(accounts.User{Username: "street"})
	streets := catalog.Scope{Rules: []catalog.ScopeRule{{Categories: []string{"road"}, Regions: []string{"440307001"}, MaxLevel: 2}}}
	decide := &fakeDecider{t: t, scope: func(u accounts.User, a permissions.Action) catalog.Scope {
		if u.Username != "street" || a != permissions.View {
			t.Errorf("scope of %s %s; want the previewed user's view", u.Username, a)
		}
		return streets
	}}
	s := &Server{access: &accessHandler{points: points, users: users, decide: decide, log: quiet}}
	h := route(t, s, "GET /api/v1/users/:name/access", as("sec"))

	var got struct {
		Username string        `json:"username"`
		Total    int           `json:"total"`
		Scope    catalog.Scope `json:"scope"`
	}
	a := call(h, "GET", "/api/v1/users/street/access", "")
	a.want(t, http.StatusOK, "")
	a.decode(t, &got)
	if got.Username != "street" || got.Total != 7 || len(got.Scope.Rules) != 1 || points.faceted == nil || points.faceted.Rules[0].MaxLevel != 2 {
		t.Fatalf("access %+v, faceted within %+v", got, points.faceted)
	}
	call(h, "GET", "/api/v1/users/ghost/access", "").want(t, http.StatusNotFound, "not_found")
	call(h, "GET", "/api/v1/users/street/access?level=x", "").want(t, http.StatusBadRequest, "bad_query")
}
