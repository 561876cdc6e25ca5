package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// record appends an event that changes nothing else (a login, a view, an
// export) to the audit log in a transaction of its own; a failure is
// logged, never shown to the caller. A change is recorded with audited
// instead, inside its own transaction.
func (s *Server) record(r audit.Record) {
	if s.d.Audit == nil {
		return
	}
	if _, err := s.d.Audit.Append(r); err != nil {
		s.log.Error("audit append failed", "action", r.Action, "err", err)
	}
}

// errAuditFailed marks a change rolled back because its audit record could
// not be written.
var errAuditFailed = errors.New("audit record not written")

// audited returns a hook for a domain store's mutating method that appends
// r inside the transaction of the change r records: the change and its
// record commit together, and if the record cannot be written the change
// is rolled back.
func (s *Server) audited(r audit.Record) store.TxHook {
	return func(tx *store.Tx) error { return s.appendIn(tx, r) }
}

// appendIn appends r inside tx, the transaction of the change r records;
// without an audit log it does nothing.
func (s *Server) appendIn(tx *store.Tx, r audit.Record) error {
	if s.d.Audit == nil {
		return nil
	}
	if _, err := s.d.Audit.AppendTx(tx, r); err != nil {
		s.log.Error("audit append failed; the change it records is rolled back", "action", r.Action, "err", err)
		return fmt.Errorf("%w: %w", errAuditFailed, err)
	}
	return nil
}

// auditQuery answers GET /api/v1/audit?user=&point=&action=&from=&to=&limit=&before=&format=csv.
func (s *Server) auditQuery(c *gin.Context) {
	f := audit.Filter{User: c.Query("user"), Point: c.Query("point"), Action: c.Query("action")}
	if u := currentUser(c); !s.d.Permissions.CanSystem(u, permissions.ReadAudit) {
		// A point grant's audit action shows that grant's points' records
		// (views, PTZ, changes), nothing about accounts or other points.
		scope := s.d.Permissions.Scope(u, permissions.Audit)
		f.PointIn = func(id string) bool {
			p, err := s.d.Catalog.Get(id)
			return err == nil && s.d.Catalog.InScope(p, scope)
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
		if err := s.d.Audit.ExportCSV(c.Writer, f); err != nil {
			s.log.Error("audit export", "err", err)
		}
		return
	}
	recs, next, err := s.d.Audit.Query(f)
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "audit query failed")
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": recs, "next_before": next})
}
