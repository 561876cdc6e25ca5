package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/prefs"
	"github.com/tianyan/vms/store"
	"github.com/tianyan/vms/streaming"
)

// The route × account matrix (issue 10, item 1): every route of the table
// is called by every kind of account, on points inside and outside their
// grants, and each answer is held to a reference written here from the
// issue's rules. The reference never asks permissions, and the access each
// route needs is spelled out below independently of the table in routes.go:
// a route whose rule in the table says something else, a route served
// without being in the table, or a table entry without an enforceable rule
// fails the test.

// door is what the issue asks of a route's caller, in the test's own words.
type door struct {
	kind string // public, agent, user, self, scope, system, point, create, import
	sys  string // system action ("system"), or the one that stands in for a grant
	act  string // point action ("point")
}

// The system actions as the issue assigns them to the built-in duty roles
// (sysadmin: users, agents, points, regions, operating; secadmin: grants
// and roles; auditor: the audit log); admin holds them all.
var refDutyRoles = map[string][]string{
	"sysadmin": {"users.manage", "agents.manage", "regions.manage", "points.manage_all", "system.operate"},
	"secadmin": {"grants.manage"},
	"auditor":  {"audit.read"},
}

var (
	dPublic = door{kind: "public"}
	dAgent  = door{kind: "agent"}
	dUser   = door{kind: "user"}
	dSelf   = door{kind: "self"}
	dScope  = door{kind: "scope"}
)

func dSystem(a string) door { return door{kind: "system", sys: a} }
func dPoint(a string) door  { return door{kind: "point", act: a} }

// refRegions is the test's region tree: child → parent.
var refRegions = map[string]string{
	"440307001": "440307", "440307001001": "440307001",
	"440307002": "440307", "440307002001": "440307002",
}

// refPoint is what the reference needs to know of a point.
type refPoint struct {
	category, region string
	level            int
	agent            bool
}

// The sample points: one inside the narrow grants, one in another street
// and category at level 3, one at level 4.
var refSamples = map[string]refPoint{
	"in":  {"road", "440307001001", 1, true},
	"mid": {"reservoir", "440307002001", 3, true},
	"out": {"school", "440307002001", 4, true},
}

type refGrant struct {
	user, role string
	cats, regs []string
	maxLevel   int
	actions    []string
}

func (g refGrant) covers(acc *mxAccount, action string, p refPoint) bool {
	holder := (g.user != "" && g.user == acc.user) || (g.role != "" && slices.Contains(acc.roles, g.role))
	if !holder || p.level > g.maxLevel || !slices.Contains(g.actions, action) {
		return false
	}
	if !slices.Contains(g.cats, "*") && !slices.Contains(g.cats, p.category) {
		return false
	}
	for _, want := range g.regs {
		if want == "*" {
			return true
		}
		for r := p.region; r != ""; r = refRegions[r] {
			if r == want {
				return true
			}
		}
	}
	return false
}

type credKind int

const (
	credSession credKind = iota
	credToken
	credAgent
	credNone
)

// mxAccount is one caller of the matrix.
type mxAccount struct {
	name, user, password string
	roles                []string
	kind                 credKind
	disabled             bool
	token                string // session token or API token
}

func (a *mxAccount) admin() bool { return slices.Contains(a.roles, "admin") }

// reference is the issue's rules, evaluated literally.
type reference struct{ grants []refGrant }

func (r *reference) can(acc *mxAccount, action string, p refPoint) bool {
	if acc.disabled {
		return false
	}
	if acc.admin() {
		return true
	}
	return slices.ContainsFunc(r.grants, func(g refGrant) bool { return g.covers(acc, action, p) })
}

func (r *reference) somewhere(acc *mxAccount, action string) bool {
	if acc.disabled {
		return false
	}
	if acc.admin() {
		return true
	}
	return slices.ContainsFunc(r.grants, func(g refGrant) bool {
		holder := (g.user != "" && g.user == acc.user) || (g.role != "" && slices.Contains(acc.roles, g.role))
		return holder && slices.Contains(g.actions, action)
	})
}

func refSystem(acc *mxAccount, action string) bool {
	if acc.disabled || action == "" {
		return false
	}
	if a, b, ok := strings.Cut(action, "|"); ok {
		// Either of two system actions lets the caller through.
		return refSystem(acc, a) || refSystem(acc, b)
	}
	if acc.admin() {
		return true
	}
	for _, role := range acc.roles {
		if slices.Contains(refDutyRoles[role], action) {
			return true
		}
	}
	return false
}

// variant is one way a route is tried: on which stored point, making which
// resulting point.
type variant struct {
	name   string
	stored *refPoint // the point the path names (point routes)
	next   *refPoint // the point as changed or created (PATCH, create, import)
	sample string    // which sample point
	camera string    // create: bind the camera of this sample point
	ok     []int     // what a caller let through gets, when not the route's ok
}

// expect is the reference's answer: 0 for "let through", else the status.
func (r *reference) expect(acc *mxAccount, d door, v variant) int {
	switch d.kind {
	case "public":
		return 0
	case "agent":
		if acc.kind == credAgent {
			return 0
		}
		return http.StatusUnauthorized
	}
	if acc.kind == credAgent || acc.kind == credNone || acc.disabled {
		return http.StatusUnauthorized
	}
	switch d.kind {
	case "user", "self", "scope":
		return 0
	case "system":
		if refSystem(acc, d.sys) {
			return 0
		}
		return http.StatusForbidden
	case "point":
		if refSystem(acc, d.sys) {
			return 0
		}
		if !r.can(acc, "view", *v.stored) {
			return http.StatusNotFound // points outside a grant do not exist
		}
		if !r.can(acc, d.act, *v.stored) {
			return http.StatusForbidden
		}
		if v.next != nil && !r.can(acc, "manage", *v.next) {
			return http.StatusForbidden // nobody moves a point out of their grant
		}
		return 0
	case "create":
		if refSystem(acc, "points.manage_all") {
			return 0
		}
		if r.can(acc, "manage", *v.next) || (v.next.agent && r.can(acc, "provision", *v.next)) {
			return 0
		}
		return http.StatusForbidden
	case "import":
		if refSystem(acc, "points.manage_all") || r.can(acc, "manage", *v.next) {
			return 0
		}
		return http.StatusForbidden
	}
	panic("unknown door " + d.kind)
}

// mxReq is one request of the matrix.
type mxReq struct {
	path   string
	body   any // nil, a string (sent as is) or a value sent as JSON
	ctype  string
	header http.Header
	// after runs once the answer is in, to remove what the call made.
	after func(status int, body []byte)
}

// routeCase is how the matrix tries one route.
type routeCase struct {
	door door
	// samples: "" tries the route once; "point" on each sample point;
	// "move" PATCHes a copy of each sample into another; "create" and
	// "import" bring each sample's attributes, "create" also bound to an
	// agent's camera.
	samples string
	ok      []int // what a caller the door lets through gets
	build   func(m *matrix, acc *mxAccount, v variant) mxReq
}

// matrix is the running server and its callers.
type matrix struct {
	t        *testing.T
	s        *Server
	base     string
	hc       *http.Client
	ref      reference
	accounts []*mxAccount
	agentID  string
	secret   string
	seq      int
}

func (m *matrix) next() int { m.seq++; return m.seq }

func (m *matrix) must(err error) {
	m.t.Helper()
	if err != nil {
		m.t.Fatal(err)
	}
}

// pointBody is a JSON point of p's attributes.
func pointBody(id string, p refPoint) map[string]any {
	return map[string]any{"id": id, "name": "Matrix " + id, "category": p.category, "region": p.region,
		"level": p.level, "main": map[string]string{"type": "publish"}}
}

// freshPoint stores a copy of sample's attributes under a new ID (without
// an agent) and removes it after the call.
func (m *matrix) freshPoint(p refPoint) (string, func(int, []byte)) {
	id := fmt.Sprintf("f%04d", m.next())
	_, err := m.s.d.Catalog.Create(catalog.Point{ID: id, Name: "Fresh " + id, Category: p.category, Region: p.region,
		Level: p.level, Main: catalog.Source{Type: catalog.SourcePublish}})
	m.must(err)
	return id, func(int, []byte) { _ = m.s.d.Catalog.Delete(id) }
}

// freshUser creates a target user for the user-administration routes.
func (m *matrix) freshUser() (string, func(int, []byte)) {
	name := fmt.Sprintf("target%04d", m.next())
	_, err := m.s.d.Accounts.CreateUser(accounts.User{Username: name}, "target-pass-123")
	m.must(err)
	return name, func(int, []byte) { _ = m.s.d.Accounts.DeleteUser(name) }
}

// newSession logs user in once more and returns the new session's ID.
func (m *matrix) newSession(user, password string) string {
	before, err := m.s.d.Accounts.ListSessions(user)
	m.must(err)
	_, _, _, err = m.s.d.Accounts.Login(user, password)
	m.must(err)
	after, err := m.s.d.Accounts.ListSessions(user)
	m.must(err)
	for _, s := range after {
		if !slices.ContainsFunc(before, func(b accounts.SessionInfo) bool { return b.ID == s.ID }) {
			return s.ID
		}
	}
	m.t.Fatal("no new session")
	return ""
}

// newToken gives user an API token and returns its ID.
func (m *matrix) newToken(user string) string {
	_, info, err := m.s.d.Accounts.CreateToken(user, "matrix", time.Time{})
	m.must(err)
	return info.ID
}

func idFrom(body []byte, field string) string {
	var v map[string]any
	_ = json.Unmarshal(body, &v)
	if s, ok := v[field].(string); ok {
		return s
	}
	if a, ok := v["agent"].(map[string]any); ok {
		s, _ := a[field].(string)
		return s
	}
	return ""
}

// callerName is whose account a self route acts on ("" without one).
func callerName(acc *mxAccount) string {
	if acc.kind == credAgent || acc.kind == credNone {
		return ""
	}
	return acc.user
}

func get(path string) func(*matrix, *mxAccount, variant) mxReq {
	return func(*matrix, *mxAccount, variant) mxReq { return mxReq{path: path} }
}

func onSample(suffix string) func(*matrix, *mxAccount, variant) mxReq {
	return func(_ *matrix, _ *mxAccount, v variant) mxReq {
		return mxReq{path: "/api/v1/points/" + v.sample + suffix}
	}
}

// routeCases is what the issue asks of every centre route. Keyed by
// "METHOD path" as registered.
func routeCases() map[string]routeCase {
	ok := func(codes ...int) []int { return codes }
	return map[string]routeCase{
		// --- public and agents ---
		"GET /api/v1/openapi.json": {door: dPublic, ok: ok(200), build: get("/api/v1/openapi.json")},
		"POST /api/v1/auth/login": {door: dPublic, ok: ok(200), build: func(*matrix, *mxAccount, variant) mxReq {
			return mxReq{path: "/api/v1/auth/login", body: map[string]string{"username": "matrix-login", "password": "matrix-login-pass"}}
		}},
		"POST /api/v1/auth/logout": {door: dPublic, ok: ok(204), build: get("/api/v1/auth/logout")},
		"GET /":                    {door: dPublic, ok: ok(200), build: get("/")},
		"HEAD /":                   {door: dPublic, ok: ok(200), build: get("/")},
		"GET /ui/*file":            {door: dPublic, ok: ok(200), build: get("/ui/index.html")},
		"HEAD /ui/*file":           {door: dPublic, ok: ok(200), build: get("/ui/index.html")},
		"POST /api/v1/agents/enroll": {door: dAgent, ok: ok(200), build: func(m *matrix, acc *mxAccount, _ variant) mxReq {
			if acc.kind != credAgent {
				return mxReq{path: "/api/v1/agents/enroll", body: map[string]string{"code": "NOTACODENOTACODENOTA", "hostname": "h"}}
			}
			// The agent's credential here is a fresh one-time code.
			a, code, _, err := m.s.d.Agents.Create("matrix enroll", "", "admin")
			m.must(err)
			return mxReq{path: "/api/v1/agents/enroll", body: map[string]string{"code": code, "hostname": "h"},
				after: func(int, []byte) { _ = m.s.d.Agents.Revoke(a.ID); _ = m.s.d.Agents.Delete(a.ID) }}
		}},
		// Without a WebSocket upgrade the link is refused after the agent's
		// credentials were accepted.
		"GET /api/v1/agents/connect": {door: dAgent, ok: ok(426, 400), build: get("/api/v1/agents/connect")},
		// The agent's page asks what a technician may do there: the agent's
		// credential and the technician's token, both.
		"GET /api/v1/agents/page-access": {door: dAgent, ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			tok, _, _, err := m.s.d.Accounts.Login("matrix-login", "matrix-login-pass")
			m.must(err)
			return mxReq{path: "/api/v1/agents/page-access", header: http.Header{"X-Tianyan-User-Token": {tok}}}
		}},

		// --- any user ---
		"GET /api/v1/categories":     {door: dUser, ok: ok(200), build: get("/api/v1/categories")},
		"GET /api/v1/ui-config":      {door: dUser, ok: ok(200), build: get("/api/v1/ui-config")},
		"GET /api/v1/regions":        {door: dUser, ok: ok(200), build: get("/api/v1/regions")},
		"GET /api/v1/regions/:code":  {door: dUser, ok: ok(200), build: get("/api/v1/regions/440307001")},
		"GET /api/v1/points":         {door: dScope, ok: ok(200), build: get("/api/v1/points")},
		"GET /api/v1/points/facets":  {door: dScope, ok: ok(200), build: get("/api/v1/points/facets")},
		"GET /api/v1/points/geo":     {door: dScope, ok: ok(200), build: get("/api/v1/points/geo")},
		"GET /api/v1/points/export":  {door: dScope, ok: ok(200), build: get("/api/v1/points/export")},
		"GET /api/v1/me":             {door: dSelf, ok: ok(200), build: get("/api/v1/me")},
		"GET /api/v1/me/stream-key":  {door: dSelf, ok: ok(200), build: get("/api/v1/me/stream-key")},
		"POST /api/v1/me/stream-key": {door: dSelf, ok: ok(200), build: get("/api/v1/me/stream-key")},
		"GET /api/v1/me/sessions":    {door: dSelf, ok: ok(200), build: get("/api/v1/me/sessions")},
		"DELETE /api/v1/me/sessions": {door: dSelf, ok: ok(200), build: get("/api/v1/me/sessions")},
		"GET /api/v1/me/tokens":      {door: dSelf, ok: ok(200), build: get("/api/v1/me/tokens")},
		"GET /api/v1/me/layouts":     {door: dSelf, ok: ok(200), build: get("/api/v1/me/layouts")},
		"GET /api/v1/me/favourites":  {door: dSelf, ok: ok(200), build: get("/api/v1/me/favourites")},
		"PUT /api/v1/me/favourites": {door: dSelf, ok: ok(200), build: func(*matrix, *mxAccount, variant) mxReq {
			return mxReq{path: "/api/v1/me/favourites", body: map[string]any{"ids": []string{"in"}}}
		}},
		"PUT /api/v1/me/layouts/:name": {door: dSelf, ok: ok(200, 201), build: func(*matrix, *mxAccount, variant) mxReq {
			return mxReq{path: "/api/v1/me/layouts/wall", body: map[string]any{"grid": "4", "tiles": []string{"in"}}}
		}},
		"POST /api/v1/me/password": {door: dSelf, ok: ok(200), build: func(_ *matrix, acc *mxAccount, _ variant) mxReq {
			return mxReq{path: "/api/v1/me/password", body: map[string]string{"old_password": acc.password, "new_password": acc.password}}
		}},
		"POST /api/v1/me/tokens": {door: dSelf, ok: ok(201), build: func(m *matrix, acc *mxAccount, _ variant) mxReq {
			return mxReq{path: "/api/v1/me/tokens", body: map[string]string{"name": "matrix"},
				after: func(status int, body []byte) {
					if status == http.StatusCreated {
						_ = m.s.d.Accounts.RevokeToken(acc.user, idFrom(body, "id"))
					}
				}}
		}},
		"DELETE /api/v1/me/tokens/:id": {door: dSelf, ok: ok(204), build: func(m *matrix, acc *mxAccount, _ variant) mxReq {
			id := "00000000"
			if u := callerName(acc); u != "" && !acc.disabled {
				id = m.newToken(u)
			}
			return mxReq{path: "/api/v1/me/tokens/" + id}
		}},
		"DELETE /api/v1/me/sessions/:id": {door: dSelf, ok: ok(204), build: func(m *matrix, acc *mxAccount, _ variant) mxReq {
			id := "00000000"
			if u := callerName(acc); u != "" && !acc.disabled {
				id = m.newSession(u, acc.password)
			}
			return mxReq{path: "/api/v1/me/sessions/" + id}
		}},
		"GET /api/v1/me/layouts/:name": {door: dSelf, ok: ok(200), build: func(m *matrix, acc *mxAccount, _ variant) mxReq {
			if u := callerName(acc); u != "" {
				_, _, err := m.s.d.Prefs.PutLayout(u, prefs.Layout{Name: "kept", Grid: "1", Tiles: []string{"in"}})
				m.must(err)
			}
			return mxReq{path: "/api/v1/me/layouts/kept"}
		}},
		"DELETE /api/v1/me/layouts/:name": {door: dSelf, ok: ok(204), build: func(m *matrix, acc *mxAccount, _ variant) mxReq {
			if u := callerName(acc); u != "" {
				_, _, err := m.s.d.Prefs.PutLayout(u, prefs.Layout{Name: "gone", Grid: "1", Tiles: []string{"in"}})
				m.must(err)
			}
			return mxReq{path: "/api/v1/me/layouts/gone"}
		}},
		// A WHEP session is its opener's: nobody here holds one, so a caller
		// let through learns only that there is no such session.
		"DELETE /api/v1/points/:id/whep/:session": {door: dSelf, ok: ok(404), build: get("/api/v1/points/in/whep/nosuchsession")},
		"PATCH /api/v1/points/:id/whep/:session":  {door: dSelf, ok: ok(404), build: get("/api/v1/points/in/whep/nosuchsession")},

		// --- one point, found by the path ---
		"GET /api/v1/points/:id":         {door: dPoint("view"), samples: "point", ok: ok(200), build: onSample("")},
		"GET /api/v1/points/:id/stats":   {door: dPoint("view"), samples: "point", ok: ok(200), build: onSample("/stats")},
		"GET /api/v1/points/:id/allowed": {door: dPoint("view"), samples: "point", ok: ok(200), build: onSample("/allowed")},
		// A malformed offer is refused once the caller is let through.
		"POST /api/v1/points/:id/whep": {door: dPoint("view"), samples: "point", ok: ok(400), build: func(_ *matrix, _ *mxAccount, v variant) mxReq {
			return mxReq{path: "/api/v1/points/" + v.sample + "/whep", body: "v=0 not an offer", ctype: "application/sdp"}
		}},
		// The agent is offline: 503 once let through (or 409 while a
		// higher-priority user holds the head).
		"POST /api/v1/points/:id/ptz": {door: dPoint("ptz"), samples: "point", ok: ok(503, 409), build: func(_ *matrix, _ *mxAccount, v variant) mxReq {
			return mxReq{path: "/api/v1/points/" + v.sample + "/ptz", body: map[string]any{"op": "stop"}}
		}},
		"GET /api/v1/points/:id/snapshot.jpg": {door: dPoint("snapshot"), samples: "point", ok: ok(503), build: onSample("/snapshot.jpg")},
		"PATCH /api/v1/points/:id": {door: door{kind: "point", act: "manage", sys: "points.manage_all"}, samples: "move", ok: ok(200),
			build: func(m *matrix, _ *mxAccount, v variant) mxReq {
				id, after := m.freshPoint(*v.stored)
				body := map[string]any{"name": "Renamed"}
				if v.next != nil {
					body = map[string]any{"category": v.next.category, "region": v.next.region, "level": v.next.level}
				}
				return mxReq{path: "/api/v1/points/" + id, body: body, after: after}
			}},
		"DELETE /api/v1/points/:id": {door: door{kind: "point", act: "manage", sys: "points.manage_all"}, samples: "point", ok: ok(204),
			build: func(m *matrix, _ *mxAccount, v variant) mxReq {
				id, after := m.freshPoint(*v.stored)
				return mxReq{path: "/api/v1/points/" + id, after: after}
			}},

		// --- points brought in the body ---
		"POST /api/v1/points": {door: door{kind: "create"}, samples: "create", ok: ok(201), build: func(m *matrix, _ *mxAccount, v variant) mxReq {
			id := fmt.Sprintf("c%04d", m.next())
			body := pointBody(id, *v.next)
			if v.next.agent {
				body["agent"], body["camera"] = m.agentID, "cam-"+id
			}
			if v.camera != "" {
				body["camera"] = v.camera
			}
			return mxReq{path: "/api/v1/points", body: body, after: func(int, []byte) { _ = m.s.d.Catalog.Delete(id) }}
		}},
		"POST /api/v1/points/import": {door: door{kind: "import"}, samples: "import", ok: ok(200), build: func(m *matrix, _ *mxAccount, v variant) mxReq {
			id := fmt.Sprintf("i%04d", m.next())
			p := *v.next
			csv := strings.Join(catalog.PointColumns, ",") + "\n" +
				id + ",Imported " + id + ",hd," + p.category + "," + p.region + ",,," + strconv.Itoa(p.level) + ",,,false,,\n"
			return mxReq{path: "/api/v1/points/import", body: csv, ctype: "text/csv", after: func(int, []byte) { _ = m.s.d.Catalog.Delete(id) }}
		}},

		// --- grants, roles and access previews: ManageGrants ---
		"GET /api/v1/grants": {door: dSystem("grants.manage"), ok: ok(200), build: get("/api/v1/grants")},
		"POST /api/v1/grants": {door: dSystem("grants.manage"), ok: ok(201), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			return mxReq{path: "/api/v1/grants", body: map[string]any{"user": "matrix-login", "categories": []string{"road"}, "regions": []string{"*"},
				"max_level": 1, "actions": []string{"view"}},
				after: func(status int, body []byte) {
					if status == http.StatusCreated {
						m.must(m.s.d.Permissions.DeleteGrant(idFrom(body, "id")))
					}
				}}
		}},
		"DELETE /api/v1/grants/:id": {door: dSystem("grants.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			g, err := m.s.d.Permissions.CreateGrant(permissions.Grant{User: "matrix-login", Categories: []string{"road"}, Regions: []string{"*"},
				MaxLevel: 1, Actions: []permissions.Action{permissions.View}})
			m.must(err)
			return mxReq{path: "/api/v1/grants/" + g.ID, after: func(int, []byte) { _ = m.s.d.Permissions.DeleteGrant(g.ID) }}
		}},
		"GET /api/v1/roles": {door: dSystem("grants.manage"), ok: ok(200), build: get("/api/v1/roles")},
		"POST /api/v1/roles": {door: dSystem("grants.manage"), ok: ok(201), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name := fmt.Sprintf("role%04d", m.next())
			return mxReq{path: "/api/v1/roles", body: map[string]string{"name": name}, after: func(int, []byte) { _ = m.s.d.Accounts.DeleteRole(name) }}
		}},
		"DELETE /api/v1/roles/:name": {door: dSystem("grants.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name := fmt.Sprintf("role%04d", m.next())
			m.must(m.s.d.Accounts.CreateRole(accounts.Role{Name: name}))
			return mxReq{path: "/api/v1/roles/" + name, after: func(int, []byte) { _ = m.s.d.Accounts.DeleteRole(name) }}
		}},
		"GET /api/v1/points/:id/access":  {door: dSystem("grants.manage"), ok: ok(200), build: get("/api/v1/points/out/access")},
		"GET /api/v1/users/:name/access": {door: dSystem("grants.manage"), ok: ok(200), build: get("/api/v1/users/matrix-login/access")},

		// --- users: ManageUsers ---
		"GET /api/v1/users": {door: dSystem("users.manage|grants.manage"), ok: ok(200), build: get("/api/v1/users")},
		"POST /api/v1/users": {door: dSystem("users.manage"), ok: ok(201), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name := fmt.Sprintf("new%04d", m.next())
			return mxReq{path: "/api/v1/users", body: map[string]any{"username": name, "password": "new-user-pass-1"},
				after: func(int, []byte) { _ = m.s.d.Accounts.DeleteUser(name) }}
		}},
		"GET /api/v1/users/:name": {door: dSystem("users.manage|grants.manage"), ok: ok(200), build: get("/api/v1/users/matrix-login")},
		"PATCH /api/v1/users/:name": {door: dSystem("users.manage"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name, after := m.freshUser()
			return mxReq{path: "/api/v1/users/" + name, body: map[string]string{"display_name": "Renamed"}, after: after}
		}},
		"PUT /api/v1/users/:name/roles": {door: dSystem("grants.manage"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name, after := m.freshUser()
			return mxReq{path: "/api/v1/users/" + name + "/roles", body: map[string][]string{"roles": {"water-bureau"}}, after: after}
		}},
		"DELETE /api/v1/users/:name": {door: dSystem("users.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name, after := m.freshUser()
			return mxReq{path: "/api/v1/users/" + name, after: after}
		}},
		"POST /api/v1/users/:name/password": {door: dSystem("users.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name, after := m.freshUser()
			return mxReq{path: "/api/v1/users/" + name + "/password", body: map[string]string{"password": "reset-pass-1234"}, after: after}
		}},
		"GET /api/v1/users/:name/sessions": {door: dSystem("users.manage"), ok: ok(200), build: get("/api/v1/users/matrix-login/sessions")},
		"DELETE /api/v1/users/:name/sessions": {door: dSystem("users.manage"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name, after := m.freshUser()
			m.newSession(name, "target-pass-123")
			return mxReq{path: "/api/v1/users/" + name + "/sessions", after: after}
		}},
		"DELETE /api/v1/users/:name/sessions/:id": {door: dSystem("users.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name, after := m.freshUser()
			id := m.newSession(name, "target-pass-123")
			return mxReq{path: "/api/v1/users/" + name + "/sessions/" + id, after: after}
		}},
		"GET /api/v1/users/:name/tokens": {door: dSystem("users.manage"), ok: ok(200), build: get("/api/v1/users/matrix-login/tokens")},
		"DELETE /api/v1/users/:name/tokens/:id": {door: dSystem("users.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			name, after := m.freshUser()
			return mxReq{path: "/api/v1/users/" + name + "/tokens/" + m.newToken(name), after: after}
		}},

		// --- regions: ManageRegions for changes ---
		"POST /api/v1/regions": {door: dSystem("regions.manage"), ok: ok(201), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			code := fmt.Sprintf("440307%03d", 100+m.next()%900)
			return mxReq{path: "/api/v1/regions", body: map[string]string{"code": code, "name": "New " + code, "parent": "440307"},
				after: func(int, []byte) { _ = m.s.d.Catalog.DeleteRegion(code) }}
		}},
		"POST /api/v1/regions/import": {door: dSystem("regions.manage"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			code := fmt.Sprintf("440307%03d", 100+m.next()%900)
			return mxReq{path: "/api/v1/regions/import", body: "code,name,parent\n" + code + ",Imported,440307\n", ctype: "text/csv",
				after: func(int, []byte) { _ = m.s.d.Catalog.DeleteRegion(code) }}
		}},
		"PATCH /api/v1/regions/:code": {door: dSystem("regions.manage"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			code := m.freshRegion()
			return mxReq{path: "/api/v1/regions/" + code, body: map[string]string{"name": "Renamed"}, after: func(int, []byte) { _ = m.s.d.Catalog.DeleteRegion(code) }}
		}},
		"DELETE /api/v1/regions/:code": {door: dSystem("regions.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			code := m.freshRegion()
			return mxReq{path: "/api/v1/regions/" + code, after: func(int, []byte) { _ = m.s.d.Catalog.DeleteRegion(code) }}
		}},

		// --- agents: ManageAgents ---
		"POST /api/v1/agents": {door: dSystem("agents.manage"), ok: ok(201), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			return mxReq{path: "/api/v1/agents", body: map[string]string{"name": "matrix"}, after: func(status int, body []byte) {
				if status == http.StatusCreated {
					m.must(m.s.d.Agents.Delete(idFrom(body, "id")))
				}
			}}
		}},
		"GET /api/v1/agents":     {door: dSystem("agents.manage"), ok: ok(200), build: get("/api/v1/agents")},
		"GET /api/v1/agents/:id": {door: dSystem("agents.manage"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq { return mxReq{path: "/api/v1/agents/" + m.agentID} }},
		"PATCH /api/v1/agents/:id": {door: dSystem("agents.manage"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			return mxReq{path: "/api/v1/agents/" + m.freshAgent(), body: map[string]string{"name": "renamed"}}
		}},
		"DELETE /api/v1/agents/:id": {door: dSystem("agents.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshAgent()
			return mxReq{path: "/api/v1/agents/" + id, after: func(int, []byte) { _ = m.s.d.Agents.Delete(id) }}
		}},
		"POST /api/v1/agents/:id/revoke": {door: dSystem("agents.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshAgent()
			return mxReq{path: "/api/v1/agents/" + id + "/revoke", after: func(int, []byte) { _ = m.s.d.Agents.Revoke(id); _ = m.s.d.Agents.Delete(id) }}
		}},
		// The matrix's agent is not connected.
		"POST /api/v1/agents/:id/rediscover": {door: dSystem("agents.manage"), ok: ok(503), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			return mxReq{path: "/api/v1/agents/" + m.agentID + "/rediscover"}
		}},

		// --- upstream GB/T 28181 platforms: system.operate ---
		"GET /api/v1/gb/platforms": {door: dSystem("system.operate"), ok: ok(200), build: get("/api/v1/gb/platforms")},
		"POST /api/v1/gb/platforms": {door: dSystem("system.operate"), ok: ok(201), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			m.platformAccount()
			id := fmt.Sprintf("44030000002%09d", m.next())
			return mxReq{path: "/api/v1/gb/platforms", body: map[string]any{"id": id, "address": "127.0.0.1:5060", "account": "matrix-city", "password": "p"},
				after: func(int, []byte) { _ = m.s.d.GBPlatforms.Delete(id) }}
		}},
		"GET /api/v1/gb/platforms/:id": {door: dSystem("system.operate"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshPlatform()
			return mxReq{path: "/api/v1/gb/platforms/" + id, after: func(int, []byte) { _ = m.s.d.GBPlatforms.Delete(id) }}
		}},
		"PATCH /api/v1/gb/platforms/:id": {door: dSystem("system.operate"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshPlatform()
			return mxReq{path: "/api/v1/gb/platforms/" + id, body: map[string]any{"enabled": false},
				after: func(int, []byte) { _ = m.s.d.GBPlatforms.Delete(id) }}
		}},
		"DELETE /api/v1/gb/platforms/:id": {door: dSystem("system.operate"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshPlatform()
			return mxReq{path: "/api/v1/gb/platforms/" + id, after: func(int, []byte) { _ = m.s.d.GBPlatforms.Delete(id) }}
		}},

		// --- audit and operating ---
		"GET /api/v1/audit":        {door: dScope, ok: ok(200), build: get("/api/v1/audit")},
		"GET /api/v1/audit/verify": {door: dSystem("audit.read"), ok: ok(200), build: get("/api/v1/audit/verify")},
		"GET /api/v1/gb/devices":   {door: dSystem("agents.manage"), ok: ok(200), build: get("/api/v1/gb/devices")},
		"POST /api/v1/gb/devices": {door: dSystem("agents.manage"), ok: ok(201), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.gbDeviceID()
			return mxReq{path: "/api/v1/gb/devices", body: map[string]string{"id": id, "password": "dev-pass-1"},
				after: func(int, []byte) { _ = m.s.d.GB.DeleteDevice(id) }}
		}},
		"PATCH /api/v1/gb/devices/:id": {door: dSystem("agents.manage"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshGBDevice()
			return mxReq{path: "/api/v1/gb/devices/" + id, body: map[string]string{"name": "renamed", "stream_transport": "tcp"},
				after: func(int, []byte) { _ = m.s.d.GB.DeleteDevice(id) }}
		}},
		"DELETE /api/v1/gb/devices/:id": {door: dSystem("agents.manage"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshGBDevice()
			return mxReq{path: "/api/v1/gb/devices/" + id, after: func(int, []byte) { _ = m.s.d.GB.DeleteDevice(id) }}
		}},
		// A device that never registered cannot be asked: 409 once the caller is let through.
		"POST /api/v1/gb/devices/:id/catalog": {door: dSystem("agents.manage"), ok: ok(409), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshGBDevice()
			return mxReq{path: "/api/v1/gb/devices/" + id + "/catalog", after: func(int, []byte) { _ = m.s.d.GB.DeleteDevice(id) }}
		}},
		// A device that has not registered: the question cannot reach it.
		"GET /api/v1/gb/devices/:id/info": {door: dSystem("agents.manage"), ok: ok(503), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshGBDevice()
			return mxReq{path: "/api/v1/gb/devices/" + id + "/info", after: func(int, []byte) { _ = m.s.d.GB.DeleteDevice(id) }}
		}},
		"GET /api/v1/gb/devices/:id/status": {door: dSystem("agents.manage"), ok: ok(503), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshGBDevice()
			return mxReq{path: "/api/v1/gb/devices/" + id + "/status", after: func(int, []byte) { _ = m.s.d.GB.DeleteDevice(id) }}
		}},
		"GET /api/v1/gb/channels": {door: dSystem("points.manage_all"), ok: ok(200), build: get("/api/v1/gb/channels?flagged=1")},
		"GET /api/v1/gb/rules":    {door: dSystem("points.manage_all"), ok: ok(200), build: get("/api/v1/gb/rules")},
		"POST /api/v1/gb/rules": {door: dSystem("points.manage_all"), ok: ok(201), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			return mxReq{path: "/api/v1/gb/rules", body: map[string]any{"name_pattern": "水库", "category": "reservoir", "level": 2},
				after: func(status int, body []byte) { m.deleteGBRule(status, body) }}
		}},
		"PUT /api/v1/gb/rules/:id": {door: dSystem("points.manage_all"), ok: ok(200), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshGBRule()
			return mxReq{path: "/api/v1/gb/rules/" + id, body: map[string]any{"name_pattern": "河", "category": "river", "level": 1},
				after: func(int, []byte) { _ = m.s.d.GB.DeleteRule(id) }}
		}},
		"DELETE /api/v1/gb/rules/:id": {door: dSystem("points.manage_all"), ok: ok(204), build: func(m *matrix, _ *mxAccount, _ variant) mxReq {
			id := m.freshGBRule()
			return mxReq{path: "/api/v1/gb/rules/" + id, after: func(int, []byte) { _ = m.s.d.GB.DeleteRule(id) }}
		}},
		"GET /api/v1/backup": {door: dSystem("system.operate"), ok: ok(200), build: get("/api/v1/backup")},
		"GET /metrics":       {door: dSystem("system.operate"), ok: ok(200), build: get("/metrics")},
	}
}

func (m *matrix) freshRegion() string {
	code := fmt.Sprintf("440307%03d", 100+m.next()%900)
	_, err := m.s.d.Catalog.CreateRegion(catalog.Region{Code: code, Name: "Fresh " + code, Parent: "440307"})
	m.must(err)
	return code
}

// platformAccount makes the account the matrix's upstream platforms name.
func (m *matrix) platformAccount() {
	_, err := m.s.d.Accounts.CreateUser(accounts.User{Username: "matrix-city", Kind: accounts.KindPlatform}, "")
	if err != nil && !errors.Is(err, accounts.ErrExists) {
		m.must(err)
	}
}

// freshPlatform configures an upstream platform for one case.
func (m *matrix) freshPlatform() string {
	m.platformAccount()
	id := fmt.Sprintf("44030000002%09d", m.next())
	_, err := m.s.d.GBPlatforms.Create(gb28181.Platform{ID: id, Address: "127.0.0.1:5060", Account: "matrix-city"}, "p")
	m.must(err)
	return id
}

func (m *matrix) freshAgent() string {
	a, _, _, err := m.s.d.Agents.Create("fresh", "", "admin")
	m.must(err)
	return a.ID
}

// gbDeviceID is a fresh 20-digit device ID.
func (m *matrix) gbDeviceID() string { return fmt.Sprintf("4403070000118%07d", m.next()) }

// freshGBDevice records a GB device that never registered.
func (m *matrix) freshGBDevice() string {
	id := m.gbDeviceID()
	_, err := m.s.d.GB.PrepareDevice(id, gb28181.DevicePatch{})
	m.must(err)
	return id
}

// freshGBRule stores a mapping rule.
func (m *matrix) freshGBRule() string {
	r, err := m.s.d.GB.CreateRule(gb28181.Rule{NamePattern: "路口", Category: "road", Level: 1}, "admin")
	m.must(err)
	return r.ID
}

// deleteGBRule removes the rule a create answered, if it made one.
func (m *matrix) deleteGBRule(status int, body []byte) {
	var r gb28181.Rule
	if status == http.StatusCreated && json.Unmarshal(body, &r) == nil {
		_ = m.s.d.GB.DeleteRule(r.ID)
	}
}

// variants lists how a route is tried.
func variants(samples string) []variant {
	names := []string{"in", "mid", "out"}
	var out []variant
	for _, n := range names {
		stored := refSamples[n]
		switch samples {
		case "":
			return []variant{{name: "-"}}
		case "point":
			out = append(out, variant{name: n, stored: &stored, sample: n})
		case "move":
			out = append(out, variant{name: n + " renamed", stored: &stored, sample: n})
			to := "in"
			if n == "in" {
				to = "out"
			}
			next := refSamples[to]
			out = append(out, variant{name: n + " moved to " + to, stored: &stored, next: &next, sample: n})
		case "create":
			plain := stored
			plain.agent = false
			out = append(out, variant{name: n + " plain", next: &plain, sample: n},
				variant{name: n + " on an agent's camera", next: &stored, sample: n},
				// One camera, one point: binding the level-4 point's camera
				// is a conflict for whoever may create the point at all.
				variant{name: n + " on the level-4 point's camera", next: &stored, sample: n, camera: "cam-out", ok: []int{http.StatusConflict}})
		case "import":
			plain := stored
			plain.agent = false
			out = append(out, variant{name: n, next: &plain, sample: n})
		}
	}
	return out
}

func newMatrix(t *testing.T) *matrix {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The matrix makes many failed enrollments from one address on
	// purpose; the throttle is not what it tests.
	lax := accounts.ThrottleLimit{Failures: 1 << 30, Window: time.Minute, Lockout: time.Second}
	s := newFullServer(t, db, func(d *Deps) {
		d.LoginThrottle = accounts.ThrottleConfig{PerUser: lax, PerIP: lax, SlowAfter: 1 << 30}
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	m := &matrix{t: t, s: s, base: srv.URL, hc: &http.Client{Timeout: 20 * time.Second}}

	cat, acc, perm := s.d.Catalog, s.d.Accounts, s.d.Permissions
	_, err = cat.CreateRegion(catalog.Region{Code: "440307", Name: "District"})
	m.must(err)
	for _, code := range []string{"440307001", "440307001001", "440307002", "440307002001"} {
		_, err := cat.CreateRegion(catalog.Region{Code: code, Name: "R" + code, Parent: refRegions[code]})
		m.must(err)
	}
	a, code, _, err := s.d.Agents.Create("matrix agent", "", "admin")
	m.must(err)
	enrolled, err := s.d.Agents.Enroll(code, "matrix-host")
	m.must(err)
	m.agentID, m.secret = a.ID, enrolled.Secret
	for _, name := range []string{"in", "mid", "out"} {
		p := refSamples[name]
		_, err := cat.Create(catalog.Point{ID: name, Name: "Sample " + name, Category: p.category, Region: p.region, Level: p.level,
			PTZ: true, Agent: a.ID, Camera: "cam-" + name, Main: catalog.Source{Type: catalog.SourcePublish}})
		m.must(err)
		s.d.Hub.SetPoint(name, streaming.SourceConfig{Type: streaming.SourcePublish, OnDemand: true})
	}

	for _, r := range []string{"water-bureau", "sysadmin", "secadmin", "auditor"} {
		if err := acc.CreateRole(accounts.Role{Name: r}); err != nil && !strings.Contains(err.Error(), "exists") && !strings.Contains(err.Error(), "built-in") {
			t.Fatal(err)
		}
	}
	grant := func(g refGrant) {
		acts := make([]permissions.Action, len(g.actions))
		for i, a := range g.actions {
			acts[i] = permissions.Action(a)
		}
		_, err := perm.CreateGrant(permissions.Grant{User: g.user, Role: g.role, Categories: g.cats, Regions: g.regs, MaxLevel: g.maxLevel, Actions: acts})
		m.must(err)
		m.ref.grants = append(m.ref.grants, g)
	}
	all := []string{"*"}
	user := func(name string, roles ...string) *mxAccount {
		a := &mxAccount{name: name, user: name, password: name + "-pass-123", roles: roles}
		_, err := acc.CreateUser(accounts.User{Username: name, Roles: roles}, a.password)
		m.must(err)
		m.accounts = append(m.accounts, a)
		return a
	}
	user("admin", "admin")
	// The demo's accounts (demo/client.go), with the same grants.
	user("leader")
	grant(refGrant{user: "leader", cats: all, regs: all, maxLevel: 3, actions: []string{"view", "ptz", "snapshot"}})
	user("water", "water-bureau")
	grant(refGrant{role: "water-bureau", cats: []string{"reservoir", "river", "waterlogging"}, regs: all, maxLevel: 3, actions: []string{"view", "snapshot", "ptz"}})
	user("street")
	grant(refGrant{user: "street", cats: all, regs: []string{"440307001"}, maxLevel: 2, actions: []string{"view"}})
	user("tech")
	grant(refGrant{user: "tech", cats: all, regs: all, maxLevel: 4, actions: []string{"provision", "view", "snapshot"}})
	// Narrow users: exactly one action, on road in street 1 up to level 2.
	for _, action := range []string{"view", "manage", "ptz", "snapshot", "provision", "publish", "audit"} {
		name := "only-" + action
		user(name)
		grant(refGrant{user: name, cats: []string{"road"}, regs: []string{"440307001"}, maxLevel: 2, actions: []string{action}})
	}
	// The issue's own attackers: a manager of road in street 1 up to level
	// 2, and a technician with provision on one category in one street at
	// level 1 who may also watch, snapshot and steer what they provision.
	user("road-manager")
	grant(refGrant{user: "road-manager", cats: []string{"road"}, regs: []string{"440307001"}, maxLevel: 2, actions: []string{"view", "manage"}})
	user("road-tech")
	grant(refGrant{user: "road-tech", cats: []string{"road"}, regs: []string{"440307001"}, maxLevel: 1, actions: []string{"provision", "view", "snapshot", "ptz"}})
	user("sys", "sysadmin")
	user("sec", "secadmin")
	user("aud", "auditor")
	gone := user("gone", "admin")
	_, err = acc.CreateUser(accounts.User{Username: "matrix-login"}, "matrix-login-pass")
	m.must(err)
	for _, a := range m.accounts {
		a.token = m.login(a)
	}
	// Disabled after logging in: the session it had must not work.
	disabled := true
	_, err = acc.UpdateUser("gone", accounts.UserPatch{Disabled: &disabled})
	m.must(err)
	gone.disabled = true

	tok, _, err := acc.CreateToken("leader", "integration", time.Time{})
	m.must(err)
	m.accounts = append(m.accounts,
		&mxAccount{name: "api-token(leader)", user: "leader", password: "leader-pass-123", kind: credToken, token: tok},
		&mxAccount{name: "agent", kind: credAgent},
		&mxAccount{name: "nobody", kind: credNone})
	return m
}

func (m *matrix) login(a *mxAccount) string {
	tok, _, _, err := m.s.d.Accounts.Login(a.user, a.password)
	m.must(err)
	return tok
}

// refresh gives back their credential to accounts whose call ended it
// (logout, ending one's sessions, a password change).
func (m *matrix) refresh() {
	for _, a := range m.accounts {
		if a.disabled || (a.kind != credSession && a.kind != credToken) {
			continue
		}
		if _, err := m.s.d.Accounts.Resolve(a.token); err == nil {
			continue
		}
		if a.kind == credSession {
			a.token = m.login(a)
			continue
		}
		tok, _, err := m.s.d.Accounts.CreateToken(a.user, "integration", time.Time{})
		m.must(err)
		a.token = tok
	}
}

func (m *matrix) do(method string, acc *mxAccount, r mxReq) (int, []byte) {
	m.t.Helper()
	var body io.Reader
	ctype := r.ctype
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		m.must(err)
		body = bytes.NewReader(raw)
		if ctype == "" {
			ctype = "application/json"
		}
	}
	req, err := http.NewRequest(method, m.base+r.path, body)
	m.must(err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	switch acc.kind {
	case credSession, credToken:
		req.Header.Set("Authorization", "Bearer "+acc.token)
	case credAgent:
		req.SetBasicAuth(m.agentID, m.secret)
	}
	res, err := m.hc.Do(req)
	m.must(err)
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

func TestEveryRouteIsInTheTableWithAnEnforceableRule(t *testing.T) {
	s := testServer(t)
	cases := routeCases()
	table := map[string]apiOp{}
	for _, op := range apiOps {
		key := op.Method + " " + op.Path
		if _, dup := table[key]; dup {
			t.Errorf("%s is in the route table twice", key)
		}
		table[key] = op
		if !op.Rule.valid() || op.Handle == nil {
			t.Errorf("%s: rule %q is not enforceable (or no handler)", key, op.Rule)
		}
		if _, ok := cases[key]; !ok {
			t.Errorf("%s: the matrix test does not say what the route needs; add it to routeCases", key)
		}
	}
	served := map[string]bool{}
	for _, r := range s.Routes() {
		key := r.Method + " " + r.Path
		served[key] = true
		if _, ok := table[key]; !ok {
			t.Errorf("%s is served but not in the route table", key)
		}
	}
	for key := range table {
		if !served[key] {
			t.Errorf("%s is in the route table but not served (with every dependency present)", key)
		}
	}
	for key := range cases {
		if _, ok := table[key]; !ok {
			t.Errorf("the matrix test expects %s, which the table does not have", key)
		}
	}
}

func TestRouteAccountMatrixAgreesWithTheIssuesRules(t *testing.T) {
	m := newMatrix(t)
	cases := routeCases()
	calls, denied := 0, map[int]int{}
	for _, op := range apiOps {
		key := op.Method + " " + op.Path
		rc, ok := cases[key]
		if !ok {
			t.Errorf("%s: no case (see TestEveryRouteIsInTheTableWithAnEnforceableRule)", key)
			continue
		}
		for _, v := range variants(rc.samples) {
			for _, acc := range m.accounts {
				r := rc.build(m, acc, v)
				status, body := m.do(op.Method, acc, r)
				calls++
				if r.after != nil {
					r.after(status, body)
				}
				m.refresh()
				want := m.ref.expect(acc, rc.door, v)
				if want != 0 {
					denied[want]++
				}
				okStatus := rc.ok
				if v.ok != nil {
					okStatus = v.ok
				}
				switch {
				case want == 0 && !slices.Contains(okStatus, status):
					t.Errorf("%s [%s] as %s: %d %.200s; the issue lets them through (want one of %v)", key, v.name, acc.name, status, body, okStatus)
				case want != 0 && status != want:
					t.Errorf("%s [%s] as %s: %d %.200s; want %d", key, v.name, acc.name, status, body, want)
				}
			}
		}
	}
	t.Logf("%d calls over %d routes and %d accounts; refused: %v", calls, len(apiOps), len(m.accounts), denied)
	// The matrix must exercise every kind of refusal, or it proves little.
	for _, code := range []int{401, 403, 404} {
		if denied[code] == 0 {
			t.Errorf("no call was expected to be refused with %d", code)
		}
	}
}

// Lists, facets and the map answer exactly the sample points the reference
// lets each account view.
func TestListsShowEachAccountExactlyWhatTheReferenceLetsThemView(t *testing.T) {
	m := newMatrix(t)
	for _, acc := range m.accounts {
		if acc.kind == credAgent || acc.kind == credNone || acc.disabled {
			continue
		}
		var want []string
		for _, n := range []string{"in", "mid", "out"} {
			if m.ref.can(acc, "view", refSamples[n]) {
				want = append(want, n)
			}
		}
		status, body := m.do(http.MethodGet, acc, mxReq{path: "/api/v1/points?sort=id"})
		var list struct{ Items []struct{ ID string } }
		if err := json.Unmarshal(body, &list); status != 200 || err != nil {
			t.Fatalf("%s: list %d %s", acc.name, status, body)
		}
		var got []string
		for _, it := range list.Items {
			got = append(got, it.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s sees %v, reference says %v", acc.name, got, want)
		}
	}
}
