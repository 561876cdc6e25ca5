package web

import (
	"log/slog"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
)

// accessPoints is the part of the catalog access previews read.
type accessPoints interface {
	Get(id string) (catalog.Point, error)
	Facets(q catalog.Query, s catalog.Scope) (catalog.Facets, error)
}

// accessUsers is the part of accounts access previews read.
type accessUsers interface {
	ListUsers() ([]accounts.User, error)
	GetUser(name string) (accounts.User, error)
}

// accessDecider is what access previews ask permissions: what a user may
// do on a point and why, and the scope of an action.
type accessDecider interface {
	Explain(u accounts.User, p catalog.Point) (actions []permissions.Action, via []string)
	Scope(u accounts.User, a permissions.Action) catalog.Scope
}

// accessHandler answers the access previews for those who manage grants:
// who may see a point, and what a user may see.
type accessHandler struct {
	points accessPoints
	users  accessUsers
	decide accessDecider
	log    *slog.Logger
}

// viaAdminRole stands in a point's access list for the admin role, which
// gives everything without a grant.
const viaAdminRole = "admin role"

// pointAccessEntry is one user who may see a point.
type pointAccessEntry struct {
	Username string               `json:"username"`
	Via      []string             `json:"via"`
	Actions  []permissions.Action `json:"actions"`
}

// point answers GET /api/v1/points/{id}/access (administrators): every
// user who may view the point now, with what they may do and the grants
// (or the admin role) that allow it. Disabled users may do nothing and are
// not listed.
func (h *accessHandler) point(c *gin.Context) {
	p, err := h.points.Get(c.Param("id"))
	if err != nil {
		pointError(c, err)
		return
	}
	users, err := h.users.ListUsers()
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	out := []pointAccessEntry{}
	for _, u := range users {
		actions, via := h.decide.Explain(u, p)
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

// user answers GET /api/v1/users/{name}/access (administrators): the
// facets of what the user may view, exactly what that user's own GET
// /api/v1/points/facets answers (query filters apply alike), plus the scope
// their grants add up to.
func (h *accessHandler) user(c *gin.Context) {
	u, err := h.users.GetUser(c.Param("name"))
	if err != nil {
		accountError(c, h.log, err)
		return
	}
	q, err := catalog.ParseQuery(c.Request.URL.Query())
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_query", err.Error())
		return
	}
	scope := h.decide.Scope(u, permissions.View)
	f, err := h.points.Facets(q, scope)
	if err != nil {
		pointError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"username": u.Username, "total": f.Total, "facets": f, "scope": scope})
}
