package server

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A page on another port of the same host is same-site for cookies, so
// SameSite=Strict alone let its auto-submitted text/plain form create an
// admin-made user with the admin's cookie (the CSRF door).
func TestCrossSiteFormCannotActWithTheAdminsCookie(t *testing.T) {
	a := startApp(t)
	b := newUIBrowser(t, 1280, 800, false)
	b.do("open the app", 20*time.Second, chromedp.Navigate(a.HTTPURL()+"/"))
	b.login("admin", adminPassword)

	target := a.HTTPURL() + "/api/v1/users"
	payload := `{"username":"csrfuser","password":"csrf-pass-123","roles":["admin"],"display_name":"`
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><body><form method="POST" enctype="text/plain" action="%s">`+
			`<input name='%s' value='x"}'></form><script>document.forms[0].submit()</script></body>`, target, payload)
	}))
	defer attacker.Close()
	// Another tab of the same browser, as a link the admin clicked.
	ctx, cancel := chromedp.NewContext(b.ctx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(attacker.URL)); err != nil {
		t.Fatalf("open attacker page: %v", err)
	}
	// The form posts by itself; wait until its answer is the tab's page.
	var body string
	waitFor(t, 10*time.Second, "the forged form to be answered", func() bool {
		body, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " + document.body.innerText`))
		return strings.HasPrefix(body, target)
	})
	// Two locks hold this door: the text/plain body (415) and the foreign
	// origin (403, shown alone by the test below).
	if !strings.Contains(body, "bad_content_type") && !strings.Contains(body, "cross_site") {
		t.Errorf("forged form answered %q, want a refusal", body)
	}
	if res := a.admin(http.MethodGet, "/api/v1/users/csrfuser", nil); res.Status != http.StatusNotFound {
		t.Fatalf("forged form created a user: GET answered %s", res)
	}
	// The app itself, same tab and cookie, still changes things.
	ok := uiEval[float64](b, `fetch("/api/v1/users", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({username: "madehere", password: "made-here-123", roles: []})}).then(r => r.status)`)
	if ok != http.StatusCreated {
		t.Errorf("same-origin create from the app = %v, want 201", ok)
	}
}

func TestCookieRequestsNeedTheBrowsersSameOriginWord(t *testing.T) {
	a := startApp(t)
	// The session cookie from a real login.
	res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "admin", "password": adminPassword})
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: res.Header}).Cookies() {
		if c.Name == "tianyan_session" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("login set no session cookie: %v", res.Header)
	}
	host := strings.TrimPrefix(a.HTTPURL(), "http://")
	_, port, _ := net.SplitHostPort(host)
	other := "http://127.0.0.1:1" + port
	n := 0
	post := func(hdr map[string]string, bearer bool) int {
		n++
		body := fmt.Sprintf(`{"username":"u%d","password":"pass-word-%d","roles":[]}`, n, n)
		req, _ := http.NewRequest(http.MethodPost, a.HTTPURL()+"/api/v1/users", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if bearer {
			req.Header.Set("Authorization", "Bearer "+a.token)
		} else {
			req.AddCookie(cookie)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	cases := []struct {
		name   string
		hdr    map[string]string
		bearer bool
		want   int
	}{
		{"cookie, Sec-Fetch-Site same-origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": a.HTTPURL()}, false, 201},
		{"cookie, Origin of this server only", map[string]string{"Origin": a.HTTPURL()}, false, 201},
		{"cookie, Sec-Fetch-Site same-site (another port)", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": other}, false, 403},
		{"cookie, Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, false, 403},
		{"cookie, Origin of another port", map[string]string{"Origin": other}, false, 403},
		{"cookie, Origin null", map[string]string{"Origin": "null"}, false, 403},
		{"cookie, neither header", nil, false, 403},
		{"bearer, neither header", nil, true, 201},
		{"bearer, foreign Origin", map[string]string{"Origin": other}, true, 201},
	}
	for _, c := range cases {
		if got := post(c.hdr, c.bearer); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	// Reads are not state changes: a cookie GET without the headers works.
	req, _ := http.NewRequest(http.MethodGet, a.HTTPURL()+"/api/v1/me", nil)
	req.AddCookie(cookie)
	r, err := a.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("cookie GET /me = %d, want 200", r.StatusCode)
	}
}

func TestBodiesOfOtherTypesThanDocumentedAre415(t *testing.T) {
	a := startApp(t)
	for _, c := range []struct{ method, path, ctype, body string }{
		{"POST", "/api/v1/users", "text/plain", `{"username":"x1","password":"pass-word-1","roles":[]}`},
		{"POST", "/api/v1/users", "application/x-www-form-urlencoded", `username=x2`},
		{"POST", "/api/v1/users", "", `{"username":"x3","password":"pass-word-3","roles":[]}`},
		{"POST", "/api/v1/grants", "text/plain", `{}`},
		{"POST", "/api/v1/points", "multipart/form-data; boundary=x", `--x--`},
		{"POST", "/api/v1/auth/login", "text/plain", `{"username":"admin","password":"` + adminPassword + `"}`},
		{"POST", "/api/v1/points/import", "text/plain", "id,name\n"},
	} {
		res := a.do(c.method, c.path, a.token, c.ctype, c.body)
		if res.Status != http.StatusUnsupportedMediaType {
			t.Errorf("%s %s as %q = %s, want 415", c.method, c.path, c.ctype, res)
		}
	}
	if res := a.admin(http.MethodGet, "/api/v1/users/x1", nil); res.Status != http.StatusNotFound {
		t.Errorf("a text/plain body created a user: %s", res)
	}
}

func TestEveryAnswerCarriesTheBrowserHardeningHeaders(t *testing.T) {
	cfg := testConfig(t)
	a := startAppWith(t, cfg)
	for _, path := range []string{"/", "/ui/js/app.js", "/api/v1/me", "/api/v1/no-such"} {
		res := a.admin(http.MethodGet, path, nil)
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline code", path, csp)
		}
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := res.Header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
	}

	cfg = testConfig(t)
	cfg.FrameAncestors = []string{"https://ioc.example"}
	cfg.MapTiles = "http://tiles.example:8000/{z}/{x}/{y}.png"
	b := startAppWith(t, cfg)
	res := b.admin(http.MethodGet, "/", nil)
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors https://ioc.example") || res.Header.Get("X-Frame-Options") != "" {
		t.Errorf("with --frame-ancestors: CSP %q, X-Frame-Options %q", csp, res.Header.Get("X-Frame-Options"))
	}
	if !strings.Contains(csp, "img-src 'self' data: blob: http://tiles.example:8000") {
		t.Errorf("CSP %q does not allow the configured map tiles", csp)
	}
}

// The browser tests rely on the harness failing on a policy violation;
// prove it notices one.
func TestBrowserHarnessReportsContentSecurityPolicyViolations(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "script-src 'self'")
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><script>document.title="ran"</script>`)
	}))
	defer page.Close()
	b := newUIBrowser(t, 800, 600, false)
	b.do("open a page that breaks its CSP", 20*time.Second, chromedp.Navigate(page.URL))
	waitFor(t, 5*time.Second, "the violation to be reported", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.jsErrs) > 0
	})
	b.mu.Lock()
	errs := b.jsErrs
	b.jsErrs = nil // seen; do not fail the test for the violation it provoked
	b.mu.Unlock()
	if !strings.Contains(strings.Join(errs, "\n"), "Content Security Policy") {
		t.Errorf("harness errors = %q, want the CSP violation", errs)
	}
}
