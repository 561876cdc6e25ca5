package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/audit"
)

// sessionCookie carries the login token for browsers.
const sessionCookie = "tianyan_session"

const ctxUser = "user"
const ctxToken = "token"

// loginThrottle slows and then locks repeated failed password checks per
// user and per client address (accounts.Throttle), shared by every door
// that takes a password.
type loginThrottle interface {
	Check(user, ip string, now time.Time) (wait time.Duration, locked bool)
	Failure(user, ip string, now time.Time) (locked bool)
	Success(user, ip string)
}

// loginAccounts is the part of accounts that opens and ends sessions.
type loginAccounts interface {
	Login(username, password string) (token string, expires time.Time, u accounts.User, err error)
	Logout(token string) error
}

// authHandler answers logging in and out.
type authHandler struct {
	accounts loginAccounts
	throttle loginThrottle
	trail    auditTrail
	log      *slog.Logger
	// agents vouch for the address of a technician their page logs in
	// (nil: no agents, the header is refused).
	agents agentAuthenticator
	// secureCookies marks the session cookie Secure (served over TLS).
	secureCookies bool
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (h *authHandler) login(c *gin.Context) {
	if refuseCrossSite(c, false, true) {
		return
	}
	var req loginRequest
	if !decodeJSON(c, &req) {
		return
	}
	ip, ok := h.loginClientIP(c)
	if !ok {
		return
	}
	// Check before the password is even looked at: a throttled attempt
	// costs no argon2 work and teaches the caller nothing. Unknown and
	// existing usernames are throttled alike, so the answers do not reveal
	// which users exist.
	if wait, locked := h.throttle.Check(req.Username, ip, time.Now()); wait > 0 {
		h.log.Info("login throttled", "user", req.Username, "ip", ip, "locked", locked, "wait", wait)
		h.trail.record(audit.Record{User: req.Username, Action: "login.throttled", ClientIP: ip,
			Detail: map[string]string{"locked": strconv.FormatBool(locked), "retry_after_s": retryAfter(wait)}})
		c.Header("Retry-After", retryAfter(wait))
		fail(c, http.StatusTooManyRequests, "too_many_attempts", "too many failed logins; try again later")
		return
	}
	token, exp, u, err := h.accounts.Login(req.Username, req.Password)
	if err != nil {
		if errors.Is(err, accounts.ErrBusy) {
			// Every argon2 slot stayed taken: a flood. Refused like a
			// throttled attempt (not a failure: the password was never checked).
			h.log.Warn("login refused: password checks saturated", "user", req.Username, "ip", ip)
			h.trail.record(audit.Record{User: req.Username, Action: "login.throttled", ClientIP: ip,
				Detail: map[string]string{"busy": "true", "retry_after_s": "1"}})
			c.Header("Retry-After", "1")
			fail(c, http.StatusTooManyRequests, "too_many_attempts", "too many logins in progress; try again shortly")
			return
		}
		if errors.Is(err, accounts.ErrBadCredentials) {
			locked := h.throttle.Failure(req.Username, ip, time.Now())
			h.log.Info("login failed", "user", req.Username, "ip", ip)
			h.trail.record(audit.Record{User: req.Username, Action: "login.fail", ClientIP: ip})
			if locked {
				h.log.Warn("login locked out", "user", req.Username, "ip", ip)
				h.trail.record(audit.Record{User: req.Username, Action: "login.locked", ClientIP: ip})
			}
			fail(c, http.StatusUnauthorized, "bad_credentials", "wrong username or password")
			return
		}
		h.log.Error("login", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "login failed")
		return
	}
	h.throttle.Success(u.Username, ip)
	h.log.Info("login", "user", u.Username, "ip", ip)
	h.trail.record(audit.Record{User: u.Username, Action: "login.ok", ClientIP: ip})
	setSessionCookie(c, token, exp, h.secureCookies)
	c.JSON(http.StatusOK, gin.H{"token": token, "expires": exp, "user": u})
}

// maxClientAddressLen bounds the header before it is parsed.
const maxClientAddressLen = 64

// loginClientIP is the address a login is throttled and audited under: the
// TCP peer (or what a trusted proxy says), or, when an enrolled agent logs
// a technician in from its page, the technician's browser as that agent
// saw it, written "ADDR via AGENT". The header is believed only on a
// request that carries that agent's valid credentials; sent by anyone else
// it is refused, never silently honoured. Keeping the agent in the key
// keeps two agents' LANs (which may reuse addresses) and the centre's own
// clients apart, and an agent can only ever lock out addresses of its own.
func (h *authHandler) loginClientIP(c *gin.Context) (string, bool) {
	claimed, present := c.Request.Header[http.CanonicalHeaderKey(agentlink.ClientAddressHeader)]
	if !present {
		return c.ClientIP(), true
	}
	a, ok := authenticateAgent(c, h.log, h.agents)
	if !ok {
		return "", false
	}
	if len(claimed) != 1 || len(claimed[0]) > maxClientAddressLen {
		fail(c, http.StatusBadRequest, "bad_client_address", agentlink.ClientAddressHeader+" must be one IP address")
		return "", false
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(claimed[0]))
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_client_address", agentlink.ClientAddressHeader+" must be one IP address")
		return "", false
	}
	return addr.Unmap().WithZone("").String() + " via " + a.ID, true
}

// retryAfter renders a wait as whole seconds for Retry-After, rounded up so
// a client that obeys it is never refused again for being a moment early.
func retryAfter(wait time.Duration) string {
	return strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)
}

// setSessionCookie hands a browser its session token, out of reach of
// scripts and of other sites' requests.
func setSessionCookie(c *gin.Context, token string, exp time.Time, secure bool) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", Expires: exp,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
}

func (h *authHandler) logout(c *gin.Context) {
	tok, cookie := requestCredential(c)
	if refuseCrossSite(c, cookie, false) {
		return
	}
	if tok != "" {
		_ = h.accounts.Logout(tok)
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.secureCookies, SameSite: http.SameSiteStrictMode})
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
	u, err := s.tokens.Resolve(tok)
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
