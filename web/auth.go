package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
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
	if refuseCrossSite(c, false, true) {
		return
	}
	var req loginRequest
	if !decodeJSON(c, &req) {
		return
	}
	ip, ok := s.loginClientIP(c)
	if !ok {
		return
	}
	// Check before the password is even looked at: a throttled attempt
	// costs no argon2 work and teaches the caller nothing. Unknown and
	// existing usernames are throttled alike, so the answers do not reveal
	// which users exist.
	if wait, locked := s.throttle.Check(req.Username, ip, time.Now()); wait > 0 {
		s.log.Info("login throttled", "user", req.Username, "ip", ip, "locked", locked, "wait", wait)
		s.record(audit.Record{User: req.Username, Action: "login.throttled", ClientIP: ip,
			Detail: map[string]string{"locked": strconv.FormatBool(locked), "retry_after_s": retryAfter(wait)}})
		c.Header("Retry-After", retryAfter(wait))
		fail(c, http.StatusTooManyRequests, "too_many_attempts", "too many failed logins; try again later")
		return
	}
	token, exp, u, err := s.d.Accounts.Login(req.Username, req.Password)
	if err != nil {
		if errors.Is(err, accounts.ErrBusy) {
			// Every argon2 slot stayed taken: a flood. Refused like a
			// throttled attempt (not a failure: the password was never checked).
			s.log.Warn("login refused: password checks saturated", "user", req.Username, "ip", ip)
			s.record(audit.Record{User: req.Username, Action: "login.throttled", ClientIP: ip,
				Detail: map[string]string{"busy": "true", "retry_after_s": "1"}})
			c.Header("Retry-After", "1")
			fail(c, http.StatusTooManyRequests, "too_many_attempts", "too many logins in progress; try again shortly")
			return
		}
		if errors.Is(err, accounts.ErrBadCredentials) {
			locked := s.throttle.Failure(req.Username, ip, time.Now())
			s.log.Info("login failed", "user", req.Username, "ip", ip)
			s.record(audit.Record{User: req.Username, Action: "login.fail", ClientIP: ip})
			if locked {
				s.log.Warn("login locked out", "user", req.Username, "ip", ip)
				s.record(audit.Record{User: req.Username, Action: "login.locked", ClientIP: ip})
			}
			fail(c, http.StatusUnauthorized, "bad_credentials", "wrong username or password")
			return
		}
		s.log.Error("login", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "login failed")
		return
	}
	s.throttle.Success(u.Username, ip)
	s.log.Info("login", "user", u.Username, "ip", ip)
	s.record(audit.Record{User: u.Username, Action: "login.ok", ClientIP: ip})
	s.setSessionCookie(c, token, exp)
	c.JSON(http.StatusOK, gin.H{"token": token, "expires": exp, "user": u})
}

// retryAfter renders a wait as whole seconds for Retry-After, rounded up so
// a client that obeys it is never refused again for being a moment early.
func retryAfter(wait time.Duration) string {
	return strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)
}

func (s *Server) setSessionCookie(c *gin.Context, token string, exp time.Time) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", Expires: exp,
		HttpOnly: true, Secure: s.d.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) logout(c *gin.Context) {
	tok, cookie := requestCredential(c)
	if refuseCrossSite(c, cookie, false) {
		return
	}
	if tok != "" {
		_ = s.d.Accounts.Logout(tok)
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.d.SecureCookies, SameSite: http.SameSiteStrictMode})
	c.Status(http.StatusNoContent)
}

func requestToken(c *gin.Context) string {
	tok, _ := requestCredential(c)
	return tok
}

// requestCredential is the caller's token and whether it came from the
// session cookie (which a browser attaches by itself, so it needs the
// same-origin check) rather than an Authorization header.
func requestCredential(c *gin.Context) (token string, cookie bool) {
	if h := c.GetHeader("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(tok), false
		}
		return "", false
	}
	if ck, err := c.Cookie(sessionCookie); err == nil {
		return ck, true
	}
	return "", false
}

// authenticate requires a valid session token (Bearer or cookie).
func (s *Server) authenticate(c *gin.Context) {
	tok, cookie := requestCredential(c)
	if refuseCrossSite(c, cookie, false) {
		return
	}
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
