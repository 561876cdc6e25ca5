package server

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/store"
)

// breakAuditLog makes every audit append fail, as a damaged or full log
// would: it stores an undecodable record past the head without advancing
// the sequence, so the next append cannot read the hash to chain to. The
// returned func removes it, leaving the chain as it was.
func (a *testApp) breakAuditLog() (repair func()) {
	a.t.Helper()
	var key []byte
	err := a.DB.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketAudit)
		key = binary.BigEndian.AppendUint64(nil, b.Sequence()+1)
		return b.Put(key, []byte("not a record"))
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return func() {
		a.t.Helper()
		if err := a.DB.Update(func(tx *bbolt.Tx) error { return tx.Bucket(store.BucketAudit).Delete(key) }); err != nil {
			a.t.Fatal(err)
		}
	}
}

// recordsOf returns the records whose action is exactly action, newest first.
func (a *testApp) recordsOf(action string) []audit.Record {
	a.t.Helper()
	recs, _, err := a.Audit.Query(audit.Filter{Action: action, Limit: audit.MaxLimit})
	if err != nil {
		a.t.Fatal(err)
	}
	return slices.DeleteFunc(recs, func(r audit.Record) bool { return r.Action != action })
}

// mustAdmin sends a request as admin and fails the test unless it answers want.
func (a *testApp) mustAdmin(want int, method, path string, body any) response {
	a.t.Helper()
	res := a.admin(method, path, body)
	if res.Status != want {
		a.t.Fatalf("%s %s: %s, want %d", method, path, res, want)
	}
	return res
}

// TestEveryChangeOverHTTPCommitsWithItsAuditRecordOrNotAtAll walks every
// kind of change the API makes (points, imports, regions, grants, users,
// passwords, sessions, tokens, roles, agents). With the audit log failing,
// each answers 500 and changes nothing; with the log repaired, the same
// request succeeds and leaves exactly one record of its action; and a
// request the server refuses leaves none. The chain verifies at the end.
func TestEveryChangeOverHTTPCommitsWithItsAuditRecordOrNotAtAll(t *testing.T) {
	a := startApp(t)
	ctx := map[string]string{}
	get := func(path string) string {
		res := a.admin(http.MethodGet, path, nil)
		return fmt.Sprintf("%d %s", res.Status, res.Body)
	}
	authenticates := func(name, pw string) string {
		_, err := a.Accounts.Authenticate(name, pw)
		return fmt.Sprint(err == nil)
	}
	sessions := func(name string) string {
		list, err := a.Accounts.ListSessions(name)
		return fmt.Sprint(len(list), err)
	}
	tokens := func(name string) string {
		list, err := a.Accounts.ListTokens(name)
		return fmt.Sprint(list, err)
	}
	grant := func(to map[string]any) string {
		res := a.mustAdmin(http.StatusCreated, http.MethodPost, "/api/v1/grants", to)
		var g struct{ ID string }
		decodeInto(t, res, &g)
		return g.ID
	}
	view := func(key, name string) map[string]any {
		return map[string]any{key: name, "categories": []string{"*"}, "regions": []string{"*"}, "max_level": 2, "actions": []string{"view"}}
	}
	pointsCSV := "id,name,kind,category,region,lat,lon,level,address,tags,ptz,main_url,sub_url\ntx-imp,Imported,,road,,,,,,,,,\n"

	cases := []struct {
		action  string
		setup   func()
		state   func() string
		change  func() response
		want    int
		refused func() response // a request the server turns down
		check   func(rec audit.Record)
	}{
		{action: "point.create",
			state: func() string { return get("/api/v1/points/tx-p1") },
			change: func() response {
				return a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "tx-p1", "name": "Gate", "category": "road", "main": map[string]string{"type": "publish"}})
			},
			want: http.StatusCreated,
			refused: func() response {
				return a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": "tx-p1", "name": "Again", "category": "road", "main": map[string]string{"type": "publish"}})
			},
			check: func(r audit.Record) {
				if r.Point != "tx-p1" || r.User != "admin" {
					t.Errorf("point.create record %+v", r)
				}
			}},
		{action: "point.update",
			state: func() string { return get("/api/v1/points/tx-p1") },
			change: func() response {
				return a.admin(http.MethodPatch, "/api/v1/points/tx-p1", map[string]any{"name": "Renamed", "level": 3})
			},
			want: http.StatusOK,
			refused: func() response {
				return a.admin(http.MethodPatch, "/api/v1/points/tx-nope", map[string]any{"name": "X"})
			}},
		{action: "point.delete",
			state:   func() string { return get("/api/v1/points/tx-p1") },
			change:  func() response { return a.admin(http.MethodDelete, "/api/v1/points/tx-p1", nil) },
			want:    http.StatusNoContent,
			refused: func() response { return a.admin(http.MethodDelete, "/api/v1/points/tx-p1", nil) }},
		{action: "point.import",
			state:   func() string { return get("/api/v1/points/tx-imp") },
			change:  func() response { return a.do(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", pointsCSV) },
			want:    http.StatusOK,
			refused: func() response { return a.do(http.MethodPost, "/api/v1/points/import", a.token, "text/csv", pointsCSV) },
			check: func(r audit.Record) {
				if r.Detail["count"] != "1" {
					t.Errorf("point.import record %+v", r)
				}
			}},
		{action: "region.create",
			state: func() string { return get("/api/v1/regions") },
			change: func() response {
				return a.admin(http.MethodPost, "/api/v1/regions", map[string]string{"code": "440307", "name": "District"})
			},
			want: http.StatusCreated,
			refused: func() response {
				return a.admin(http.MethodPost, "/api/v1/regions", map[string]string{"code": "440307", "name": "Again"})
			}},
		{action: "region.import",
			state: func() string { return get("/api/v1/regions") },
			change: func() response {
				return a.do(http.MethodPost, "/api/v1/regions/import", a.token, "text/csv", "code,name,parent\n440307001,Street,440307\n")
			},
			want: http.StatusOK,
			refused: func() response {
				return a.do(http.MethodPost, "/api/v1/regions/import", a.token, "text/csv", "code,name,parent\n440307001,Street,440307\n")
			}},
		{action: "region.update",
			state: func() string { return get("/api/v1/regions") },
			change: func() response {
				return a.admin(http.MethodPatch, "/api/v1/regions/440307001", map[string]string{"name": "Street A"})
			},
			want: http.StatusOK,
			refused: func() response {
				return a.admin(http.MethodPatch, "/api/v1/regions/440307001", map[string]string{"parent": "440307001"})
			}},
		{action: "region.delete",
			state:   func() string { return get("/api/v1/regions") },
			change:  func() response { return a.admin(http.MethodDelete, "/api/v1/regions/440307001", nil) },
			want:    http.StatusNoContent,
			refused: func() response { return a.admin(http.MethodDelete, "/api/v1/regions/440307001", nil) }},
		{action: "user.create",
			state: func() string { return get("/api/v1/users/tx-user") },
			change: func() response {
				return a.admin(http.MethodPost, "/api/v1/users", map[string]any{"username": "tx-user", "password": "tx-user-pass-1"})
			},
			want: http.StatusCreated,
			refused: func() response {
				return a.admin(http.MethodPost, "/api/v1/users", map[string]any{"username": "tx-user", "password": "tx-user-pass-1"})
			}},
		{action: "grant.create",
			state:   func() string { return get("/api/v1/grants") },
			change:  func() response { return a.admin(http.MethodPost, "/api/v1/grants", view("user", "tx-user")) },
			want:    http.StatusCreated,
			refused: func() response { return a.admin(http.MethodPost, "/api/v1/grants", map[string]any{"user": "tx-user"}) }},
		{action: "grant.delete",
			setup:   func() { ctx["grant"] = grant(view("user", "tx-user")) },
			state:   func() string { return get("/api/v1/grants") },
			change:  func() response { return a.admin(http.MethodDelete, "/api/v1/grants/"+ctx["grant"], nil) },
			want:    http.StatusNoContent,
			refused: func() response { return a.admin(http.MethodDelete, "/api/v1/grants/"+ctx["grant"], nil) }},
		{action: "password.reset",
			state: func() string { return authenticates("tx-user", "tx-user-pass-1") },
			change: func() response {
				return a.admin(http.MethodPost, "/api/v1/users/tx-user/password", map[string]string{"password": "tx-user-pass-2"})
			},
			want: http.StatusNoContent,
			refused: func() response {
				return a.admin(http.MethodPost, "/api/v1/users/tx-nobody/password", map[string]string{"password": "tx-user-pass-2"})
			}},
		{action: "user.update",
			setup: func() { ctx["session"] = a.loginAs("tx-user", "tx-user-pass-2") },
			state: func() string { return get("/api/v1/users/tx-user") + sessions("tx-user") },
			change: func() response {
				return a.admin(http.MethodPatch, "/api/v1/users/tx-user", map[string]any{"disabled": true})
			},
			want: http.StatusOK,
			refused: func() response {
				return a.admin(http.MethodPatch, "/api/v1/users/tx-nobody", map[string]any{"disabled": true})
			}},
		{action: "user.delete",
			setup: func() {
				grant(view("user", "tx-user"))
				ctx["grant.delete before"] = fmt.Sprint(len(a.recordsOf("grant.delete")))
			},
			state: func() string { return get("/api/v1/users/tx-user") + get("/api/v1/grants") },
			change: func() response {
				return a.admin(http.MethodDelete, "/api/v1/users/tx-user", nil)
			},
			want:    http.StatusNoContent,
			refused: func() response { return a.admin(http.MethodDelete, "/api/v1/users/tx-user", nil) },
			check: func(r audit.Record) {
				gd := a.recordsOf("grant.delete")
				// Both grants to the user (one from grant.create above) go
				// in the user's transaction, each with its record.
				if r.Detail["grants_removed"] != "2" || fmt.Sprint(len(gd)-2) != ctx["grant.delete before"] ||
					gd[0].Detail["reason"] != "user deleted" || gd[0].Seq != r.Seq-1 || gd[1].Seq != r.Seq-2 {
					t.Errorf("user.delete record %+v, grant.delete records %+v", r, gd)
				}
			}},
		{action: "password.change",
			setup: func() {
				a.createUser("tx-pw", "tx-pw-pass-111")
				ctx["pw token"] = a.loginAs("tx-pw", "tx-pw-pass-111")
			},
			state: func() string {
				return authenticates("tx-pw", "tx-pw-pass-111") + authenticates("tx-pw", "tx-pw-pass-222")
			},
			change: func() response {
				return a.do(http.MethodPost, "/api/v1/me/password", ctx["pw token"], "", map[string]string{"old_password": "tx-pw-pass-111", "new_password": "tx-pw-pass-222"})
			},
			want: http.StatusOK,
			refused: func() response {
				token := a.loginAs("tx-pw", "tx-pw-pass-222")
				return a.do(http.MethodPost, "/api/v1/me/password", token, "", map[string]string{"old_password": "wrong-pass-999", "new_password": "tx-pw-pass-333"})
			}},
		{action: "session.revoke",
			setup: func() {
				a.createUser("tx-sess", "tx-sess-pass-1")
				a.loginAs("tx-sess", "tx-sess-pass-1")
				list, err := a.Accounts.ListSessions("tx-sess")
				if err != nil || len(list) != 1 {
					t.Fatalf("sessions %v %v", list, err)
				}
				ctx["session id"] = list[0].ID
			},
			state: func() string { return sessions("tx-sess") },
			change: func() response {
				return a.admin(http.MethodDelete, "/api/v1/users/tx-sess/sessions/"+ctx["session id"], nil)
			},
			want: http.StatusNoContent,
			refused: func() response {
				return a.admin(http.MethodDelete, "/api/v1/users/tx-sess/sessions/"+ctx["session id"], nil)
			}},
		{action: "session.revoke",
			setup: func() {
				a.loginAs("tx-sess", "tx-sess-pass-1")
				a.loginAs("tx-sess", "tx-sess-pass-1")
			},
			state:   func() string { return sessions("tx-sess") },
			change:  func() response { return a.admin(http.MethodDelete, "/api/v1/users/tx-sess/sessions", nil) },
			want:    http.StatusOK,
			refused: func() response { return a.admin(http.MethodDelete, "/api/v1/users/tx-nobody/sessions", nil) },
			check: func(r audit.Record) {
				if r.Detail["session"] != "all" || r.Detail["count"] != "2" {
					t.Errorf("session.revoke record %+v", r)
				}
			}},
		{action: "token.create",
			setup: func() { ctx["tok session"] = a.loginAs("tx-sess", "tx-sess-pass-1") },
			state: func() string { return tokens("tx-sess") },
			change: func() response {
				return a.do(http.MethodPost, "/api/v1/me/tokens", ctx["tok session"], "", map[string]string{"name": "ci"})
			},
			want: http.StatusCreated,
			refused: func() response {
				return a.do(http.MethodPost, "/api/v1/me/tokens", ctx["tok session"], "", map[string]string{"name": ""})
			}},
		{action: "token.revoke",
			setup: func() {
				list, err := a.Accounts.ListTokens("tx-sess")
				if err != nil || len(list) != 1 {
					t.Fatalf("tokens %v %v", list, err)
				}
				ctx["token id"] = list[0].ID
			},
			state: func() string { return tokens("tx-sess") },
			change: func() response {
				return a.admin(http.MethodDelete, "/api/v1/users/tx-sess/tokens/"+ctx["token id"], nil)
			},
			want: http.StatusNoContent,
			refused: func() response {
				return a.admin(http.MethodDelete, "/api/v1/users/tx-sess/tokens/"+ctx["token id"], nil)
			}},
		{action: "role.create",
			state: func() string { return get("/api/v1/roles") },
			change: func() response {
				return a.admin(http.MethodPost, "/api/v1/roles", map[string]string{"name": "tx-role"})
			},
			want: http.StatusCreated,
			refused: func() response {
				return a.admin(http.MethodPost, "/api/v1/roles", map[string]string{"name": "tx-role"})
			}},
		{action: "role.delete",
			setup:   func() { grant(view("role", "tx-role")) },
			state:   func() string { return get("/api/v1/roles") + get("/api/v1/grants") },
			change:  func() response { return a.admin(http.MethodDelete, "/api/v1/roles/tx-role", nil) },
			want:    http.StatusNoContent,
			refused: func() response { return a.admin(http.MethodDelete, "/api/v1/roles/tx-role", nil) },
			check: func(r audit.Record) {
				if r.Detail["grants_removed"] != "1" {
					t.Errorf("role.delete record %+v", r)
				}
			}},
		{action: "agent.create",
			state: func() string { return get("/api/v1/agents") },
			change: func() response {
				return a.admin(http.MethodPost, "/api/v1/agents", map[string]string{"name": "mast 7"})
			},
			want:    http.StatusCreated,
			refused: func() response { return a.admin(http.MethodPost, "/api/v1/agents", map[string]string{"name": " "}) },
			check: func(r audit.Record) {
				list, _ := a.Agents.List()
				if len(list) != 1 || r.Detail["agent"] != list[0].ID {
					t.Errorf("agent.create record %+v, agents %+v", r, list)
				}
				ctx["agent"] = list[0].ID
			}},
		{action: "agent.enroll",
			setup: func() {
				res := a.mustAdmin(http.StatusCreated, http.MethodPost, "/api/v1/agents", map[string]string{"name": "mast 8"})
				var created struct {
					Agent struct{ ID string }
					Code  string `json:"enrollment_code"`
				}
				decodeInto(t, res, &created)
				ctx["agent"], ctx["code"] = created.Agent.ID, created.Code
			},
			state: func() string { return get("/api/v1/agents/" + ctx["agent"]) },
			change: func() response {
				return a.do(http.MethodPost, "/api/v1/agents/enroll", "", "", map[string]string{"code": ctx["code"], "hostname": "edge-8"})
			},
			want: http.StatusOK,
			refused: func() response {
				return a.do(http.MethodPost, "/api/v1/agents/enroll", "", "", map[string]string{"code": ctx["code"], "hostname": "edge-8"})
			},
			check: func(r audit.Record) {
				if r.Detail["agent"] != ctx["agent"] {
					t.Errorf("agent.enroll record %+v", r)
				}
			}},
		{action: "agent.revoke",
			state:   func() string { return get("/api/v1/agents/" + ctx["agent"]) },
			change:  func() response { return a.admin(http.MethodPost, "/api/v1/agents/"+ctx["agent"]+"/revoke", nil) },
			want:    http.StatusNoContent,
			refused: func() response { return a.admin(http.MethodPost, "/api/v1/agents/agt-nope/revoke", nil) }},
		{action: "agent.delete",
			state:   func() string { return get("/api/v1/agents/" + ctx["agent"]) },
			change:  func() response { return a.admin(http.MethodDelete, "/api/v1/agents/"+ctx["agent"], nil) },
			want:    http.StatusNoContent,
			refused: func() response { return a.admin(http.MethodDelete, "/api/v1/agents/"+ctx["agent"], nil) }},
	}
	for _, tc := range cases {
		if tc.setup != nil {
			tc.setup()
		}
		before, records := tc.state(), len(a.recordsOf(tc.action))

		repair := a.breakAuditLog()
		res := tc.change()
		repair()
		if res.Status != http.StatusInternalServerError {
			t.Fatalf("%s with the audit log failing: %s, want 500", tc.action, res)
		}
		if after := tc.state(); after != before {
			t.Fatalf("%s with the audit log failing changed\n%s\ninto\n%s", tc.action, before, after)
		}
		if n := len(a.recordsOf(tc.action)); n != records {
			t.Fatalf("%s: a record of a change that did not happen", tc.action)
		}

		if res := tc.change(); res.Status != tc.want {
			t.Fatalf("%s: %s, want %d", tc.action, res, tc.want)
		}
		if tc.state() == before {
			t.Fatalf("%s answered %d but changed nothing", tc.action, tc.want)
		}
		recs := a.recordsOf(tc.action)
		if len(recs) != records+1 {
			t.Fatalf("%s: %d new records, want 1", tc.action, len(recs)-records)
		}
		if tc.check != nil {
			tc.check(recs[0])
		}

		after := tc.state()
		if res := tc.refused(); res.Status < 400 || res.Status >= 500 {
			t.Fatalf("%s: the request meant to be refused answered %s", tc.action, res)
		}
		if n := len(a.recordsOf(tc.action)); n != records+1 || tc.state() != after {
			t.Fatalf("%s: a refused request left %d records or changed state", tc.action, n-records-1)
		}
	}
	if n, err := a.Audit.Verify(); err != nil || n < len(cases) {
		t.Fatalf("audit chain after every change: %d records, %v", n, err)
	}
}
