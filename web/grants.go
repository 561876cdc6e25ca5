package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/permissions"
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
	g, err := s.d.Permissions.CreateGrant(g)
	if err != nil {
		fail(c, http.StatusUnprocessableEntity, "invalid", err.Error())
		return
	}
	s.log.Info("grant created", "grant", g.ID, "user", g.User, "role", g.Role, "by", g.CreatedBy)
	s.record(audit.Record{User: g.CreatedBy, Action: "grant.create", ClientIP: c.ClientIP(),
		Detail: map[string]string{"grant": g.ID, "to_user": g.User, "to_role": g.Role}})
	c.JSON(http.StatusCreated, g)
}

func (s *Server) deleteGrant(c *gin.Context) {
	if err := s.d.Permissions.DeleteGrant(c.Param("id")); err != nil {
		if errors.Is(err, permissions.ErrGrantNotFound) {
			notFound(c, "grant")
			return
		}
		fail(c, http.StatusInternalServerError, "internal", "cannot delete grant")
		return
	}
	s.log.Info("grant deleted", "grant", c.Param("id"), "by", currentUser(c).Username)
	s.record(audit.Record{User: currentUser(c).Username, Action: "grant.delete", ClientIP: c.ClientIP(),
		Detail: map[string]string{"grant": c.Param("id")}})
	c.Status(http.StatusNoContent)
}
