package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// pointStore is the part of the catalog the points resource calls.
type pointStore interface {
	Search(q catalog.Query, s catalog.Scope) (catalog.Result, error)
	Facets(q catalog.Query, s catalog.Scope) (catalog.Facets, error)
	Locations(q catalog.Query, s catalog.Scope) (catalog.Locations, error)
	Create(p catalog.Point, also ...store.ResultHook[catalog.Point]) (catalog.Point, error)
	UpdateIf(id string, patch catalog.PointPatch, allow func(stored, next catalog.Point) error, also ...store.ResultHook[catalog.Point]) (catalog.Point, error)
	Delete(id string, also ...store.TxHook) error
}

// pointDecider is what the points resource asks permissions, beyond the
// guard's decision on the route.
type pointDecider interface {
	Scope(u accounts.User, a permissions.Action) catalog.Scope
	Can(u accounts.User, a permissions.Action, p catalog.Point) bool
	CanCreate(u accounts.User, p catalog.Point) bool
	CanChange(u accounts.User, stored, next catalog.Point) bool
	HoldsSomewhere(u accounts.User, a permissions.Action) bool
}

// agentChecker says whether an edge agent exists and is not revoked.
type agentChecker interface {
	Exists(id string) bool
}

// pointHandler answers the points' routes: search, facets, the map, one
// point, create, change, delete, and what the caller may do on one.
type pointHandler struct {
	points pointStore
	decide pointDecider
	agents agentChecker // nil without edge agents: no point may name one
	trail  auditTrail
	log    *slog.Logger
	// changed and deleted keep the streaming hub in step; either may be nil.
	changed func(catalog.Point)
	deleted func(id string)
}

// pointError maps catalog errors to responses.
func pointError(c *gin.Context, err error) {
	var ve *catalog.ValidationError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &ve) && ve.Field == "body":
		// The body is not the JSON object we read (empty, truncated,
		// malformed): a bad request, as for every other JSON endpoint.
		failField(c, http.StatusBadRequest, "bad_json", ve.Field, ve.Message)
	case errors.As(err, &ve):
		failField(c, http.StatusUnprocessableEntity, "invalid", ve.Field, ve.Message)
	case errors.As(err, &tooBig):
		fail(c, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
	case errors.Is(err, catalog.ErrNotFound):
		notFound(c, "point")
	case errors.Is(err, catalog.ErrExists):
		fail(c, http.StatusConflict, "exists", "a point with this id exists")
	case errors.Is(err, errOutsideGrants):
		fail(c, http.StatusForbidden, "forbidden", "the point as changed would be outside your grants (category, region or level)")
	case errors.Is(err, catalog.ErrCameraBound):
		// Which point owns it is not said: the caller may not see that point.
		failField(c, http.StatusConflict, "camera_bound", "camera", "this camera is already bound to another point")
	default:
		fail(c, http.StatusInternalServerError, "internal", "catalog error")
	}
}

func (h *pointHandler) list(c *gin.Context) {
	q, err := catalog.ParseQuery(c.Request.URL.Query())
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_query", err.Error())
		return
	}
	res, err := h.points.Search(q, h.decide.Scope(currentUser(c), permissions.View))
	if err != nil {
		pointError(c, err)
		return
	}
	for i := range res.Items {
		res.Items[i] = res.Items[i].Redacted()
	}
	c.JSON(http.StatusOK, res)
}

// facets answers GET /api/v1/points/facets: counts by category,
// status and region tree over what the caller may see.
func (h *pointHandler) facets(c *gin.Context) {
	q, err := catalog.ParseQuery(c.Request.URL.Query())
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_query", err.Error())
		return
	}
	f, err := h.points.Facets(q, h.decide.Scope(currentUser(c), permissions.View))
	if err != nil {
		pointError(c, err)
		return
	}
	c.JSON(http.StatusOK, f)
}

// locations answers GET /api/v1/points/geo: where every point the
// caller may view is, in the compact form catalog.Locations, for the map.
// It takes the list's filters but is never paged. The weak ETag is a hash
// of the answer, so a map opened again costs a 304 when nothing the caller
// sees has changed; weak, because the body may go out gzipped or not.
func (h *pointHandler) locations(c *gin.Context) {
	values := c.Request.URL.Query()
	for _, key := range []string{"sort", "limit", "cursor"} {
		if values.Has(key) {
			failField(c, http.StatusBadRequest, "bad_query", key, key+": the map's list is whole and in ID order")
			return
		}
	}
	q, err := catalog.ParseQuery(values)
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_query", err.Error())
		return
	}
	loc, err := h.points.Locations(q, h.decide.Scope(currentUser(c), permissions.View))
	if err != nil {
		pointError(c, err)
		return
	}
	body, err := json.Marshal(loc)
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "cannot encode locations")
		return
	}
	sum := sha256.Sum256(body)
	etag := `W/"` + hex.EncodeToString(sum[:12]) + `"`
	hdr := c.Writer.Header()
	// private: the answer depends on the caller's grants; no-cache: the
	// browser may keep it but must ask (If-None-Match) before each use.
	hdr.Set("Cache-Control", "private, no-cache")
	hdr.Set("ETag", etag)
	if etagMatches(c.GetHeader("If-None-Match"), etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

// etagMatches reports whether an If-None-Match header names etag, by the
// weak comparison RFC 9110 prescribes for If-None-Match.
func etagMatches(header, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}

func (h *pointHandler) get(c *gin.Context) {
	p, ok := visiblePoint(c, h.log, permissions.View)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, p.Redacted())
}

// errOutsideGrants refuses a change whose resulting point the caller may
// not manage.
var errOutsideGrants = errors.New("outside the caller's grants")

// create answers POST /api/v1/points for anyone permissions lets
// create the point the body describes: who may manage it (ManageAllPoints
// or a manage grant), or a technician with the provision grant for its
// category, region and level when it is bound to an edge agent (the
// agent's provisioning page does this with the technician's login). A
// camera already bound to another point is refused with 409.
func (h *pointHandler) create(c *gin.Context) {
	u := currentUser(c)
	if declaredTooLarge(c, maxJSONBody) {
		return
	}
	body := limitBody(c, maxJSONBody)
	p, err := catalog.DecodePoint(body)
	if err != nil && body.exceeded() {
		// DecodePoint reports the cut-off body as malformed JSON; it is too large.
		tooLarge(c, maxJSONBody)
		return
	}
	if err != nil {
		pointError(c, err)
		return
	}
	if !h.decide.CanCreate(u, p) {
		msg := "no grant to create a point of this category, region and level"
		if p.Agent == "" && h.decide.HoldsSomewhere(u, permissions.Provision) {
			msg = "technicians provision cameras through an edge agent"
		}
		fail(c, http.StatusForbidden, "forbidden", msg)
		return
	}
	if !h.checkAgentBinding(c, p) {
		return
	}
	p, err = h.points.Create(p, func(tx *store.Tx, p catalog.Point) error {
		return h.trail.appendIn(tx, audit.Record{User: u.Username, Action: "point.create", Point: p.ID, ClientIP: c.ClientIP(),
			Detail: map[string]string{"agent": p.Agent, "camera": p.Camera}})
	})
	if err != nil {
		pointError(c, err)
		return
	}
	h.log.Info("point created", "point", p.ID, "by", u.Username, "agent", p.Agent)
	if h.changed != nil {
		h.changed(p)
	}
	c.Header("Location", "/api/v1/points/"+p.ID)
	c.JSON(http.StatusCreated, p.Redacted())
}

func (h *pointHandler) patch(c *gin.Context) {
	if _, ok := visiblePoint(c, h.log, permissions.Manage); !ok {
		return
	}
	if declaredTooLarge(c, maxJSONBody) {
		return
	}
	body := limitBody(c, maxJSONBody)
	patch, err := catalog.DecodePatch(body)
	if err != nil && body.exceeded() {
		tooLarge(c, maxJSONBody)
		return
	}
	if err != nil {
		pointError(c, err)
		return
	}
	if patch.Agent != nil && !h.checkAgentBinding(c, catalog.Point{Agent: strings.TrimSpace(*patch.Agent)}) {
		return
	}
	u := currentUser(c)
	// Decided again on the stored point and on the result, under the
	// catalog's write lock: nobody moves a point out of their grant.
	p, err := h.points.UpdateIf(c.Param("id"), patch, func(stored, next catalog.Point) error {
		if !h.decide.CanChange(u, stored, next) {
			return errOutsideGrants
		}
		return nil
	}, func(tx *store.Tx, p catalog.Point) error {
		return h.trail.appendIn(tx, audit.Record{User: u.Username, Action: "point.update", Point: p.ID, ClientIP: c.ClientIP()})
	})
	if err != nil {
		pointError(c, err)
		return
	}
	h.log.Info("point changed", "point", p.ID, "by", currentUser(c).Username)
	if h.changed != nil {
		h.changed(p)
	}
	c.JSON(http.StatusOK, p.Redacted())
}

func (h *pointHandler) delete(c *gin.Context) {
	p, ok := visiblePoint(c, h.log, permissions.Manage)
	if !ok {
		return
	}
	if err := h.points.Delete(p.ID, h.trail.audited(audit.Record{User: currentUser(c).Username, Action: "point.delete", Point: p.ID, ClientIP: c.ClientIP()})); err != nil {
		pointError(c, err)
		return
	}
	h.log.Info("point deleted", "point", p.ID, "by", currentUser(c).Username)
	if h.deleted != nil {
		h.deleted(p.ID)
	}
	c.Status(http.StatusNoContent)
}

// actions answers GET /api/v1/points/{id}/allowed: what the caller may
// do on the point, so the UI shows only controls that will work.
func (h *pointHandler) actions(c *gin.Context) {
	p, ok := visiblePoint(c, h.log, permissions.View)
	if !ok {
		return
	}
	u := currentUser(c)
	actions := []permissions.Action{}
	for _, a := range permissions.AllActions {
		if h.decide.Can(u, a, p) {
			actions = append(actions, a)
		}
	}
	c.JSON(http.StatusOK, gin.H{"actions": actions})
}

// checkAgentBinding refuses a point bound to an agent that does not exist
// or was revoked.
func (h *pointHandler) checkAgentBinding(c *gin.Context, p catalog.Point) bool {
	if p.Agent == "" {
		return true
	}
	if h.agents == nil || !h.agents.Exists(p.Agent) {
		failField(c, http.StatusUnprocessableEntity, "invalid", "agent", "no such edge agent (or it was revoked)")
		return false
	}
	return true
}
