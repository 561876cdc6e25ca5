package web

import (
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// Browser hardening: what every answer tells the browser, and the checks
// that keep another site's page from acting with a logged-in user's cookie.
//
// A bearer token is never sent by a browser on its own, so only requests
// authenticated by the session cookie need the same-origin check; scripts
// and the edge agent that send Authorization are unaffected.

// contentSecurityPolicy is the CSP of the web app: no inline script, no
// plug-ins, nothing loaded from elsewhere but the configured map tiles, and
// framed only by the listed ancestors ('none' without any).
func contentSecurityPolicy(ui UIConfig, frameAncestors []string) string {
	img := "'self' data: blob:"
	if o := tileOrigin(ui.MapTileURL); o != "" {
		img += " " + o
	}
	fa := "'none'"
	if len(frameAncestors) > 0 {
		fa = strings.Join(frameAncestors, " ")
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src " + img,
		"media-src 'self' blob:",
		"connect-src 'self'",
		"worker-src 'self'",
		"manifest-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors " + fa,
	}, "; ")
}

// tileOrigin is the scheme://host[:port] of a tile template, "" if none.
// Leaflet's {s} subdomain placeholder becomes a wildcard.
func tileOrigin(tmpl string) string {
	if tmpl == "" {
		return ""
	}
	u, err := url.Parse(strings.ReplaceAll(tmpl, "{s}", "SUBDOMAIN"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + strings.ReplaceAll(u.Host, "SUBDOMAIN", "*")
}

// securityHeaders sets the hardening headers on every answer, API
// included: a JSON error rendered as HTML in some old browser must not run
// anything either.
func securityHeaders(csp string, frameable bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if !frameable {
			h.Set("X-Frame-Options", "DENY")
		}
		c.Next()
	}
}

// unsafeMethod reports whether m may change state.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// crossSite reports whether a browser says r comes from another origin:
// Sec-Fetch-Site when the browser sends it (every current one does), else
// Origin compared with the host the request was sent to. present is false
// when the request carries neither (not a browser, or a very old one).
func crossSite(r *http.Request) (cross, present bool) {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" {
		return sfs != "same-origin", true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false, false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return true, true // "null" and garbage are nobody's origin
	}
	return !strings.EqualFold(u.Host, r.Host), true
}

// refuseCrossSite answers 403 for a state-changing request made with the
// session cookie unless the browser says it comes from this server's own
// pages (Sec-Fetch-Site or Origin; a cookie request carrying neither is
// refused too). Bearer tokens are not sent by browsers on their own and
// are not checked. With login set, the caller has no credential yet: a
// login the browser says is cross-site is refused (it would log the victim
// into the attacker's account), one without the headers is let through.
func refuseCrossSite(c *gin.Context, cookieAuth, login bool) bool {
	if !unsafeMethod(c.Request.Method) || !cookieAuth && !login {
		return false
	}
	cross, present := crossSite(c.Request)
	if cross || cookieAuth && !present {
		fail(c, http.StatusForbidden, "cross_site", "cross-site request refused: send it from this server's own pages, or use a bearer token")
		return true
	}
	return false
}

// requireJSON answers 415 unless the body is declared application/json
// (parameters such as charset allowed). A form a page on another site can
// post without asking (text/plain, urlencoded, multipart) never reaches a
// JSON decoder.
func requireJSON(c *gin.Context) bool {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/json" {
		fail(c, http.StatusUnsupportedMediaType, "bad_content_type", "send the body as application/json")
		return false
	}
	return true
}

// documentedBodyTypes maps "METHOD /path" (as registered) to the media
// types its request body may have, from the route table: a schema name
// means JSON, a media type means itself (plus the route's AlsoBody).
func documentedBodyTypes(ops []apiOp) map[string][]string {
	out := make(map[string][]string, len(ops))
	for _, op := range ops {
		if op.Body == "" {
			continue
		}
		types := []string{"application/json"}
		if strings.Contains(op.Body, "/") {
			types = []string{op.Body}
		}
		out[op.Method+" "+op.Path] = append(types, op.AlsoBody...)
	}
	return out
}

// requireDocumentedBody answers 415 for a state-changing request whose
// body is not of a media type its route documents (any body at all for a
// route that documents none must be JSON, the API's only language). A
// form another site's page can post without asking (text/plain,
// urlencoded, multipart) is never read as an API body.
func requireDocumentedBody(ops []apiOp) gin.HandlerFunc {
	types := documentedBodyTypes(ops)
	return func(c *gin.Context) {
		r := c.Request
		if !unsafeMethod(r.Method) || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			c.Next()
			return
		}
		allowed, ok := types[r.Method+" "+c.FullPath()]
		if !ok {
			allowed = []string{"application/json"}
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || !slices.Contains(allowed, mt) {
			fail(c, http.StatusUnsupportedMediaType, "bad_content_type", "send the body as "+joinOr(allowed))
			return
		}
		c.Next()
	}
}
