package edge

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPageServesExactlyItsRouteTable holds the mux the page serves equal
// to its route table, as web's OpenAPI test holds gin's routes equal to
// apiOps: a route registered on the mux outside the table, or a table
// route the mux does not serve, fails here. Every route has a rule whose
// camera lookup fits its path.
func TestPageServesExactlyItsRouteTable(t *testing.T) {
	a := New(Config{Credentials: Credentials{Server: "http://127.0.0.1:9", AgentID: "agt-ui", Secret: "s"}, Logger: testLogger(t)})
	u := NewProvisioningUI(a, testLogger(t))
	m := u.mux()

	var table []string
	for _, r := range PageRoutes() {
		table = append(table, r.Method+" "+r.Path)
		if r.Rule.Access == AccessUnset {
			t.Errorf("%s %s has no access rule", r.Method, r.Path)
		}
		if (r.Rule.Camera == CameraInPath) != strings.Contains(r.Path, "{id}") {
			t.Errorf("%s %s: camera from %s does not fit the path", r.Method, r.Path, r.Rule.Camera)
		}
		if r.Rule.Access == AccessPublic && (r.Rule.Camera != NoCamera || r.Rule.Bound != "") {
			t.Errorf("%s %s: a public route acts on cameras", r.Method, r.Path)
		}
		if r.Rule.Bound != "" && !slices.Contains([]string{actView, actSnapshot, actManage}, r.Rule.Bound) {
			t.Errorf("%s %s: unknown action %q", r.Method, r.Path, r.Rule.Bound)
		}
		// The mux sends a request for this route to this route.
		req := httptest.NewRequest(r.Method, strings.ReplaceAll(r.Path, "{id}", "cam-1"), nil)
		if _, pattern := m.Handler(req); pattern != r.Method+" "+r.Path {
			t.Errorf("%s %s is served by %q", r.Method, r.Path, pattern)
		}
	}
	served := slices.Clone(m.patterns)
	slices.Sort(table)
	slices.Sort(served)
	if !slices.Equal(table, served) {
		t.Errorf("route table %v\nmux serves %v", table, served)
	}
	if len(slices.Compact(slices.Clone(table))) != len(table) {
		t.Error("a route is in the table twice")
	}
}

// TestPageRouteWithoutRuleServesNoOne: a route someone adds without a rule
// is refused to everyone, logged in or not, before its handler runs.
func TestPageRouteWithoutRuleServesNoOne(t *testing.T) {
	a := New(Config{Credentials: Credentials{Server: "http://127.0.0.1:9", AgentID: "agt-ui", Secret: "s"}, Logger: testLogger(t)})
	u := NewProvisioningUI(a, testLogger(t))
	ran := false
	h := u.door(pageRoute{PageRoute{Method: "GET", Path: "/api/new"}, func(http.ResponseWriter, *http.Request, *pageRequest) { ran = true }})
	u.sessions["sid"] = techSession{user: "admin", token: "tok", expires: farFuture()}
	for _, cookie := range []string{"", "sid"} {
		req := httptest.NewRequest(http.MethodGet, "/api/new", nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: techCookie, Value: cookie})
		}
		rec := httptest.NewRecorder()
		h(rec, req)
		if rec.Code != http.StatusForbidden || errorCode(rec.Body.String()) != "no_rule" || ran {
			t.Fatalf("route without a rule, cookie %q: %d %s (handler ran: %v)", cookie, rec.Code, rec.Body, ran)
		}
	}
}

func farFuture() time.Time { return time.Now().Add(time.Hour) }
