package web

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// Handler tests: one resource's handler type over small in-memory fakes of
// the narrow interfaces it takes, reached through the route table's own
// entry (its path, its rule, its Handle) behind a stand-in for the guard.
// The guard itself, and the real domain behind it, are the route matrix
// test's subject and server/'s.

// quiet is the logger of handlers under test.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// caller is who the stand-in guard lets through, and what it hands on.
type caller struct {
	user accounts.User
	// point is the point the guard would have loaded for a findPath rule.
	point *catalog.Point
}

// as is a caller without a point.
func as(name string, roles ...string) caller {
	return caller{user: accounts.User{Username: name, Roles: roles}}
}

// on is c on the point p.
func (c caller) on(p catalog.Point) caller { c.point = &p; return c }

// route serves the table's route "METHOD /pattern", answered by the handler
// its Handle names among s's resources, behind a stand-in for the guard
// that lets who through as the real one would once it had decided.
func route(t *testing.T, s *Server, key string, who caller) http.Handler {
	t.Helper()
	for _, op := range apiOps {
		if op.Method+" "+op.Path != key {
			continue
		}
		gin.SetMode(gin.ReleaseMode)
		e := gin.New()
		e.Handle(op.Method, op.Path, func(c *gin.Context) {
			c.Set(ctxRule, op.Rule)
			c.Set(ctxUser, who.user)
			c.Set(ctxToken, "token-of-"+who.user.Username)
			if who.point != nil {
				c.Set(ctxPoint, *who.point)
			}
		}, op.Handle(s))
		return e
	}
	t.Fatalf("no route %s in the table", key)
	return nil
}

// answer is a recorded response.
type answer struct {
	*httptest.ResponseRecorder
}

// call sends method url with body (JSON unless ctype says otherwise) to h.
func call(h http.Handler, method, url, body string, ctype ...string) answer {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, url, r)
	if body != "" {
		ct := "application/json"
		if len(ctype) > 0 {
			ct = ctype[0]
		}
		req.Header.Set("Content-Type", ct)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return answer{rec}
}

// errorCode is the code of an error body, "" for anything else.
func (a answer) errorCode() string {
	var body struct {
		Error apiError `json:"error"`
	}
	_ = json.Unmarshal(a.Body.Bytes(), &body)
	return body.Error.Code
}

// errorField is the field an error body names.
func (a answer) errorField() string {
	var body struct {
		Error apiError `json:"error"`
	}
	_ = json.Unmarshal(a.Body.Bytes(), &body)
	return body.Error.Field
}

// want fails t unless the answer has status and, when code is not "", that
// error code.
func (a answer) want(t *testing.T, status int, code string) {
	t.Helper()
	if a.Code != status || code != "" && a.errorCode() != code {
		t.Fatalf("answer %d %s; want %d %s", a.Code, a.Body, status, code)
	}
}

// decode reads the answer's JSON body into v.
func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Body.Bytes(), v); err != nil {
		t.Fatalf("answer %d %q: %v", a.Code, a.Body, err)
	}
}

// fakeAudit is an audit log in memory: it keeps what was appended, in or
// out of a change's transaction, and fails when told to.
type fakeAudit struct {
	mu      sync.Mutex
	records []audit.Record
	inTx    []audit.Record
	fail    error
}

func (f *fakeAudit) Append(r audit.Record) (audit.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return audit.Record{}, f.fail
	}
	f.records = append(f.records, r)
	return r, nil
}

func (f *fakeAudit) AppendTx(_ *store.Tx, r audit.Record) (audit.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return audit.Record{}, f.fail
	}
	f.inTx = append(f.inTx, r)
	return r, nil
}

// trail is an audit trail writing to f.
func (f *fakeAudit) trail() auditTrail { return auditTrail{to: f, log: quiet} }

// actions lists the actions recorded in transactions, in order.
func (f *fakeAudit) txActions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.inTx {
		out = append(out, r.Action)
	}
	return out
}

// standalone lists the actions recorded on their own, in order.
func (f *fakeAudit) standalone() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.records {
		out = append(out, r.Action)
	}
	return out
}

// commit runs a change's hooks as a store would inside its transaction:
// the first error aborts the change.
func commit(hooks ...store.TxHook) error {
	for _, h := range hooks {
		if err := h(nil); err != nil {
			return err
		}
	}
	return nil
}

// commitWith runs result hooks over made, as commit does.
func commitWith[T any](made T, hooks ...store.ResultHook[T]) error {
	for _, h := range hooks {
		if err := h(nil, made); err != nil {
			return err
		}
	}
	return nil
}

// fakeDecider answers for permissions with the functions a test sets; a
// question the test did not expect the handler to ask fails it.
type fakeDecider struct {
	t *testing.T
	// system lists the system actions each user holds.
	system    map[string][]permissions.SystemAction
	can       func(u accounts.User, a permissions.Action, p catalog.Point) bool
	scope     func(u accounts.User, a permissions.Action) catalog.Scope
	canCreate func(u accounts.User, p catalog.Point) bool
	canChange func(u accounts.User, stored, next catalog.Point) bool
	somewhere func(u accounts.User, a permissions.Action) bool
	explain   func(u accounts.User, p catalog.Point) ([]permissions.Action, []string)
}

func (d *fakeDecider) unexpected(what string) {
	d.t.Helper()
	d.t.Errorf("the handler asked permissions %s, which this test does not expect", what)
}

func (d *fakeDecider) CanSystem(u accounts.User, a permissions.SystemAction) bool {
	for _, held := range d.system[u.Username] {
		if held == a {
			return true
		}
	}
	return false
}

func (d *fakeDecider) Can(u accounts.User, a permissions.Action, p catalog.Point) bool {
	if d.can == nil {
		d.unexpected("Can")
		return false
	}
	return d.can(u, a, p)
}

func (d *fakeDecider) Scope(u accounts.User, a permissions.Action) catalog.Scope {
	if d.scope == nil {
		d.unexpected("Scope")
		return catalog.Scope{}
	}
	return d.scope(u, a)
}

func (d *fakeDecider) CanCreate(u accounts.User, p catalog.Point) bool {
	if d.canCreate == nil {
		d.unexpected("CanCreate")
		return false
	}
	return d.canCreate(u, p)
}

func (d *fakeDecider) CanChange(u accounts.User, stored, next catalog.Point) bool {
	if d.canChange == nil {
		d.unexpected("CanChange")
		return false
	}
	return d.canChange(u, stored, next)
}

func (d *fakeDecider) HoldsSomewhere(u accounts.User, a permissions.Action) bool {
	if d.somewhere == nil {
		d.unexpected("HoldsSomewhere")
		return false
	}
	return d.somewhere(u, a)
}

func (d *fakeDecider) Explain(u accounts.User, p catalog.Point) ([]permissions.Action, []string) {
	if d.explain == nil {
		d.unexpected("Explain")
		return nil, nil
	}
	return d.explain(u, p)
}

// errStore is a store failing underneath a handler.
var errStore = errors.New("disk on fire")

// A route naming a handler type New does not wire is a programming error
// caught when the routes are registered, naming the type.
func TestARouteOnAHandlerTypeNobodyWiredPanicsAtRegistration(t *testing.T) {
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "*web.pointHandler") {
			t.Fatalf("panic %q; want it to name the unwired type", msg)
		}
	}()
	at((*pointHandler).get)(&Server{users: &userHandler{}})
	t.Fatal("bound to nothing")
}
