package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
)

// auditReader is the part of the audit log its readers call.
type auditReader interface {
	Query(f audit.Filter) (records []audit.Record, next uint64, err error)
	ExportCSV(w io.Writer, f audit.Filter) error
	Verify() (n int, err error)
	Head() (seq uint64, hash string, err error)
}

// auditScoper is what the audit log's readers ask permissions: whether the
// caller reads the whole log, and else the scope of their audit grants.
type auditScoper interface {
	CanSystem(u accounts.User, a permissions.SystemAction) bool
	Scope(u accounts.User, a permissions.Action) catalog.Scope
}

// scopedPoints finds a record's point and tells whether a scope covers it.
type scopedPoints interface {
	Get(id string) (catalog.Point, error)
	InScope(p catalog.Point, s catalog.Scope) bool
}

// auditHandler answers the audit log's routes: queries (everything for
// audit.read, else the records of the points the caller's audit grants
// cover), CSV export and the walk of its hash chain.
type auditHandler struct {
	records auditReader
	decide  auditScoper
	points  scopedPoints
	log     *slog.Logger
}

// query answers GET /api/v1/audit?user=&point=&action=&from=&to=&limit=&before=&format=csv.
func (h *auditHandler) query(c *gin.Context) {
	f := audit.Filter{User: c.Query("user"), Point: c.Query("point"), Action: c.Query("action")}
	if u := currentUser(c); !h.decide.CanSystem(u, permissions.ReadAudit) {
		// A point grant's audit action shows that grant's points' records
		// (views, PTZ, changes), nothing about accounts or other points.
		scope := h.decide.Scope(u, permissions.Audit)
		f.PointIn = func(id string) bool {
			p, err := h.points.Get(id)
			return err == nil && h.points.InScope(p, scope)
		}
	}
	for _, tv := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := c.Query(tv.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fail(c, http.StatusBadRequest, "bad_query", tv.name+" must be RFC3339")
				return
			}
			*tv.dst = t
		}
	}
	for _, iv := range []struct {
		name string
		set  func(uint64)
	}{{"limit", func(n uint64) { f.Limit = int(min(n, audit.MaxLimit)) }}, {"before", func(n uint64) { f.Before = n }}} {
		if v := c.Query(iv.name); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				fail(c, http.StatusBadRequest, "bad_query", iv.name+" must be a whole number")
				return
			}
			iv.set(n)
		}
	}
	if c.Query("format") == "csv" {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Header("Content-Disposition", `attachment; filename="tianyan-audit.csv"`)
		if err := h.records.ExportCSV(c.Writer, f); err != nil {
			h.log.Error("audit export", "err", err)
		}
		return
	}
	recs, next, err := h.records.Query(f)
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "audit query failed")
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": recs, "next_before": next})
}

// verify answers GET /api/v1/audit/verify: walks the hash chain.
func (h *auditHandler) verify(c *gin.Context) {
	n, err := h.records.Verify()
	var ce *audit.ChainError
	switch {
	case errors.As(err, &ce):
		c.JSON(http.StatusOK, gin.H{"ok": false, "records": n, "broken_at": ce.Seq, "reason": ce.Reason})
	case err != nil:
		h.log.Error("audit verify", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "cannot read the audit log")
	default:
		seq, hash, _ := h.records.Head()
		c.JSON(http.StatusOK, gin.H{"ok": true, "records": n, "head_seq": seq, "head_hash": hash})
	}
}
