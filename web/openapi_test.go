package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/prefs"
	"github.com/tianyan/vms/store"
	"github.com/tianyan/vms/streaming"
)

// testServer builds the router over a real store with every optional part
// present, so every route is registered.
func testServer(t *testing.T) *Server {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newFullServer(t, db)
}

func TestOpenAPIDescribesExactlyTheRegisteredRoutes(t *testing.T) {
	s := testServer(t)
	var registered []string
	for _, r := range s.Routes() {
		if strings.HasPrefix(r.Path, "/api/v1/") {
			registered = append(registered, r.Method+" "+r.Path)
		}
	}
	var documented []string
	for _, op := range apiOps {
		if strings.HasPrefix(op.Path, apiPrefix) {
			documented = append(documented, op.Method+" "+op.Path)
		}
	}
	slices.Sort(registered)
	slices.Sort(documented)
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in the OpenAPI description", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("OpenAPI describes %s, which no handler serves", d)
		}
	}
	if dup := slices.Compact(slices.Clone(documented)); len(dup) != len(documented) {
		t.Error("a route is documented twice")
	}

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("openapi.json: %d", rec.Code)
	}
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	n := 0
	for p, ops := range doc.Paths {
		if strings.Contains(p, ":") {
			t.Errorf("path %s keeps a gin parameter", p)
		}
		n += len(ops)
	}
	if n != len(documented) {
		t.Fatalf("served %d operations, table has %d under %s", n, len(documented), apiPrefix)
	}
	// Every schema reference resolves, and the Point schema carries the
	// fields clients send.
	raw := rec.Body.String()
	for name := range apiSchemas {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("schema %s missing", name)
		}
	}
	for _, ref := range strings.Split(raw, `"$ref":"#/components/schemas/`)[1:] {
		name, _, _ := strings.Cut(ref, `"`)
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("dangling $ref %s", name)
		}
	}
	props, _ := doc.Components.Schemas["Point"]["properties"].(map[string]any)
	for _, f := range []string{"id", "name", "kind", "category", "region", "level", "main", "sub", "status"} {
		if _, ok := props[f]; !ok {
			t.Errorf("Point schema lacks %q", f)
		}
	}
}

func TestOpenAPIPointQueryParametersAreTheOnesTheParserAccepts(t *testing.T) {
	for _, op := range apiOps {
		if op.Path != "/api/v1/points" || op.Method != http.MethodGet {
			continue
		}
		for _, q := range op.Query {
			v := url.Values{q: {""}}
			if _, err := catalog.ParseQuery(v); err != nil && strings.Contains(err.Error(), "unknown query parameter") {
				t.Errorf("documented parameter %q is refused by the parser", q)
			}
		}
		return
	}
	t.Fatal("GET /api/v1/points is not documented")
}

// newFullServer builds the server over db with every part present; tune,
// if given, adjusts the dependencies first.
func newFullServer(t *testing.T, db *store.DB, tune ...func(*Deps)) *Server {
	t.Helper()
	cat, err := catalog.New(db)
	if err != nil {
		t.Fatal(err)
	}
	acc := accounts.New(db, accounts.Options{Argon: accounts.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1}})
	perm, err := permissions.New(permissions.NewGrants(db), cat)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hub := streaming.NewHub(streaming.HubConfig{})
	t.Cleanup(hub.Close)
	rtc, err := streaming.NewWebRTC(streaming.WebRTCConfig{ListenAddr: "127.0.0.1:0", Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rtc.Close)
	gb, err := gb28181.New(gb28181.Config{ID: "44030700002000000001", Domain: "4403070000", DB: db, Audit: log, Catalog: cat,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gb.Close() })
	d := Deps{Catalog: cat, Accounts: acc, Permissions: perm, Hub: hub, WebRTC: rtc, GB: gb, GBLive: gb28181.NewLive(gb, gb28181.LiveConfig{}),
		Metrics: prometheus.NewRegistry(), Audit: log, Store: db, Agents: agents.New(db, agents.Options{}),
		Prefs: prefs.New(db), PTZ: permissions.NewPTZArbiter(0)}
	d.GBPlatforms = gb28181.NewPlatformStore(db)
	for _, f := range tune {
		f(&d)
	}
	return New(d)
}
