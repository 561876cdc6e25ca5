package web

import (
	"errors"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/prefs"
)

// prefsError maps prefs errors to responses.
func prefsError(c *gin.Context, err error) {
	var ve *prefs.ValidationError
	switch {
	case errors.As(err, &ve):
		failField(c, http.StatusUnprocessableEntity, "invalid", ve.Field, ve.Message)
	case errors.Is(err, prefs.ErrNotFound):
		notFound(c, "layout")
	case errors.Is(err, prefs.ErrTooMany):
		fail(c, http.StatusConflict, "too_many", "too many saved layouts; delete one first")
	default:
		fail(c, http.StatusInternalServerError, "internal", "preferences store error")
	}
}

// listLayouts answers GET /api/v1/me/layouts.
func (s *Server) listLayouts(c *gin.Context) {
	ls, err := s.d.Prefs.Layouts(currentUser(c).Username)
	if err != nil {
		prefsError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": ls})
}

// getLayout answers GET /api/v1/me/layouts/{name}.
func (s *Server) getLayout(c *gin.Context) {
	l, err := s.d.Prefs.Layout(currentUser(c).Username, c.Param("name"))
	if err != nil {
		prefsError(c, err)
		return
	}
	c.JSON(http.StatusOK, l)
}

// layoutBody is what PUT accepts; the name comes from the path.
type layoutBody struct {
	Name  string      `json:"name"`
	Grid  string      `json:"grid"`
	Tiles []string    `json:"tiles"`
	Tour  *prefs.Tour `json:"tour"`
}

// putLayout answers PUT /api/v1/me/layouts/{name}: 201 when new, 200 when replaced.
func (s *Server) putLayout(c *gin.Context) {
	var b layoutBody
	if !decodeJSON(c, &b) {
		return
	}
	name := c.Param("name")
	if b.Name != "" && b.Name != name {
		failField(c, http.StatusUnprocessableEntity, "invalid", "name", "differs from the name in the path")
		return
	}
	if b.Tour != nil && b.Tour.Category != "" && !slices.ContainsFunc(catalog.Categories, func(k catalog.Category) bool { return k.Code == b.Tour.Category }) {
		failField(c, http.StatusUnprocessableEntity, "invalid", "tour.category", "is not a known category code")
		return
	}
	l, created, err := s.d.Prefs.PutLayout(currentUser(c).Username, prefs.Layout{Name: name, Grid: b.Grid, Tiles: b.Tiles, Tour: b.Tour})
	if err != nil {
		prefsError(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, l)
}

// deleteLayout answers DELETE /api/v1/me/layouts/{name}.
func (s *Server) deleteLayout(c *gin.Context) {
	if err := s.d.Prefs.DeleteLayout(currentUser(c).Username, c.Param("name")); err != nil {
		prefsError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// favouritesBody is what PUT /api/v1/me/favourites accepts.
type favouritesBody struct {
	IDs []string `json:"ids"`
}

// favourites answers GET /api/v1/me/favourites: the saved IDs in order,
// and the points among them the caller may still see.
func (s *Server) favourites(c *gin.Context) {
	ids, err := s.d.Prefs.Favourites(currentUser(c).Username)
	if err != nil {
		prefsError(c, err)
		return
	}
	s.answerFavourites(c, ids)
}

// putFavourites answers PUT /api/v1/me/favourites with the stored list.
func (s *Server) putFavourites(c *gin.Context) {
	var b favouritesBody
	if !decodeJSON(c, &b) {
		return
	}
	if b.IDs == nil {
		failField(c, http.StatusUnprocessableEntity, "invalid", "ids", "is required (an empty list clears)")
		return
	}
	ids, err := s.d.Prefs.SetFavourites(currentUser(c).Username, b.IDs)
	if err != nil {
		prefsError(c, err)
		return
	}
	s.answerFavourites(c, ids)
}

func (s *Server) answerFavourites(c *gin.Context, ids []string) {
	u := currentUser(c)
	items := []catalog.Point{}
	for _, id := range ids {
		p, err := s.d.Catalog.Get(id)
		if err != nil || !s.d.Permissions.Can(u, permissions.View, p) {
			continue // deleted, or no longer granted: kept, not shown
		}
		items = append(items, p.Redacted())
	}
	c.JSON(http.StatusOK, gin.H{"ids": ids, "items": items})
}
