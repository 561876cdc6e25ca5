package web

import (
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/prefs"
	"github.com/tianyan/vms/streaming"
)

// apiSchemas are the named bodies, described from the Go types themselves.
var apiSchemas = map[string]any{
	"Point":       catalog.Point{},
	"PointList":   catalog.Result{},
	"Facets":      catalog.Facets{},
	"Locations":   catalog.Locations{},
	"Region":      catalog.Region{},
	"Grant":       permissions.Grant{},
	"User":        accounts.User{},
	"Me":          meResponse{},
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
	"AgentPatch":     agents.AgentPatch{},
	"PageAccess":     agentlink.PageAccess{},
	"Roles":          rolesRequest{},
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
	"AgentCreated": struct {
		Agent          agents.Agent `json:"agent"`
		EnrollmentCode string       `json:"enrollment_code"`
		Expires        time.Time    `json:"expires"`
	}{},
	"GBPlatformCreate": platformRequest{},
	"GBPlatformPatch":  gb28181.PlatformPatch{},
	"GBPlatform":       platformView{},
	"Enroll":           agentlink.EnrollRequest{},
	"Enrolled":         agentlink.EnrollResponse{},
	"PTZ":              agentlink.PTZRequest{},
	"GBDevice":         gbDeviceView{},
	"GBDeviceCreate":   gbDeviceRequest{},
	"GBDevicePatch":    gb28181.DevicePatch{},
	"GBCatalogResult":  gb28181.CatalogResult{},
	"GBRule":           gbRuleRequest{},
	"GBDeviceInfo":     gbDeviceInfo{},
	"GBDeviceStatus":   gbDeviceStatus{},
	"GrantList": struct {
		Items []permissions.Grant `json:"items"`
	}{},
}

// openAPIDoc is the description of the route table, built once per
// process. It is set in init: the table names the handler that serves it,
// so a variable initialiser naming the table would be a cycle.
var openAPIDoc func() map[string]any

func init() {
	openAPIDoc = sync.OnceValue(func() map[string]any { return buildOpenAPI(apiOps) })
}

// apiPrefix is where the JSON API lives; the description covers it only.
const apiPrefix = "/api/v1/"

var ginParam = regexp.MustCompile(`:([a-zA-Z_]+)`)

// openAPIPath turns "/points/:id" into "/points/{id}".
func openAPIPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

func buildOpenAPI(ops []apiOp) map[string]any {
	schemas := map[string]any{}
	for name, v := range apiSchemas {
		schemas[name] = jsonSchema(reflect.TypeOf(v), 0)
	}
	paths := map[string]map[string]any{}
	for _, op := range ops {
		if !strings.HasPrefix(op.Path, apiPrefix) {
			continue // the browser app and /metrics are not the API
		}
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
		switch r := op.Rule; {
		case r.Who == whoAgent:
			responses["401"] = map[string]any{"description": "Unknown, used or expired enrollment code, or bad agent credentials", "content": errBody}
		case r.needsLogin():
			responses["401"] = map[string]any{"description": "Not logged in", "content": errBody}
		}
		switch r := op.Rule; {
		case r.Who == whoSystem:
			responses["403"] = map[string]any{"description": "Needs the system action " + string(r.System), "content": errBody}
		case r.Who == whoPoint && r.Find == findPath:
			responses["403"] = map[string]any{"description": "The caller may view the point but not do this", "content": errBody}
			responses["404"] = map[string]any{"description": "No such point, or the caller may not view it", "content": errBody}
		case r.Who == whoPoint && r.Find == findBody:
			responses["403"] = map[string]any{"description": "Outside the caller's grants", "content": errBody}
		}
		o := map[string]any{"summary": op.Summary, "tags": []string{op.Tag}, "responses": responses,
			"x-tianyan-rule": op.Rule.String(),
			"operationId":    strings.ToLower(op.Method) + strings.NewReplacer("/api/v1", "", "/", "_", ":", "", ".", "_", "-", "_").Replace(op.Path)}
		if len(params) > 0 {
			o["parameters"] = params
		}
		if op.Body != "" {
			o["requestBody"] = map[string]any{"required": true, "content": content(op.Body)}
		}
		if !op.Rule.needsLogin() {
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
