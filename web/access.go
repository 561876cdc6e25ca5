package web

import (
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
)

// viaAdminRole stands in a point's access list for the admin role, which
// gives everything without a grant.
const viaAdminRole = "admin role"

// pointAccessEntry is one user who may see a point.
type pointAccessEntry struct {
	Username string               `json:"username"`
	Via      []string             `json:"via"`
	Actions  []permissions.Action `json:"actions"`
}

// pointAccess answers GET /api/v1/points/{id}/access (administrators): every
// user who may view the point now, with what they may do and the grants
// (or the admin role) that allow it. Disabled users may do nothing and are
// not listed.
func (s *Server) pointAccess(c *gin.Context) {
	p, err := s.d.Catalog.Get(c.Param("id"))
	if err != nil {
		pointError(c, err)
		return
	}
	users, err := s.d.Accounts.ListUsers()
	if err != nil {
		s.accountError(c, err)
		return
	}
	out := []pointAccessEntry{}
	for _, u := range users {
		actions, via := s.d.Permissions.Explain(u, p)
		if !slices.Contains(actions, permissions.View) {
			// Seeing is the point of the list; a grant of, say, ptz
			// without view does not let anyone watch.
			continue
		}
		if u.IsAdmin() {
			via = []string{viaAdminRole}
		}
		out = append(out, pointAccessEntry{Username: u.Username, Via: via, Actions: actions})
	}
	c.JSON(http.StatusOK, gin.H{"point": p.ID, "users": out})
}

// userAccess answers GET /api/v1/users/{name}/access (administrators): the
// facets of what the user may view, exactly what that user's own GET
// /api/v1/points/facets answers (query filters apply alike), plus the scope
// their grants add up to.
func (s *Server) userAccess(c *gin.Context) {
	u, err := s.d.Accounts.GetUser(c.Param("name"))
	if err != nil {
		s.accountError(c, err)
		return
	}
	q, err := catalog.ParseQuery(c.Request.URL.Query())
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_query", err.Error())
		return
	}
	scope := s.d.Permissions.Scope(u, permissions.View)
	f, err := s.d.Catalog.Facets(q, scope)
	if err != nil {
		pointError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"username": u.Username, "total": f.Total, "facets": f, "scope": scope})
}
