package edge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tianyan/vms/agentlink"
)

// Access is who may pass a page route's door.
type Access int

// Page accesses. The zero value is no rule at all, and serves no one.
const (
	// AccessUnset is a route nobody wrote a rule for: refused to everyone.
	AccessUnset Access = iota
	// AccessPublic needs no login: the page's files, login, logout.
	AccessPublic
	// AccessProvisioner needs a logged-in user who, the centre says now,
	// holds a provision grant somewhere.
	AccessProvisioner
	// AccessProvisionHere needs a provisioner whose grant covers this
	// agent's region.
	AccessProvisionHere
)

// String names the access as the route table's tests print it.
func (a Access) String() string {
	switch a {
	case AccessPublic:
		return "public"
	case AccessProvisioner:
		return "provisioner"
	case AccessProvisionHere:
		return "provision-here"
	}
	return "unset"
}

// CameraFrom says how a page route finds the camera it acts on.
type CameraFrom int

// Where a route's camera comes from.
const (
	// NoCamera: the route acts on no camera.
	NoCamera CameraFrom = iota
	// CameraInPath: the {id} path segment.
	CameraInPath
	// CameraInBody: the JSON body's "id", or the camera at its "xaddr".
	CameraInBody
	// EachCamera: the route lists cameras; each is shown only to a caller
	// who may see it (a bound one: view on its point; an unbound one:
	// provision here).
	EachCamera
)

// String names where the camera comes from.
func (c CameraFrom) String() string {
	return [...]string{"none", "path", "body", "each"}[c]
}

// PageRule is a page route's rule. An unbound camera always needs
// provision within the agent's region, and is 404 to anyone else; a bound
// camera needs Bound on the point it is bound to: 404 to those who may
// not view that point, 403 to those who may view but not do Bound.
type PageRule struct {
	Access Access
	Camera CameraFrom
	// Bound is the action (permissions' name) needed on a bound camera's
	// point; "" refuses bound cameras: 409 naming the point to those who
	// may view it, 404 to the rest.
	Bound string
}

// PageRoute is one route of the provisioning page and its rule.
type PageRoute struct {
	Method, Path string
	Rule         PageRule
}

// Permissions' action names, as the centre sends them in PageAccess.
const (
	actView     = "view"
	actSnapshot = "snapshot"
	actManage   = "manage"
)

// pageHandler serves a route that passed its door; pr is nil on public
// routes.
type pageHandler func(w http.ResponseWriter, r *http.Request, pr *pageRequest)

type pageRoute struct {
	PageRoute
	handle pageHandler
}

// routes is the page's route table: every route the page serves, with the
// rule its door applies before the handler runs. Handler builds its mux
// from this table alone.
func (u *ProvisioningUI) routes() []pageRoute {
	r := func(method, path string, rule PageRule, h pageHandler) pageRoute {
		return pageRoute{PageRoute{Method: method, Path: path, Rule: rule}, h}
	}
	public := PageRule{Access: AccessPublic}
	provisioner := PageRule{Access: AccessProvisioner}
	return []pageRoute{
		r("GET", "/", public, u.files),
		r("POST", "/api/login", public, u.login),
		r("POST", "/api/logout", public, u.logout),
		r("GET", "/api/status", provisioner, u.status),
		r("GET", "/api/cameras", PageRule{Access: AccessProvisioner, Camera: EachCamera}, u.cameras),
		r("POST", "/api/discover", PageRule{Access: AccessProvisionHere, Camera: EachCamera}, u.discover),
		// Probing stores the camera's credentials anew: on a bound camera
		// that is managing its point.
		r("POST", "/api/cameras/probe", PageRule{Access: AccessProvisioner, Camera: CameraInBody, Bound: actManage}, u.probe),
		r("GET", "/api/cameras/{id}/snapshot.jpg", PageRule{Access: AccessProvisioner, Camera: CameraInPath, Bound: actSnapshot}, u.snapshot),
		// A camera binds to at most one point.
		r("POST", "/api/cameras/{id}/point", PageRule{Access: AccessProvisioner, Camera: CameraInPath}, u.createPoint),
		r("GET", "/api/regions", provisioner, u.proxy("/api/v1/regions")),
		r("GET", "/api/categories", provisioner, u.proxy("/api/v1/categories")),
	}
}

// PageRoutes lists the provisioning page's routes and their rules (for
// tests and documentation; the page serves exactly these).
func PageRoutes() []PageRoute {
	var out []PageRoute
	for _, r := range (&ProvisioningUI{}).routes() {
		out = append(out, r.PageRoute)
	}
	return out
}

// recordingMux is a ServeMux that remembers every pattern registered on
// it, so a test can hold the mux equal to the route table.
type recordingMux struct {
	*http.ServeMux
	patterns []string
}

func (m *recordingMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *recordingMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// mux builds the page's mux from the route table.
func (u *ProvisioningUI) mux() *recordingMux {
	m := &recordingMux{ServeMux: http.NewServeMux()}
	for _, rt := range u.routes() {
		m.Handle(rt.Method+" "+rt.Path, u.door(rt))
	}
	return m
}

// pageRequest is what a route's door established before its handler runs.
type pageRequest struct {
	sessionID string
	session   techSession
	access    agentlink.PageAccess
	// For CameraInPath and CameraInBody: the camera's ID, its record (known
	// is false for a camera the book does not hold, named by address), and
	// its binding when a point owns it.
	cameraID string
	camera   Camera
	known    bool
	bound    *agentlink.BoundCamera
	// body is the request body, read once by a CameraInBody door.
	body []byte
}

// boundOf returns the binding of a camera, nil when no point owns it.
func (pr *pageRequest) boundOf(cameraID string) *agentlink.BoundCamera {
	for i := range pr.access.Bound {
		if pr.access.Bound[i].Camera == cameraID {
			return &pr.access.Bound[i]
		}
	}
	return nil
}

func holds(b *agentlink.BoundCamera, action string) bool {
	return slices.Contains(b.Actions, action)
}

// visible reports whether the caller may see a camera in a list, with its
// binding.
func (pr *pageRequest) visible(cameraID string) (*agentlink.BoundCamera, bool) {
	if b := pr.boundOf(cameraID); b != nil {
		return b, holds(b, actView)
	}
	return nil, pr.access.ProvisionHere
}

// maxPageBody bounds request bodies on the page.
const maxPageBody = 64 << 10

// door applies a route's rule, then runs its handler. Every decision is
// the centre's, asked afresh with the technician's token on each request:
// a grant revoked or a session ended at the centre closes the page at once.
func (u *ProvisioningUI) door(rt pageRoute) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch rt.Rule.Access {
		case AccessPublic:
			rt.handle(w, r, nil)
			return
		case AccessProvisioner, AccessProvisionHere:
		default:
			writeErr(w, http.StatusForbidden, "no_rule", "this route has no access rule")
			return
		}
		id, s, ok := u.session(r)
		if !ok {
			writeErr(w, http.StatusUnauthorized, "unauthenticated", "log in with your central account")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		access, err := FetchPageAccess(ctx, u.hc, u.a.cfg.Credentials, s.token)
		cancel()
		if err != nil {
			var ce *CentreError
			if errors.As(err, &ce) && ce.Status == http.StatusUnauthorized && ce.Code == "unauthenticated" {
				// The central session ended: so does the page's.
				u.dropSession(id)
				writeErr(w, http.StatusUnauthorized, "unauthenticated", "your central session ended; log in again")
				return
			}
			u.centreFailed(w, err)
			return
		}
		if !access.ProvisionSomewhere {
			writeErr(w, http.StatusForbidden, "not_provisioner", "this page is for technicians: your account holds no provision grant")
			return
		}
		if rt.Rule.Access == AccessProvisionHere && !access.ProvisionHere {
			writeErr(w, http.StatusForbidden, "forbidden", "your provision grant does not cover this agent's region")
			return
		}
		pr := &pageRequest{sessionID: id, session: s, access: access}
		switch rt.Rule.Camera {
		case CameraInPath:
			if !u.decideCamera(w, pr, rt.Rule, r.PathValue("id"), false) {
				return
			}
		case CameraInBody:
			raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPageBody))
			if err != nil {
				writeErr(w, http.StatusBadRequest, "bad_json", "request body unreadable or too large")
				return
			}
			var named struct {
				ID    string `json:"id"`
				XAddr string `json:"xaddr"`
			}
			if err := json.Unmarshal(raw, &named); err != nil {
				writeErr(w, http.StatusBadRequest, "bad_json", "malformed JSON: "+err.Error())
				return
			}
			// A camera named by ID must be one the book holds; one named
			// by address alone is the book's camera at that address, or a
			// new one with the ID Provision will give it.
			cid, byAddress := named.ID, false
			if cid == "" && named.XAddr != "" {
				cid, byAddress = u.cameraAt(named.XAddr), true
			}
			if cid == "" {
				writeErr(w, http.StatusUnprocessableEntity, "invalid", "xaddr or a known camera id is required")
				return
			}
			pr.body = raw
			if !u.decideCamera(w, pr, rt.Rule, cid, byAddress) {
				return
			}
		}
		rt.handle(w, r, pr)
	}
}

// decideCamera applies a rule to one camera; it answers and returns false
// when the caller may not act on it. byAddress allows a camera the book
// does not hold yet (probing a new address).
func (u *ProvisioningUI) decideCamera(w http.ResponseWriter, pr *pageRequest, rule PageRule, id string, byAddress bool) bool {
	pr.cameraID = id
	pr.camera, pr.known = u.a.cfg.Cameras.Get(id)
	if b := pr.boundOf(id); b != nil {
		seen := holds(b, actView)
		switch {
		case !seen:
			writeErr(w, http.StatusNotFound, "not_found", "camera not found")
		case rule.Bound == "":
			writeErr(w, http.StatusConflict, "registered", "this camera is already registered as point "+b.Point+" ("+b.Name+")")
		case !holds(b, rule.Bound):
			writeErr(w, http.StatusForbidden, "forbidden", "not allowed on point "+b.Point)
		default:
			pr.bound = b
			return true
		}
		return false
	}
	if !pr.access.ProvisionHere || (!pr.known && !byAddress) {
		writeErr(w, http.StatusNotFound, "not_found", "camera not found")
		return false
	}
	return true
}

// cameraAt is the ID of the book's camera whose service is at xaddr's
// host and port, so that a camera the book knows (perhaps bound to a
// point) cannot come back under a second ID by being named by its
// address; for an address the book does not know, the ID Provision gives.
func (u *ProvisioningUI) cameraAt(xaddr string) string {
	want := serviceHost(xaddr)
	if want != "" {
		for _, c := range u.a.cfg.Cameras.List() {
			if serviceHost(c.XAddr) == want {
				return c.ID
			}
		}
	}
	return CameraID("", xaddr)
}

// serviceHost is an ONVIF service URL's host:port, lower case, with the
// scheme's default port made explicit ("" when it is no URL).
func serviceHost(raw string) string {
	pu, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || pu.Host == "" {
		return ""
	}
	port := pu.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(pu.Scheme)]
	}
	return strings.ToLower(net.JoinHostPort(pu.Hostname(), port))
}

// centreFailed answers a failed call to the centre: its own error as it
// said it, or 502 when it could not be reached.
func (u *ProvisioningUI) centreFailed(w http.ResponseWriter, err error) {
	var ce *CentreError
	if errors.As(err, &ce) {
		e := map[string]string{"code": ce.Code, "message": ce.Message}
		if ce.Field != "" {
			e["field"] = ce.Field
		}
		if ce.RetryAfter != "" {
			w.Header().Set("Retry-After", ce.RetryAfter)
		}
		writeJSON(w, ce.Status, map[string]any{"error": e})
		return
	}
	u.log.Warn("centre unreachable from the provisioning page", "err", err)
	writeErr(w, http.StatusBadGateway, "centre_unreachable", "cannot reach the central server: "+err.Error())
}
