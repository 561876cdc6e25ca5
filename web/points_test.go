package web

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// fakePoints is a catalog of points in memory, for the points resource.
type fakePoints struct {
	mu     sync.Mutex
	points map[string]catalog.Point
	// bound maps "agent/camera" to the point that has that camera.
	bound map[string]string
	// searched is the scope of the last Search.
	searched *catalog.Scope
	fail     error
}

func newFakePoints(ps ...catalog.Point) *fakePoints {
	f := &fakePoints{points: map[string]catalog.Point{}, bound: map[string]string{}}
	for _, p := range ps {
		f.points[p.ID] = p
		if p.Camera != "" {
			f.bound[p.Agent+"/"+p.Camera] = p.ID
		}
	}
	return f
}

func (f *fakePoints) get(id string) (catalog.Point, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.points[id]
	return p, ok
}

func (f *fakePoints) Search(_ catalog.Query, s catalog.Scope) (catalog.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searched = &s
	var out catalog.Result
	for _, p := range f.points {
		out.Items = append(out.Items, p)
	}
	slices.SortFunc(out.Items, func(a, b catalog.Point) int { return strings.Compare(a.ID, b.ID) })
	out.Total = len(out.Items)
	return out, nil
}

func (f *fakePoints) Facets(catalog.Query, catalog.Scope) (catalog.Facets, error) {
	return catalog.Facets{}, nil
}

func (f *fakePoints) Locations(catalog.Query, catalog.Scope) (catalog.Locations, error) {
	return catalog.Locations{}, nil
}

func (f *fakePoints) Create(p catalog.Point, also ...store.ResultHook[catalog.Point]) (catalog.Point, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return catalog.Point{}, f.fail
	}
	if p.ID == "" {
		p.ID = "new-" + p.Region
	}
	if _, ok := f.points[p.ID]; ok {
		return catalog.Point{}, catalog.ErrExists
	}
	if owner, ok := f.bound[p.Agent+"/"+p.Camera]; ok && p.Camera != "" && owner != p.ID {
		return catalog.Point{}, catalog.ErrCameraBound
	}
	if err := commitWith(p, also...); err != nil {
		return catalog.Point{}, err
	}
	f.points[p.ID] = p
	return p, nil
}

// apply is the part of a patch these tests send.
func apply(p catalog.Point, patch catalog.PointPatch) catalog.Point {
	if patch.Name != nil {
		p.Name = *patch.Name
	}
	if patch.Category != nil {
		p.Category = *patch.Category
	}
	if patch.Region != nil {
		p.Region = *patch.Region
	}
	if patch.Level != nil {
		p.Level = *patch.Level
	}
	return p
}

func (f *fakePoints) UpdateIf(id string, patch catalog.PointPatch, allow func(stored, next catalog.Point) error, also ...store.ResultHook[catalog.Point]) (catalog.Point, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored, ok := f.points[id]
	if !ok {
		return catalog.Point{}, catalog.ErrNotFound
	}
	next := apply(stored, patch)
	if err := allow(stored, next); err != nil {
		return catalog.Point{}, err
	}
	if err := commitWith(next, also...); err != nil {
		return catalog.Point{}, err
	}
	f.points[id] = next
	return next, nil
}

func (f *fakePoints) Delete(id string, also ...store.TxHook) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.points[id]; !ok {
		return catalog.ErrNotFound
	}
	if err := commit(also...); err != nil {
		return err
	}
	delete(f.points, id)
	return nil
}

// fakeAgents knows which edge agents exist.
type fakeAgents map[string]bool

func (f fakeAgents) Exists(id string) bool { return f[id] }

// pointsFixture is a points resource over fakes, and what it told the hub.
type pointsFixture struct {
	points  *fakePoints
	decide  *fakeDecider
	audit   *fakeAudit
	changed []catalog.Point
	deleted []string
	s       *Server
}

func newPointsFixture(t *testing.T, ps ...catalog.Point) *pointsFixture {
	f := &pointsFixture{points: newFakePoints(ps...), decide: &fakeDecider{t: t}, audit: &fakeAudit{}}
	f.s = &Server{points: &pointHandler{points: f.points, decide: f.decide, agents: fakeAgents{"agent-1": true},
		trail: f.audit.trail(), log: quiet,
		changed: func(p catalog.Point) { f.changed = append(f.changed, p) },
		deleted: func(id string) { f.deleted = append(f.deleted, id) }}}
	return f
}

// road is a stored point of the road category, level 2, in street 001.
var road = catalog.Point{ID: "road-1", Name: "Road 1", Category: "road", Region: "440307001", Level: 2,
	Main: catalog.Source{Type: catalog.SourceRTSP, URL: "rtsp://admin:secret@10.0.0.7/main"}}

func TestPointPatchIsDecidedOnTheStoredAndTheResultingPoint(t *testing.T) {
	f := newPointsFixture(t, road)
	var asked []catalog.Point
	// The caller manages road points up to level 2, nothing above.
	f.decide.canChange = func(u accounts.User, stored, next catalog.Point) bool {
		asked = append(asked, stored, next)
		return u.Username == "roads" && stored.Level <= 2 && next.Level <= 2
	}
	h := route(t, f.s, "PATCH /api/v1/points/:id", as("roads").on(road))

	call(h, "PATCH", "/api/v1/points/road-1", `{"level":4}`).want(t, http.StatusForbidden, "forbidden")
	if len(asked) != 2 || asked[0].Level != 2 || asked[1].Level != 4 {
		t.Fatalf("decided on %+v; want the stored point (level 2) and the result (level 4)", asked)
	}
	if p, _ := f.points.get("road-1"); p.Level != 2 {
		t.Fatalf("the refused change was stored: level %d", p.Level)
	}
	if len(f.audit.inTx) != 0 || len(f.changed) != 0 {
		t.Fatalf("a refused change was audited (%v) or announced (%v)", f.audit.txActions(), f.changed)
	}

	a := call(h, "PATCH", "/api/v1/points/road-1", `{"name":"Renamed"}`)
	a.want(t, http.StatusOK, "")
	var got catalog.Point
	a.decode(t, &got)
	if got.Name != "Renamed" || strings.Contains(got.Main.URL, "secret") {
		t.Fatalf("answer %+v; want the renamed point with its camera password hidden", got)
	}
	if p, _ := f.points.get("road-1"); p.Name != "Renamed" {
		t.Fatalf("stored %+v", p)
	}
	if acts := f.audit.txActions(); !slices.Equal(acts, []string{"point.update"}) || f.audit.inTx[0].User != "roads" || f.audit.inTx[0].Point != "road-1" {
		t.Fatalf("audit in the change's transaction: %+v", f.audit.inTx)
	}
	if len(f.changed) != 1 || f.changed[0].Name != "Renamed" {
		t.Fatalf("the hub was told %+v", f.changed)
	}
}

func TestPointPatchIsRolledBackWhenItsRecordCannotBeWritten(t *testing.T) {
	f := newPointsFixture(t, road)
	f.decide.canChange = func(accounts.User, catalog.Point, catalog.Point) bool { return true }
	f.audit.fail = errStore
	h := route(t, f.s, "PATCH /api/v1/points/:id", as("roads").on(road))

	call(h, "PATCH", "/api/v1/points/road-1", `{"name":"Renamed"}`).want(t, http.StatusInternalServerError, "internal")
	if p, _ := f.points.get("road-1"); p.Name != "Road 1" || len(f.changed) != 0 {
		t.Fatalf("a change without its record stood: %+v, hub told %v", p, f.changed)
	}
}

func TestPointCreateAnswers(t *testing.T) {
	bound := catalog.Point{ID: "pano-4", Category: "public", Region: "440307002", Level: 4, Agent: "agent-1", Camera: "cam-9",
		Main: catalog.Source{Type: catalog.SourcePublish}}
	body := func(extra string) string {
		return `{"name":"New","kind":"camera","category":"road","region":"440307001","level":1,"main":{"type":"publish"}` + extra + `}`
	}
	cases := []struct {
		name      string
		caller    string
		may       bool // CanCreate
		provision bool // holds provision somewhere
		body      string
		status    int
		code      string
		field     string
		message   string
	}{
		{name: "outside the caller's grants", caller: "clerk", body: body(""), status: 403, code: "forbidden", message: "no grant to create"},
		{name: "a technician without an agent", caller: "tech", provision: true, body: body(""), status: 403, code: "forbidden", message: "through an edge agent"},
		{name: "an unknown agent", caller: "roads", may: true, body: body(`,"agent":"agent-x","camera":"cam-1"`), status: 422, code: "invalid", field: "agent"},
		{name: "a camera another point has", caller: "roads", may: true, body: body(`,"agent":"agent-1","camera":"cam-9"`), status: 409, code: "camera_bound", field: "camera"},
		{name: "not JSON", caller: "roads", may: true, body: `{"name":`, status: 400, code: "bad_json", field: "body"},
		{name: "created", caller: "roads", may: true, body: body(`,"agent":"agent-1","camera":"cam-2"`), status: 201},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newPointsFixture(t, bound)
			f.decide.canCreate = func(u accounts.User, p catalog.Point) bool {
				if u.Username != tc.caller || p.Category != "road" || p.Level != 1 {
					t.Errorf("CanCreate asked about %s creating %+v", u.Username, p)
				}
				return tc.may
			}
			f.decide.somewhere = func(_ accounts.User, a permissions.Action) bool {
				return a == permissions.Provision && tc.provision
			}
			a := call(route(t, f.s, "POST /api/v1/points", as(tc.caller)), "POST", "/api/v1/points", tc.body)
			a.want(t, tc.status, tc.code)
			if a.errorField() != tc.field || !strings.Contains(a.Body.String(), tc.message) {
				t.Fatalf("answer %s; want field %q and a message saying %q", a.Body, tc.field, tc.message)
			}
			if tc.status != http.StatusCreated {
				if len(f.points.points) != 1 || len(f.audit.inTx) != 0 || len(f.changed) != 0 {
					t.Fatalf("a refused create left %d points, records %v, hub told %v", len(f.points.points), f.audit.txActions(), f.changed)
				}
				return
			}
			if a.Header().Get("Location") != "/api/v1/points/new-440307001" {
				t.Fatalf("Location %q", a.Header().Get("Location"))
			}
			r := f.audit.inTx
			if len(r) != 1 || r[0].Action != "point.create" || r[0].User != "roads" || r[0].Point != "new-440307001" ||
				r[0].Detail["agent"] != "agent-1" || r[0].Detail["camera"] != "cam-2" {
				t.Fatalf("records %+v", r)
			}
			if len(f.changed) != 1 || f.changed[0].ID != "new-440307001" {
				t.Fatalf("the hub was told %+v", f.changed)
			}
		})
	}
}

func TestPointListSearchesWithinTheCallersViewScopeAndHidesPasswords(t *testing.T) {
	f := newPointsFixture(t, road)
	streets := catalog.Scope{Rules: []catalog.ScopeRule{{Categories: []string{"road"}, Regions: []string{"440307001"}, MaxLevel: 2}}}
	f.decide.scope = func(u accounts.User, a permissions.Action) catalog.Scope {
		if u.Username != "street" || a != permissions.View {
			t.Errorf("scope asked for %s %s", u.Username, a)
		}
		return streets
	}
	a := call(route(t, f.s, "GET /api/v1/points", as("street")), "GET", "/api/v1/points", "")
	a.want(t, http.StatusOK, "")
	if f.points.searched == nil || len(f.points.searched.Rules) != 1 || f.points.searched.Rules[0].MaxLevel != 2 {
		t.Fatalf("searched within %+v; want the caller's view scope", f.points.searched)
	}
	if strings.Contains(a.Body.String(), "secret") || !strings.Contains(a.Body.String(), `"road-1"`) {
		t.Fatalf("list %s", a.Body)
	}
	call(route(t, f.s, "GET /api/v1/points", as("street")), "GET", "/api/v1/points?levle=2", "").want(t, http.StatusBadRequest, "bad_query")
}

func TestPointDeleteRecordsAndTellsTheHub(t *testing.T) {
	f := newPointsFixture(t, road)
	a := call(route(t, f.s, "DELETE /api/v1/points/:id", as("roads").on(road)), "DELETE", "/api/v1/points/road-1", "")
	a.want(t, http.StatusNoContent, "")
	if _, ok := f.points.get("road-1"); ok {
		t.Fatal("still stored")
	}
	if !slices.Equal(f.audit.txActions(), []string{"point.delete"}) || !slices.Equal(f.deleted, []string{"road-1"}) {
		t.Fatalf("records %v, hub told of %v", f.audit.txActions(), f.deleted)
	}
}

func TestPointActionsListWhatPermissionsAllowOnThePoint(t *testing.T) {
	f := newPointsFixture(t, road)
	f.decide.can = func(u accounts.User, a permissions.Action, p catalog.Point) bool {
		return p.ID == "road-1" && (a == permissions.View || a == permissions.Snapshot)
	}
	var got struct {
		Actions []permissions.Action `json:"actions"`
	}
	a := call(route(t, f.s, "GET /api/v1/points/:id/allowed", as("street").on(road)), "GET", "/api/v1/points/road-1/allowed", "")
	a.want(t, http.StatusOK, "")
	a.decode(t, &got)
	if !slices.Equal(got.Actions, []permissions.Action{permissions.View, permissions.Snapshot}) {
		t.Fatalf("actions %v", got.Actions)
	}
}

// A handler asking for a point its route's rule does not decide is refused
// with 500, never decided by the handler instead.
func TestAHandlerAskingForAPointItsRuleDoesNotDecideIsRefused(t *testing.T) {
	f := newPointsFixture(t, road)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	// PATCH's handler behind a guard that decided view only.
	e.PATCH("/api/v1/points/:id", func(c *gin.Context) {
		c.Set(ctxRule, onPoint(permissions.View))
		c.Set(ctxUser, accounts.User{Username: "street"})
		c.Set(ctxPoint, road)
	}, at((*pointHandler).patch)(f.s))

	call(e, "PATCH", "/api/v1/points/road-1", `{"level":1}`).want(t, http.StatusInternalServerError, "internal")
	if p, _ := f.points.get("road-1"); p.Level != 2 || len(f.audit.inTx) != 0 {
		t.Fatalf("the handler went on: %+v, records %v", p, f.audit.txActions())
	}
}
