package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/store"
)

func TestBackupWhileServingRestoresToThatMoment(t *testing.T) {
	cfg := testConfig(t)
	app, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &testApp{App: app, t: t, http: &http.Client{Timeout: 20 * time.Second}}
	a.token = a.login(adminPassword)
	a.createPoint("before", map[string]string{"type": "rtsp", "url": "rtsp://127.0.0.1:1/x"})

	out := filepath.Join(t.TempDir(), "backup.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &BackupClient{BaseURL: a.HTTPURL()}
	if err := c.Login(ctx, "admin", adminPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Backup(ctx, out); err != nil {
		t.Fatalf("backup while serving: %v", err)
	}
	a.createPoint("after", map[string]string{"type": "rtsp", "url": "rtsp://127.0.0.1:1/y"})

	// While the server holds the data dir, restore must refuse.
	if _, err := store.Restore(cfg.DataDir, out); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("restore into a running server's data dir: %v, want ErrLocked", err)
	}
	app.Close(context.Background())

	prev, err := store.Restore(cfg.DataDir, out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(prev); err != nil {
		t.Fatalf("previous database not kept: %v", err)
	}
	app2, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app2.Close(context.Background())
	if _, err := app2.Catalog.Get("before"); err != nil {
		t.Fatalf("point from before the backup is gone: %v", err)
	}
	if _, err := app2.Catalog.Get("after"); err == nil {
		t.Fatal("point created after the backup survived the restore")
	}
	// The backup itself was audited, and the restored chain verifies.
	if n, err := app2.Audit.Verify(); err != nil || n == 0 {
		t.Fatalf("restored audit chain: %d records, %v", n, err)
	}
	recs, _, err := app2.Audit.Query(audit.Filter{Action: "login.ok"})
	if err != nil || len(recs) == 0 {
		t.Fatalf("restored audit log lost its logins: %v", err)
	}
}

func TestBackupNeedsAdminAndDamagedBackupIsNotRestored(t *testing.T) {
	a, tok := grantsFixture(t)
	wantError(t, a.do(http.MethodGet, "/api/v1/backup", tok, "", nil), http.StatusForbidden)
	wantError(t, a.do(http.MethodGet, "/api/v1/backup", "", "", nil), http.StatusUnauthorized)

	res := a.admin(http.MethodGet, "/api/v1/backup", nil)
	if res.Status != http.StatusOK || len(res.Body) < 4096 {
		t.Fatalf("admin backup: %d, %d bytes", res.Status, len(res.Body))
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "truncated.db")
	if err := os.WriteFile(bad, res.Body[:len(res.Body)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	db, err := store.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(filepath.Join(target, store.FileName))
	if _, err := store.Restore(target, bad); err == nil {
		t.Fatal("a truncated backup was restored")
	}
	after, _ := os.ReadFile(filepath.Join(target, store.FileName))
	if string(before) != string(after) {
		t.Fatal("a refused restore changed the database")
	}
	if _, err := store.Restore(target, filepath.Join(dir, "missing.db")); err == nil {
		t.Fatal("restore of a missing file succeeded")
	}
}

func TestAuditVerifyEndpointReportsIntactChain(t *testing.T) {
	a := startApp(t)
	res := a.admin(http.MethodGet, "/api/v1/audit/verify", nil)
	var v struct {
		OK      bool `json:"ok"`
		Records int  `json:"records"`
	}
	decodeInto(t, res, &v)
	if res.Status != http.StatusOK || !v.OK || v.Records < 1 {
		t.Fatalf("audit verify: %s", res)
	}
}
