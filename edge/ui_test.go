package edge

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// uiRoutes are the page's routes that need a logged-in technician, from
// the route table itself, with a camera ID in the path.
func uiRoutes() []struct{ method, path string } {
	var out []struct{ method, path string }
	for _, r := range PageRoutes() {
		if r.Rule.Access != AccessPublic {
			out = append(out, struct{ method, path string }{r.Method, strings.ReplaceAll(r.Path, "{id}", "cam-1")})
		}
	}
	return out
}

// startUI serves the provisioning page of an agent whose centre is at
// server.
func startUI(t *testing.T, server string) (*httptest.Server, *http.Client) {
	t.Helper()
	book := NewCameraBook("", testLogger(t))
	// Were a route to run unauthenticated, this discovery would run; it
	// looks on loopback only.
	book.SetDiscovery(DiscoveryConfig{MulticastIP: "127.0.0.1", Timeout: 100 * time.Millisecond})
	a := New(Config{Credentials: Credentials{Server: server, AgentID: "agt-ui", Secret: "agent-secret"}, Cameras: book, Logger: testLogger(t)})
	srv := httptest.NewServer(NewProvisioningUI(a, testLogger(t)).Handler())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return srv, &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

func call(t *testing.T, hc *http.Client, method, url, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res, string(raw)
}

func errorCode(body string) string {
	var e struct{ Error struct{ Code string } }
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}

func TestProvisioningPageAPIRefusesVisitorsWhoAreNotLoggedIn(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	srv, hc := startUI(t, gone.URL)

	for _, cookie := range []string{"", "forged-session-id"} {
		for _, r := range uiRoutes() {
			req, _ := http.NewRequest(r.method, srv.URL+r.path, strings.NewReader(`{}`))
			if cookie != "" {
				req.AddCookie(&http.Cookie{Name: techCookie, Value: cookie})
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized || errorCode(string(raw)) != "unauthenticated" {
				t.Errorf("%s %s with cookie %q: %d %s", r.method, r.path, cookie, res.StatusCode, raw)
			}
		}
	}

	// The page itself loads, framed by no one.
	res, body := call(t, hc, http.MethodGet, srv.URL+"/", "")
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<") {
		t.Errorf("page: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if res.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("security headers %v", res.Header)
	}

	// Logging in needs the centre; when it is unreachable, no session is
	// made.
	res, body = call(t, hc, http.MethodPost, srv.URL+"/api/login", `{"username":"tech","password":"pw"}`)
	if res.StatusCode != http.StatusBadGateway || errorCode(body) != "centre_unreachable" || len(res.Cookies()) != 0 {
		t.Errorf("login with the centre away: %d %s, cookies %v", res.StatusCode, body, res.Cookies())
	}
	for _, body := range []string{`{"username":"tech"`, `{"user":"tech"}`, `[]`} {
		if res, out := call(t, hc, http.MethodPost, srv.URL+"/api/login", body); res.StatusCode != http.StatusBadRequest || errorCode(out) != "bad_json" {
			t.Errorf("login body %s: %d %s", body, res.StatusCode, out)
		}
	}
}

// standInCentre answers the centre's login, logout and page-access
// endpoints the way the real one does (server/agent_page_test.go runs the
// real centre; edge must not import it). It accepts tech/tech-pass for an
// agent agt-ui/agent-secret that names the browser's address, and
// viewer/viewer-pass, who holds no provision grant.
type standInCentre struct {
	*httptest.Server
	mu      sync.Mutex
	tokens  map[string]string // live token → user
	clients []string          // client addresses the agent named at login
}

func newStandInCentre(t *testing.T) *standInCentre {
	c := &standInCentre{tokens: map[string]string{}}
	agentOK := func(r *http.Request) bool {
		id, secret, ok := r.BasicAuth()
		return ok && id == "agt-ui" && secret == "agent-secret"
	}
	fail := func(w http.ResponseWriter, status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"code":"` + code + `","message":"` + code + `"}}`))
	}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/auth/login":
			var req struct{ Username, Password string }
			if json.NewDecoder(r.Body).Decode(&req) != nil {
				fail(w, http.StatusBadRequest, "bad_json")
				return
			}
			if addr := r.Header.Get("X-Tianyan-Client-Address"); addr != "" {
				if !agentOK(r) {
					fail(w, http.StatusUnauthorized, "agent_refused")
					return
				}
				c.clients = append(c.clients, addr)
			}
			pw := map[string]string{"tech": "tech-pass", "viewer": "viewer-pass"}[req.Username]
			if pw == "" || req.Password != pw {
				fail(w, http.StatusUnauthorized, "bad_credentials")
				return
			}
			tok := req.Username + "-token-" + strconv.Itoa(len(c.tokens))
			c.tokens[tok] = req.Username
			_, _ = w.Write([]byte(`{"token":"` + tok + `"}`))
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/auth/logout":
			delete(c.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/agents/page-access":
			if !agentOK(r) {
				fail(w, http.StatusUnauthorized, "agent_refused")
				return
			}
			user := c.tokens[r.Header.Get("X-Tianyan-User-Token")]
			if user == "" {
				fail(w, http.StatusUnauthorized, "unauthenticated")
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"user": user, "region": "440307001",
				"provision_somewhere": user == "tech", "provision_here": user == "tech", "bound": []any{}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(c.Close)
	return c
}

// TestProvisioningPageSessionLastsUntilLogout logs in through a stand-in
// for the centre: the agent signs the login with its own credentials and
// names the browser's address; the session opens the API, a wrong
// password or an account without a provision grant opens nothing, and
// logout closes the session on the page and at the centre.
func TestProvisioningPageSessionLastsUntilLogout(t *testing.T) {
	centre := newStandInCentre(t)
	srv, hc := startUI(t, centre.URL)

	res, body := call(t, hc, http.MethodPost, srv.URL+"/api/login", `{"username":"tech","password":"nope"}`)
	if res.StatusCode != http.StatusUnauthorized || errorCode(body) != "bad_credentials" || len(res.Cookies()) != 0 {
		t.Fatalf("wrong password: %d %s", res.StatusCode, body)
	}
	res, body = call(t, hc, http.MethodPost, srv.URL+"/api/login", `{"username":"viewer","password":"viewer-pass"}`)
	if res.StatusCode != http.StatusForbidden || errorCode(body) != "not_provisioner" || len(res.Cookies()) != 0 {
		t.Fatalf("an account without provision: %d %s", res.StatusCode, body)
	}
	centre.mu.Lock()
	if len(centre.tokens) != 0 {
		t.Errorf("the refused account's central session lives on: %v", centre.tokens)
	}
	if len(centre.clients) != 2 || centre.clients[0] != "127.0.0.1" {
		t.Errorf("client addresses named at the centre: %v, want the browser's 127.0.0.1 twice", centre.clients)
	}
	centre.mu.Unlock()
	res, body = call(t, hc, http.MethodPost, srv.URL+"/api/login", `{"username":"tech","password":"tech-pass"}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == techCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || strings.Contains(session.Value, "tech-token") {
		t.Fatalf("session cookie %+v", session)
	}
	res, body = call(t, hc, http.MethodGet, srv.URL+"/api/status", "")
	var st struct {
		User, Agent string
		Online      bool
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.User != "tech" || st.Agent != "agt-ui" || st.Online {
		t.Fatalf("status: %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, "agent-secret") {
		t.Errorf("status shows the agent's secret: %s", body)
	}
	if res, body := call(t, hc, http.MethodGet, srv.URL+"/api/cameras", ""); res.StatusCode != http.StatusOK || !strings.Contains(body, `"items":[]`) {
		t.Errorf("cameras: %d %s", res.StatusCode, body)
	}

	if res, _ := call(t, hc, http.MethodPost, srv.URL+"/api/logout", ""); res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	centre.mu.Lock()
	if len(centre.tokens) != 0 {
		t.Errorf("the central session outlived the page's logout: %v", centre.tokens)
	}
	centre.mu.Unlock()
	// The old session id is dead even if a client kept it.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/status", nil)
	req.AddCookie(&http.Cookie{Name: techCookie, Value: session.Value})
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("status after logout: %d", res.StatusCode)
	}
}
