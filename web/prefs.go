package web

import (
	"errors"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/prefs"
)

// prefsStore keeps each user's saved layouts and favourites.
type prefsStore interface {
	Layouts(user string) ([]prefs.Layout, error)
	Layout(user, name string) (prefs.Layout, error)
	PutLayout(user string, l prefs.Layout) (saved prefs.Layout, created bool, err error)
	DeleteLayout(user, name string) error
	Favourites(user string) ([]string, error)
	SetFavourites(user string, ids []string) ([]string, error)
}

// pointLookup finds one point by ID.
type pointLookup interface {
	Get(id string) (catalog.Point, error)
}

// viewDecider says whether a user may do an action on a point.
type viewDecider interface {
	Can(u accounts.User, a permissions.Action, p catalog.Point) bool
}

// prefsHandler answers the caller's own saved wall layouts and favourite
// points (/api/v1/me/layouts, /api/v1/me/favourites).
type prefsHandler struct {
	prefs  prefsStore
	points pointLookup
	decide viewDecider
}

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
func (h *prefsHandler) listLayouts(c *gin.Context) {
	ls, err := h.prefs.Layouts(currentUser(c).Username)
	if err != nil {
		prefsError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": ls})
}

// getLayout answers GET /api/v1/me/layouts/{name}.
func (h *prefsHandler) getLayout(c *gin.Context) {
	l, err := h.prefs.Layout(currentUser(c).Username, c.Param("name"))
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
func (h *prefsHandler) putLayout(c *gin.Context) {
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
	l, created, err := h.prefs.PutLayout(currentUser(c).Username, prefs.Layout{Name: name, Grid: b.Grid, Tiles: b.Tiles, Tour: b.Tour})
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
func (h *prefsHandler) deleteLayout(c *gin.Context) {
	if err := h.prefs.DeleteLayout(currentUser(c).Username, c.Param("name")); err != nil {
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
func (h *prefsHandler) favourites(c *gin.Context) {
	ids, err := h.prefs.Favourites(currentUser(c).Username)
	if err != nil {
		prefsError(c, err)
		return
	}
	h.answerFavourites(c, ids)
}

// putFavourites answers PUT /api/v1/me/favourites with the stored list.
func (h *prefsHandler) putFavourites(c *gin.Context) {
	var b favouritesBody
	if !decodeJSON(c, &b) {
		return
	}
	if b.IDs == nil {
		failField(c, http.StatusUnprocessableEntity, "invalid", "ids", "is required (an empty list clears)")
		return
	}
	ids, err := h.prefs.SetFavourites(currentUser(c).Username, b.IDs)
	if err != nil {
		prefsError(c, err)
		return
	}
	h.answerFavourites(c, ids)
}

func (h *prefsHandler) answerFavourites(c *gin.Context, ids []string) {
	u := currentUser(c)
	items := []catalog.Point{}
	for _, id := range ids {
		p, err := h.points.Get(id)
		if err != nil || !h.decide.Can(u, permissions.View, p) {
			continue // deleted, or no longer granted: kept, not shown
		}
		items = append(items, p.Redacted())
	}
	c.JSON(http.StatusOK, gin.H{"ids": ids, "items": items})
}
