package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// grantStore keeps the grants: who may do what on which points.
type grantStore interface {
	Grants() []permissions.Grant
	CreateGrant(g permissions.Grant, also ...store.ResultHook[permissions.Grant]) (permissions.Grant, error)
	DeleteGrant(id string, also ...store.TxHook) error
}

// grantHandler answers the grants' routes (the security administrator's).
type grantHandler struct {
	grants grantStore
	trail  auditTrail
	log    *slog.Logger
}

func (h *grantHandler) list(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"items": h.grants.Grants()})
}

func (h *grantHandler) create(c *gin.Context) {
	var g permissions.Grant
	if !decodeJSON(c, &g) {
		return
	}
	g.ID = ""
	g.CreatedBy = currentUser(c).Username
	if err := g.Validate(); err != nil {
		fail(c, http.StatusUnprocessableEntity, "invalid", err.Error())
		return
	}
	g, err := h.grants.CreateGrant(g, func(tx *store.Tx, g permissions.Grant) error {
		return h.trail.appendIn(tx, audit.Record{User: g.CreatedBy, Action: "grant.create", ClientIP: c.ClientIP(),
			Detail: map[string]string{"grant": g.ID, "to_user": g.User, "to_role": g.Role}})
	})
	if err != nil {
		// The grant was valid: the store or the audit log failed.
		fail(c, http.StatusInternalServerError, "internal", "cannot create grant")
		return
	}
	h.log.Info("grant created", "grant", g.ID, "user", g.User, "role", g.Role, "by", g.CreatedBy)
	c.JSON(http.StatusCreated, g)
}

func (h *grantHandler) delete(c *gin.Context) {
	if err := h.grants.DeleteGrant(c.Param("id"), h.trail.audited(audit.Record{User: currentUser(c).Username, Action: "grant.delete", ClientIP: c.ClientIP(),
		Detail: map[string]string{"grant": c.Param("id")}})); err != nil {
		if errors.Is(err, permissions.ErrGrantNotFound) {
			notFound(c, "grant")
			return
		}
		fail(c, http.StatusInternalServerError, "internal", "cannot delete grant")
		return
	}
	h.log.Info("grant deleted", "grant", c.Param("id"), "by", currentUser(c).Username)
	c.Status(http.StatusNoContent)
}
