package edge

import (
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
	"strings"
	"sync"
	"time"

	"github.com/tianyan/vms/cameranet"
)

//go:embed ui
var uiFiles embed.FS

// techSessionTTL is how long a technician stays logged in on the page.
const techSessionTTL = 8 * time.Hour

// ProvisioningUI is the technician's phone-sized page on the agent: log in
// with the central account, see discovered cameras, enter credentials,
// preview a snapshot, pick main/sub, name, category, region and location,
// and register the camera as a point (the centre checks the grant).
type ProvisioningUI struct {
	a   *Agent
	log *slog.Logger
	hc  *http.Client

	mu       sync.Mutex
	sessions map[string]techSession
}

type techSession struct {
	user, token string
	expires     time.Time
}

// NewProvisioningUI returns the page's handler set.
func NewProvisioningUI(a *Agent, log *slog.Logger) *ProvisioningUI {
	return &ProvisioningUI{a: a, log: log, hc: &http.Client{Timeout: 15 * time.Second}, sessions: map[string]techSession{}}
}

const techCookie = "edge_tech"

// Handler routes the page and its small JSON API.
func (u *ProvisioningUI) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(uiFiles, "ui")
	mux.Handle("GET /", http.FileServerFS(sub))
	mux.HandleFunc("POST /api/login", u.login)
	mux.HandleFunc("POST /api/logout", u.logout)
	mux.HandleFunc("GET /api/status", u.auth(u.status))
	mux.HandleFunc("GET /api/cameras", u.auth(u.cameras))
	mux.HandleFunc("POST /api/discover", u.auth(u.discover))
	mux.HandleFunc("POST /api/cameras/probe", u.auth(u.probe))
	mux.HandleFunc("GET /api/cameras/{id}/snapshot.jpg", u.auth(u.snapshot))
	mux.HandleFunc("POST /api/cameras/{id}/point", u.auth(u.createPoint))
	mux.HandleFunc("GET /api/regions", u.auth(u.proxy("/api/v1/regions")))
	mux.HandleFunc("GET /api/categories", u.auth(u.proxy("/api/v1/categories")))
	return securityHeaders(mux)
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
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "bad_json", "malformed JSON: "+err.Error())
		return false
	}
	return true
}

func (u *ProvisioningUI) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	token, err := Login(ctx, u.hc, u.a.cfg.Credentials.Server, req.Username, req.Password)
	if err != nil {
		var ce *CentreError
		if errors.As(err, &ce) {
			writeErr(w, ce.Status, ce.Code, ce.Message)
			return
		}
		writeErr(w, http.StatusBadGateway, "centre_unreachable", "cannot reach the central server: "+err.Error())
		return
	}
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
	u.sessions[id] = techSession{user: req.Username, token: token, expires: now.Add(techSessionTTL)}
	u.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: techCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Expires: now.Add(techSessionTTL), Secure: r.TLS != nil})
	u.log.Info("technician logged in", "user", req.Username)
	writeJSON(w, http.StatusOK, map[string]string{"user": req.Username})
}

func (u *ProvisioningUI) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(techCookie); err == nil {
		u.mu.Lock()
		delete(u.sessions, ck.Value)
		u.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: techCookie, Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

type techHandler func(w http.ResponseWriter, r *http.Request, s techSession)

func (u *ProvisioningUI) auth(h techHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(techCookie)
		if err != nil {
			writeErr(w, http.StatusUnauthorized, "unauthenticated", "log in with your central account")
			return
		}
		u.mu.Lock()
		var s techSession
		found := false
		for k, v := range u.sessions {
			if subtle.ConstantTimeCompare([]byte(k), []byte(ck.Value)) == 1 {
				s, found = v, true
			}
		}
		u.mu.Unlock()
		if !found || time.Now().After(s.expires) {
			writeErr(w, http.StatusUnauthorized, "unauthenticated", "session expired; log in again")
			return
		}
		h(w, r, s)
	}
}

func (u *ProvisioningUI) status(w http.ResponseWriter, _ *http.Request, s techSession) {
	writeJSON(w, http.StatusOK, map[string]any{"user": s.user, "agent": u.a.cfg.Credentials.AgentID,
		"server": u.a.cfg.Credentials.Server, "online": u.a.Online(), "relays": u.a.Relays()})
}

func (u *ProvisioningUI) cameras(w http.ResponseWriter, _ *http.Request, _ techSession) {
	writeJSON(w, http.StatusOK, map[string]any{"items": u.a.cfg.Cameras.List()})
}

func (u *ProvisioningUI) discover(w http.ResponseWriter, r *http.Request, _ techSession) {
	ctx, cancel := context.WithTimeout(r.Context(), 45*time.Second)
	defer cancel()
	if err := u.a.cfg.Cameras.Rediscover(ctx); err != nil {
		writeErr(w, http.StatusBadGateway, "discovery_failed", err.Error())
		return
	}
	u.a.SendInventory()
	writeJSON(w, http.StatusOK, map[string]any{"items": u.a.cfg.Cameras.List()})
}

func (u *ProvisioningUI) probe(w http.ResponseWriter, r *http.Request, _ techSession) {
	var req struct {
		ID       string `json:"id"`
		XAddr    string `json:"xaddr"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.XAddr == "" && req.ID != "" {
		if c, ok := u.a.cfg.Cameras.Get(req.ID); ok {
			req.XAddr = c.XAddr
		}
	}
	if req.XAddr == "" {
		writeErr(w, http.StatusUnprocessableEntity, "invalid", "xaddr or a known camera id is required")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	cam, err := u.a.cfg.Cameras.Provision(ctx, req.ID, req.XAddr, req.Username, req.Password)
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
	cam.Password = "***"
	u.a.SendInventory()
	writeJSON(w, http.StatusOK, cam)
}

func (u *ProvisioningUI) snapshot(w http.ResponseWriter, r *http.Request, _ techSession) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	data, ct, err := u.a.cfg.Cameras.Snapshot(ctx, r.PathValue("id"))
	if err != nil {
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

func (u *ProvisioningUI) createPoint(w http.ResponseWriter, r *http.Request, s techSession) {
	var spec PointSpec
	if !readJSON(w, r, &spec) {
		return
	}
	cam, ok := u.a.cfg.Cameras.Get(r.PathValue("id"))
	if !ok {
		writeErr(w, http.StatusNotFound, "not_found", "camera not found")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	raw, err := CreatePoint(ctx, u.hc, u.a.cfg.Credentials, s.token, cam, spec)
	if err != nil {
		var ce *CentreError
		if errors.As(err, &ce) {
			writeJSON(w, ce.Status, map[string]any{"error": map[string]string{"code": ce.Code, "message": ce.Message, "field": ce.Field}})
			return
		}
		writeErr(w, http.StatusBadGateway, "error", err.Error())
		return
	}
	u.log.Info("camera provisioned", "camera", cam.ID, "by", s.user)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(raw)
}

// proxy forwards a GET to the centre with the technician's token.
func (u *ProvisioningUI) proxy(path string) techHandler {
	return func(w http.ResponseWriter, r *http.Request, s techSession) {
		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		defer cancel()
		raw, err := centreCall(ctx, u.hc, http.MethodGet, u.a.cfg.Credentials.Server+path, s.token, nil)
		if err != nil {
			var ce *CentreError
			if errors.As(err, &ce) {
				writeErr(w, ce.Status, ce.Code, ce.Message)
				return
			}
			writeErr(w, http.StatusBadGateway, "centre_unreachable", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}
}
