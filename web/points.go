package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
	"github.com/tianyan/vms/streaming"
)

// decodeJSON reads a bounded JSON body into v, answering 400/413 itself.
func decodeJSON(c *gin.Context, v any) bool {
	if !requireJSON(c) {
		return false
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(c, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
			return false
		}
		fail(c, http.StatusBadRequest, "bad_json", "malformed JSON: "+err.Error())
		return false
	}
	return true
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

func (s *Server) listPoints(c *gin.Context) {
	q, err := catalog.ParseQuery(c.Request.URL.Query())
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_query", err.Error())
		return
	}
	res, err := s.d.Catalog.Search(q, s.d.Permissions.Scope(currentUser(c), permissions.View))
	if err != nil {
		pointError(c, err)
		return
	}
	for i := range res.Items {
		res.Items[i] = res.Items[i].Redacted()
	}
	c.JSON(http.StatusOK, res)
}

// pointFacets answers GET /api/v1/points/facets: counts by category,
// status and region tree over what the caller may see.
func (s *Server) pointFacets(c *gin.Context) {
	q, err := catalog.ParseQuery(c.Request.URL.Query())
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_query", err.Error())
		return
	}
	f, err := s.d.Catalog.Facets(q, s.d.Permissions.Scope(currentUser(c), permissions.View))
	if err != nil {
		pointError(c, err)
		return
	}
	c.JSON(http.StatusOK, f)
}

// pointLocations answers GET /api/v1/points/geo: where every point the
// caller may view is, in the compact form catalog.Locations, for the map.
// It takes the list's filters but is never paged. The weak ETag is a hash
// of the answer, so a map opened again costs a 304 when nothing the caller
// sees has changed; weak, because the body may go out gzipped or not.
func (s *Server) pointLocations(c *gin.Context) {
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
	loc, err := s.d.Catalog.Locations(q, s.d.Permissions.Scope(currentUser(c), permissions.View))
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
	h := c.Writer.Header()
	// private: the answer depends on the caller's grants; no-cache: the
	// browser may keep it but must ask (If-None-Match) before each use.
	h.Set("Cache-Control", "private, no-cache")
	h.Set("ETag", etag)
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

func (s *Server) getPoint(c *gin.Context) {
	p, ok := s.visiblePoint(c, permissions.View)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, p.Redacted())
}

// errOutsideGrants refuses a change whose resulting point the caller may
// not manage.
var errOutsideGrants = errors.New("outside the caller's grants")

// createPoint answers POST /api/v1/points for anyone permissions lets
// create the point the body describes: who may manage it (ManageAllPoints
// or a manage grant), or a technician with the provision grant for its
// category, region and level when it is bound to an edge agent (the
// agent's provisioning page does this with the technician's login). A
// camera already bound to another point is refused with 409.
func (s *Server) createPoint(c *gin.Context) {
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
	if !s.d.Permissions.CanCreate(u, p) {
		msg := "no grant to create a point of this category, region and level"
		if p.Agent == "" && s.d.Permissions.HoldsSomewhere(u, permissions.Provision) {
			msg = "technicians provision cameras through an edge agent"
		}
		fail(c, http.StatusForbidden, "forbidden", msg)
		return
	}
	if !s.checkAgentBinding(c, p) {
		return
	}
	p, err = s.d.Catalog.Create(p, func(tx *store.Tx, p catalog.Point) error {
		return s.appendIn(tx, audit.Record{User: u.Username, Action: "point.create", Point: p.ID, ClientIP: c.ClientIP(),
			Detail: map[string]string{"agent": p.Agent, "camera": p.Camera}})
	})
	if err != nil {
		pointError(c, err)
		return
	}
	s.log.Info("point created", "point", p.ID, "by", u.Username, "agent", p.Agent)
	if s.d.PointChanged != nil {
		s.d.PointChanged(p)
	}
	c.Header("Location", "/api/v1/points/"+p.ID)
	c.JSON(http.StatusCreated, p.Redacted())
}

func (s *Server) patchPoint(c *gin.Context) {
	if _, ok := s.visiblePoint(c, permissions.Manage); !ok {
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
	if patch.Agent != nil && !s.checkAgentBinding(c, catalog.Point{Agent: strings.TrimSpace(*patch.Agent)}) {
		return
	}
	u := currentUser(c)
	// Decided again on the stored point and on the result, under the
	// catalog's write lock: nobody moves a point out of their grant.
	p, err := s.d.Catalog.UpdateIf(c.Param("id"), patch, func(stored, next catalog.Point) error {
		if !s.d.Permissions.CanChange(u, stored, next) {
			return errOutsideGrants
		}
		return nil
	}, func(tx *store.Tx, p catalog.Point) error {
		return s.appendIn(tx, audit.Record{User: u.Username, Action: "point.update", Point: p.ID, ClientIP: c.ClientIP()})
	})
	if err != nil {
		pointError(c, err)
		return
	}
	s.log.Info("point changed", "point", p.ID, "by", currentUser(c).Username)
	if s.d.PointChanged != nil {
		s.d.PointChanged(p)
	}
	c.JSON(http.StatusOK, p.Redacted())
}

func (s *Server) deletePoint(c *gin.Context) {
	p, ok := s.visiblePoint(c, permissions.Manage)
	if !ok {
		return
	}
	if err := s.d.Catalog.Delete(p.ID, s.audited(audit.Record{User: currentUser(c).Username, Action: "point.delete", Point: p.ID, ClientIP: c.ClientIP()})); err != nil {
		pointError(c, err)
		return
	}
	s.log.Info("point deleted", "point", p.ID, "by", currentUser(c).Username)
	if s.d.PointDeleted != nil {
		s.d.PointDeleted(p.ID)
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) pointStats(c *gin.Context) {
	p, ok := s.visiblePoint(c, permissions.View)
	if !ok {
		return
	}
	profile := streaming.ProfileMain
	if c.Query("profile") == streaming.ProfileSub {
		profile = streaming.ProfileSub
	}
	st, err := s.d.Hub.Stats(streaming.PathKey(p.ID, profile))
	if err != nil {
		notFound(c, "stream")
		return
	}
	c.JSON(http.StatusOK, st)
}

// drain discards what is left of a body so keep-alive connections survive.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, maxJSONBody)) }
