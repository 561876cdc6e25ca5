package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/store"
)

// platformStore keeps the upstream GB/T 28181 platforms (级联) we register to.
type platformStore interface {
	Create(p gb28181.Platform, password string, also ...store.ResultHook[gb28181.Platform]) (gb28181.Platform, error)
	List() ([]gb28181.Platform, error)
	Get(id string) (gb28181.Platform, error)
	Update(id string, patch gb28181.PlatformPatch, also ...store.ResultHook[gb28181.Platform]) (gb28181.Platform, error)
	Delete(id string, also ...store.TxHook) error
}

// platformAccounts finds the account whose grants decide what a platform sees.
type platformAccounts interface {
	GetUser(name string) (accounts.User, error)
}

// platformHandler answers /api/v1/gb/platforms (system.operate): which
// upstream platforms we register to, and how each registration stands.
// What a platform sees is decided by its account's grants, which stay
// under grants.manage (the grants routes), never here.
type platformHandler struct {
	platforms platformStore
	accounts  platformAccounts
	status    func(id string) gb28181.PlatformStatus // nil: nothing registers yet
	trail     auditTrail
	log       *slog.Logger
}

// platformView is a platform as the API shows it: its configuration
// (never its password) and its registration's state.
type platformView struct {
	gb28181.Platform
	Status gb28181.PlatformStatus `json:"status"`
}

// platformRequest is the body of a create: the configuration and the
// write-only password.
type platformRequest struct {
	gb28181.Platform
	Password string `json:"password"`
}

func (h *platformHandler) view(p gb28181.Platform) platformView {
	v := platformView{Platform: p}
	if h.status != nil {
		v.Status = h.status(p.ID)
	}
	return v
}

func platformError(c *gin.Context, log *slog.Logger, err error) {
	var inv *gb28181.PlatformInvalid
	switch {
	case errors.As(err, &inv):
		failField(c, http.StatusUnprocessableEntity, "invalid", inv.Field, inv.Message)
	case errors.Is(err, gb28181.ErrPlatformNotFound):
		notFound(c, "platform")
	case errors.Is(err, gb28181.ErrPlatformExists):
		fail(c, http.StatusConflict, "exists", "an upstream platform with this ID is configured")
	case errors.Is(err, errAuditFailed):
		fail(c, http.StatusInternalServerError, "internal", "the change could not be recorded; nothing was changed")
	default:
		log.Error("upstream platforms", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "upstream platform store error")
	}
}

// checkAccount answers 422 unless name is a platform account: a person's
// account would hand the city whatever that person may see, and would
// change with their duties.
func (h *platformHandler) checkAccount(c *gin.Context, name string) bool {
	u, err := h.accounts.GetUser(name)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		failField(c, http.StatusUnprocessableEntity, "invalid", "account", "no such user: create a platform account first")
		return false
	case err != nil:
		h.log.Error("platform account lookup", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "accounts error")
		return false
	case !u.IsPlatform():
		failField(c, http.StatusUnprocessableEntity, "invalid", "account", "must be a platform account (kind platform), not a person's")
		return false
	}
	return true
}

// platformDetail is what the audit log keeps of a platform change: never
// the password, only whether it changed.
func platformDetail(p gb28181.Platform, passwordChanged bool) map[string]string {
	return map[string]string{"platform": p.ID, "address": p.Address, "transport": p.Transport, "account": p.Account,
		"enabled": strconv.FormatBool(p.Enabled), "media_networks": strings.Join(p.MediaNetworks, ","),
		"password_changed": strconv.FormatBool(passwordChanged)}
}

func (h *platformHandler) create(c *gin.Context) {
	var req platformRequest
	if !decodeJSON(c, &req) {
		return
	}
	if !h.checkAccount(c, req.Account) {
		return
	}
	p, err := h.platforms.Create(req.Platform, req.Password, func(tx *store.Tx, p gb28181.Platform) error {
		return h.trail.appendIn(tx, byCaller(c, "gb.platform.create", platformDetail(p, req.Password != "")))
	})
	if err != nil {
		platformError(c, h.log, err)
		return
	}
	c.Header("Location", "/api/v1/gb/platforms/"+p.ID)
	c.JSON(http.StatusCreated, h.view(p))
}

func (h *platformHandler) list(c *gin.Context) {
	list, err := h.platforms.List()
	if err != nil {
		platformError(c, h.log, err)
		return
	}
	out := make([]platformView, len(list))
	for i, p := range list {
		out[i] = h.view(p)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
}

func (h *platformHandler) get(c *gin.Context) {
	p, err := h.platforms.Get(c.Param("id"))
	if err != nil {
		platformError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, h.view(p))
}

func (h *platformHandler) patch(c *gin.Context) {
	var patch gb28181.PlatformPatch
	if !decodeJSON(c, &patch) {
		return
	}
	if patch.Account != nil && !h.checkAccount(c, *patch.Account) {
		return
	}
	p, err := h.platforms.Update(c.Param("id"), patch, func(tx *store.Tx, p gb28181.Platform) error {
		return h.trail.appendIn(tx, byCaller(c, "gb.platform.update", platformDetail(p, patch.Password != nil)))
	})
	if err != nil {
		platformError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, h.view(p))
}

func (h *platformHandler) delete(c *gin.Context) {
	id := c.Param("id")
	err := h.platforms.Delete(id, func(tx *store.Tx) error {
		return h.trail.appendIn(tx, byCaller(c, "gb.platform.delete", map[string]string{"platform": id}))
	})
	if err != nil {
		platformError(c, h.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}
