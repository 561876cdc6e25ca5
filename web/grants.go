package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

func (s *Server) listGrants(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"items": s.d.Permissions.Grants()})
}

func (s *Server) createGrant(c *gin.Context) {
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
	g, err := s.d.Permissions.CreateGrant(g, func(tx *store.Tx, g permissions.Grant) error {
		return s.appendIn(tx, audit.Record{User: g.CreatedBy, Action: "grant.create", ClientIP: c.ClientIP(),
			Detail: map[string]string{"grant": g.ID, "to_user": g.User, "to_role": g.Role}})
	})
	if err != nil {
		// The grant was valid: the store or the audit log failed.
		fail(c, http.StatusInternalServerError, "internal", "cannot create grant")
		return
	}
	s.log.Info("grant created", "grant", g.ID, "user", g.User, "role", g.Role, "by", g.CreatedBy)
	c.JSON(http.StatusCreated, g)
}

func (s *Server) deleteGrant(c *gin.Context) {
	if err := s.d.Permissions.DeleteGrant(c.Param("id"), s.audited(audit.Record{User: currentUser(c).Username, Action: "grant.delete", ClientIP: c.ClientIP(),
		Detail: map[string]string{"grant": c.Param("id")}})); err != nil {
		if errors.Is(err, permissions.ErrGrantNotFound) {
			notFound(c, "grant")
			return
		}
		fail(c, http.StatusInternalServerError, "internal", "cannot delete grant")
		return
	}
	s.log.Info("grant deleted", "grant", c.Param("id"), "by", currentUser(c).Username)
	c.Status(http.StatusNoContent)
}
