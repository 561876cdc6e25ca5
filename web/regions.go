package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/store"
)

// regionStore is the part of the catalog that keeps the region tree.
type regionStore interface {
	ListRegions() []catalog.Region
	GetRegion(code string) (catalog.Region, error)
	CreateRegion(r catalog.Region, also ...store.ResultHook[catalog.Region]) (catalog.Region, error)
	UpdateRegion(code, name, parent string, also ...store.ResultHook[catalog.Region]) (catalog.Region, error)
	DeleteRegion(code string, also ...store.TxHook) error
}

// regionHandler answers the region tree's routes (district, street,
// community).
type regionHandler struct {
	regions regionStore
	trail   auditTrail
	log     *slog.Logger
}

// regionError maps catalog region errors to responses.
func regionError(c *gin.Context, log *slog.Logger, err error) {
	var ve *catalog.ValidationError
	switch {
	case errors.As(err, &ve):
		failField(c, http.StatusUnprocessableEntity, "invalid", ve.Field, ve.Message)
	case errors.Is(err, catalog.ErrRegionNotFound):
		notFound(c, "region")
	case errors.Is(err, catalog.ErrRegionExists):
		fail(c, http.StatusConflict, "exists", "a region with this code exists")
	case errors.Is(err, catalog.ErrRegionInUse):
		fail(c, http.StatusConflict, "in_use", "the region still holds points or child regions; move or delete them first")
	default:
		log.Error("region", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "catalog error")
	}
}

// regionNode is a region with its children, for GET /regions?tree=1.
type regionNode struct {
	Code     string       `json:"code"`
	Name     string       `json:"name"`
	Children []regionNode `json:"children,omitempty"`
}

// list answers GET /api/v1/regions: every region sorted by code with
// its parent's code, or with ?tree=1 the forest from its roots. Regions are
// not secret (facets show the whole tree to everyone), so any user may ask.
func (h *regionHandler) list(c *gin.Context) {
	regions := h.regions.ListRegions()
	switch c.Query("tree") {
	case "", "0", "false":
		c.JSON(http.StatusOK, gin.H{"items": regions})
		return
	case "1", "true":
	default:
		fail(c, http.StatusBadRequest, "bad_query", "tree must be 1 or 0")
		return
	}
	children := map[string][]catalog.Region{}
	known := map[string]bool{}
	for _, r := range regions {
		known[r.Code] = true
	}
	var roots []catalog.Region
	for _, r := range regions {
		if r.Parent == "" || !known[r.Parent] {
			roots = append(roots, r)
			continue
		}
		children[r.Parent] = append(children[r.Parent], r)
	}
	// The catalog refuses cycles, so the walk ends; depth is that of the
	// administrative tree (three levels).
	var build func(r catalog.Region) regionNode
	build = func(r catalog.Region) regionNode {
		n := regionNode{Code: r.Code, Name: r.Name}
		for _, ch := range children[r.Code] {
			n.Children = append(n.Children, build(ch))
		}
		return n
	}
	out := make([]regionNode, 0, len(roots))
	for _, r := range roots {
		out = append(out, build(r))
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
}

func (h *regionHandler) get(c *gin.Context) {
	r, err := h.regions.GetRegion(c.Param("code"))
	if err != nil {
		regionError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

type regionRequest struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Parent string `json:"parent"`
}

func (h *regionHandler) create(c *gin.Context) {
	var req regionRequest
	if !decodeJSON(c, &req) {
		return
	}
	by := currentUser(c).Username
	r, err := h.regions.CreateRegion(catalog.Region{Code: req.Code, Name: req.Name, Parent: req.Parent}, func(tx *store.Tx, r catalog.Region) error {
		return h.trail.appendIn(tx, audit.Record{User: by, Action: "region.create", ClientIP: c.ClientIP(),
			Detail: map[string]string{"region": r.Code, "parent": r.Parent}})
	})
	if err != nil {
		regionError(c, h.log, err)
		return
	}
	h.log.Info("region created", "region", r.Code, "parent", r.Parent, "by", by)
	c.Header("Location", "/api/v1/regions/"+r.Code)
	c.JSON(http.StatusCreated, r)
}

// regionPatch changes a region's name or parent; absent fields stay, an
// empty parent makes the region a root.
type regionPatch struct {
	Name   *string `json:"name"`
	Parent *string `json:"parent"`
}

func (h *regionHandler) patch(c *gin.Context) {
	cur, err := h.regions.GetRegion(c.Param("code"))
	if err != nil {
		regionError(c, h.log, err)
		return
	}
	var p regionPatch
	if !decodeJSON(c, &p) {
		return
	}
	name, parent := cur.Name, cur.Parent
	if p.Name != nil {
		name = *p.Name
	}
	if p.Parent != nil {
		parent = *p.Parent
	}
	by := currentUser(c).Username
	r, err := h.regions.UpdateRegion(cur.Code, name, parent, func(tx *store.Tx, r catalog.Region) error {
		return h.trail.appendIn(tx, audit.Record{User: by, Action: "region.update", ClientIP: c.ClientIP(),
			Detail: map[string]string{"region": r.Code, "parent": r.Parent}})
	})
	if err != nil {
		regionError(c, h.log, err)
		return
	}
	h.log.Info("region updated", "region", r.Code, "parent", r.Parent, "by", by)
	c.JSON(http.StatusOK, r)
}

func (h *regionHandler) delete(c *gin.Context) {
	code := c.Param("code")
	by := currentUser(c).Username
	if err := h.regions.DeleteRegion(code, h.trail.audited(audit.Record{User: by, Action: "region.delete", ClientIP: c.ClientIP(),
		Detail: map[string]string{"region": code}})); err != nil {
		regionError(c, h.log, err)
		return
	}
	h.log.Info("region deleted", "region", code, "by", by)
	c.Status(http.StatusNoContent)
}
