package server

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/audit"
)

// --- helpers for the admin API tests ---------------------------------------

// loginAs logs username in over HTTP and returns the session token.
func (a *testApp) loginAs(username, password string) string {
	a.t.Helper()
	res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": username, "password": password})
	if res.Status != http.StatusOK {
		a.t.Fatalf("login %s: %s", username, res)
	}
	var out struct{ Token string }
	decodeInto(a.t, res, &out)
	return out.Token
}

// createUser creates a user over the API as admin.
func (a *testApp) createUser(username, password string, roles ...string) {
	a.t.Helper()
	if roles == nil {
		roles = []string{}
	}
	res := a.admin(http.MethodPost, "/api/v1/users", map[string]any{
		"username": username, "password": password, "display_name": "User " + username, "roles": roles,
	})
	if res.Status != http.StatusCreated {
		a.t.Fatalf("create user %s: %s", username, res)
	}
}

// doStream sends body with no declared length (chunked), as a client
// streaming a file does.
func (a *testApp) doStream(method, path, token, contentType string, body io.Reader) response {
	a.t.Helper()
	req, err := http.NewRequest(method, a.HTTPURL()+path, io.MultiReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	buf, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: buf}
}

// audited returns the audit records whose action is exactly action, newest first.
func (a *testApp) audited(action string) []audit.Record {
	a.t.Helper()
	recs, _, err := a.Audit.Query(audit.Filter{Action: action, Limit: audit.MaxLimit})
	if err != nil {
		a.t.Fatal(err)
	}
	return slices.DeleteFunc(recs, func(r audit.Record) bool { return r.Action != action })
}

// auditCSV is the whole audit log as an administrator downloads it.
func (a *testApp) auditCSV() string {
	a.t.Helper()
	var buf strings.Builder
	if err := a.Audit.ExportCSV(&buf, audit.Filter{}); err != nil {
		a.t.Fatal(err)
	}
	return buf.String()
}

type userJSON struct {
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name"`
	Roles       []string `json:"roles"`
	Disabled    bool     `json:"disabled"`
}

type listJSON[T any] struct {
	Items []T `json:"items"`
}

// --- users -------------------------------------------------------------------

func TestAdminManagesUsersOverHTTPAndNoReplyCarriesAHash(t *testing.T) {
	a := startApp(t)
	const pw = "alice-pass-123"
	res := a.admin(http.MethodPost, "/api/v1/users", map[string]any{
		"username": "alice", "password": pw, "display_name": "Alice", "roles": []string{},
	})
	if res.Status != http.StatusCreated || res.Header.Get("Location") != "/api/v1/users/alice" {
		t.Fatalf("create: %s (Location %q)", res, res.Header.Get("Location"))
	}
	var u userJSON
	decodeInto(t, res, &u)
	if u.Username != "alice" || u.DisplayName != "Alice" || u.Disabled {
		t.Fatalf("created %+v", u)
	}
	noSecrets := func(what string, res response) {
		t.Helper()
		for _, s := range []string{pw, "argon2", "password_hash", "stream_key"} {
			if strings.Contains(string(res.Body), s) {
				t.Fatalf("%s reply contains %q: %s", what, s, res.Body)
			}
		}
	}
	noSecrets("create", res)

	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"username": "Bad Name", "password": "long-enough-1"}, "username"},
		{map[string]any{"username": "bob", "password": "short"}, "password"},
		{map[string]any{"username": "bob", "password": "long-enough-1", "roles": []string{"no-such-role"}}, "roles"},
	} {
		e := wantError(t, a.admin(http.MethodPost, "/api/v1/users", tc.body), http.StatusUnprocessableEntity)
		if e.Field != tc.field {
			t.Errorf("%v: field %q, want %q", tc.body, e.Field, tc.field)
		}
	}
	wantError(t, a.admin(http.MethodPost, "/api/v1/users", map[string]any{"username": "alice", "password": "other-pass-123"}), http.StatusConflict)
	wantError(t, a.do(http.MethodPost, "/api/v1/users", a.token, "application/json", `{"username":`), http.StatusBadRequest)
	wantError(t, a.admin(http.MethodPost, "/api/v1/users", map[string]any{"username": "bob", "password": "long-enough-1", "is_admin": true}), http.StatusBadRequest)

	res = a.admin(http.MethodGet, "/api/v1/users", nil)
	noSecrets("list", res)
	var list listJSON[userJSON]
	decodeInto(t, res, &list)
	if len(list.Items) != 2 || list.Items[0].Username != "admin" || list.Items[1].Username != "alice" {
		t.Fatalf("list: %s", res)
	}
	res = a.admin(http.MethodGet, "/api/v1/users/alice", nil)
	noSecrets("get", res)
	if res.Status != http.StatusOK {
		t.Fatalf("get: %s", res)
	}
	wantError(t, a.admin(http.MethodGet, "/api/v1/users/nobody", nil), http.StatusNotFound)

	// Alice is no administrator: every user endpoint refuses her.
	alice := a.loginAs("alice", pw)
	for _, rq := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/users"}, {http.MethodPost, "/api/v1/users"}, {http.MethodGet, "/api/v1/users/alice"},
		{http.MethodPatch, "/api/v1/users/alice"}, {http.MethodDelete, "/api/v1/users/admin"},
		{http.MethodPost, "/api/v1/users/admin/password"}, {http.MethodGet, "/api/v1/users/admin/sessions"},
		{http.MethodDelete, "/api/v1/users/admin/sessions"}, {http.MethodGet, "/api/v1/users/admin/tokens"},
		{http.MethodGet, "/api/v1/users/admin/access"}, {http.MethodGet, "/api/v1/roles"}, {http.MethodPost, "/api/v1/roles"},
		{http.MethodDelete, "/api/v1/roles/x"},
	} {
		wantError(t, a.do(rq.method, rq.path, alice, "application/json", `{"roles":["admin"]}`), http.StatusForbidden)
	}

	res = a.admin(http.MethodPatch, "/api/v1/users/alice", map[string]any{"display_name": "Alice Li", "roles": []string{"admin"}})
	decodeInto(t, res, &u)
	if res.Status != http.StatusOK || u.DisplayName != "Alice Li" || !slices.Equal(u.Roles, []string{"admin"}) {
		t.Fatalf("patch: %s", res)
	}
	wantError(t, a.admin(http.MethodPatch, "/api/v1/users/alice", map[string]any{"roles": []string{"nope"}}), http.StatusUnprocessableEntity)
	wantError(t, a.admin(http.MethodPatch, "/api/v1/users/nobody", map[string]any{"display_name": "x"}), http.StatusNotFound)
	wantError(t, a.admin(http.MethodPatch, "/api/v1/users/alice", map[string]any{"colour": "red"}), http.StatusBadRequest)
	// Alice's role applies at her next request, with the same session.
	if res := a.do(http.MethodGet, "/api/v1/users", alice, "", nil); res.Status != http.StatusOK {
		t.Fatalf("alice as admin: %s", res)
	}
	// With two admins either may go; the last one may not.
	if res := a.do(http.MethodDelete, "/api/v1/users/admin", alice, "", nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete admin while alice is admin too: %s", res)
	}
	e := wantError(t, a.do(http.MethodDelete, "/api/v1/users/alice", alice, "", nil), http.StatusConflict)
	if e.Code != "last_admin" {
		t.Fatalf("deleting the last admin: code %q", e.Code)
	}
	wantError(t, a.do(http.MethodPatch, "/api/v1/users/alice", alice, "", map[string]any{"disabled": true}), http.StatusConflict)
	wantError(t, a.do(http.MethodPatch, "/api/v1/users/alice", alice, "", map[string]any{"roles": []string{}}), http.StatusConflict)
	wantError(t, a.do(http.MethodDelete, "/api/v1/users/admin", alice, "", nil), http.StatusNotFound)

	for _, action := range []string{"user.create", "user.update", "user.delete"} {
		if len(a.audited(action)) == 0 {
			t.Errorf("no %s audit record", action)
		}
	}
	if csv := a.auditCSV(); strings.Contains(csv, pw) {
		t.Fatal("the audit log holds a password")
	}
}

func TestDeletingAUserRemovesTheirGrantsSoANewNamesakeGetsNothing(t *testing.T) {
	a := startApp(t)
	a.createUser("carol", "carol-pass-123")
	res := a.admin(http.MethodPost, "/api/v1/grants", map[string]any{
		"user": "carol", "categories": []string{"*"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view"},
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("grant: %s", res)
	}
	a.createPoint("p1", map[string]string{"type": "publish"})
	if res := a.admin(http.MethodDelete, "/api/v1/users/carol", nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete: %s", res)
	}
	var grants listJSON[struct{ ID string }]
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/grants", nil), &grants)
	if len(grants.Items) != 0 {
		t.Fatalf("grants of the deleted user remain: %+v", grants.Items)
	}
	a.createUser("carol", "carol-pass-456")
	tok := a.loginAs("carol", "carol-pass-456")
	wantError(t, a.do(http.MethodGet, "/api/v1/points/p1", tok, "", nil), http.StatusNotFound)
}

// --- roles ---------------------------------------------------------------------

func TestAdminManagesRolesOverHTTP(t *testing.T) {
	a := startApp(t)
	res := a.admin(http.MethodPost, "/api/v1/roles", map[string]string{"name": "water", "description": "Water bureau"})
	if res.Status != http.StatusCreated {
		t.Fatalf("create role: %s", res)
	}
	wantError(t, a.admin(http.MethodPost, "/api/v1/roles", map[string]string{"name": "water"}), http.StatusConflict)
	wantError(t, a.admin(http.MethodPost, "/api/v1/roles", map[string]string{"name": "admin"}), http.StatusConflict)
	e := wantError(t, a.admin(http.MethodPost, "/api/v1/roles", map[string]string{"name": "Not A Role"}), http.StatusUnprocessableEntity)
	if e.Field != "name" {
		t.Fatalf("bad role name: field %q", e.Field)
	}
	wantError(t, a.admin(http.MethodPost, "/api/v1/roles", map[string]any{"name": "x", "members": 3}), http.StatusBadRequest)

	var roles listJSON[struct{ Name, Description string }]
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/roles", nil), &roles)
	// The built-in roles (admin and the three duties) and the one made here.
	names := []string{}
	for _, r := range roles.Items {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "admin,auditor,secadmin,sysadmin,water" || roles.Items[4].Description != "Water bureau" {
		t.Fatalf("roles: %+v", roles.Items)
	}

	a.createUser("dave", "dave-pass-123", "water")
	res = a.admin(http.MethodPost, "/api/v1/grants", map[string]any{
		"role": "water", "categories": []string{"reservoir"}, "regions": []string{"*"}, "max_level": 2, "actions": []string{"view"},
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("grant: %s", res)
	}
	e = wantError(t, a.admin(http.MethodDelete, "/api/v1/roles/water", nil), http.StatusConflict)
	if e.Code != "in_use" {
		t.Fatalf("delete held role: code %q", e.Code)
	}
	if res := a.admin(http.MethodPatch, "/api/v1/users/dave", map[string]any{"roles": []string{}}); res.Status != http.StatusOK {
		t.Fatalf("take role: %s", res)
	}
	if res := a.admin(http.MethodDelete, "/api/v1/roles/water", nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete role: %s", res)
	}
	var grants listJSON[struct{ ID string }]
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/grants", nil), &grants)
	if len(grants.Items) != 0 {
		t.Fatalf("grants of the deleted role remain: %+v", grants.Items)
	}
	wantError(t, a.admin(http.MethodDelete, "/api/v1/roles/water", nil), http.StatusNotFound)
	wantError(t, a.admin(http.MethodDelete, "/api/v1/roles/admin", nil), http.StatusConflict)
	for _, action := range []string{"role.create", "role.delete"} {
		if len(a.audited(action)) == 0 {
			t.Errorf("no %s audit record", action)
		}
	}
}

// --- tokens and sessions ---------------------------------------------------------

type tokenJSON struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Expires time.Time `json:"expires"`
}

func TestDisabledUsersSessionAndAPITokenStopAtOnce(t *testing.T) {
	a := startApp(t)
	a.createUser("bob", "bob-pass-1234")
	session := a.loginAs("bob", "bob-pass-1234")
	res := a.do(http.MethodPost, "/api/v1/me/tokens", session, "", map[string]any{"name": "nvr"})
	if res.Status != http.StatusCreated || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create token: %s", res)
	}
	var tok tokenJSON
	decodeInto(t, res, &tok)
	if !strings.HasPrefix(tok.Token, "tyk_") || tok.ID == "" || tok.Name != "nvr" {
		t.Fatalf("token reply %s", res.Body)
	}
	for _, bearer := range []string{session, tok.Token} {
		if res := a.do(http.MethodGet, "/api/v1/me", bearer, "", nil); res.Status != http.StatusOK {
			t.Fatalf("before disabling: %s", res)
		}
	}

	if res := a.admin(http.MethodPatch, "/api/v1/users/bob", map[string]any{"disabled": true}); res.Status != http.StatusOK {
		t.Fatalf("disable: %s", res)
	}
	for _, bearer := range []string{session, tok.Token} {
		wantError(t, a.do(http.MethodGet, "/api/v1/me", bearer, "", nil), http.StatusUnauthorized)
	}
	wantError(t, a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "bob", "password": "bob-pass-1234"}), http.StatusUnauthorized)
	recs := a.audited("user.update")
	if len(recs) != 1 || recs[0].Detail["disabled"] != "true" || recs[0].Detail["target"] != "bob" {
		t.Fatalf("user.update audit %+v", recs)
	}

	// Enabled again, the integration's token works; the old session stays dead.
	if res := a.admin(http.MethodPatch, "/api/v1/users/bob", map[string]any{"disabled": false}); res.Status != http.StatusOK {
		t.Fatalf("enable: %s", res)
	}
	if res := a.do(http.MethodGet, "/api/v1/me", tok.Token, "", nil); res.Status != http.StatusOK {
		t.Fatalf("token after re-enabling: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/me", session, "", nil), http.StatusUnauthorized)
}

func TestAPITokensAreShownOnceListedWithoutSecretAndRevocable(t *testing.T) {
	a := startApp(t)
	a.createUser("bob", "bob-pass-1234")
	session := a.loginAs("bob", "bob-pass-1234")
	create := func(body any) response {
		return a.do(http.MethodPost, "/api/v1/me/tokens", session, "", body)
	}
	e := wantError(t, create(map[string]any{"name": "x", "expires": time.Now().Add(-time.Hour)}), http.StatusUnprocessableEntity)
	if e.Field != "expires" {
		t.Fatalf("past expiry: field %q", e.Field)
	}
	wantError(t, create(map[string]any{"name": ""}), http.StatusUnprocessableEntity)
	wantError(t, create(map[string]any{"name": "x", "expires": "tomorrow"}), http.StatusBadRequest)

	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	var t1, t2 tokenJSON
	decodeInto(t, create(map[string]any{"name": "nvr", "expires": exp}), &t1)
	decodeInto(t, create(map[string]any{"name": "map"}), &t2)
	if !t1.Expires.Equal(exp) || t2.Token == "" || t1.ID == t2.ID {
		t.Fatalf("tokens %+v %+v", t1, t2)
	}

	res := a.do(http.MethodGet, "/api/v1/me/tokens", session, "", nil)
	var mine listJSON[tokenJSON]
	decodeInto(t, res, &mine)
	if len(mine.Items) != 2 || strings.Contains(string(res.Body), t1.Token) || strings.Contains(string(res.Body), `"token"`) {
		t.Fatalf("token list: %s", res)
	}
	res = a.admin(http.MethodGet, "/api/v1/users/bob/tokens", nil)
	decodeInto(t, res, &mine)
	if len(mine.Items) != 2 || strings.Contains(string(res.Body), t1.Token) {
		t.Fatalf("admin token list: %s", res)
	}
	wantError(t, a.admin(http.MethodGet, "/api/v1/users/nobody/tokens", nil), http.StatusNotFound)

	// The owner revokes one, the admin the other; each stops at once.
	if res := a.do(http.MethodDelete, "/api/v1/me/tokens/"+t1.ID, session, "", nil); res.Status != http.StatusNoContent {
		t.Fatalf("revoke own: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/me", t1.Token, "", nil), http.StatusUnauthorized)
	wantError(t, a.do(http.MethodDelete, "/api/v1/me/tokens/"+t1.ID, session, "", nil), http.StatusNotFound)
	// Bob cannot revoke the admin's tokens by ID: his own list is all he reaches.
	var adminTok tokenJSON
	decodeInto(t, a.admin(http.MethodPost, "/api/v1/me/tokens", map[string]any{"name": "ops"}), &adminTok)
	wantError(t, a.do(http.MethodDelete, "/api/v1/me/tokens/"+adminTok.ID, session, "", nil), http.StatusNotFound)

	if res := a.do(http.MethodGet, "/api/v1/me", t2.Token, "", nil); res.Status != http.StatusOK {
		t.Fatalf("second token: %s", res)
	}
	if res := a.admin(http.MethodDelete, "/api/v1/users/bob/tokens/"+t2.ID, nil); res.Status != http.StatusNoContent {
		t.Fatalf("admin revoke: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/me", t2.Token, "", nil), http.StatusUnauthorized)
	wantError(t, a.admin(http.MethodDelete, "/api/v1/users/bob/tokens/zzzz", nil), http.StatusNotFound)

	if n := len(a.audited("token.create")); n != 3 {
		t.Errorf("%d token.create records, want 3", n)
	}
	if n := len(a.audited("token.revoke")); n != 2 {
		t.Errorf("%d token.revoke records, want 2", n)
	}
	csv := a.auditCSV()
	for _, secret := range []string{t1.Token, t2.Token, adminTok.Token, session, a.token} {
		if strings.Contains(csv, secret) {
			t.Fatal("the audit log holds a token")
		}
	}
}

type sessionJSON struct {
	ID string `json:"id"`
}

// sessionIDs lists the caller's own session IDs.
func (a *testApp) sessionIDs(token string) []string {
	a.t.Helper()
	res := a.do(http.MethodGet, "/api/v1/me/sessions", token, "", nil)
	if res.Status != http.StatusOK {
		a.t.Fatalf("my sessions: %s", res)
	}
	var l listJSON[sessionJSON]
	decodeInto(a.t, res, &l)
	var ids []string
	for _, s := range l.Items {
		ids = append(ids, s.ID)
	}
	return ids
}

func TestSessionsCanBeListedAndRevokedByTheirOwnerAndByAdmins(t *testing.T) {
	a := startApp(t)
	a.createUser("bob", "bob-pass-1234")
	s1 := a.loginAs("bob", "bob-pass-1234")
	first := a.sessionIDs(s1)
	s2 := a.loginAs("bob", "bob-pass-1234")
	both := a.sessionIDs(s2)
	if len(first) != 1 || len(both) != 2 {
		t.Fatalf("sessions %v then %v", first, both)
	}
	id1 := first[0]
	id2 := both[0]
	if id2 == id1 {
		id2 = both[1]
	}

	// Bob ends his second session from the first.
	if res := a.do(http.MethodDelete, "/api/v1/me/sessions/"+id2, s1, "", nil); res.Status != http.StatusNoContent {
		t.Fatalf("revoke own session: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/me", s2, "", nil), http.StatusUnauthorized)
	wantError(t, a.do(http.MethodDelete, "/api/v1/me/sessions/"+id2, s1, "", nil), http.StatusNotFound)
	// The admin's session IDs are not his to end.
	adminIDs := a.sessionIDs(a.token)
	wantError(t, a.do(http.MethodDelete, "/api/v1/me/sessions/"+adminIDs[0], s1, "", nil), http.StatusNotFound)

	// The admin sees and ends bob's remaining session.
	res := a.admin(http.MethodGet, "/api/v1/users/bob/sessions", nil)
	var l listJSON[sessionJSON]
	decodeInto(t, res, &l)
	if len(l.Items) != 1 || l.Items[0].ID != id1 || strings.Contains(string(res.Body), s1) {
		t.Fatalf("admin list: %s", res)
	}
	if res := a.admin(http.MethodDelete, "/api/v1/users/bob/sessions/"+id1, nil); res.Status != http.StatusNoContent {
		t.Fatalf("admin revoke: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/me", s1, "", nil), http.StatusUnauthorized)
	wantError(t, a.admin(http.MethodDelete, "/api/v1/users/bob/sessions/not-an-id", nil), http.StatusNotFound)
	wantError(t, a.admin(http.MethodGet, "/api/v1/users/nobody/sessions", nil), http.StatusNotFound)

	// All at once, by the admin and by bob himself.
	s3, s4 := a.loginAs("bob", "bob-pass-1234"), a.loginAs("bob", "bob-pass-1234")
	res = a.admin(http.MethodDelete, "/api/v1/users/bob/sessions", nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"revoked":2`) {
		t.Fatalf("admin revoke all: %s", res)
	}
	for _, s := range []string{s3, s4} {
		wantError(t, a.do(http.MethodGet, "/api/v1/me", s, "", nil), http.StatusUnauthorized)
	}
	s5 := a.loginAs("bob", "bob-pass-1234")
	res = a.do(http.MethodDelete, "/api/v1/me/sessions", s5, "", nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"revoked":1`) {
		t.Fatalf("revoke all mine: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/me", s5, "", nil), http.StatusUnauthorized)
	if n := len(a.audited("session.revoke")); n != 4 {
		t.Errorf("%d session.revoke records, want 4", n)
	}
	if res := a.admin(http.MethodGet, "/api/v1/me", nil); res.Status != http.StatusOK {
		t.Fatalf("the admin's own session suffered: %s", res)
	}
}

// --- passwords -----------------------------------------------------------------------

func TestChangingPasswordEndsOtherSessionsAndKeepsTheCallerLoggedIn(t *testing.T) {
	a := startApp(t)
	const oldPW, newPW = "bob-pass-1234", "bob-new-pass-5678"
	a.createUser("bob", oldPW)
	s1, s2 := a.loginAs("bob", oldPW), a.loginAs("bob", oldPW)

	e := wantError(t, a.do(http.MethodPost, "/api/v1/me/password", s1, "", map[string]string{"old_password": "wrong-pass-000", "new_password": newPW}), http.StatusForbidden)
	if e.Field != "old_password" {
		t.Fatalf("wrong old password: field %q", e.Field)
	}
	e = wantError(t, a.do(http.MethodPost, "/api/v1/me/password", s1, "", map[string]string{"old_password": oldPW, "new_password": "short"}), http.StatusUnprocessableEntity)
	if e.Field != "new_password" {
		t.Fatalf("short new password: field %q", e.Field)
	}
	wantError(t, a.do(http.MethodPost, "/api/v1/me/password", s1, "application/json", `{"old_password":`), http.StatusBadRequest)
	// Nothing changed so far: both sessions live.
	for _, s := range []string{s1, s2} {
		if res := a.do(http.MethodGet, "/api/v1/me", s, "", nil); res.Status != http.StatusOK {
			t.Fatalf("session after refused changes: %s", res)
		}
	}

	res := a.do(http.MethodPost, "/api/v1/me/password", s1, "", map[string]string{"old_password": oldPW, "new_password": newPW})
	if res.Status != http.StatusOK {
		t.Fatalf("change: %s", res)
	}
	var fresh struct{ Token string }
	decodeInto(t, res, &fresh)
	if fresh.Token == "" || !strings.Contains(res.Header.Get("Set-Cookie"), "tianyan_session=") {
		t.Fatalf("change answered no new session: %s (Set-Cookie %q)", res.Body, res.Header.Get("Set-Cookie"))
	}
	for _, s := range []string{s1, s2} {
		wantError(t, a.do(http.MethodGet, "/api/v1/me", s, "", nil), http.StatusUnauthorized)
	}
	if res := a.do(http.MethodGet, "/api/v1/me", fresh.Token, "", nil); res.Status != http.StatusOK {
		t.Fatalf("the caller's new session: %s", res)
	}
	wantError(t, a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": "bob", "password": oldPW}), http.StatusUnauthorized)
	a.loginAs("bob", newPW)
	if len(a.audited("password.change")) != 1 || len(a.audited("password.change.fail")) != 1 {
		t.Fatal("password.change and password.change.fail are not audited once each")
	}
	if csv := a.auditCSV(); strings.Contains(csv, oldPW) || strings.Contains(csv, newPW) || strings.Contains(csv, fresh.Token) {
		t.Fatal("the audit log holds a password or token")
	}
}

func TestAdminPasswordResetEndsTheUsersSessions(t *testing.T) {
	a := startApp(t)
	a.createUser("bob", "bob-pass-1234")
	s := a.loginAs("bob", "bob-pass-1234")
	wantError(t, a.do(http.MethodPost, "/api/v1/users/bob/password", s, "", map[string]string{"password": "mine-now-123"}), http.StatusForbidden)
	e := wantError(t, a.admin(http.MethodPost, "/api/v1/users/bob/password", map[string]string{"password": "short"}), http.StatusUnprocessableEntity)
	if e.Field != "password" {
		t.Fatalf("short: field %q", e.Field)
	}
	wantError(t, a.admin(http.MethodPost, "/api/v1/users/nobody/password", map[string]string{"password": "long-enough-1"}), http.StatusNotFound)
	if res := a.admin(http.MethodPost, "/api/v1/users/bob/password", map[string]string{"password": "reset-pass-123"}); res.Status != http.StatusNoContent {
		t.Fatalf("reset: %s", res)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/me", s, "", nil), http.StatusUnauthorized)
	a.loginAs("bob", "reset-pass-123")
	recs := a.audited("password.reset")
	if len(recs) != 1 || recs[0].User != "admin" || recs[0].Detail["target"] != "bob" {
		t.Fatalf("password.reset audit %+v", recs)
	}
	if strings.Contains(a.auditCSV(), "reset-pass-123") {
		t.Fatal("the audit log holds the password")
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
