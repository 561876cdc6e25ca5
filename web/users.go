package web

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// userStore is the part of accounts that keeps users and roles.
type userStore interface {
	CreateUser(u accounts.User, password string, also ...store.ResultHook[accounts.User]) (accounts.User, error)
	ListUsers() ([]accounts.User, error)
	GetUser(name string) (accounts.User, error)
	UpdateUser(name string, p accounts.UserPatch, also ...store.ResultHook[accounts.User]) (accounts.User, error)
	DeleteUser(name string, also ...store.TxHook) error
	ResetPassword(name, newPassword string, also ...store.TxHook) error
	CreateRole(r accounts.Role, also ...store.TxHook) error
	ListRoles() ([]accounts.Role, error)
	DeleteRole(name string, also ...store.TxHook) error
}

// grantRemover deletes grants inside another change's transaction (a
// deleted user's or role's).
type grantRemover interface {
	DeleteGrantsIn(tx *store.Tx, match func(permissions.Grant) bool) ([]permissions.Grant, error)
}

// userHandler answers the administrators' routes for users, their
// sessions and API tokens, and roles. Who holds which role is the security
// administrator's to say (grants.manage), whoever else may manage users.
type userHandler struct {
	users  userStore
	creds  credentials
	grants grantRemover
	decide systemDecider
	trail  auditTrail
	log    *slog.Logger
}

// accountError maps accounts errors to responses. Messages are ours: an
// accounts error never carries a secret, but its wording is internal.
func accountError(c *gin.Context, log *slog.Logger, err error) {
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
	case errors.Is(err, accounts.ErrPlatformAccount):
		fail(c, http.StatusConflict, "platform_account", "a platform account never logs in: it has no password, session, API token or stream key")
	case errors.Is(err, accounts.ErrBusy):
		c.Header("Retry-After", "1")
		fail(c, http.StatusServiceUnavailable, "busy", "too many password checks in progress; try again shortly")
	default:
		log.Error("accounts", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "accounts error")
	}
}

// --- users (administrators) ------------------------------------------------

type createUserRequest struct {
	Username    string   `json:"username"`
	Password    string   `json:"password"`
	DisplayName string   `json:"display_name"`
	Roles       []string `json:"roles"`
	Kind        string   `json:"kind"` // "" a person, "platform" an upstream platform (no password)
}

func (h *userHandler) create(c *gin.Context) {
	var req createUserRequest
	if !decodeJSON(c, &req) {
		return
	}
	if len(req.Roles) > 0 && !h.mayAssignRoles(c) {
		return
	}
	u, err := h.users.CreateUser(accounts.User{Username: req.Username, DisplayName: req.DisplayName, Roles: req.Roles, Kind: req.Kind}, req.Password,
		func(tx *store.Tx, u accounts.User) error {
			return h.trail.appendIn(tx, byCaller(c, "user.create", map[string]string{"target": u.Username, "roles": strings.Join(u.Roles, ","), "kind": u.Kind}))
		})
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	c.Header("Location", "/api/v1/users/"+u.Username)
	c.JSON(http.StatusCreated, u)
}

func (h *userHandler) list(c *gin.Context) {
	users, err := h.users.ListUsers()
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": users})
}

func (h *userHandler) get(c *gin.Context) {
	u, err := h.users.GetUser(c.Param("name"))
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// patch changes display_name, roles or disabled. Disabling ends the
// user's sessions at once and makes their API tokens fail until enabled
// again (accounts does both); their live views end within the grant
// watcher's interval.
func (h *userHandler) patch(c *gin.Context) {
	var p accounts.UserPatch
	if !decodeJSON(c, &p) {
		return
	}
	if p.Roles != nil {
		// Decided on the stored and the resulting roles: sending them back
		// unchanged (the admin page does) is no role change.
		stored, err := h.users.GetUser(c.Param("name"))
		if err != nil {
			accountError(c, h.log, err)
			return
		}
		if !sameRoles(stored.Roles, *p.Roles) && !h.mayAssignRoles(c) {
			return
		}
	}
	u, err := h.users.UpdateUser(c.Param("name"), p, func(tx *store.Tx, u accounts.User) error {
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
		return h.trail.appendIn(tx, byCaller(c, "user.update", detail))
	})
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// delete removes the user, their sessions and tokens, and the grants
// made to them (a later user of the same name must not inherit them), all
// in one transaction with the records of it.
func (h *userHandler) delete(c *gin.Context) {
	name := c.Param("name")
	err := h.users.DeleteUser(name, func(tx *store.Tx) error {
		n, err := h.removeGrantsIn(c, tx, func(g permissions.Grant) bool { return g.User == name }, "user deleted")
		if err != nil {
			return err
		}
		return h.trail.appendIn(tx, byCaller(c, "user.delete", map[string]string{"target": name, "grants_removed": strconv.Itoa(n)}))
	})
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// removeGrantsIn deletes the grants match picks inside tx, auditing each
// there, and returns how many went.
func (h *userHandler) removeGrantsIn(c *gin.Context, tx *store.Tx, match func(permissions.Grant) bool, reason string) (int, error) {
	gone, err := h.grants.DeleteGrantsIn(tx, match)
	if err != nil {
		return 0, err
	}
	for _, g := range gone {
		if err := h.trail.appendIn(tx, byCaller(c, "grant.delete", map[string]string{"grant": g.ID, "reason": reason})); err != nil {
			return 0, err
		}
	}
	return len(gone), nil
}

type passwordRequest struct {
	Password string `json:"password"`
}

// resetPassword sets a user's password without the old one and ends their sessions.
func (h *userHandler) resetPassword(c *gin.Context) {
	var req passwordRequest
	if !decodeJSON(c, &req) {
		return
	}
	name := c.Param("name")
	if err := h.users.ResetPassword(name, req.Password, h.trail.auditedBy(c, "password.reset", map[string]string{"target": name})); err != nil {
		accountError(c, h.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *userHandler) listSessions(c *gin.Context) { h.creds.listSessions(c, c.Param("name")) }

func (h *userHandler) revokeSession(c *gin.Context) {
	h.creds.revokeSession(c, c.Param("name"), c.Param("id"))
}

func (h *userHandler) revokeSessions(c *gin.Context) { h.creds.revokeSessions(c, c.Param("name")) }

func (h *userHandler) listTokens(c *gin.Context) { h.creds.listTokens(c, c.Param("name")) }

func (h *userHandler) revokeToken(c *gin.Context) {
	h.creds.revokeToken(c, c.Param("name"), c.Param("id"))
}

// --- roles (administrators) ------------------------------------------------

func (h *userHandler) createRole(c *gin.Context) {
	var r accounts.Role
	if !decodeJSON(c, &r) {
		return
	}
	if err := h.users.CreateRole(r, h.trail.auditedBy(c, "role.create", map[string]string{"role": r.Name})); err != nil {
		accountError(c, h.log, err)
		return
	}
	c.Header("Location", "/api/v1/roles/"+r.Name)
	c.JSON(http.StatusCreated, r)
}

func (h *userHandler) listRoles(c *gin.Context) {
	roles, err := h.users.ListRoles()
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": roles})
}

// deleteRole removes a role no user holds, and the grants made to it (a
// later role of the same name must not inherit them), all in one
// transaction with the records of it.
func (h *userHandler) deleteRole(c *gin.Context) {
	name := c.Param("name")
	err := h.users.DeleteRole(name, func(tx *store.Tx) error {
		n, err := h.removeGrantsIn(c, tx, func(g permissions.Grant) bool { return g.Role == name }, "role deleted")
		if err != nil {
			return err
		}
		return h.trail.appendIn(tx, byCaller(c, "role.delete", map[string]string{"role": name, "grants_removed": strconv.Itoa(n)}))
	})
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// mayAssignRoles answers 403 unless the caller may change who holds which
// role: that is the security administrator's duty (grants.manage), never
// the system administrator's alone, or a sysadmin could make an account of
// their own a secadmin.
func (h *userHandler) mayAssignRoles(c *gin.Context) bool {
	if h.decide.CanSystem(currentUser(c), permissions.ManageGrants) {
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

// setRoles answers PUT /api/v1/users/{name}/roles: the security
// administrator's way to say who holds which role, without touching
// anything else of the account.
func (h *userHandler) setRoles(c *gin.Context) {
	var req rolesRequest
	if !decodeJSON(c, &req) {
		return
	}
	roles := req.Roles
	if roles == nil {
		roles = []string{}
	}
	u, err := h.users.UpdateUser(c.Param("name"), accounts.UserPatch{Roles: &roles}, func(tx *store.Tx, u accounts.User) error {
		return h.trail.appendIn(tx, byCaller(c, "user.roles", map[string]string{"target": u.Username, "roles": strings.Join(u.Roles, ",")}))
	})
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, u)
}
