package web

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
)

// backupSource is the database that GET /api/v1/backup snapshots.
type backupSource interface {
	Backup(w io.Writer) (int64, error)
}

// opsHandler answers the operator's routes: backup and metrics.
type opsHandler struct {
	store   backupSource // nil: no backup
	metrics http.Handler // nil: /metrics is not served
	trail   auditTrail
	log     *slog.Logger
}

// backup answers GET /api/v1/backup: a consistent bbolt snapshot taken in
// one read transaction while the server keeps serving. The file holds
// password hashes and camera credentials, so it is admin-only and never
// cached.
func (h *opsHandler) backup(c *gin.Context) {
	if h.store == nil {
		fail(c, http.StatusNotImplemented, "not_supported", "backup not available")
		return
	}
	u := currentUser(c)
	name := fmt.Sprintf("tianyan-%s.db", time.Now().UTC().Format("20060102T150405Z"))
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	n, err := h.store.Backup(c.Writer)
	if err != nil {
		// Headers are gone; cutting the body short makes the client see a
		// truncated file, which `vms backup` detects when it checks it.
		h.log.Error("backup failed", "err", err, "bytes", n)
		panic(http.ErrAbortHandler)
	}
	h.log.Info("backup taken", "by", u.Username, "bytes", n)
	h.trail.record(audit.Record{User: u.Username, Action: "backup", ClientIP: c.ClientIP(),
		Detail: map[string]string{"bytes": fmt.Sprint(n)}})
}

// serveMetrics answers GET /metrics.
func (h *opsHandler) serveMetrics(c *gin.Context) { h.metrics.ServeHTTP(c.Writer, c.Request) }
