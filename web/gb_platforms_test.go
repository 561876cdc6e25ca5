package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/store"
)

// userBook finds users in a map.
type userBook map[string]accounts.User

func (b userBook) GetUser(name string) (accounts.User, error) {
	if u, ok := b[name]; ok {
		return u, nil
	}
	return accounts.User{}, fmt.Errorf("user %q: %w", name, accounts.ErrNotFound)
}

func newPlatformServer(t *testing.T) (*Server, *fakeAudit, *gb28181.PlatformStore) {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ps := gb28181.NewPlatformStore(db)
	log := &fakeAudit{}
	book := userBook{"city": {Username: "city", Kind: accounts.KindPlatform}, "alice": {Username: "alice"}}
	status := func(id string) gb28181.PlatformStatus {
		return gb28181.PlatformStatus{Registered: true, LastError: "none for " + id}
	}
	s := &Server{platforms: &platformHandler{platforms: ps, accounts: book, status: status, trail: log.trail(), log: quiet}}
	return s, log, ps
}

func TestPlatformsAPINeverReturnsThePasswordAndAuditsEveryChange(t *testing.T) {
	s, log, _ := newPlatformServer(t)
	admin := as("ops", "sysadmin")
	const id = "44030000002000000001"
	body := `{"id":"` + id + `","address":"10.9.0.1:5060","transport":"tcp","password":"s3cret-pass","account":"city","enabled":true}`
	res := call(route(t, s, "POST /api/v1/gb/platforms", admin), "POST", "/api/v1/gb/platforms", body)
	res.want(t, http.StatusCreated, "")
	var got struct {
		gb28181.Platform
		Status gb28181.PlatformStatus `json:"status"`
	}
	res.decode(t, &got)
	if got.ID != id || got.Transport != "tcp" || !got.PasswordSet || !got.Status.Registered {
		t.Errorf("created %+v", got)
	}
	for _, a := range []answer{
		res,
		call(route(t, s, "GET /api/v1/gb/platforms", admin), "GET", "/api/v1/gb/platforms", ""),
		call(route(t, s, "GET /api/v1/gb/platforms/:id", admin), "GET", "/api/v1/gb/platforms/"+id, ""),
		call(route(t, s, "PATCH /api/v1/gb/platforms/:id", admin), "PATCH", "/api/v1/gb/platforms/"+id, `{"password":"n3w-s3cret","keepalive_interval_s":20}`),
	} {
		if a.Code >= 300 || strings.Contains(a.Body.String(), "s3cret") {
			t.Errorf("answer %d %s: failed or shows the password", a.Code, a.Body)
		}
	}
	call(route(t, s, "DELETE /api/v1/gb/platforms/:id", admin), "DELETE", "/api/v1/gb/platforms/"+id, "").want(t, http.StatusNoContent, "")
	if fmt.Sprint(log.txActions()) != "[gb.platform.create gb.platform.update gb.platform.delete]" {
		t.Errorf("audited in transactions: %v", log.txActions())
	}
	for _, r := range log.inTx {
		if strings.Contains(fmt.Sprint(r.Detail), "s3cret") {
			t.Errorf("audit record holds the password: %+v", r.Detail)
		}
	}
	if log.inTx[1].Detail["password_changed"] != "true" {
		t.Errorf("update record %+v does not say the password changed", log.inTx[1].Detail)
	}
}

func TestPlatformsAPIWantsAPlatformAccountAndValidFields(t *testing.T) {
	s, _, ps := newPlatformServer(t)
	admin := as("ops", "sysadmin")
	post := func(body string) answer {
		return call(route(t, s, "POST /api/v1/gb/platforms", admin), "POST", "/api/v1/gb/platforms", body)
	}
	for account, why := range map[string]string{"alice": "a person", "ghost": "nobody"} {
		a := post(`{"id":"44030000002000000001","address":"10.9.0.1:5060","account":"` + account + `"}`)
		if a.Code != http.StatusUnprocessableEntity || a.errorField() != "account" {
			t.Errorf("account of %s: %d %s", why, a.Code, a.Body)
		}
	}
	a := post(`{"id":"4403","address":"10.9.0.1:5060","account":"city"}`)
	if a.Code != http.StatusUnprocessableEntity || a.errorField() != "id" {
		t.Errorf("short id: %d %s", a.Code, a.Body)
	}
	if l, _ := ps.List(); len(l) != 0 {
		t.Errorf("refused creates stored %d platforms", len(l))
	}
	post(`{"id":"44030000002000000001","address":"10.9.0.1:5060","account":"city"}`).want(t, http.StatusCreated, "")
	post(`{"id":"44030000002000000001","address":"10.9.0.1:5060","account":"city"}`).want(t, http.StatusConflict, "exists")
	call(route(t, s, "GET /api/v1/gb/platforms/:id", admin), "GET", "/api/v1/gb/platforms/44030000002000000009", "").want(t, http.StatusNotFound, "not_found")
	patch := call(route(t, s, "PATCH /api/v1/gb/platforms/:id", admin), "PATCH", "/api/v1/gb/platforms/44030000002000000001", `{"account":"alice"}`)
	if patch.Code != http.StatusUnprocessableEntity || patch.errorField() != "account" {
		t.Errorf("patch to a person's account: %d %s", patch.Code, patch.Body)
	}
}

func TestPlatformChangeWhoseAuditFailsChangesNothing(t *testing.T) {
	s, log, ps := newPlatformServer(t)
	log.fail = errors.New("disk full")
	res := call(route(t, s, "POST /api/v1/gb/platforms", as("ops", "sysadmin")), "POST", "/api/v1/gb/platforms",
		`{"id":"44030000002000000001","address":"10.9.0.1:5060","account":"city"}`)
	res.want(t, http.StatusInternalServerError, "internal")
	if l, _ := ps.List(); len(l) != 0 {
		t.Errorf("an unaudited create stored %d platforms", len(l))
	}
}
