package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
)

// auditReader is the part of the audit log its readers call.
type auditReader interface {
	Query(f audit.Filter) (records []audit.Record, next uint64, err error)
	ExportCSV(w io.Writer, f audit.Filter) error
	Verify() (n int, err error)
	Head() (seq uint64, hash string, err error)
}

// auditHandler answers the audit log's routes: queries, CSV export and
// the walk of its hash chain.
type auditHandler struct {
	records auditReader
	log     *slog.Logger
}

// query answers GET /api/v1/audit?user=&point=&action=&from=&to=&limit=&before=&format=csv.
func (h *auditHandler) query(c *gin.Context) {
	f := audit.Filter{User: c.Query("user"), Point: c.Query("point"), Action: c.Query("action")}
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
