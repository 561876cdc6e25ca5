package server

import (
	"net/http"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"github.com/tianyan/vms/camsim"
)

// createPlatformAccount makes an upstream platform's account over HTTP and
// grants it view on every point, so that only its kind can keep it out.
func (a *testApp) createPlatformAccount(name string) {
	a.t.Helper()
	res := a.admin(http.MethodPost, "/api/v1/users", map[string]any{"username": name, "kind": "platform", "display_name": "市级平台"})
	if res.Status != http.StatusCreated {
		a.t.Fatalf("create platform account: %s", res)
	}
	a.grant(map[string]any{"user": name, "categories": []string{"*"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}})
}

func TestPlatformAccountCannotLogInOverHTTPAndIsRefusedLikeABadPassword(t *testing.T) {
	a := startApp(t)
	a.createPlatformAccount("city")
	a.createPoint("cam", map[string]string{"type": "publish"})

	unknown := a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "nobody", "password": "whatever-1"})
	for _, pw := range []string{"", "whatever-1", "city"} {
		res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "city", "password": pw})
		e := wantError(t, res, http.StatusUnauthorized)
		if e.Code != "bad_credentials" || string(res.Body) != string(unknown.Body) {
			t.Errorf("platform login with %q answered %s; an unknown user gets %s", pw, res, unknown)
		}
	}
	// No door lets an administrator give it a password.
	res := a.admin(http.MethodPost, "/api/v1/users/city/password", map[string]string{"password": "a-fine-password"})
	if e := wantError(t, res, http.StatusConflict); e.Code != "platform_account" {
		t.Errorf("reset platform password: %s", res)
	}
	res = a.admin(http.MethodPost, "/api/v1/users", map[string]any{"username": "city2", "kind": "platform", "password": "a-fine-password"})
	if e := wantError(t, res, http.StatusUnprocessableEntity); e.Code != "invalid" {
		t.Errorf("platform account with a password: %s", res)
	}
	// It shows, with its kind, in the users list.
	var users listJSON[struct{ Username, Kind string }]
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/users", nil), &users)
	found := false
	for _, u := range users.Items {
		found = found || u.Username == "city" && u.Kind == "platform"
	}
	if !found {
		t.Errorf("users list %+v lacks city (platform)", users.Items)
	}
}

func TestPlatformAccountCannotReadOverRTSP(t *testing.T) {
	a := startApp(t)
	a.createPlatformAccount("city")
	cam := startCamera(t, camsim.ClipH264Sub)
	a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	for _, pw := range []string{"", "city", "anything-goes"} {
		_, err := readRTSP(t, "rtsp://city:"+pw+"@"+a.RTSP.Addr()+"/cam", true)
		wantRTSPStatus(t, err, base.StatusUnauthorized)
		// Digest proves a stream key, which a platform never has.
		_, err = readRTSP(t, "rtsp://city:"+pw+"@"+a.RTSP.Addr()+"/cam", false)
		wantRTSPStatus(t, err, base.StatusUnauthorized)
	}
	if st := a.stats("cam"); st.State != "idle" {
		t.Fatalf("refused platform readers started the camera: %+v", st)
	}
}
