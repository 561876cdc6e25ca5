package web

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// defaultMaxImportBytes bounds an import body, as catalog itself does.
const defaultMaxImportBytes = 64 << 20

// maxReportedRows bounds the row errors one 422 answer lists, so a file of
// 200,000 bad rows does not turn into a response larger than the upload.
const maxReportedRows = 10_000

// transferStore is the part of the catalog that reads and writes whole
// files of points and regions.
type transferStore interface {
	ImportRegionsCSV(r io.Reader, dryRun bool, also ...store.ResultHook[int]) (n int, rowErrs []catalog.RowError, err error)
	ImportPointsIf(r io.Reader, contentType string, dryRun bool, allow func(catalog.Point) error, also ...store.ResultHook[int]) (n int, rowErrs []catalog.RowError, err error)
	ExportPoints(w io.Writer, format string, s catalog.Scope, includeSecrets bool) error
	List() ([]catalog.Point, error)
}

// transferDecider is what imports and exports ask permissions.
type transferDecider interface {
	CanManagePoint(u accounts.User, p catalog.Point) bool
	Scope(u accounts.User, a permissions.Action) catalog.Scope
}

// importHandler answers bulk transfers: points and regions imported from
// files (all or nothing), points exported to one.
type importHandler struct {
	catalog transferStore
	decide  transferDecider
	trail   auditTrail
	log     *slog.Logger
	// maxBytes bounds an import body.
	maxBytes int64
	// changed tells the streaming hub of each imported point; may be nil.
	changed func(catalog.Point)
}

// dryRun reads ?dry_run=; it answers 400 itself for anything but 1/0/true/false.
func dryRun(c *gin.Context) (dry, ok bool) {
	switch c.Query("dry_run") {
	case "", "0", "false":
		return false, true
	case "1", "true":
		return true, true
	}
	fail(c, http.StatusBadRequest, "bad_query", "dry_run must be 1 or 0")
	return false, false
}

// readBody checks the media type against allowed and bounds the body at
// MaxImportBytes, answering 415 or 413 itself.
func (h *importHandler) readBody(c *gin.Context, allowed ...string) (body *limitedBody, mediaType string, ok bool) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || !slices.Contains(allowed, mt) {
		fail(c, http.StatusUnsupportedMediaType, "bad_content_type", "send the file as "+joinOr(allowed))
		return nil, "", false
	}
	if declaredTooLarge(c, h.maxBytes) {
		return nil, "", false
	}
	return limitBody(c, h.maxBytes), mt, true
}

func joinOr(list []string) string {
	out := ""
	for i, s := range list {
		switch {
		case i == 0:
		case i == len(list)-1:
			out += " or "
		default:
			out += ", "
		}
		out += s
	}
	return out
}

// failed answers a failed import: 413 for a body or row count over
// the limits, 422 listing the bad rows (nothing was written), 422 or 400
// for a bad header or document.
func (h *importHandler) failed(c *gin.Context, body *limitedBody, rows []catalog.RowError, err error) {
	var ve *catalog.ValidationError
	switch {
	case body.exceeded():
		tooLarge(c, h.maxBytes)
	case errors.Is(err, catalog.ErrTooLarge):
		fail(c, http.StatusRequestEntityTooLarge, "too_large", err.Error())
	case errors.Is(err, catalog.ErrTooManyRows):
		fail(c, http.StatusRequestEntityTooLarge, "too_many_rows", err.Error())
	case errors.Is(err, errOutsideGrants):
		fail(c, http.StatusForbidden, "forbidden", err.Error()+": you may not manage the points of this row; nothing was written")
	case errors.Is(err, catalog.ErrCameraBound):
		c.AbortWithStatusJSON(http.StatusConflict, gin.H{
			"error":      apiError{Code: "camera_bound", Message: "rows bind cameras that other points (or other rows) are bound to; nothing was written"},
			"rows":       rows[:min(len(rows), maxReportedRows)],
			"rows_total": len(rows),
		})
	case errors.Is(err, catalog.ErrRowsRejected):
		out := gin.H{
			"error":      apiError{Code: "rows_rejected", Message: strconv.Itoa(len(rows)) + " problems in the file; nothing was written"},
			"rows":       rows[:min(len(rows), maxReportedRows)],
			"rows_total": len(rows),
		}
		c.AbortWithStatusJSON(http.StatusUnprocessableEntity, out)
	case errors.As(err, &ve) && ve.Field == "body":
		failField(c, http.StatusBadRequest, "bad_json", ve.Field, ve.Message)
	case errors.As(err, &ve):
		failField(c, http.StatusUnprocessableEntity, "invalid", ve.Field, ve.Message)
	default:
		h.log.Error("import", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "import failed")
	}
}

// regions answers POST /api/v1/regions/import (text/csv with header
// code,name,parent; ?dry_run=1 checks without writing). All or nothing.
func (h *importHandler) regions(c *gin.Context) {
	dry, ok := dryRun(c)
	if !ok {
		return
	}
	body, _, ok := h.readBody(c, catalog.ContentTypeCSV)
	if !ok {
		return
	}
	by := currentUser(c).Username
	n, rows, err := h.catalog.ImportRegionsCSV(body, dry, func(tx *store.Tx, n int) error {
		return h.trail.appendIn(tx, audit.Record{User: by, Action: "region.import", ClientIP: c.ClientIP(),
			Detail: map[string]string{"count": strconv.Itoa(n)}})
	})
	if err != nil || body.over {
		h.failed(c, body, rows, err)
		return
	}
	if dry {
		c.JSON(http.StatusOK, gin.H{"valid": n, "dry_run": true})
		return
	}
	h.log.Info("regions imported", "count", n, "by", by)
	c.JSON(http.StatusOK, gin.H{"imported": n})
}

// points answers POST /api/v1/points/import: CSV (text/csv) or
// GeoJSON (application/geo+json, or application/json), ?dry_run=1 checks
// without writing. All or nothing; imported points join the streaming hub
// at once, as created ones do.
func (h *importHandler) points(c *gin.Context) {
	dry, ok := dryRun(c)
	if !ok {
		return
	}
	body, mt, ok := h.readBody(c, catalog.ContentTypeCSV, catalog.ContentTypeGeoJSON, "application/json")
	if !ok {
		return
	}
	// ImportPoints does not say which IDs it generated, so the new points
	// are found by difference. A point created meanwhile through the API is
	// announced twice, which the hub takes as a no-op.
	var before map[string]bool
	if !dry && h.changed != nil {
		before = h.pointIDs()
	}
	u := currentUser(c)
	n, rows, err := h.catalog.ImportPointsIf(body, mt, dry, func(p catalog.Point) error {
		if !h.decide.CanManagePoint(u, p) {
			return errOutsideGrants
		}
		return nil
	}, func(tx *store.Tx, n int) error {
		return h.trail.appendIn(tx, audit.Record{User: u.Username, Action: "point.import", ClientIP: c.ClientIP(),
			Detail: map[string]string{"count": strconv.Itoa(n), "format": mt}})
	})
	if err != nil || body.over {
		h.failed(c, body, rows, err)
		return
	}
	if dry {
		c.JSON(http.StatusOK, gin.H{"valid": n, "dry_run": true})
		return
	}
	if h.changed != nil && n > 0 {
		points, err := h.catalog.List()
		if err != nil {
			h.log.Error("listing points after import", "err", err)
		}
		for _, p := range points {
			if !before[p.ID] {
				h.changed(p)
			}
		}
	}
	h.log.Info("points imported", "count", n, "format", mt, "by", u.Username)
	c.JSON(http.StatusOK, gin.H{"imported": n})
}

func (h *importHandler) pointIDs() map[string]bool {
	points, err := h.catalog.List()
	if err != nil {
		h.log.Error("listing points before import", "err", err)
	}
	ids := make(map[string]bool, len(points))
	for _, p := range points {
		ids[p.ID] = true
	}
	return ids
}

// export answers GET /api/v1/points/export?format=csv|geojson with
// the points the caller may view, as a download in the form import reads.
// Camera passwords are always written as "***": credentials never leave
// over HTTP, so such a file documents the catalog but re-importing it
// needs the passwords filled in.
func (h *importHandler) export(c *gin.Context) {
	format := c.DefaultQuery("format", catalog.FormatCSV)
	var ctype, ext string
	switch format {
	case catalog.FormatCSV:
		ctype, ext = "text/csv; charset=utf-8", "csv"
	case catalog.FormatGeoJSON:
		ctype, ext = catalog.ContentTypeGeoJSON, "geojson"
	default:
		fail(c, http.StatusBadRequest, "bad_query", "format must be csv or geojson")
		return
	}
	u := currentUser(c)
	c.Header("Content-Type", ctype)
	c.Header("Content-Disposition", `attachment; filename="tianyan-points.`+ext+`"`)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	if err := h.catalog.ExportPoints(c.Writer, format, h.decide.Scope(u, permissions.View), false); err != nil {
		// Headers are gone; the client sees a truncated download.
		h.log.Warn("points export", "user", u.Username, "err", err)
		return
	}
	h.trail.record(audit.Record{User: u.Username, Action: "point.export", ClientIP: c.ClientIP(),
		Detail: map[string]string{"format": format}})
}
