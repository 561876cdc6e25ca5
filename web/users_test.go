package web

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// fakeAccounts keeps users, and each user's sessions and tokens, in memory.
type fakeAccounts struct {
	mu       sync.Mutex
	users    map[string]accounts.User
	sessions map[string][]string // user → session IDs
	tokens   map[string][]string // user → token IDs
	// err, when set, is what every call answers.
	err   error
	calls []string
}

func newFakeAccounts(users ...accounts.User) *fakeAccounts {
	f := &fakeAccounts{users: map[string]accounts.User{}, sessions: map[string][]string{}, tokens: map[string][]string{}}
	for _, u := range users {
		f.users[u.Username] = u
	}
	return f
}

func (f *fakeAccounts) called(what string) error {
	f.calls = append(f.calls, what)
	return f.err
}

func (f *fakeAccounts) CreateUser(u accounts.User, _ string, also ...store.ResultHook[accounts.User]) (accounts.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.called("CreateUser " + u.Username); err != nil {
		return accounts.User{}, err
	}
	if _, ok := f.users[u.Username]; ok {
		return accounts.User{}, accounts.ErrExists
	}
	if err := commitWith(u, also...); err != nil {
		return accounts.User{}, err
	}
	f.users[u.Username] = u
	return u, nil
}

func (f *fakeAccounts) ListUsers() ([]accounts.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.called("ListUsers"); err != nil {
		return nil, err
	}
	var out []accounts.User
	for _, u := range f.users {
		out = append(out, u)
	}
	return out, nil
}

func (f *fakeAccounts) GetUser(name string) (accounts.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.called("GetUser " + name); err != nil {
		return accounts.User{}, err
	}
	u, ok := f.users[name]
	if !ok {
		return accounts.User{}, accounts.ErrNotFound
	}
	return u, nil
}

func (f *fakeAccounts) UpdateUser(name string, p accounts.UserPatch, also ...store.ResultHook[accounts.User]) (accounts.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.called("UpdateUser " + name); err != nil {
		return accounts.User{}, err
	}
	u, ok := f.users[name]
	if !ok {
		return accounts.User{}, accounts.ErrNotFound
	}
	if p.DisplayName != nil {
		u.DisplayName = *p.DisplayName
	}
	if p.Roles != nil {
		u.Roles = *p.Roles
	}
	if p.Disabled != nil {
		u.Disabled = *p.Disabled
	}
	if err := commitWith(u, also...); err != nil {
		return accounts.User{}, err
	}
	f.users[name] = u
	return u, nil
}

func (f *fakeAccounts) DeleteUser(name string, also ...store.TxHook) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.called("DeleteUser " + name); err != nil {
		return err
	}
	if _, ok := f.users[name]; !ok {
		return accounts.ErrNotFound
	}
	if err := commit(also...); err != nil {
		return err
	}
	delete(f.users, name)
	return nil
}

func (f *fakeAccounts) ResetPassword(name, _ string, also ...store.TxHook) error {
	return f.called("ResetPassword " + name)
}

func (f *fakeAccounts) CreateRole(r accounts.Role, also ...store.TxHook) error {
	return f.called("CreateRole " + r.Name)
}

func (f *fakeAccounts) ListRoles() ([]accounts.Role, error) { return nil, f.called("ListRoles") }

func (f *fakeAccounts) DeleteRole(name string, also ...store.TxHook) error {
	return f.called("DeleteRole " + name)
}

func (f *fakeAccounts) ListSessions(user string) ([]accounts.SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.called("ListSessions " + user); err != nil {
		return nil, err
	}
	var out []accounts.SessionInfo
	for _, id := range f.sessions[user] {
		out = append(out, accounts.SessionInfo{ID: id})
	}
	return out, nil
}

func (f *fakeAccounts) RevokeSession(user, id string, also ...store.TxHook) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.called("RevokeSession " + user + " " + id); err != nil {
		return err
	}
	i := slices.Index(f.sessions[user], id)
	if i < 0 {
		return accounts.ErrNoSession
	}
	if err := commit(also...); err != nil {
		return err
	}
	f.sessions[user] = slices.Delete(f.sessions[user], i, i+1)
	return nil
}

func (f *fakeAccounts) RevokeAllSessions(user string, also ...store.ResultHook[int]) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.called("RevokeAllSessions " + user); err != nil {
		return 0, err
	}
	n := len(f.sessions[user])
	if err := commitWith(n, also...); err != nil {
		return 0, err
	}
	delete(f.sessions, user)
	return n, nil
}

func (f *fakeAccounts) ListTokens(user string) ([]accounts.TokenInfo, error) {
	return nil, f.called("ListTokens " + user)
}

func (f *fakeAccounts) RevokeToken(user, id string, also ...store.TxHook) error {
	return f.called("RevokeToken " + user + " " + id)
}

// fakeGrantStore keeps grants in memory, for the roles and grants routes.
type fakeGrantStore struct {
	mu     sync.Mutex
	grants []permissions.Grant
	seq    int
	fail   error
}

func (f *fakeGrantStore) DeleteGrantsIn(_ *store.Tx, match func(permissions.Grant) bool) ([]permissions.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var gone, kept []permissions.Grant
	for _, g := range f.grants {
		if match(g) {
			gone = append(gone, g)
		} else {
			kept = append(kept, g)
		}
	}
	f.grants = kept
	return gone, nil
}

func (f *fakeGrantStore) Grants() []permissions.Grant {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.grants)
}

func (f *fakeGrantStore) CreateGrant(g permissions.Grant, also ...store.ResultHook[permissions.Grant]) (permissions.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return permissions.Grant{}, f.fail
	}
	f.seq++
	g.ID = "g" + strconv.Itoa(f.seq)
	if err := commitWith(g, also...); err != nil {
		return permissions.Grant{}, err
	}
	f.grants = append(f.grants, g)
	return g, nil
}

func (f *fakeGrantStore) DeleteGrant(id string, also ...store.TxHook) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.grants, func(g permissions.Grant) bool { return g.ID == id })
	if i < 0 {
		return permissions.ErrGrantNotFound
	}
	if err := commit(also...); err != nil {
		return err
	}
	f.grants = slices.Delete(f.grants, i, i+1)
	return nil
}

// usersFixture is the users and /me resources over fakes.
type usersFixture struct {
	accounts *fakeAccounts
	grants   *fakeGrantStore
	audit    *fakeAudit
	s        *Server
}

func newUsersFixture(t *testing.T, users ...accounts.User) *usersFixture {
	f := &usersFixture{accounts: newFakeAccounts(users...), grants: &fakeGrantStore{}, audit: &fakeAudit{}}
	// sys manages users; sec manages grants (and so roles).
	decide := &fakeDecider{t: t, system: map[string][]permissions.SystemAction{
		"sys": {permissions.ManageUsers}, "sec": {permissions.ManageGrants}}}
	creds := credentials{sessions: f.accounts, trail: f.audit.trail(), log: quiet}
	f.s = &Server{
		users: &userHandler{users: f.accounts, creds: creds, grants: f.grants, decide: decide, trail: f.audit.trail(), log: quiet},
		self:  &selfHandler{creds: creds, trail: f.audit.trail(), log: quiet},
	}
	return f
}

func TestRolesAreGivenOnlyByWhoManagesGrants(t *testing.T) {
	f := newUsersFixture(t, accounts.User{Username: "water", Roles: []string{"water-bureau", "viewer"}})
	create := func(who string) http.Handler { return route(t, f.s, "POST /api/v1/users", as(who)) }
	patch := func(who string) http.Handler { return route(t, f.s, "PATCH /api/v1/users/:name", as(who)) }

	call(create("sys"), "POST", "/api/v1/users", `{"username":"mallory","password":"long-enough-pass","roles":["secadmin"]}`).
		want(t, http.StatusForbidden, "forbidden")
	if _, ok := f.accounts.users["mallory"]; ok || len(f.audit.inTx) != 0 {
		t.Fatalf("a sysadmin gave roles: users %v, records %v", f.accounts.users, f.audit.txActions())
	}

	a := call(create("sys"), "POST", "/api/v1/users", `{"username":"fresh","password":"long-enough-pass"}`)
	a.want(t, http.StatusCreated, "")
	if a.Header().Get("Location") != "/api/v1/users/fresh" || !slices.Equal(f.audit.txActions(), []string{"user.create"}) || f.audit.inTx[0].User != "sys" {
		t.Fatalf("Location %q, records %+v", a.Header().Get("Location"), f.audit.inTx)
	}
	call(create("sec"), "POST", "/api/v1/users", `{"username":"auditor1","password":"long-enough-pass","roles":["auditor"]}`).
		want(t, http.StatusCreated, "")
	if r := f.audit.inTx[1]; r.Detail["target"] != "auditor1" || r.Detail["roles"] != "auditor" {
		t.Fatalf("record %+v", r)
	}

	// The admin page sends the roles back as they are, in any order: no role change.
	call(patch("sys"), "PATCH", "/api/v1/users/water", `{"display_name":"Water","roles":["viewer","water-bureau"]}`).want(t, http.StatusOK, "")
	call(patch("sys"), "PATCH", "/api/v1/users/water", `{"roles":["viewer","secadmin"]}`).want(t, http.StatusForbidden, "forbidden")
	if u := f.accounts.users["water"]; u.DisplayName != "Water" || slices.Contains(u.Roles, "secadmin") {
		t.Fatalf("water is %+v", u)
	}

	a = call(route(t, f.s, "PUT /api/v1/users/:name/roles", as("sec")), "PUT", "/api/v1/users/water/roles", `{"roles":null}`)
	a.want(t, http.StatusOK, "")
	if u := f.accounts.users["water"]; u.Roles == nil || len(u.Roles) != 0 {
		t.Fatalf("roles after null: %#v", u.Roles)
	}
	if last := f.audit.inTx[len(f.audit.inTx)-1]; last.Action != "user.roles" || last.User != "sec" || last.Detail["target"] != "water" {
		t.Fatalf("record %+v", last)
	}
}

func TestAccountErrorsAnswerWithTheirOwnStatus(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{accounts.ErrNotFound, 404, "not_found"},
		{accounts.ErrLastAdmin, 409, "last_admin"},
		{accounts.ErrRoleInUse, 409, "in_use"},
		{accounts.ErrDisabled, 409, "disabled"},
		{&accounts.ValidationError{Field: "display_name", Message: "too long"}, 422, "invalid"},
		{accounts.ErrBusy, 503, "busy"},
		{errStore, 500, "internal"},
	} {
		f := newUsersFixture(t, accounts.User{Username: "water"})
		f.accounts.err = tc.err
		a := call(route(t, f.s, "GET /api/v1/users/:name", as("sys")), "GET", "/api/v1/users/water", "")
		a.want(t, tc.status, tc.code)
		if tc.err == accounts.ErrBusy && a.Header().Get("Retry-After") != "1" {
			t.Errorf("busy without Retry-After")
		}
		if tc.code == "invalid" && a.errorField() != "display_name" {
			t.Errorf("validation error names field %q", a.errorField())
		}
	}
}

func TestDeletingAUserTakesTheirGrantsInTheSameTransaction(t *testing.T) {
	f := newUsersFixture(t, accounts.User{Username: "water"}, accounts.User{Username: "roads"})
	f.grants.grants = []permissions.Grant{{ID: "g1", User: "water"}, {ID: "g2", Role: "water"}, {ID: "g3", User: "roads"}, {ID: "g4", User: "water"}}
	h := route(t, f.s, "DELETE /api/v1/users/:name", as("sys"))

	call(h, "DELETE", "/api/v1/users/water", "").want(t, http.StatusNoContent, "")
	if _, ok := f.accounts.users["water"]; ok {
		t.Fatal("still there")
	}
	var left []string
	for _, g := range f.grants.grants {
		left = append(left, g.ID)
	}
	// A role named like the user keeps its grant: only the user's go.
	if !slices.Equal(left, []string{"g2", "g3"}) {
		t.Fatalf("grants left %v", left)
	}
	if acts := f.audit.txActions(); !slices.Equal(acts, []string{"grant.delete", "grant.delete", "user.delete"}) {
		t.Fatalf("records in the transaction %v", acts)
	}
	if r := f.audit.inTx[2]; r.Detail["grants_removed"] != "2" || r.Detail["target"] != "water" || f.audit.inTx[0].Detail["reason"] != "user deleted" {
		t.Fatalf("records %+v", f.audit.inTx)
	}

	// Without its records the deletion does not happen.
	f.audit.fail = errStore
	call(h, "DELETE", "/api/v1/users/roads", "").want(t, http.StatusInternalServerError, "internal")
	if _, ok := f.accounts.users["roads"]; !ok {
		t.Fatal("deleted without its record")
	}
}

func TestSessionsAreThePathUsersForAdministratorsAndTheCallersOnMe(t *testing.T) {
	f := newUsersFixture(t, accounts.User{Username: "water"}, accounts.User{Username: "roads"})
	f.accounts.sessions = map[string][]string{"water": {"s1", "s2", "s3"}, "roads": {"s4"}}

	var got struct {
		Revoked int `json:"revoked"`
	}
	a := call(route(t, f.s, "DELETE /api/v1/users/:name/sessions", as("sys")), "DELETE", "/api/v1/users/water/sessions", "")
	a.want(t, http.StatusOK, "")
	a.decode(t, &got)
	if got.Revoked != 3 || len(f.accounts.sessions["water"]) != 0 || len(f.accounts.sessions["roads"]) != 1 {
		t.Fatalf("revoked %d; sessions left %v", got.Revoked, f.accounts.sessions)
	}
	if r := f.audit.inTx[0]; r.Action != "session.revoke" || r.User != "sys" || r.Detail["target"] != "water" || r.Detail["count"] != "3" {
		t.Fatalf("record %+v", r)
	}

	// On /me the caller's own, whatever the path says.
	me := route(t, f.s, "DELETE /api/v1/me/sessions/:id", as("roads"))
	call(me, "DELETE", "/api/v1/me/sessions/s1", "").want(t, http.StatusNotFound, "not_found")
	call(me, "DELETE", "/api/v1/me/sessions/s4", "").want(t, http.StatusNoContent, "")
	if !slices.Contains(f.accounts.calls, "RevokeSession roads s1") || len(f.accounts.sessions["roads"]) != 0 {
		t.Fatalf("calls %v, sessions %v", f.accounts.calls, f.accounts.sessions)
	}
	a = call(route(t, f.s, "GET /api/v1/me/sessions", as("water")), "GET", "/api/v1/me/sessions", "")
	a.want(t, http.StatusOK, "")
	if f.accounts.calls[len(f.accounts.calls)-1] != "ListSessions water" {
		t.Fatalf("calls %v", f.accounts.calls)
	}
}
