package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
)

// apiOp is one route: how it is reached, who may call it (Rule), what
// answers it (Handle) and how the OpenAPI description documents it.
type apiOp struct {
	Method, Path string // Path as registered with gin (":param", "*rest")
	// Rule is what a caller must be allowed; the route's guard enforces it
	// through permissions before Handle runs.
	Rule rule
	// Handle answers the request once the guard let it through: a method
	// of one resource's handler type, named with at.
	Handle handle
	// Needs names the optional Deps the route needs; without them it is not served.
	Needs need

	Tag, Summary string
	Query        []string // query parameters
	Body         string   // schema name, or a media type such as "application/sdp"
	AlsoBody     []string // further media types the body may have
	Status       int      // success status
	Result       string   // schema name, media type, or "" for no body
}

// handle binds a route's handler to the server that registers it.
type handle func(*Server) gin.HandlerFunc

// at names the method m of the resource handler type R as a route's
// handler: the route table says which method answers, New's wiring says
// which R it is called on. A type New does not wire is a programming
// error, caught when the routes are registered.
func at[R any](m func(R, *gin.Context)) handle {
	return func(s *Server) gin.HandlerFunc {
		for _, r := range s.resources() {
			if h, ok := r.(R); ok && !reflect.ValueOf(r).IsNil() {
				return func(c *gin.Context) { m(h, c) }
			}
		}
		panic(fmt.Sprintf("web: a route names a handler of type %T, which New does not wire", *new(R)))
	}
}

// who is the kind of caller a route serves.
type who uint8

const (
	// whoUnset is a route without a rule; New refuses to serve it.
	whoUnset who = iota
	// whoPublic: anyone, logged in or not.
	whoPublic
	// whoAgent: an edge agent, authenticated by the handler itself with its
	// one-time enrollment code or its long-lived credentials, never a user's.
	whoAgent
	// whoUser: any logged-in user; the answer does not depend on points
	// (categories, the region tree, UI settings).
	whoUser
	// whoSelf: any logged-in user, acting on their own account only (their
	// sessions, tokens, stream key, layouts, WHEP sessions).
	whoSelf
	// whoSystem: a user holding the rule's system action.
	whoSystem
	// whoPoint: a user allowed the rule's point action on the point(s) the
	// route is about, found as the rule's find says.
	whoPoint
)

// find is how a point route finds the point(s) it is about.
type find uint8

const (
	findNone find = iota
	// findPath: the point named by the path's :id. The guard loads it and
	// answers 404 when the caller may not view it (so that points outside
	// a grant do not exist for the caller), 403 when they may view it but
	// not do the action.
	findPath
	// findBody: the point(s) in the request body (create, import). The
	// guard answers 403 when the caller may do the action nowhere; the
	// handler decides on each point once decoded, through permissions.
	findBody
	// findScope: every point the caller may do the action on (lists,
	// facets, the map, export): the handler searches within
	// permissions.Scope, so anyone logged in gets an answer, maybe empty.
	findScope
)

// rule is what a route demands of its caller.
type rule struct {
	Who who
	// System is the system action a whoSystem route needs; on a whoPoint
	// route, the system action that stands in for a grant (ManageAllPoints
	// lets its holder change any point whatever the grants say).
	System permissions.SystemAction
	// Also is a second system action that lets a caller through a
	// whoSystem route (reading the user list: users.manage, or
	// grants.manage to grant them something).
	Also permissions.SystemAction
	// Actions are the point actions of a whoPoint route: any one of them
	// lets the caller through (create takes manage or provision).
	Actions []permissions.Action
	Find    find
}

// Rules, as the route table spells them.
var (
	public          = rule{Who: whoPublic}
	agentCredential = rule{Who: whoAgent}
	authenticated   = rule{Who: whoUser}
	self            = rule{Who: whoSelf}
)

// system is a route for holders of the system action a.
func system(a permissions.SystemAction) rule { return rule{Who: whoSystem, System: a} }

// orAlso lets holders of a second system action through a system route.
func (r rule) orAlso(a permissions.SystemAction) rule {
	r.Also = a
	return r
}

// onPoint is a route about the point named by :id, needing action a on it.
func onPoint(a permissions.Action) rule {
	return rule{Who: whoPoint, Actions: []permissions.Action{a}, Find: findPath}
}

// newPoint is a route whose body brings points, needing one of actions on each.
func newPoint(actions ...permissions.Action) rule {
	return rule{Who: whoPoint, Actions: actions, Find: findBody}
}

// inScope is a route over every point the caller may do a on.
func inScope(a permissions.Action) rule {
	return rule{Who: whoPoint, Actions: []permissions.Action{a}, Find: findScope}
}

// or lets holders of the system action a through whatever their grants say.
func (r rule) or(a permissions.SystemAction) rule {
	r.System = a
	return r
}

// needsLogin reports whether the route's guard asks for a user's login.
func (r rule) needsLogin() bool { return r.Who >= whoUser }

// String describes the rule, for the OpenAPI description and test failures.
func (r rule) String() string {
	switch r.Who {
	case whoPublic:
		return "public"
	case whoAgent:
		return "agent credential"
	case whoUser:
		return "any user"
	case whoSelf:
		return "self"
	case whoSystem:
		if r.Also != "" {
			return "system:" + string(r.System) + "|" + string(r.Also)
		}
		return "system:" + string(r.System)
	case whoPoint:
		acts := make([]string, len(r.Actions))
		for i, a := range r.Actions {
			acts[i] = string(a)
		}
		s := "point:" + strings.Join(acts, "|") + "@" + [...]string{"none", "path", "body", "scope"}[r.Find]
		if r.System != "" {
			s += " or system:" + string(r.System)
		}
		return s
	}
	return "unset"
}

// valid reports whether the rule says enough to be enforced.
func (r rule) valid() bool {
	if r.Also != "" && r.Who != whoSystem {
		return false
	}
	switch r.Who {
	case whoPublic, whoAgent, whoUser, whoSelf:
		return r.System == "" && len(r.Actions) == 0 && r.Find == findNone
	case whoSystem:
		return r.System != "" && len(r.Actions) == 0 && r.Find == findNone
	case whoPoint:
		// On a scope route a system action widens the scope to everything
		// (the audit log: audit.read sees all, an audit grant its points).
		return len(r.Actions) > 0 && r.Find != findNone
	}
	return false
}

// need is a set of optional Deps a route needs.
type need uint8

const (
	needAudit need = 1 << iota
	needAgents
	needPrefs
	needMetrics
	needGB
	needGBLive
	needGBPlatforms
)

// serves reports whether d has what a route needing n needs.
func (d *Deps) serves(n need) bool {
	return (n&needAudit == 0 || d.Audit != nil) &&
		(n&needAgents == 0 || d.Agents != nil) &&
		(n&needPrefs == 0 || d.Prefs != nil) &&
		(n&needMetrics == 0 || d.Metrics != nil) &&
		(n&needGB == 0 || d.GB != nil) &&
		(n&needGBLive == 0 || d.GBLive != nil) &&
		(n&needGBPlatforms == 0 || d.GBPlatforms != nil)
}

// Context keys the guards set.
const (
	ctxRule  = "rule"
	ctxPoint = "point"
)

// registerRoutes serves every route of the table whose Deps are present,
// each behind its guard. A rule that cannot be enforced is a programming
// error caught at start, never a route served without one.
func (s *Server) registerRoutes() {
	for _, op := range apiOps {
		if !op.Rule.valid() || op.Handle == nil {
			panic("web: route " + op.Method + " " + op.Path + " has no enforceable rule or no handler")
		}
		if !s.d.serves(op.Needs) {
			continue
		}
		chain := append(s.guard(op.Rule), op.Handle(s))
		s.engine.Handle(op.Method, op.Path, chain...)
	}
}

// guard is the chain that enforces r before a handler runs.
func (s *Server) guard(r rule) []gin.HandlerFunc {
	keep := func(c *gin.Context) { c.Set(ctxRule, r); c.Next() }
	switch r.Who {
	case whoPublic, whoAgent:
		return []gin.HandlerFunc{keep}
	case whoUser, whoSelf:
		return []gin.HandlerFunc{keep, s.authenticate}
	case whoSystem:
		return []gin.HandlerFunc{keep, s.authenticate, s.requireSystem(r.System, r.Also)}
	}
	switch r.Find {
	case findPath:
		return []gin.HandlerFunc{keep, s.authenticate, s.requirePoint(r)}
	case findBody:
		return []gin.HandlerFunc{keep, s.authenticate, s.requireSomewhere(r)}
	}
	return []gin.HandlerFunc{keep, s.authenticate}
}

// requireSystem lets through holders of the system action a.
func (s *Server) requireSystem(a, also permissions.SystemAction) gin.HandlerFunc {
	return func(c *gin.Context) {
		u := currentUser(c)
		if !s.decide.CanSystem(u, a) && (also == "" || !s.decide.CanSystem(u, also)) {
			fail(c, http.StatusForbidden, "forbidden", "not allowed: needs "+string(a))
			return
		}
		c.Next()
	}
}

// guardDecider is what the guard asks permissions.
type guardDecider interface {
	CanSystem(u accounts.User, a permissions.SystemAction) bool
	Can(u accounts.User, a permissions.Action, p catalog.Point) bool
	HoldsSomewhere(u accounts.User, a permissions.Action) bool
}

// requirePoint loads the point named by :id and lets the caller through
// when r allows them on it: 404 when they may not view it, 403 when they
// may view it but not do the action. The handler finds the point with
// visiblePoint.
func (s *Server) requirePoint(r rule) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := s.findPoint.Get(c.Param("id"))
		if err != nil {
			pointError(c, err)
			return
		}
		u := currentUser(c)
		if r.System == "" || !s.decide.CanSystem(u, r.System) {
			if !s.decide.Can(u, permissions.View, p) {
				notFound(c, "point")
				return
			}
			if !slices.ContainsFunc(r.Actions, func(a permissions.Action) bool { return s.decide.Can(u, a, p) }) {
				fail(c, http.StatusForbidden, "forbidden", "not allowed on this point")
				return
			}
		}
		c.Set(ctxPoint, p)
		c.Next()
	}
}

// requireSomewhere lets through callers who may do one of r's actions on
// some point (or hold its system action); the handler decides on the
// points of the body once it has read them.
func (s *Server) requireSomewhere(r rule) gin.HandlerFunc {
	return func(c *gin.Context) {
		u := currentUser(c)
		ok := r.System != "" && s.decide.CanSystem(u, r.System)
		for _, a := range r.Actions {
			ok = ok || s.decide.HoldsSomewhere(u, a)
		}
		if !ok {
			fail(c, http.StatusForbidden, "forbidden", "not allowed to change points")
			return
		}
		c.Next()
	}
}

// visiblePoint is the point the route's guard loaded and decided on, when
// the route's rule names a on it. Anything else is a route whose handler
// and rule disagree: refused with 500, never decided here instead.
func visiblePoint(c *gin.Context, log *slog.Logger, a permissions.Action) (catalog.Point, bool) {
	v, loaded := c.Get(ctxPoint)
	r, _ := c.Get(ctxRule)
	if rl, ok := r.(rule); !loaded || !ok || !slices.Contains(rl.Actions, a) {
		log.Error("route handler asks for a point its rule does not decide", "path", c.FullPath(), "action", a)
		fail(c, http.StatusInternalServerError, "internal", "route rule does not cover this point action")
		return catalog.Point{}, false
	}
	return v.(catalog.Point), true
}

// apiOps is the route table: every route the server answers, with the rule
// its callers must pass and the handler behind it. New registers the
// router from it and puts the rule's guard before the handler; the OpenAPI
// description at /api/v1/openapi.json is built from its /api/v1 part. A
// route is served only through this table, so none can exist without a
// rule (the route × account matrix test holds each rule to the issue's).
var apiOps = []apiOp{
	{Method: "GET", Path: "/api/v1/openapi.json", Rule: public, Handle: at((*metaHandler).openAPI),
		Tag: "meta", Summary: "This description", Result: "application/json"},
	{Method: "POST", Path: "/api/v1/auth/login", Rule: public, Handle: at((*authHandler).login),
		Tag: "auth", Summary: "Log in; answers a session token and sets an HttpOnly cookie. Throttled per user and per IP (429 with Retry-After). An edge agent logging a technician in from its page names the browser's address in X-Tianyan-Client-Address with its own HTTP Basic credentials on the same request (the header is refused, 401, without them).", Body: "Login", Result: "LoginResult"},
	{Method: "POST", Path: "/api/v1/auth/logout", Rule: public, Handle: at((*authHandler).logout),
		Tag: "auth", Summary: "End the session", Status: 204},
	{Method: "GET", Path: "/api/v1/me", Rule: self, Handle: at((*selfHandler).me),
		Tag: "auth", Summary: "The caller, with the system actions they hold (system_actions)", Result: "Me"},
	{Method: "GET", Path: "/api/v1/me/stream-key", Rule: self, Handle: at((*selfHandler).streamKey),
		Tag: "auth", Summary: "The caller's RTSP stream key (RTSP Digest/Basic secret)", Result: "StreamKey"},
	{Method: "POST", Path: "/api/v1/me/stream-key", Rule: self, Handle: at((*selfHandler).rotateStreamKey),
		Tag: "auth", Summary: "Rotate the caller's RTSP stream key", Result: "StreamKey"},

	{Method: "GET", Path: "/api/v1/points", Rule: inScope(permissions.View), Handle: at((*pointHandler).list),
		Tag: "points", Summary: "Search the points the caller may view (region matches its subtree; q matches name, address, tags, pinyin initials)", Query: []string{"category", "region", "kind", "status", "level", "q", "bbox", "sort", "limit", "cursor"}, Result: "PointList"},
	{Method: "POST", Path: "/api/v1/points", Rule: newPoint(permissions.Manage, permissions.Provision).or(permissions.ManageAllPoints), Handle: at((*pointHandler).create),
		Tag: "points", Summary: "Create a point (id generated from region when absent): manage on it, or provision when it is a camera behind an edge agent; 409 camera_bound when another point has its camera", Body: "Point", Status: 201, Result: "Point"},
	{Method: "GET", Path: "/api/v1/points/facets", Rule: inScope(permissions.View), Handle: at((*pointHandler).facets),
		Tag: "points", Summary: "Counts by category, region tree and status, within the caller's grants", Query: []string{"category", "region", "kind", "status", "level", "q", "bbox", "sort", "limit", "cursor"}, Result: "Facets"},
	{Method: "GET", Path: "/api/v1/points/geo", Rule: inScope(permissions.View), Handle: at((*pointHandler).locations),
		Tag: "points", Summary: "Where every point the caller may view is, for the map: parallel arrays id, name, lat, lon, category, status in ID order, never paged; weak ETag (304 on If-None-Match)", Query: []string{"category", "region", "kind", "status", "level", "q", "bbox"}, Result: "Locations"},
	{Method: "GET", Path: "/api/v1/points/:id", Rule: onPoint(permissions.View), Handle: at((*pointHandler).get),
		Tag: "points", Summary: "One point; 404 also when it is outside the caller's grants", Result: "Point"},
	{Method: "PATCH", Path: "/api/v1/points/:id", Rule: onPoint(permissions.Manage).or(permissions.ManageAllPoints), Handle: at((*pointHandler).patch),
		Tag: "points", Summary: "Change a point: manage on it as stored and as changed (or points.manage_all); 409 camera_bound when another point has the camera it names", Body: "Point", Result: "Point"},
	{Method: "DELETE", Path: "/api/v1/points/:id", Rule: onPoint(permissions.Manage).or(permissions.ManageAllPoints), Handle: at((*pointHandler).delete),
		Tag: "points", Summary: "Delete a point", Status: 204},
	{Method: "GET", Path: "/api/v1/points/:id/stats", Rule: onPoint(permissions.View), Handle: at((*streamHandler).stats),
		Tag: "streaming", Summary: "Live stream state of a point's main or sub profile", Query: []string{"profile"}, Result: "StreamStats"},
	{Method: "POST", Path: "/api/v1/points/:id/whep", Rule: onPoint(permissions.View), Handle: at((*streamHandler).offer),
		Tag: "streaming", Summary: "WHEP: SDP offer in, SDP answer out (201, Location of the session). profile=sub for the low-bitrate stream. 429 too_many_views beyond the caller's or the address's cap on concurrent views", Query: []string{"profile"}, Body: "application/sdp", Status: 201, Result: "application/sdp"},
	{Method: "DELETE", Path: "/api/v1/points/:id/whep/:session", Rule: self, Handle: at((*streamHandler).delete),
		Tag: "streaming", Summary: "End a WHEP session"},
	{Method: "PATCH", Path: "/api/v1/points/:id/whep/:session", Rule: self, Handle: at((*streamHandler).patch),
		Tag: "streaming", Summary: "Trickle ICE is not supported: always 405", Status: 405},

	{Method: "GET", Path: "/api/v1/grants", Rule: system(permissions.ManageGrants), Handle: at((*grantHandler).list),
		Tag: "grants", Summary: "Every grant", Result: "GrantList"},
	{Method: "POST", Path: "/api/v1/grants", Rule: system(permissions.ManageGrants), Handle: at((*grantHandler).create),
		Tag: "grants", Summary: "Grant a user or role actions on categories × regions up to a level, for a validity window", Body: "Grant", Status: 201, Result: "Grant"},
	{Method: "DELETE", Path: "/api/v1/grants/:id", Rule: system(permissions.ManageGrants), Handle: at((*grantHandler).delete),
		Tag: "grants", Summary: "Remove a grant; live sessions it allowed end within 5 s", Status: 204},

	{Method: "GET", Path: "/api/v1/audit", Rule: inScope(permissions.Audit).or(permissions.ReadAudit), Handle: at((*auditHandler).query), Needs: needAudit,
		Tag: "audit", Summary: "Query the audit log (format=csv to export): everything with audit.read, else the records of the points the caller's audit grants cover", Query: []string{"user", "point", "action", "from", "to", "limit", "before", "format"}, Result: "AuditPage"},
	{Method: "GET", Path: "/api/v1/audit/verify", Rule: system(permissions.ReadAudit), Handle: at((*auditHandler).verify), Needs: needAudit,
		Tag: "audit", Summary: "Walk the audit hash chain", Result: "AuditVerify"},
	{Method: "POST", Path: "/api/v1/me/password", Rule: self, Handle: at((*selfHandler).changePassword),
		Tag: "auth", Summary: "Change the caller's password (old one required); ends the other sessions and every API token of the caller, and answers a fresh token", Body: "ChangePassword", Result: "LoginResult"},
	{Method: "GET", Path: "/api/v1/me/sessions", Rule: self, Handle: at((*selfHandler).listSessions),
		Tag: "auth", Summary: "The caller's sessions", Result: "Items"},
	{Method: "DELETE", Path: "/api/v1/me/sessions", Rule: self, Handle: at((*selfHandler).revokeSessions),
		Tag: "auth", Summary: "End all of the caller's sessions"},
	{Method: "DELETE", Path: "/api/v1/me/sessions/:id", Rule: self, Handle: at((*selfHandler).revokeSession),
		Tag: "auth", Summary: "End one of the caller's sessions", Status: 204},
	{Method: "GET", Path: "/api/v1/me/tokens", Rule: self, Handle: at((*selfHandler).listTokens),
		Tag: "auth", Summary: "The caller's API tokens (never the secrets)", Result: "Items"},
	{Method: "POST", Path: "/api/v1/me/tokens", Rule: self, Handle: at((*selfHandler).createToken),
		Tag: "auth", Summary: "Create an API token for integrations; the secret is shown once", Body: "CreateToken", Status: 201},
	{Method: "DELETE", Path: "/api/v1/me/tokens/:id", Rule: self, Handle: at((*selfHandler).revokeToken),
		Tag: "auth", Summary: "Revoke one of the caller's API tokens", Status: 204},

	{Method: "GET", Path: "/api/v1/users", Rule: system(permissions.ManageUsers).orAlso(permissions.ManageGrants), Handle: at((*userHandler).list),
		Tag: "users", Summary: "Every user", Result: "Items"},
	{Method: "POST", Path: "/api/v1/users", Rule: system(permissions.ManageUsers), Handle: at((*userHandler).create),
		Tag: "users", Summary: "Create a user", Body: "CreateUser", Status: 201, Result: "User"},
	{Method: "GET", Path: "/api/v1/users/:name", Rule: system(permissions.ManageUsers).orAlso(permissions.ManageGrants), Handle: at((*userHandler).get),
		Tag: "users", Summary: "One user", Result: "User"},
	{Method: "PATCH", Path: "/api/v1/users/:name", Rule: system(permissions.ManageUsers), Handle: at((*userHandler).patch),
		Tag: "users", Summary: "Change display name, roles, or disable (ends sessions and tokens at once)", Body: "UserPatch", Result: "User"},
	{Method: "PUT", Path: "/api/v1/users/:name/roles", Rule: system(permissions.ManageGrants), Handle: at((*userHandler).setRoles),
		Tag: "users", Summary: "Set the roles a user holds (the security administrator's duty); under --separation-of-duties one account holds at most one of sysadmin, secadmin, auditor (422)", Body: "Roles", Result: "User"},
	{Method: "DELETE", Path: "/api/v1/users/:name", Rule: system(permissions.ManageUsers), Handle: at((*userHandler).delete),
		Tag: "users", Summary: "Delete a user and their grants (409 for the last admin)", Status: 204},
	{Method: "POST", Path: "/api/v1/users/:name/password", Rule: system(permissions.ManageUsers), Handle: at((*userHandler).resetPassword),
		Tag: "users", Summary: "Reset a user's password; ends their sessions and API tokens", Body: "Password", Status: 204},
	{Method: "GET", Path: "/api/v1/users/:name/sessions", Rule: system(permissions.ManageUsers), Handle: at((*userHandler).listSessions),
		Tag: "users", Summary: "A user's sessions", Result: "Items"},
	{Method: "DELETE", Path: "/api/v1/users/:name/sessions", Rule: system(permissions.ManageUsers), Handle: at((*userHandler).revokeSessions),
		Tag: "users", Summary: "End all of a user's sessions"},
	{Method: "DELETE", Path: "/api/v1/users/:name/sessions/:id", Rule: system(permissions.ManageUsers), Handle: at((*userHandler).revokeSession),
		Tag: "users", Summary: "End one session", Status: 204},
	{Method: "GET", Path: "/api/v1/users/:name/tokens", Rule: system(permissions.ManageUsers), Handle: at((*userHandler).listTokens),
		Tag: "users", Summary: "A user's API tokens", Result: "Items"},
	{Method: "DELETE", Path: "/api/v1/users/:name/tokens/:id", Rule: system(permissions.ManageUsers), Handle: at((*userHandler).revokeToken),
		Tag: "users", Summary: "Revoke a user's API token", Status: 204},
	{Method: "GET", Path: "/api/v1/users/:name/access", Rule: system(permissions.ManageGrants), Handle: at((*accessHandler).user),
		Tag: "grants", Summary: "What this user can see, as facets", Result: "UserAccess"},
	{Method: "GET", Path: "/api/v1/roles", Rule: system(permissions.ManageGrants), Handle: at((*userHandler).listRoles),
		Tag: "users", Summary: "Every role", Result: "Items"},
	{Method: "POST", Path: "/api/v1/roles", Rule: system(permissions.ManageGrants), Handle: at((*userHandler).createRole),
		Tag: "users", Summary: "Create a role", Body: "Role", Status: 201, Result: "Role"},
	{Method: "DELETE", Path: "/api/v1/roles/:name", Rule: system(permissions.ManageGrants), Handle: at((*userHandler).deleteRole),
		Tag: "users", Summary: "Delete a role and its grants", Status: 204},

	{Method: "GET", Path: "/api/v1/regions", Rule: authenticated, Handle: at((*regionHandler).list),
		Tag: "regions", Summary: "The region tree (district → street → community); tree=1 nests it", Query: []string{"tree"}, Result: "Items"},
	{Method: "POST", Path: "/api/v1/regions", Rule: system(permissions.ManageRegions), Handle: at((*regionHandler).create),
		Tag: "regions", Summary: "Create a region", Body: "RegionCreate", Status: 201, Result: "Region"},
	{Method: "GET", Path: "/api/v1/regions/:code", Rule: authenticated, Handle: at((*regionHandler).get),
		Tag: "regions", Summary: "One region", Result: "Region"},
	{Method: "PATCH", Path: "/api/v1/regions/:code", Rule: system(permissions.ManageRegions), Handle: at((*regionHandler).patch),
		Tag: "regions", Summary: "Rename or move a region", Body: "RegionPatch", Result: "Region"},
	{Method: "DELETE", Path: "/api/v1/regions/:code", Rule: system(permissions.ManageRegions), Handle: at((*regionHandler).delete),
		Tag: "regions", Summary: "Delete a region (409 while it holds points or regions)", Status: 204},
	{Method: "POST", Path: "/api/v1/regions/import", Rule: system(permissions.ManageRegions), Handle: at((*importHandler).regions),
		Tag: "regions", Summary: "Import regions from CSV (code,name,parent); all or nothing, 422 lists every bad row", Query: []string{"dry_run"}, Body: "text/csv", Result: "ImportResult"},
	{Method: "POST", Path: "/api/v1/points/import", Rule: newPoint(permissions.Manage).or(permissions.ManageAllPoints), Handle: at((*importHandler).points),
		Tag: "points", Summary: "Import points from CSV or GeoJSON; all or nothing, 422 lists every bad row", Query: []string{"dry_run"}, Body: "text/csv", AlsoBody: []string{"application/geo+json", "application/json"}, Result: "ImportResult"},
	{Method: "GET", Path: "/api/v1/points/export", Rule: inScope(permissions.View), Handle: at((*importHandler).export),
		Tag: "points", Summary: "Export the points the caller may view (camera passwords hidden)", Query: []string{"format"}, Result: "text/csv"},
	{Method: "GET", Path: "/api/v1/points/:id/access", Rule: system(permissions.ManageGrants), Handle: at((*accessHandler).point),
		Tag: "grants", Summary: "Who can see this point, and through which grants", Result: "PointAccess"},
	{Method: "GET", Path: "/api/v1/categories", Rule: authenticated, Handle: at((*metaHandler).categories),
		Tag: "meta", Summary: "The 20 category codes with Chinese and English names, then unclassified (GB/T 28181 channels no mapping rule matched: administrators only, never grantable)", Result: "Items"},
	{Method: "GET", Path: "/api/v1/ui-config", Rule: authenticated, Handle: at((*metaHandler).uiConfig),
		Tag: "meta", Summary: "What the web app needs: map tile URL and datum, STUN/TURN servers for its RTCPeerConnection", Result: "UIConfig"},
	{Method: "GET", Path: "/api/v1/points/:id/allowed", Rule: onPoint(permissions.View), Handle: at((*pointHandler).actions),
		Tag: "points", Summary: "The actions the caller may do on this point", Result: "application/json"},
	{Method: "GET", Path: "/api/v1/me/layouts", Rule: self, Handle: at((*prefsHandler).listLayouts), Needs: needPrefs,
		Tag: "prefs", Summary: "The caller's saved video-wall layouts", Result: "Items"},
	{Method: "GET", Path: "/api/v1/me/layouts/:name", Rule: self, Handle: at((*prefsHandler).getLayout), Needs: needPrefs,
		Tag: "prefs", Summary: "One saved layout", Result: "Layout"},
	{Method: "PUT", Path: "/api/v1/me/layouts/:name", Rule: self, Handle: at((*prefsHandler).putLayout), Needs: needPrefs,
		Tag: "prefs", Summary: "Save a layout (201 new, 200 replaced)", Body: "Layout", Result: "Layout"},
	{Method: "DELETE", Path: "/api/v1/me/layouts/:name", Rule: self, Handle: at((*prefsHandler).deleteLayout), Needs: needPrefs,
		Tag: "prefs", Summary: "Delete a saved layout", Status: 204},
	{Method: "GET", Path: "/api/v1/me/favourites", Rule: self, Handle: at((*prefsHandler).favourites), Needs: needPrefs,
		Tag: "prefs", Summary: "The caller's favourite points, and those still visible", Result: "application/json"},
	{Method: "PUT", Path: "/api/v1/me/favourites", Rule: self, Handle: at((*prefsHandler).putFavourites), Needs: needPrefs,
		Tag: "prefs", Summary: "Replace the caller's favourites", Body: "application/json", Result: "application/json"},

	{Method: "POST", Path: "/api/v1/agents", Rule: system(permissions.ManageAgents), Handle: at((*agentHandler).create), Needs: needAgents,
		Tag: "agents", Summary: "Create an edge agent, optionally in a region; answers a one-time enrollment code", Body: "AgentCreate", Status: 201, Result: "AgentCreated"},
	{Method: "GET", Path: "/api/v1/agents", Rule: system(permissions.ManageAgents), Handle: at((*agentHandler).list), Needs: needAgents,
		Tag: "agents", Summary: "Every agent with online state, version, cameras and relays", Result: "Items"},
	{Method: "GET", Path: "/api/v1/agents/:id", Rule: system(permissions.ManageAgents), Handle: at((*agentHandler).get), Needs: needAgents,
		Tag: "agents", Summary: "One agent", Result: "Agent"},
	{Method: "PATCH", Path: "/api/v1/agents/:id", Rule: system(permissions.ManageAgents), Handle: at((*agentHandler).patch), Needs: needAgents,
		Tag: "agents", Summary: "Rename an agent or set its region (a region code, \"\" for none): technicians see its unbound cameras only when a provision grant of theirs covers that region", Body: "AgentPatch", Result: "Agent"},
	{Method: "DELETE", Path: "/api/v1/agents/:id", Rule: system(permissions.ManageAgents), Handle: at((*agentHandler).delete), Needs: needAgents,
		Tag: "agents", Summary: "Delete a revoked or never-enrolled agent (409 otherwise)", Status: 204},
	{Method: "POST", Path: "/api/v1/agents/:id/revoke", Rule: system(permissions.ManageAgents), Handle: at((*agentHandler).revoke), Needs: needAgents,
		Tag: "agents", Summary: "Revoke an agent: its link and RTSP publishes are cut at once", Status: 204},
	{Method: "POST", Path: "/api/v1/agents/:id/rediscover", Rule: system(permissions.ManageAgents), Handle: at((*agentHandler).rediscover), Needs: needAgents,
		Tag: "agents", Summary: "Ask an agent to search its LAN again", Status: 202},
	{Method: "GET", Path: "/api/v1/gb/platforms", Rule: system(permissions.Operate), Handle: at((*platformHandler).list), Needs: needGBPlatforms,
		Tag: "gb28181", Summary: "Upstream GB/T 28181 platforms we register to (级联), each with its registration's status; passwords are never returned", Result: "Items"},
	{Method: "POST", Path: "/api/v1/gb/platforms", Rule: system(permissions.Operate), Handle: at((*platformHandler).create), Needs: needGBPlatforms,
		Tag: "gb28181", Summary: "Register upward to a platform: its 20-digit ID, domain, address, transport, password (write-only), our ID, expiry, keepalive, and the platform account whose grants decide what it sees", Body: "GBPlatformCreate", Status: 201, Result: "GBPlatform"},
	{Method: "GET", Path: "/api/v1/gb/platforms/:id", Rule: system(permissions.Operate), Handle: at((*platformHandler).get), Needs: needGBPlatforms,
		Tag: "gb28181", Summary: "One upstream platform and its registration's status", Result: "GBPlatform"},
	{Method: "PATCH", Path: "/api/v1/gb/platforms/:id", Rule: system(permissions.Operate), Handle: at((*platformHandler).patch), Needs: needGBPlatforms,
		Tag: "gb28181", Summary: "Change an upstream platform (a new password, address, account, enabled…); it re-registers", Body: "GBPlatformPatch", Result: "GBPlatform"},
	{Method: "DELETE", Path: "/api/v1/gb/platforms/:id", Rule: system(permissions.Operate), Handle: at((*platformHandler).delete), Needs: needGBPlatforms,
		Tag: "gb28181", Summary: "Stop registering to a platform: it is unregistered and its streams end", Status: 204},
	{Method: "POST", Path: "/api/v1/agents/enroll", Rule: agentCredential, Handle: at((*agentHandler).enroll), Needs: needAgents,
		Tag: "agents", Summary: "Agent enrollment: one-time code in, long-lived credentials out", Body: "Enroll", Result: "Enrolled"},
	{Method: "GET", Path: "/api/v1/agents/page-access", Rule: agentCredential, Handle: at((*agentPageHandler).access), Needs: needAgents,
		Tag: "agents", Summary: "For the agent's provisioning page (HTTP Basic agent-id:secret; the technician's token in X-Tianyan-User-Token, else 401): the agent's region, whether the technician holds provision anywhere and within that region, and every camera of this agent bound to a point with the technician's actions on it", Result: "PageAccess"},
	{Method: "GET", Path: "/api/v1/agents/connect", Rule: agentCredential, Handle: at((*agentHandler).connect), Needs: needAgents,
		Tag: "agents", Summary: "The agent's control link (WebSocket; HTTP Basic agent-id:secret)", Status: 101},
	{Method: "POST", Path: "/api/v1/points/:id/ptz", Rule: onPoint(permissions.PTZ), Handle: at((*agentHandler).ptz), Needs: needAgents,
		Tag: "points", Summary: "Steer the camera through its agent, or its GB/T 28181 device (DeviceControl PTZCmd; GB points also take op preset_set and preset_delete, presets 1–255) (ptz grant; PTZ priority decides between users)", Body: "PTZ", Status: 204},
	{Method: "GET", Path: "/api/v1/points/:id/snapshot.jpg", Rule: onPoint(permissions.Snapshot), Handle: at((*agentHandler).snapshot), Needs: needAgents,
		Tag: "points", Summary: "A JPEG from the camera through its agent (snapshot grant)", Result: "image/jpeg"},
	{Method: "GET", Path: "/api/v1/gb/devices", Rule: system(permissions.ManageAgents), Handle: at((*gbDeviceHandler).listDevices), Needs: needGB,
		Tag: "gb28181", Summary: "GB/T 28181 devices and lower platforms registering to us: ID, name, vendor, model, transport, address, last keepalive, online, channel and flagged-channel counts", Result: "Items"},
	{Method: "POST", Path: "/api/v1/gb/devices", Rule: system(permissions.ManageAgents), Handle: at((*gbDeviceHandler).createDevice), Needs: needGB,
		Tag: "gb28181", Summary: "Record a device before it first registers, with its own Digest password (write-only)", Body: "GBDeviceCreate", Status: 201, Result: "GBDevice"},
	{Method: "PATCH", Path: "/api/v1/gb/devices/:id", Rule: system(permissions.ManageAgents), Handle: at((*gbDeviceHandler).patchDevice), Needs: needGB,
		Tag: "gb28181", Summary: "Rename a device, set its own Digest password (write-only; \"\" falls back to --sip-password) or its stream transport (udp|tcp)", Body: "GBDevicePatch", Result: "GBDevice"},
	{Method: "DELETE", Path: "/api/v1/gb/devices/:id", Rule: system(permissions.ManageAgents), Handle: at((*gbDeviceHandler).deleteDevice), Needs: needGB,
		Tag: "gb28181", Summary: "Forget a device and its password (its points stay; it may register again)", Status: 204},
	{Method: "POST", Path: "/api/v1/gb/devices/:id/catalog", Rule: system(permissions.ManageAgents), Handle: at((*gbDeviceHandler).queryCatalog), Needs: needGB,
		Tag: "gb28181", Summary: "Ask the device for its catalog again and sync its channels into points (409 device_offline when it is not registered)", Result: "GBCatalogResult"},
	{Method: "GET", Path: "/api/v1/gb/devices/:id/info", Rule: system(permissions.ManageAgents), Handle: at((*gbLiveHandler).info), Needs: needGBLive,
		Tag: "gb28181", Summary: "Ask the device now for its DeviceInfo: name, manufacturer, model, firmware, channel count (503 device_offline when it is not online, 504 device_timeout when it does not answer)", Result: "GBDeviceInfo"},
	{Method: "GET", Path: "/api/v1/gb/devices/:id/status", Rule: system(permissions.ManageAgents), Handle: at((*gbLiveHandler).status), Needs: needGBLive,
		Tag: "gb28181", Summary: "Ask the device now for its DeviceStatus: online, status and reason, encoding, recording, clock, alarm inputs (503 device_offline, 504 device_timeout)", Result: "GBDeviceStatus"},
	{Method: "GET", Path: "/api/v1/gb/channels", Rule: system(permissions.ManageAllPoints), Handle: at((*gbDeviceHandler).listChannels), Needs: needGB,
		Tag: "gb28181", Summary: "Channels of the GB devices (device= one device; flagged=1 only those needing an admin: civil code, unclassified, conflict, gone, invalid)", Query: []string{"device", "flagged"}, Result: "Items"},
	{Method: "GET", Path: "/api/v1/gb/rules", Rule: system(permissions.ManageAllPoints), Handle: at((*gbDeviceHandler).listRules), Needs: needGB,
		Tag: "gb28181", Summary: "Channel → category mapping rules, in the order they are tried", Result: "Items"},
	{Method: "POST", Path: "/api/v1/gb/rules", Rule: system(permissions.ManageAllPoints), Handle: at((*gbDeviceHandler).createRule), Needs: needGB,
		Tag: "gb28181", Summary: "Add a mapping rule (civil code prefix, parent ID, name pattern → category, level); channels not classified by hand follow at once", Body: "GBRule", Status: 201, Result: "GBRule"},
	{Method: "PUT", Path: "/api/v1/gb/rules/:id", Rule: system(permissions.ManageAllPoints), Handle: at((*gbDeviceHandler).putRule), Needs: needGB,
		Tag: "gb28181", Summary: "Replace a mapping rule", Body: "GBRule", Result: "GBRule"},
	{Method: "DELETE", Path: "/api/v1/gb/rules/:id", Rule: system(permissions.ManageAllPoints), Handle: at((*gbDeviceHandler).deleteRule), Needs: needGB,
		Tag: "gb28181", Summary: "Remove a mapping rule (points it classified keep their category unless another rule matches)", Status: 204},
	{Method: "GET", Path: "/api/v1/backup", Rule: system(permissions.Operate), Handle: at((*opsHandler).backup),
		Tag: "ops", Summary: "A consistent snapshot of the database, taken while serving", Result: "application/octet-stream"},

	{Method: "GET", Path: "/metrics", Rule: system(permissions.Operate), Handle: at((*opsHandler).serveMetrics), Needs: needMetrics,
		Tag: "ops", Summary: "Prometheus metrics", Result: "text/plain"},
	{Method: "GET", Path: "/", Rule: public, Handle: at((*uiHandler).index), Tag: "ui", Summary: "The browser app", Result: "text/html"},
	{Method: "HEAD", Path: "/", Rule: public, Handle: at((*uiHandler).index), Tag: "ui", Summary: "The browser app"},
	{Method: "GET", Path: "/ui/*file", Rule: public, Handle: at((*uiHandler).file), Tag: "ui", Summary: "The browser app's files"},
	{Method: "HEAD", Path: "/ui/*file", Rule: public, Handle: at((*uiHandler).file), Tag: "ui", Summary: "The browser app's files"},
}
