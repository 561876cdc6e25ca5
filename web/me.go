package web

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// selfAccounts is the part of accounts the caller's own account routes call.
type selfAccounts interface {
	StreamKey(username string) (string, error)
	RotateStreamKey(username string) (string, error)
	ChangePassword(name, oldPassword, newPassword string, also ...store.TxHook) error
	Login(username, password string) (token string, expires time.Time, u accounts.User, err error)
	CreateToken(username, name string, expires time.Time, also ...store.ResultHook[accounts.TokenInfo]) (token string, info accounts.TokenInfo, err error)
}

// selfHandler answers the caller's own account (/api/v1/me…): who they
// are, their RTSP stream key, password, sessions and API tokens.
type selfHandler struct {
	accounts selfAccounts
	decide   systemDecider
	creds    credentials
	throttle loginThrottle
	trail    auditTrail
	log      *slog.Logger
	// secureCookies marks the fresh session cookie of a password change Secure.
	secureCookies bool
}

// me answers GET /api/v1/me.
func (h *selfHandler) me(c *gin.Context) {
	u := currentUser(c)
	out := meResponse{User: u, SystemActions: []permissions.SystemAction{}}
	if h.decide != nil {
		for _, a := range permissions.SystemActions {
			if h.decide.CanSystem(u, a) {
				out.SystemActions = append(out.SystemActions, a)
			}
		}
	}
	c.JSON(http.StatusOK, out)
}

// meResponse is the caller and the system actions they hold now (the web
// app shows the admin pages they may use; the server decides every call
// regardless).
type meResponse struct {
	accounts.User
	SystemActions []permissions.SystemAction `json:"system_actions"`
}

// streamKey returns the caller's RTSP stream key: the secret for RTSP
// Digest (and Basic) auth, separate from the password.
func (h *selfHandler) streamKey(c *gin.Context) {
	u := currentUser(c)
	k, err := h.accounts.StreamKey(u.Username)
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "cannot read stream key")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"username": u.Username, "stream_key": k})
}

func (h *selfHandler) rotateStreamKey(c *gin.Context) {
	u := currentUser(c)
	k, err := h.accounts.RotateStreamKey(u.Username)
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "cannot rotate stream key")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"username": u.Username, "stream_key": k})
}

type changePasswordRequest struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// changePassword answers POST /api/v1/me/password. Checking the old
// password is a login in disguise, so it goes through the login throttle.
// accounts ends every session of the user, the caller's included; the
// caller gets a fresh session (token and cookie) in the answer, so only the
// other sessions are lost. accounts also ends the user's API tokens.
func (h *selfHandler) changePassword(c *gin.Context) {
	var req changePasswordRequest
	if !decodeJSON(c, &req) {
		return
	}
	u, ip := currentUser(c), c.ClientIP()
	if wait, _ := h.throttle.Check(u.Username, ip, time.Now()); wait > 0 {
		c.Header("Retry-After", retryAfter(wait))
		fail(c, http.StatusTooManyRequests, "too_many_attempts", "too many wrong passwords; try again later")
		return
	}
	err := h.accounts.ChangePassword(u.Username, req.OldPassword, req.NewPassword, h.trail.auditedBy(c, "password.change", nil))
	var ve *accounts.ValidationError
	switch {
	case errors.Is(err, accounts.ErrBadCredentials):
		if h.throttle.Failure(u.Username, ip, time.Now()) {
			h.trail.record(audit.Record{User: u.Username, Action: "login.locked", ClientIP: ip})
		}
		h.trail.recordBy(c, "password.change.fail", nil)
		failField(c, http.StatusForbidden, "bad_credentials", "old_password", "the old password is wrong")
		return
	case errors.As(err, &ve) && ve.Field == "password":
		failField(c, http.StatusUnprocessableEntity, "invalid", "new_password", ve.Message)
		return
	case err != nil:
		accountError(c, h.log, err)
		return
	}
	h.throttle.Success(u.Username, ip)
	token, exp, _, err := h.accounts.Login(u.Username, req.NewPassword)
	if err != nil {
		// The change stands; the caller logs in again.
		h.log.Error("session after password change", "user", u.Username, "err", err)
		c.Status(http.StatusNoContent)
		return
	}
	setSessionCookie(c, token, exp, h.secureCookies)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"token": token, "expires": exp})
}

func (h *selfHandler) listSessions(c *gin.Context) { h.creds.listSessions(c, currentUser(c).Username) }

func (h *selfHandler) revokeSession(c *gin.Context) {
	h.creds.revokeSession(c, currentUser(c).Username, c.Param("id"))
}

func (h *selfHandler) revokeSessions(c *gin.Context) {
	h.creds.revokeSessions(c, currentUser(c).Username)
}

type createTokenRequest struct {
	Name string `json:"name"`
	// Expires is RFC 3339; absent or null never expires.
	Expires *time.Time `json:"expires"`
}

// createToken issues an API token for the caller; the token is in this
// answer only.
func (h *selfHandler) createToken(c *gin.Context) {
	var req createTokenRequest
	if !decodeJSON(c, &req) {
		return
	}
	var exp time.Time
	if req.Expires != nil {
		exp = *req.Expires
	}
	u := currentUser(c)
	token, info, err := h.accounts.CreateToken(u.Username, req.Name, exp, func(tx *store.Tx, info accounts.TokenInfo) error {
		return h.trail.appendIn(tx, byCaller(c, "token.create", map[string]string{"token_id": info.ID, "name": info.Name}))
	})
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, struct {
		Token string `json:"token"`
		accounts.TokenInfo
	}{token, info})
}

func (h *selfHandler) listTokens(c *gin.Context) { h.creds.listTokens(c, currentUser(c).Username) }

func (h *selfHandler) revokeToken(c *gin.Context) {
	h.creds.revokeToken(c, currentUser(c).Username, c.Param("id"))
}
