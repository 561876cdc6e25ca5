package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/cameranet"
)

//go:embed ui
var uiFiles embed.FS

// techSessionTTL is how long a technician stays logged in on the page.
const techSessionTTL = 8 * time.Hour

// ProvisioningUI is the technician's phone-sized page on the agent: log in
// with the central account, see discovered cameras, enter credentials,
// preview a snapshot, pick main/sub, name, category, region and location,
// and register the camera as a point.
//
// The agent holds no grants: every route declares its rule in the route
// table (page_routes.go) and its door asks the centre, with the
// technician's token, what they may do here (see agentlink.PageAccess).
type ProvisioningUI struct {
	a        *Agent
	log      *slog.Logger
	hc       *http.Client
	throttle *accounts.Throttle

	mu       sync.Mutex
	sessions map[string]techSession
}

type techSession struct {
	user, token string
	expires     time.Time
}

// DefaultPageThrottle limits failed logins on the page per browser and
// username, and per browser: below the centre's own per-user (10) and
// per-address (30) limits, so one browser on the page can never trip a
// lock at the centre that would keep the real technician out.
func DefaultPageThrottle() accounts.ThrottleConfig {
	return accounts.ThrottleConfig{
		PerUser:   accounts.ThrottleLimit{Failures: 5, Window: 15 * time.Minute, Lockout: 15 * time.Minute},
		PerIP:     accounts.ThrottleLimit{Failures: 20, Window: 15 * time.Minute, Lockout: 15 * time.Minute},
		SlowAfter: 3,
		SlowBase:  time.Second,
		SlowMax:   30 * time.Second,
		MaxKeys:   10_000,
	}
}

// NewProvisioningUI returns the page's handler set, throttling logins with
// DefaultPageThrottle.
func NewProvisioningUI(a *Agent, log *slog.Logger) *ProvisioningUI {
	return &ProvisioningUI{a: a, log: log, hc: &http.Client{Timeout: 15 * time.Second, Transport: a.cfg.HTTPClient.Transport},
		throttle: accounts.NewThrottle(DefaultPageThrottle()), sessions: map[string]techSession{}}
}

// SetLoginThrottle replaces the page's login throttle (before serving).
func (u *ProvisioningUI) SetLoginThrottle(cfg accounts.ThrottleConfig) {
	u.throttle = accounts.NewThrottle(cfg)
}

const techCookie = "edge_tech"

// Handler serves the page and its small JSON API, from the route table.
func (u *ProvisioningUI) Handler() http.Handler {
	return securityHeaders(u.mux())
}

// pageFiles serves the embedded page.
var pageFiles = func() http.Handler {
	sub, _ := fs.Sub(uiFiles, "ui")
	return http.FileServerFS(sub)
}()

// files serves the page itself.
func (u *ProvisioningUI) files(w http.ResponseWriter, r *http.Request, _ *pageRequest) {
	pageFiles.ServeHTTP(w, r)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPageBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "bad_json", "malformed JSON: "+err.Error())
		return false
	}
	return true
}

// decodeStrict is readJSON over a body a door has already read.
func decodeStrict(w http.ResponseWriter, raw []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "bad_json", "malformed JSON: "+err.Error())
		return false
	}
	return true
}

// clientAddr is the browser's address as the page sees it: the TCP peer.
// The page is reached directly on the agent's LAN; no forwarding header
// is believed.
func clientAddr(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ap.Addr().Unmap().WithZone("").String()
}

// retryAfter renders a wait as whole seconds, rounded up.
func retryAfter(wait time.Duration) string {
	return strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)
}

func (u *ProvisioningUI) login(w http.ResponseWriter, r *http.Request, _ *pageRequest) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	ip := clientAddr(r)
	// Keyed by browser and username, and by browser: one browser's
	// failures never slow another's logins on this page.
	key := ip + " " + req.Username
	if wait, locked := u.throttle.Check(key, ip, time.Now()); wait > 0 {
		u.log.Info("technician login throttled", "user", req.Username, "client", ip, "locked", locked)
		w.Header().Set("Retry-After", retryAfter(wait))
		writeErr(w, http.StatusTooManyRequests, "too_many_attempts", "too many failed logins; try again later")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	creds := u.a.cfg.Credentials
	token, err := LoginFor(ctx, u.hc, creds, req.Username, req.Password, ip)
	if err != nil {
		var ce *CentreError
		if errors.As(err, &ce) && ce.Status == http.StatusUnauthorized && ce.Code == "bad_credentials" {
			if u.throttle.Failure(key, ip, time.Now()) {
				u.log.Warn("technician login locked out on this page", "user", req.Username, "client", ip)
			}
		}
		u.centreFailed(w, err)
		return
	}
	access, err := FetchPageAccess(ctx, u.hc, creds, token)
	if err != nil || !access.ProvisionSomewhere {
		// The page is for technicians only: the central session it just
		// opened ends at once.
		if lerr := logoutAtCentre(ctx, u.hc, creds, token); lerr != nil {
			u.log.Warn("central session not ended", "user", req.Username, "err", lerr)
		}
		if err != nil {
			u.centreFailed(w, err)
			return
		}
		u.log.Info("technician refused: no provision grant", "user", req.Username, "client", ip)
		writeErr(w, http.StatusForbidden, "not_provisioner", "this page is for technicians: your account holds no provision grant")
		return
	}
	u.throttle.Success(key, ip)
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	u.mu.Lock()
	now := time.Now()
	for k, s := range u.sessions {
		if now.After(s.expires) {
			delete(u.sessions, k)
		}
	}
	u.sessions[id] = techSession{user: access.User, token: token, expires: now.Add(techSessionTTL)}
	u.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: techCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Expires: now.Add(techSessionTTL), Secure: r.TLS != nil})
	u.log.Info("technician logged in", "user", access.User, "client", ip)
	writeJSON(w, http.StatusOK, map[string]string{"user": access.User})
}

func (u *ProvisioningUI) logout(w http.ResponseWriter, r *http.Request, _ *pageRequest) {
	if ck, err := r.Cookie(techCookie); err == nil {
		if id, s, ok := u.session(r); ok && id == ck.Value {
			u.dropSession(id)
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			if err := logoutAtCentre(ctx, u.hc, u.a.cfg.Credentials, s.token); err != nil {
				u.log.Warn("central session not ended", "user", s.user, "err", err)
			}
			cancel()
		}
	}
	http.SetCookie(w, &http.Cookie{Name: techCookie, Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// session finds the request's page session.
func (u *ProvisioningUI) session(r *http.Request) (string, techSession, bool) {
	ck, err := r.Cookie(techCookie)
	if err != nil {
		return "", techSession{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var id string
	var s techSession
	found := false
	for k, v := range u.sessions {
		if subtle.ConstantTimeCompare([]byte(k), []byte(ck.Value)) == 1 {
			id, s, found = k, v, true
		}
	}
	if !found || time.Now().After(s.expires) {
		return "", techSession{}, false
	}
	return id, s, true
}

func (u *ProvisioningUI) dropSession(id string) {
	u.mu.Lock()
	delete(u.sessions, id)
	u.mu.Unlock()
}

func (u *ProvisioningUI) status(w http.ResponseWriter, _ *http.Request, pr *pageRequest) {
	// Relays name points: only those the technician may view.
	relays := []agentlink.RelayState{}
	for _, rs := range u.a.Relays() {
		for _, b := range pr.access.Bound {
			if b.Point == rs.Point && holds(&b, actView) {
				relays = append(relays, rs)
				break
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": pr.access.User, "agent": u.a.cfg.Credentials.AgentID,
		"server": u.a.cfg.Credentials.Server, "online": u.a.Online(), "relays": relays,
		"region": pr.access.Region, "provision_here": pr.access.ProvisionHere})
}

// PageCamera is a camera as the page lists it: the book's record without
// secrets, and the point it is registered as, if any.
type PageCamera struct {
	Camera
	// Point is set when the camera is already registered.
	Point *PagePoint `json:"point,omitempty"`
}

// PagePoint is the point a listed camera is bound to, and what the
// technician may do on it.
type PagePoint struct {
	ID      string   `json:"id"`
	Name    string   `json:"name,omitempty"`
	Actions []string `json:"actions"`
}

// visibleCameras is the book as this technician may see it.
func (u *ProvisioningUI) visibleCameras(pr *pageRequest) []PageCamera {
	out := []PageCamera{}
	for _, c := range u.a.cfg.Cameras.List() {
		b, ok := pr.visible(c.ID)
		if !ok {
			continue
		}
		pc := PageCamera{Camera: pageSafe(c)}
		if b != nil {
			pc.Point = &PagePoint{ID: b.Point, Name: b.Name, Actions: b.Actions}
		}
		out = append(out, pc)
	}
	return out
}

// pageSafe is a camera record fit for the page: no password, stream URIs
// without credentials.
func pageSafe(c Camera) Camera {
	if c.Password != "" {
		c.Password = "***"
	}
	ps := make([]agentlink.Profile, len(c.Profiles))
	for i, p := range c.Profiles {
		p.StreamURI = redact(p.StreamURI)
		ps[i] = p
	}
	c.Profiles = ps
	return c
}

func (u *ProvisioningUI) cameras(w http.ResponseWriter, _ *http.Request, pr *pageRequest) {
	writeJSON(w, http.StatusOK, map[string]any{"items": u.visibleCameras(pr)})
}

func (u *ProvisioningUI) discover(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	ctx, cancel := context.WithTimeout(r.Context(), 45*time.Second)
	defer cancel()
	if err := u.a.cfg.Cameras.Rediscover(ctx); err != nil {
		writeErr(w, http.StatusBadGateway, "discovery_failed", err.Error())
		return
	}
	u.a.SendInventory()
	writeJSON(w, http.StatusOK, map[string]any{"items": u.visibleCameras(pr)})
}

func (u *ProvisioningUI) probe(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	var req struct {
		ID       string `json:"id"`
		XAddr    string `json:"xaddr"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !decodeStrict(w, pr.body, &req) {
		return
	}
	if req.XAddr == "" && pr.known {
		req.XAddr = pr.camera.XAddr
	}
	if req.XAddr == "" {
		writeErr(w, http.StatusUnprocessableEntity, "invalid", "xaddr or a known camera id is required")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	// The ID the door decided on, whatever else the body says.
	cam, err := u.a.cfg.Cameras.Provision(ctx, pr.cameraID, req.XAddr, req.Username, req.Password)
	if errors.Is(err, cameranet.ErrRefused) {
		// The address is outside this agent's camera networks: the
		// technician's input is refused, no camera failed.
		writeErr(w, http.StatusUnprocessableEntity, "camera_network", err.Error())
		return
	}
	if err != nil {
		writeErr(w, http.StatusBadGateway, "camera_error", err.Error())
		return
	}
	u.a.SendInventory()
	pc := PageCamera{Camera: pageSafe(cam)}
	if pr.bound != nil {
		pc.Point = &PagePoint{ID: pr.bound.Point, Name: pr.bound.Name, Actions: pr.bound.Actions}
	}
	writeJSON(w, http.StatusOK, pc)
}

func (u *ProvisioningUI) snapshot(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	ctx, cancel := context.WithTimeout(r.Context(), 12*time.Second)
	defer cancel()
	var data []byte
	var ct string
	var err error
	if pr.bound != nil {
		// A registered camera is the point's: its snapshot comes through
		// the centre's door for it, decided and audited there.
		data, ct, err = pointSnapshot(ctx, u.hc, u.a.cfg.Credentials, pr.session.token, pr.bound.Point)
		if err != nil {
			u.centreFailed(w, err)
			return
		}
	} else if data, ct, err = u.a.cfg.Cameras.Snapshot(ctx, pr.cameraID); err != nil {
		writeErr(w, http.StatusBadGateway, "camera_error", err.Error())
		return
	}
	if !strings.HasPrefix(ct, "image/") {
		writeErr(w, http.StatusBadGateway, "camera_error", "the camera's snapshot is not an image")
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

func (u *ProvisioningUI) createPoint(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	var spec PointSpec
	if !readJSON(w, r, &spec) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	if pr.camera.MainToken == "" {
		writeErr(w, http.StatusConflict, "not_probed", "enter the camera's credentials and probe it first")
		return
	}
	raw, err := CreatePoint(ctx, u.hc, u.a.cfg.Credentials, pr.session.token, pr.camera, spec)
	if err != nil {
		u.centreFailed(w, err)
		return
	}
	u.log.Info("camera provisioned", "camera", pr.cameraID, "by", pr.session.user)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(raw)
}

// proxy forwards a GET to the centre with the technician's token.
func (u *ProvisioningUI) proxy(path string) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		defer cancel()
		raw, err := centreCall(ctx, u.hc, http.MethodGet, u.a.cfg.Credentials.Server+path, pr.session.token, nil)
		if err != nil {
			u.centreFailed(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}
}
