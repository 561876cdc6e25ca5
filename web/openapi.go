package web

import (
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/prefs"
	"github.com/tianyan/vms/streaming"
)

// apiOp documents one route. The table is the source of the OpenAPI
// description served at /api/v1/openapi.json; a test checks that it and the
// router list the same routes, so neither can drift from the other.
type apiOp struct {
	Method, Path string // Path as registered with gin (":param")
	Tag, Summary string
	Public       bool     // no login needed
	Admin        bool     // administrators only
	Query        []string // query parameters
	Body         string   // schema name, or a media type such as "application/sdp"
	Status       int      // success status
	Result       string   // schema name, media type, or "" for no body
}

// apiSchemas are the named bodies, described from the Go types themselves.
var apiSchemas = map[string]any{
	"Point":       catalog.Point{},
	"PointList":   catalog.Result{},
	"Facets":      catalog.Facets{},
	"Locations":   catalog.Locations{},
	"Region":      catalog.Region{},
	"Grant":       permissions.Grant{},
	"User":        accounts.User{},
	"AuditRecord": audit.Record{},
	"StreamStats": streaming.Stats{},
	"Login":       loginRequest{},
	"Error": struct {
		Error apiError `json:"error"`
	}{},
	"StreamKey": struct {
		Username  string `json:"username"`
		StreamKey string `json:"stream_key"`
	}{},
	"LoginResult": struct {
		Token   string        `json:"token"`
		Expires time.Time     `json:"expires"`
		User    accounts.User `json:"user"`
	}{},
	"AuditVerify": struct {
		OK       bool   `json:"ok"`
		Records  int    `json:"records"`
		HeadSeq  uint64 `json:"head_seq"`
		HeadHash string `json:"head_hash"`
		BrokenAt uint64 `json:"broken_at"`
		Reason   string `json:"reason"`
	}{},
	"AuditPage": struct {
		Items      []audit.Record `json:"items"`
		NextBefore uint64         `json:"next_before"`
	}{},
	"CreateUser":     createUserRequest{},
	"UserPatch":      accounts.UserPatch{},
	"Password":       passwordRequest{},
	"ChangePassword": changePasswordRequest{},
	"CreateToken":    createTokenRequest{},
	"Role":           accounts.Role{},
	"RegionCreate":   regionRequest{},
	"RegionPatch":    regionPatch{},
	"PointAccess": struct {
		Point string             `json:"point"`
		Users []pointAccessEntry `json:"users"`
	}{},
	"UserAccess": struct {
		Username string         `json:"username"`
		Total    int            `json:"total"`
		Facets   catalog.Facets `json:"facets"`
		Scope    catalog.Scope  `json:"scope"`
	}{},
	"Items": struct {
		Items []any `json:"items"`
	}{},
	"ImportResult": struct {
		Imported int  `json:"imported"`
		Valid    int  `json:"valid"`
		DryRun   bool `json:"dry_run"`
	}{},
	"Layout":      prefs.Layout{},
	"UIConfig":    uiConfigResponse{},
	"AgentCreate": createAgentRequest{},
	"Agent":       agents.Agent{},
	"AgentPatch":  agents.AgentPatch{},
	"PageAccess":  agentlink.PageAccess{},
	"AgentCreated": struct {
		Agent          agents.Agent `json:"agent"`
		EnrollmentCode string       `json:"enrollment_code"`
		Expires        time.Time    `json:"expires"`
	}{},
	"Enroll":   agentlink.EnrollRequest{},
	"Enrolled": agentlink.EnrollResponse{},
	"PTZ":      agentlink.PTZRequest{},
	"GrantList": struct {
		Items []permissions.Grant `json:"items"`
	}{},
}

// apiOps lists every route under /api/v1.
var apiOps = []apiOp{
	{Method: "GET", Path: "/api/v1/openapi.json", Tag: "meta", Summary: "This description", Public: true, Result: "application/json"},
	{Method: "POST", Path: "/api/v1/auth/login", Tag: "auth", Summary: "Log in; answers a session token and sets an HttpOnly cookie. Throttled per user and per IP (429 with Retry-After). An edge agent logging a technician in from its page names the browser's address in X-Tianyan-Client-Address with its own HTTP Basic credentials on the same request (the header is refused, 401, without them)", Public: true, Body: "Login", Result: "LoginResult"},
	{Method: "POST", Path: "/api/v1/auth/logout", Tag: "auth", Summary: "End the session", Public: true, Status: 204},
	{Method: "GET", Path: "/api/v1/me", Tag: "auth", Summary: "The caller", Result: "User"},
	{Method: "GET", Path: "/api/v1/me/stream-key", Tag: "auth", Summary: "The caller's RTSP stream key (RTSP Digest/Basic secret)", Result: "StreamKey"},
	{Method: "POST", Path: "/api/v1/me/stream-key", Tag: "auth", Summary: "Rotate the caller's RTSP stream key", Result: "StreamKey"},

	{Method: "GET", Path: "/api/v1/points", Tag: "points", Summary: "Search the points the caller may view (region matches its subtree; q matches name, address, tags, pinyin initials)", Query: []string{"category", "region", "kind", "status", "level", "q", "bbox", "sort", "limit", "cursor"}, Result: "PointList"},
	{Method: "POST", Path: "/api/v1/points", Tag: "points", Summary: "Create a point (id generated from region when absent)", Admin: true, Body: "Point", Status: 201, Result: "Point"},
	{Method: "GET", Path: "/api/v1/points/facets", Tag: "points", Summary: "Counts by category, region tree and status, within the caller's grants", Query: []string{"category", "region", "kind", "status", "level", "q", "bbox", "sort", "limit", "cursor"}, Result: "Facets"},
	{Method: "GET", Path: "/api/v1/points/geo", Tag: "points", Summary: "Where every point the caller may view is, for the map: parallel arrays id, name, lat, lon, category, status in ID order, never paged; weak ETag (304 on If-None-Match)", Query: []string{"category", "region", "kind", "status", "level", "q", "bbox"}, Result: "Locations"},
	{Method: "GET", Path: "/api/v1/points/:id", Tag: "points", Summary: "One point; 404 also when it is outside the caller's grants", Result: "Point"},
	{Method: "PATCH", Path: "/api/v1/points/:id", Tag: "points", Summary: "Change a point", Admin: true, Body: "Point", Result: "Point"},
	{Method: "DELETE", Path: "/api/v1/points/:id", Tag: "points", Summary: "Delete a point", Admin: true, Status: 204},
	{Method: "GET", Path: "/api/v1/points/:id/stats", Tag: "streaming", Summary: "Live stream state of a point's main or sub profile", Query: []string{"profile"}, Result: "StreamStats"},
	{Method: "POST", Path: "/api/v1/points/:id/whep", Tag: "streaming", Summary: "WHEP: SDP offer in, SDP answer out (201, Location of the session). profile=sub for the low-bitrate stream", Query: []string{"profile"}, Body: "application/sdp", Status: 201, Result: "application/sdp"},
	{Method: "DELETE", Path: "/api/v1/points/:id/whep/:session", Tag: "streaming", Summary: "End a WHEP session"},
	{Method: "PATCH", Path: "/api/v1/points/:id/whep/:session", Tag: "streaming", Summary: "Trickle ICE is not supported: always 405", Status: 405},

	{Method: "GET", Path: "/api/v1/grants", Tag: "grants", Summary: "Every grant", Admin: true, Result: "GrantList"},
	{Method: "POST", Path: "/api/v1/grants", Tag: "grants", Summary: "Grant a user or role actions on categories × regions up to a level, for a validity window", Admin: true, Body: "Grant", Status: 201, Result: "Grant"},
	{Method: "DELETE", Path: "/api/v1/grants/:id", Tag: "grants", Summary: "Remove a grant; live sessions it allowed end within 5 s", Admin: true, Status: 204},

	{Method: "GET", Path: "/api/v1/audit", Tag: "audit", Summary: "Query the audit log (format=csv to export)", Admin: true, Query: []string{"user", "point", "action", "from", "to", "limit", "before", "format"}, Result: "AuditPage"},
	{Method: "GET", Path: "/api/v1/audit/verify", Tag: "audit", Summary: "Walk the audit hash chain", Admin: true, Result: "AuditVerify"},
	{Method: "POST", Path: "/api/v1/me/password", Tag: "auth", Summary: "Change the caller's password (old one required); ends the other sessions and answers a fresh token", Body: "ChangePassword", Result: "LoginResult"},
	{Method: "GET", Path: "/api/v1/me/sessions", Tag: "auth", Summary: "The caller's sessions", Result: "Items"},
	{Method: "DELETE", Path: "/api/v1/me/sessions", Tag: "auth", Summary: "End all of the caller's sessions"},
	{Method: "DELETE", Path: "/api/v1/me/sessions/:id", Tag: "auth", Summary: "End one of the caller's sessions", Status: 204},
	{Method: "GET", Path: "/api/v1/me/tokens", Tag: "auth", Summary: "The caller's API tokens (never the secrets)", Result: "Items"},
	{Method: "POST", Path: "/api/v1/me/tokens", Tag: "auth", Summary: "Create an API token for integrations; the secret is shown once", Body: "CreateToken", Status: 201},
	{Method: "DELETE", Path: "/api/v1/me/tokens/:id", Tag: "auth", Summary: "Revoke one of the caller's API tokens", Status: 204},

	{Method: "GET", Path: "/api/v1/users", Tag: "users", Summary: "Every user", Admin: true, Result: "Items"},
	{Method: "POST", Path: "/api/v1/users", Tag: "users", Summary: "Create a user", Admin: true, Body: "CreateUser", Status: 201, Result: "User"},
	{Method: "GET", Path: "/api/v1/users/:name", Tag: "users", Summary: "One user", Admin: true, Result: "User"},
	{Method: "PATCH", Path: "/api/v1/users/:name", Tag: "users", Summary: "Change display name, roles, or disable (ends sessions and tokens at once)", Admin: true, Body: "UserPatch", Result: "User"},
	{Method: "DELETE", Path: "/api/v1/users/:name", Tag: "users", Summary: "Delete a user and their grants (409 for the last admin)", Admin: true, Status: 204},
	{Method: "POST", Path: "/api/v1/users/:name/password", Tag: "users", Summary: "Reset a user's password", Admin: true, Body: "Password", Status: 204},
	{Method: "GET", Path: "/api/v1/users/:name/sessions", Tag: "users", Summary: "A user's sessions", Admin: true, Result: "Items"},
	{Method: "DELETE", Path: "/api/v1/users/:name/sessions", Tag: "users", Summary: "End all of a user's sessions", Admin: true},
	{Method: "DELETE", Path: "/api/v1/users/:name/sessions/:id", Tag: "users", Summary: "End one session", Admin: true, Status: 204},
	{Method: "GET", Path: "/api/v1/users/:name/tokens", Tag: "users", Summary: "A user's API tokens", Admin: true, Result: "Items"},
	{Method: "DELETE", Path: "/api/v1/users/:name/tokens/:id", Tag: "users", Summary: "Revoke a user's API token", Admin: true, Status: 204},
	{Method: "GET", Path: "/api/v1/users/:name/access", Tag: "grants", Summary: "What this user can see, as facets", Admin: true, Result: "UserAccess"},
	{Method: "GET", Path: "/api/v1/roles", Tag: "users", Summary: "Every role", Admin: true, Result: "Items"},
	{Method: "POST", Path: "/api/v1/roles", Tag: "users", Summary: "Create a role", Admin: true, Body: "Role", Status: 201, Result: "Role"},
	{Method: "DELETE", Path: "/api/v1/roles/:name", Tag: "users", Summary: "Delete a role and its grants", Admin: true, Status: 204},

	{Method: "GET", Path: "/api/v1/regions", Tag: "regions", Summary: "The region tree (district → street → community); tree=1 nests it", Query: []string{"tree"}, Result: "Items"},
	{Method: "POST", Path: "/api/v1/regions", Tag: "regions", Summary: "Create a region", Admin: true, Body: "RegionCreate", Status: 201, Result: "Region"},
	{Method: "GET", Path: "/api/v1/regions/:code", Tag: "regions", Summary: "One region", Result: "Region"},
	{Method: "PATCH", Path: "/api/v1/regions/:code", Tag: "regions", Summary: "Rename or move a region", Admin: true, Body: "RegionPatch", Result: "Region"},
	{Method: "DELETE", Path: "/api/v1/regions/:code", Tag: "regions", Summary: "Delete a region (409 while it holds points or regions)", Admin: true, Status: 204},
	{Method: "POST", Path: "/api/v1/regions/import", Tag: "regions", Summary: "Import regions from CSV (code,name,parent); all or nothing, 422 lists every bad row", Admin: true, Query: []string{"dry_run"}, Body: "text/csv", Result: "ImportResult"},
	{Method: "POST", Path: "/api/v1/points/import", Tag: "points", Summary: "Import points from CSV or GeoJSON; all or nothing, 422 lists every bad row", Admin: true, Query: []string{"dry_run"}, Body: "text/csv", Result: "ImportResult"},
	{Method: "GET", Path: "/api/v1/points/export", Tag: "points", Summary: "Export the points the caller may view (camera passwords hidden)", Query: []string{"format"}, Result: "text/csv"},
	{Method: "GET", Path: "/api/v1/points/:id/access", Tag: "grants", Summary: "Who can see this point, and through which grants", Admin: true, Result: "PointAccess"},
	{Method: "GET", Path: "/api/v1/categories", Tag: "meta", Summary: "The 20 category codes with Chinese and English names", Result: "Items"},
	{Method: "GET", Path: "/api/v1/ui-config", Tag: "meta", Summary: "What the web app needs: map tile URL and datum, STUN/TURN servers for its RTCPeerConnection", Result: "UIConfig"},
	{Method: "GET", Path: "/api/v1/points/:id/allowed", Tag: "points", Summary: "The actions the caller may do on this point", Result: "application/json"},
	{Method: "GET", Path: "/api/v1/me/layouts", Tag: "prefs", Summary: "The caller's saved video-wall layouts", Result: "Items"},
	{Method: "GET", Path: "/api/v1/me/layouts/:name", Tag: "prefs", Summary: "One saved layout", Result: "Layout"},
	{Method: "PUT", Path: "/api/v1/me/layouts/:name", Tag: "prefs", Summary: "Save a layout (201 new, 200 replaced)", Body: "Layout", Result: "Layout"},
	{Method: "DELETE", Path: "/api/v1/me/layouts/:name", Tag: "prefs", Summary: "Delete a saved layout", Status: 204},
	{Method: "GET", Path: "/api/v1/me/favourites", Tag: "prefs", Summary: "The caller's favourite points, and those still visible", Result: "application/json"},
	{Method: "PUT", Path: "/api/v1/me/favourites", Tag: "prefs", Summary: "Replace the caller's favourites", Body: "application/json", Result: "application/json"},

	{Method: "POST", Path: "/api/v1/agents", Tag: "agents", Summary: "Create an edge agent, optionally in a region; answers a one-time enrollment code", Admin: true, Body: "AgentCreate", Status: 201, Result: "AgentCreated"},
	{Method: "GET", Path: "/api/v1/agents", Tag: "agents", Summary: "Every agent with online state, version, cameras and relays", Admin: true, Result: "Items"},
	{Method: "GET", Path: "/api/v1/agents/:id", Tag: "agents", Summary: "One agent", Admin: true, Result: "Agent"},
	{Method: "PATCH", Path: "/api/v1/agents/:id", Tag: "agents", Summary: "Rename an agent or set its region (a region code, \"\" for none): technicians see its unbound cameras only when a provision grant of theirs covers that region", Admin: true, Body: "AgentPatch", Result: "Agent"},
	{Method: "DELETE", Path: "/api/v1/agents/:id", Tag: "agents", Summary: "Delete a revoked or never-enrolled agent (409 otherwise)", Admin: true, Status: 204},
	{Method: "POST", Path: "/api/v1/agents/:id/revoke", Tag: "agents", Summary: "Revoke an agent: its link and RTSP publishes are cut at once", Admin: true, Status: 204},
	{Method: "POST", Path: "/api/v1/agents/:id/rediscover", Tag: "agents", Summary: "Ask an agent to search its LAN again", Admin: true, Status: 202},
	{Method: "POST", Path: "/api/v1/agents/enroll", Tag: "agents", Summary: "Agent enrollment: one-time code in, long-lived credentials out", Public: true, Body: "Enroll", Result: "Enrolled"},
	{Method: "GET", Path: "/api/v1/agents/page-access", Tag: "agents", Summary: "For the agent's provisioning page (HTTP Basic agent-id:secret; the technician's token in X-Tianyan-User-Token, else 401): the agent's region, whether the technician holds provision anywhere and within that region, and every camera of this agent bound to a point with the technician's actions on it", Public: true, Result: "PageAccess"},
	{Method: "GET", Path: "/api/v1/agents/connect", Tag: "agents", Summary: "The agent's control link (WebSocket; HTTP Basic agent-id:secret)", Public: true, Status: 101},
	{Method: "POST", Path: "/api/v1/points/:id/ptz", Tag: "points", Summary: "Steer the camera through its agent (ptz grant; PTZ priority decides between users)", Body: "PTZ", Status: 204},
	{Method: "GET", Path: "/api/v1/points/:id/snapshot.jpg", Tag: "points", Summary: "A JPEG from the camera through its agent (snapshot grant)", Result: "image/jpeg"},
	{Method: "GET", Path: "/api/v1/backup", Tag: "ops", Summary: "A consistent snapshot of the database, taken while serving", Admin: true, Result: "application/octet-stream"},
}

var (
	openAPIOnce sync.Once
	openAPIDoc  map[string]any
)

// openAPI answers GET /api/v1/openapi.json.
func (s *Server) openAPI(c *gin.Context) {
	openAPIOnce.Do(func() { openAPIDoc = buildOpenAPI() })
	c.JSON(http.StatusOK, openAPIDoc)
}

var ginParam = regexp.MustCompile(`:([a-zA-Z_]+)`)

// openAPIPath turns "/points/:id" into "/points/{id}".
func openAPIPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

func buildOpenAPI() map[string]any {
	schemas := map[string]any{}
	for name, v := range apiSchemas {
		schemas[name] = jsonSchema(reflect.TypeOf(v), 0)
	}
	paths := map[string]map[string]any{}
	for _, op := range apiOps {
		p := openAPIPath(op.Path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		var params []any
		for _, m := range ginParam.FindAllStringSubmatch(op.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range op.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "schema": map[string]any{"type": "string"}})
		}
		status := op.Status
		if status == 0 {
			status = http.StatusOK
		}
		responses := map[string]any{}
		ok := map[string]any{"description": http.StatusText(status)}
		if op.Result != "" {
			ok["content"] = content(op.Result)
		}
		responses[strconv.Itoa(status)] = ok
		errBody := map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}
		if !op.Public {
			responses["401"] = map[string]any{"description": "Not logged in", "content": errBody}
		}
		if op.Admin {
			responses["403"] = map[string]any{"description": "Administrators only", "content": errBody}
		}
		o := map[string]any{"summary": op.Summary, "tags": []string{op.Tag}, "responses": responses,
			"operationId": strings.ToLower(op.Method) + strings.NewReplacer("/api/v1", "", "/", "_", ":", "", ".", "_", "-", "_").Replace(op.Path)}
		if len(params) > 0 {
			o["parameters"] = params
		}
		if op.Body != "" {
			o["requestBody"] = map[string]any{"required": true, "content": content(op.Body)}
		}
		if op.Public {
			o["security"] = []any{}
		}
		paths[p][strings.ToLower(op.Method)] = o
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Tianyan VMS API", "version": "1",
			"description": "Central server of Tianyan: catalog, grants, accounts, audit and live video (WHEP)."},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
				"cookie": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie},
			},
		},
		"security": []any{map[string]any{"bearer": []any{}}, map[string]any{"cookie": []any{}}},
	}
}

func content(kind string) map[string]any {
	if strings.Contains(kind, "/") {
		return map[string]any{kind: map[string]any{}}
	}
	return map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + kind}}}
}

var timeType = reflect.TypeOf(time.Time{})

// jsonSchema describes t as JSON Schema, following encoding/json's rules
// for field names and omitempty.
func jsonSchema(t reflect.Type, depth int) map[string]any {
	if depth > 6 {
		return map[string]any{}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": jsonSchema(t.Elem(), depth+1)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": jsonSchema(t.Elem(), depth+1)}
	case reflect.Struct:
		props := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
			if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
				for k, v := range jsonSchema(f.Type, depth+1)["properties"].(map[string]any) {
					props[k] = v
				}
				continue
			}
			props[name] = jsonSchema(f.Type, depth+1)
		}
		return map[string]any{"type": "object", "properties": props}
	}
	return map[string]any{}
}
