package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
)

// backup answers GET /api/v1/backup: a consistent bbolt snapshot taken in
// one read transaction while the server keeps serving. The file holds
// password hashes and camera credentials, so it is admin-only and never
// cached.
func (s *Server) backup(c *gin.Context) {
	if s.d.Store == nil {
		fail(c, http.StatusNotImplemented, "not_supported", "backup not available")
		return
	}
	u := currentUser(c)
	name := fmt.Sprintf("tianyan-%s.db", time.Now().UTC().Format("20060102T150405Z"))
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	n, err := s.d.Store.Backup(c.Writer)
	if err != nil {
		// Headers are gone; cutting the body short makes the client see a
		// truncated file, which `vms backup` detects when it checks it.
		s.log.Error("backup failed", "err", err, "bytes", n)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup taken", "by", u.Username, "bytes", n)
	s.record(audit.Record{User: u.Username, Action: "backup", ClientIP: c.ClientIP(),
		Detail: map[string]string{"bytes": fmt.Sprint(n)}})
}

// auditVerify answers GET /api/v1/audit/verify: walks the hash chain.
func (s *Server) auditVerify(c *gin.Context) {
	n, err := s.d.Audit.Verify()
	var ce *audit.ChainError
	switch {
	case errors.As(err, &ce):
		c.JSON(http.StatusOK, gin.H{"ok": false, "records": n, "broken_at": ce.Seq, "reason": ce.Reason})
	case err != nil:
		s.log.Error("audit verify", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "cannot read the audit log")
	default:
		seq, hash, _ := s.d.Audit.Head()
		c.JSON(http.StatusOK, gin.H{"ok": true, "records": n, "head_seq": seq, "head_hash": hash})
	}
}
