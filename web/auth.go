package web

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
)

// sessionCookie carries the login token for browsers.
const sessionCookie = "tianyan_session"

const ctxUser = "user"
const ctxToken = "token"

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Server) login(c *gin.Context) {
	var req loginRequest
	if !decodeJSON(c, &req) {
		return
	}
	key := strings.ToLower(req.Username) + "|" + c.ClientIP()
	if wait := s.throttle.blocked(key); wait > 0 {
		c.Header("Retry-After", strings.TrimSuffix(wait.Round(time.Second).String(), "s"))
		fail(c, http.StatusTooManyRequests, "too_many_attempts", "too many failed logins; try again later")
		return
	}
	token, exp, u, err := s.d.Accounts.Login(req.Username, req.Password)
	if err != nil {
		if errors.Is(err, accounts.ErrBadCredentials) {
			s.throttle.fail(key)
			s.log.Info("login failed", "user", req.Username, "ip", c.ClientIP())
			s.record(audit.Record{User: req.Username, Action: "login.fail", ClientIP: c.ClientIP()})
			fail(c, http.StatusUnauthorized, "bad_credentials", "wrong username or password")
			return
		}
		s.log.Error("login", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "login failed")
		return
	}
	s.throttle.reset(key)
	s.log.Info("login", "user", u.Username, "ip", c.ClientIP())
	s.record(audit.Record{User: u.Username, Action: "login.ok", ClientIP: c.ClientIP()})
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", Expires: exp,
		HttpOnly: true, Secure: s.d.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
	c.JSON(http.StatusOK, gin.H{"token": token, "expires": exp, "user": u})
}

func (s *Server) logout(c *gin.Context) {
	if tok := requestToken(c); tok != "" {
		_ = s.d.Accounts.Logout(tok)
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.d.SecureCookies, SameSite: http.SameSiteStrictMode})
	c.Status(http.StatusNoContent)
}

func requestToken(c *gin.Context) string {
	if h := c.GetHeader("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if ck, err := c.Cookie(sessionCookie); err == nil {
		return ck
	}
	return ""
}

// authenticate requires a valid session token (Bearer or cookie).
func (s *Server) authenticate(c *gin.Context) {
	tok := requestToken(c)
	if tok == "" {
		c.Header("WWW-Authenticate", `Bearer realm="tianyan"`)
		fail(c, http.StatusUnauthorized, "unauthenticated", "log in first")
		return
	}
	u, err := s.d.Accounts.Resolve(tok)
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="tianyan", error="invalid_token"`)
		fail(c, http.StatusUnauthorized, "unauthenticated", "session expired or invalid; log in again")
		return
	}
	c.Set(ctxUser, u)
	c.Set(ctxToken, tok)
	c.Next()
}

func currentUser(c *gin.Context) accounts.User {
	u, _ := c.Get(ctxUser)
	return u.(accounts.User)
}

func (s *Server) requireManage(c *gin.Context) {
	if !s.d.Permissions.CanManage(currentUser(c)) {
		fail(c, http.StatusForbidden, "forbidden", "administrators only")
		return
	}
	c.Next()
}

func (s *Server) me(c *gin.Context) {
	c.JSON(http.StatusOK, currentUser(c))
}

// streamKey returns the caller's RTSP stream key: the secret for RTSP
// Digest (and Basic) auth, separate from the password.
func (s *Server) streamKey(c *gin.Context) {
	u := currentUser(c)
	k, err := s.d.Accounts.StreamKey(u.Username)
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "cannot read stream key")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"username": u.Username, "stream_key": k})
}

func (s *Server) rotateStreamKey(c *gin.Context) {
	u := currentUser(c)
	k, err := s.d.Accounts.RotateStreamKey(u.Username)
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "cannot rotate stream key")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"username": u.Username, "stream_key": k})
}

// loginThrottle blocks a user+IP after repeated failures for a cool-down.
type loginThrottle struct {
	max    int
	window time.Duration

	mu    sync.Mutex
	fails map[string]*throttleEntry
}

type throttleEntry struct {
	count int
	first time.Time
	until time.Time
}

func newLoginThrottle(max int, window time.Duration) *loginThrottle {
	return &loginThrottle{max: max, window: window, fails: map[string]*throttleEntry{}}
}

func (t *loginThrottle) blocked(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.fails[key]
	if e == nil {
		return 0
	}
	if d := time.Until(e.until); d > 0 {
		return d
	}
	return 0
}

func (t *loginThrottle) fail(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	// Keep the map bounded under a spray of usernames.
	if len(t.fails) > 100000 {
		for k, e := range t.fails {
			if now.Sub(e.first) > t.window && now.After(e.until) {
				delete(t.fails, k)
			}
		}
	}
	e := t.fails[key]
	if e == nil || now.Sub(e.first) > t.window && now.After(e.until) {
		e = &throttleEntry{first: now}
		t.fails[key] = e
	}
	e.count++
	if e.count >= t.max {
		e.until = now.Add(t.window)
	}
}

func (t *loginThrottle) reset(key string) {
	t.mu.Lock()
	delete(t.fails, key)
	t.mu.Unlock()
}
