package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// accountError maps accounts errors to responses. Messages are ours: an
// accounts error never carries a secret, but its wording is internal.
func (s *Server) accountError(c *gin.Context, err error) {
	var ve *accounts.ValidationError
	switch {
	case errors.As(err, &ve):
		failField(c, http.StatusUnprocessableEntity, "invalid", ve.Field, ve.Message)
	case errors.Is(err, accounts.ErrNotFound):
		notFound(c, "user")
	case errors.Is(err, accounts.ErrExists):
		fail(c, http.StatusConflict, "exists", "a user with this username exists")
	case errors.Is(err, accounts.ErrLastAdmin):
		fail(c, http.StatusConflict, "last_admin", "this would leave no enabled administrator")
	case errors.Is(err, accounts.ErrRoleNotFound):
		notFound(c, "role")
	case errors.Is(err, accounts.ErrRoleExists):
		fail(c, http.StatusConflict, "exists", "a role with this name exists")
	case errors.Is(err, accounts.ErrRoleInUse):
		fail(c, http.StatusConflict, "in_use", "users still hold this role; take it from them first")
	case errors.Is(err, accounts.ErrRoleBuiltIn):
		fail(c, http.StatusConflict, "built_in", "the admin role is built in")
	case errors.Is(err, accounts.ErrNoSession):
		notFound(c, "session")
	case errors.Is(err, accounts.ErrNoToken):
		notFound(c, "token")
	case errors.Is(err, accounts.ErrTooManyTokens):
		fail(c, http.StatusConflict, "too_many_tokens",
			"at most "+strconv.Itoa(accounts.MaxTokensPerUser)+" API tokens per user; revoke one first")
	case errors.Is(err, accounts.ErrDisabled):
		fail(c, http.StatusConflict, "disabled", "the user is disabled")
	case errors.Is(err, accounts.ErrBusy):
		c.Header("Retry-After", "1")
		fail(c, http.StatusServiceUnavailable, "busy", "too many password checks in progress; try again shortly")
	default:
		s.log.Error("accounts", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "accounts error")
	}
}

// recordBy audits an action of the caller that changes nothing. detail
// must never hold a password or token.
func (s *Server) recordBy(c *gin.Context, action string, detail map[string]string) {
	s.record(byCaller(c, action, detail))
}

// auditedBy is the hook recording a change made by the caller inside the
// change's transaction (see audited). detail must never hold a password or
// token.
func (s *Server) auditedBy(c *gin.Context, action string, detail map[string]string) store.TxHook {
	return s.audited(byCaller(c, action, detail))
}

// byCaller is the record of an action of the caller.
func byCaller(c *gin.Context, action string, detail map[string]string) audit.Record {
	return audit.Record{User: currentUser(c).Username, Action: action, ClientIP: c.ClientIP(), Detail: detail}
}

// --- users (administrators) ------------------------------------------------

type createUserRequest struct {
	Username    string   `json:"username"`
	Password    string   `json:"password"`
	DisplayName string   `json:"display_name"`
	Roles       []string `json:"roles"`
}

func (s *Server) createUser(c *gin.Context) {
	var req createUserRequest
	if !decodeJSON(c, &req) {
		return
	}
	if len(req.Roles) > 0 && !s.mayAssignRoles(c) {
		return
	}
	u, err := s.d.Accounts.CreateUser(accounts.User{Username: req.Username, DisplayName: req.DisplayName, Roles: req.Roles}, req.Password,
		func(tx *store.Tx, u accounts.User) error {
			return s.appendIn(tx, byCaller(c, "user.create", map[string]string{"target": u.Username, "roles": strings.Join(u.Roles, ",")}))
		})
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.Header("Location", "/api/v1/users/"+u.Username)
	c.JSON(http.StatusCreated, u)
}

func (s *Server) listUsers(c *gin.Context) {
	users, err := s.d.Accounts.ListUsers()
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": users})
}

func (s *Server) getUser(c *gin.Context) {
	u, err := s.d.Accounts.GetUser(c.Param("name"))
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// patchUser changes display_name, roles or disabled. Disabling ends the
// user's sessions at once and makes their API tokens fail until enabled
// again (accounts does both); their live views end within the grant
// watcher's interval.
func (s *Server) patchUser(c *gin.Context) {
	var p accounts.UserPatch
	if !decodeJSON(c, &p) {
		return
	}
	if p.Roles != nil {
		// Decided on the stored and the resulting roles: sending them back
		// unchanged (the admin page does) is no role change.
		stored, err := s.d.Accounts.GetUser(c.Param("name"))
		if err != nil {
			s.accountError(c, err)
			return
		}
		if !sameRoles(stored.Roles, *p.Roles) && !s.mayAssignRoles(c) {
			return
		}
	}
	u, err := s.d.Accounts.UpdateUser(c.Param("name"), p, func(tx *store.Tx, u accounts.User) error {
		detail := map[string]string{"target": u.Username}
		if p.DisplayName != nil {
			detail["display_name"] = u.DisplayName
		}
		if p.Roles != nil {
			detail["roles"] = strings.Join(u.Roles, ",")
		}
		if p.Disabled != nil {
			detail["disabled"] = strconv.FormatBool(u.Disabled)
		}
		return s.appendIn(tx, byCaller(c, "user.update", detail))
	})
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// deleteUser removes the user, their sessions and tokens, and the grants
// made to them (a later user of the same name must not inherit them), all
// in one transaction with the records of it.
func (s *Server) deleteUser(c *gin.Context) {
	name := c.Param("name")
	err := s.d.Accounts.DeleteUser(name, func(tx *store.Tx) error {
		n, err := s.removeGrantsIn(c, tx, func(g permissions.Grant) bool { return g.User == name }, "user deleted")
		if err != nil {
			return err
		}
		return s.appendIn(tx, byCaller(c, "user.delete", map[string]string{"target": name, "grants_removed": strconv.Itoa(n)}))
	})
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// removeGrantsIn deletes the grants match picks inside tx, auditing each
// there, and returns how many went.
func (s *Server) removeGrantsIn(c *gin.Context, tx *store.Tx, match func(permissions.Grant) bool, reason string) (int, error) {
	gone, err := s.d.Permissions.DeleteGrantsIn(tx, match)
	if err != nil {
		return 0, err
	}
	for _, g := range gone {
		if err := s.appendIn(tx, byCaller(c, "grant.delete", map[string]string{"grant": g.ID, "reason": reason})); err != nil {
			return 0, err
		}
	}
	return len(gone), nil
}

type passwordRequest struct {
	Password string `json:"password"`
}

// resetPassword sets a user's password without the old one and ends their sessions.
func (s *Server) resetPassword(c *gin.Context) {
	var req passwordRequest
	if !decodeJSON(c, &req) {
		return
	}
	name := c.Param("name")
	if err := s.d.Accounts.ResetPassword(name, req.Password, s.auditedBy(c, "password.reset", map[string]string{"target": name})); err != nil {
		s.accountError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) listUserSessions(c *gin.Context) { s.listSessions(c, c.Param("name")) }

func (s *Server) revokeUserSession(c *gin.Context) {
	s.revokeSession(c, c.Param("name"), c.Param("id"))
}

func (s *Server) revokeUserSessions(c *gin.Context) { s.revokeSessions(c, c.Param("name")) }

func (s *Server) listUserTokens(c *gin.Context) { s.listTokens(c, c.Param("name")) }

func (s *Server) revokeUserToken(c *gin.Context) { s.revokeToken(c, c.Param("name"), c.Param("id")) }

// --- the caller's own account ----------------------------------------------

type changePasswordRequest struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// changeMyPassword answers POST /api/v1/me/password. Checking the old
// password is a login in disguise, so it goes through the login throttle.
// accounts ends every session of the user, the caller's included; the
// caller gets a fresh session (token and cookie) in the answer, so only the
// other sessions are lost. accounts also ends the user's API tokens.
func (s *Server) changeMyPassword(c *gin.Context) {
	var req changePasswordRequest
	if !decodeJSON(c, &req) {
		return
	}
	u, ip := currentUser(c), c.ClientIP()
	if wait, _ := s.throttle.Check(u.Username, ip, time.Now()); wait > 0 {
		c.Header("Retry-After", retryAfter(wait))
		fail(c, http.StatusTooManyRequests, "too_many_attempts", "too many wrong passwords; try again later")
		return
	}
	err := s.d.Accounts.ChangePassword(u.Username, req.OldPassword, req.NewPassword, s.auditedBy(c, "password.change", nil))
	var ve *accounts.ValidationError
	switch {
	case errors.Is(err, accounts.ErrBadCredentials):
		if s.throttle.Failure(u.Username, ip, time.Now()) {
			s.record(audit.Record{User: u.Username, Action: "login.locked", ClientIP: ip})
		}
		s.recordBy(c, "password.change.fail", nil)
		failField(c, http.StatusForbidden, "bad_credentials", "old_password", "the old password is wrong")
		return
	case errors.As(err, &ve) && ve.Field == "password":
		failField(c, http.StatusUnprocessableEntity, "invalid", "new_password", ve.Message)
		return
	case err != nil:
		s.accountError(c, err)
		return
	}
	s.throttle.Success(u.Username, ip)
	token, exp, _, err := s.d.Accounts.Login(u.Username, req.NewPassword)
	if err != nil {
		// The change stands; the caller logs in again.
		s.log.Error("session after password change", "user", u.Username, "err", err)
		c.Status(http.StatusNoContent)
		return
	}
	s.setSessionCookie(c, token, exp)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"token": token, "expires": exp})
}

func (s *Server) listMySessions(c *gin.Context) { s.listSessions(c, currentUser(c).Username) }

func (s *Server) revokeMySession(c *gin.Context) {
	s.revokeSession(c, currentUser(c).Username, c.Param("id"))
}

func (s *Server) revokeMySessions(c *gin.Context) { s.revokeSessions(c, currentUser(c).Username) }

type createTokenRequest struct {
	Name string `json:"name"`
	// Expires is RFC 3339; absent or null never expires.
	Expires *time.Time `json:"expires"`
}

// createMyToken issues an API token for the caller; the token is in this
// answer only.
func (s *Server) createMyToken(c *gin.Context) {
	var req createTokenRequest
	if !decodeJSON(c, &req) {
		return
	}
	var exp time.Time
	if req.Expires != nil {
		exp = *req.Expires
	}
	u := currentUser(c)
	token, info, err := s.d.Accounts.CreateToken(u.Username, req.Name, exp, func(tx *store.Tx, info accounts.TokenInfo) error {
		return s.appendIn(tx, byCaller(c, "token.create", map[string]string{"token_id": info.ID, "name": info.Name}))
	})
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, struct {
		Token string `json:"token"`
		accounts.TokenInfo
	}{token, info})
}

func (s *Server) listMyTokens(c *gin.Context) { s.listTokens(c, currentUser(c).Username) }

func (s *Server) revokeMyToken(c *gin.Context) {
	s.revokeToken(c, currentUser(c).Username, c.Param("id"))
}

// --- shared by the admin and /me routes ------------------------------------

func (s *Server) listSessions(c *gin.Context, user string) {
	list, err := s.d.Accounts.ListSessions(user)
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": list})
}

func (s *Server) revokeSession(c *gin.Context, user, id string) {
	if err := s.d.Accounts.RevokeSession(user, id, s.auditedBy(c, "session.revoke", map[string]string{"target": user, "session": id})); err != nil {
		s.accountError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) revokeSessions(c *gin.Context, user string) {
	n, err := s.d.Accounts.RevokeAllSessions(user, func(tx *store.Tx, n int) error {
		return s.appendIn(tx, byCaller(c, "session.revoke", map[string]string{"target": user, "session": "all", "count": strconv.Itoa(n)}))
	})
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"revoked": n})
}

func (s *Server) listTokens(c *gin.Context, user string) {
	list, err := s.d.Accounts.ListTokens(user)
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": list})
}

func (s *Server) revokeToken(c *gin.Context, user, id string) {
	if err := s.d.Accounts.RevokeToken(user, id, s.auditedBy(c, "token.revoke", map[string]string{"target": user, "token_id": id})); err != nil {
		s.accountError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// --- roles (administrators) ------------------------------------------------

func (s *Server) createRole(c *gin.Context) {
	var r accounts.Role
	if !decodeJSON(c, &r) {
		return
	}
	if err := s.d.Accounts.CreateRole(r, s.auditedBy(c, "role.create", map[string]string{"role": r.Name})); err != nil {
		s.accountError(c, err)
		return
	}
	c.Header("Location", "/api/v1/roles/"+r.Name)
	c.JSON(http.StatusCreated, r)
}

func (s *Server) listRoles(c *gin.Context) {
	roles, err := s.d.Accounts.ListRoles()
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": roles})
}

// deleteRole removes a role no user holds, and the grants made to it (a
// later role of the same name must not inherit them), all in one
// transaction with the records of it.
func (s *Server) deleteRole(c *gin.Context) {
	name := c.Param("name")
	err := s.d.Accounts.DeleteRole(name, func(tx *store.Tx) error {
		n, err := s.removeGrantsIn(c, tx, func(g permissions.Grant) bool { return g.Role == name }, "role deleted")
		if err != nil {
			return err
		}
		return s.appendIn(tx, byCaller(c, "role.delete", map[string]string{"role": name, "grants_removed": strconv.Itoa(n)}))
	})
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// mayAssignRoles answers 403 unless the caller may change who holds which
// role: that is the security administrator's duty (grants.manage), never
// the system administrator's alone, or a sysadmin could make an account of
// their own a secadmin.
func (s *Server) mayAssignRoles(c *gin.Context) bool {
	if s.d.Permissions.CanSystem(currentUser(c), permissions.ManageGrants) {
		return true
	}
	fail(c, http.StatusForbidden, "forbidden", "roles are assigned by the security administrator (grants.manage): PUT /api/v1/users/{name}/roles")
	return false
}

// sameRoles reports whether a and b name the same roles, in any order.
func sameRoles(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

type rolesRequest struct {
	Roles []string `json:"roles"`
}

// setUserRoles answers PUT /api/v1/users/{name}/roles: the security
// administrator's way to say who holds which role, without touching
// anything else of the account.
func (s *Server) setUserRoles(c *gin.Context) {
	var req rolesRequest
	if !decodeJSON(c, &req) {
		return
	}
	roles := req.Roles
	if roles == nil {
		roles = []string{}
	}
	u, err := s.d.Accounts.UpdateUser(c.Param("name"), accounts.UserPatch{Roles: &roles}, func(tx *store.Tx, u accounts.User) error {
		return s.appendIn(tx, byCaller(c, "user.roles", map[string]string{"target": u.Username, "roles": strings.Join(u.Roles, ",")}))
	})
	if err != nil {
		s.accountError(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}
