package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/whepclient"
)

func TestAuditHoldsLoginsChangesAndTheViewWithItsDuration(t *testing.T) {
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	a.createPoint("cam1", map[string]string{"type": "rtsp", "url": cam.URL("main")})
	wantError(t, a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "admin", "password": "wrong-password"}), http.StatusUnauthorized)

	c := a.connectViewer("cam1", whepclient.Options{})
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	c.Close()

	var stop audit.Record
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		recs, _, err := a.Audit.Query(audit.Filter{Action: "view.stop", Point: "cam1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			stop = recs[0]
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stop.User != "admin" || stop.DurationMs < 300 {
		t.Fatalf("view.stop record %+v", stop)
	}
	for _, action := range []string{"login.ok", "login.fail", "point.create", "view.start"} {
		recs, _, err := a.Audit.Query(audit.Filter{Action: action})
		if err != nil || len(recs) == 0 {
			t.Fatalf("no %s record (err %v)", action, err)
		}
	}
	if n, err := a.Audit.Verify(); err != nil || n < 5 {
		t.Fatalf("chain verify: n=%d err=%v", n, err)
	}
	res := a.admin(http.MethodGet, "/api/v1/audit?action=view.&format=csv", nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), "view.stop") {
		t.Fatalf("audit CSV: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/audit", "", "", nil), http.StatusUnauthorized)
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
