package server

import (
	"strings"
	"testing"
)

// Separation of duties over HTTP: three people, three duties; the
// bootstrap admin hands each over as its holder appears; roles are the
// security administrator's to assign; the audit log is the auditor's, and
// a point grant's audit action shows only that grant's points.
func TestSeparationOfDutiesKeepsTheThreeAdministratorsApart(t *testing.T) {
	cfg := testConfig(t)
	cfg.SeparationOfDuties = true
	a := startAppWith(t, cfg)
	status := func(tok, method, path string, body any) int {
		t.Helper()
		return a.do(method, path, tok, "", body).Status
	}
	want := func(what string, got, want int) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %d, want %d", what, got, want)
		}
	}
	// The bootstrap admin holds every duty while nobody else does.
	want("admin lists grants before a secadmin exists", status(a.token, "GET", "/api/v1/grants", nil), 200)
	want("two duties on one account", status(a.token, "POST", "/api/v1/users",
		map[string]any{"username": "both", "password": "pass-word-11", "roles": []string{"sysadmin", "auditor"}}), 422)
	a.createUser("sam", "pass-word-sam", "sysadmin")
	a.createUser("sec", "pass-word-sec", "secadmin")
	a.createUser("aud", "pass-word-aud", "auditor")
	sam, sec, aud := a.loginAs("sam", "pass-word-sam"), a.loginAs("sec", "pass-word-sec"), a.loginAs("aud", "pass-word-aud")

	// The web app is told what each may do, to show each their own pages.
	for tok, want := range map[string]string{sam: "users.manage,agents.manage,regions.manage,points.manage_all,system.operate",
		sec: "grants.manage", aud: "audit.read"} {
		var me struct {
			SystemActions []string `json:"system_actions"`
		}
		decodeInto(t, a.do("GET", "/api/v1/me", tok, "", nil), &me)
		if got := strings.Join(me.SystemActions, ","); got != want {
			t.Errorf("system_actions %q, want %q", got, want)
		}
	}

	// Every duty has its own holder now: the admin has handed them over.
	want("admin lists grants after secadmin exists", status(a.token, "GET", "/api/v1/grants", nil), 403)
	want("admin verifies audit after auditor exists", status(a.token, "GET", "/api/v1/audit/verify", nil), 403)
	want("admin lists users after sysadmin exists", status(a.token, "GET", "/api/v1/users", nil), 403)

	// The system administrator: accounts and points, no grants, no roles, no audit.
	want("sysadmin creates a user without roles", status(sam, "POST", "/api/v1/users",
		map[string]any{"username": "insp", "password": "pass-word-insp"}), 201)
	want("sysadmin creates a user with a role", status(sam, "POST", "/api/v1/users",
		map[string]any{"username": "x2", "password": "pass-word-x2", "roles": []string{"auditor"}}), 403)
	want("sysadmin gives a role by PATCH", status(sam, "PATCH", "/api/v1/users/insp", map[string]any{"roles": []string{"secadmin"}}), 403)
	want("sysadmin renames, roles sent back unchanged", status(sam, "PATCH", "/api/v1/users/insp",
		map[string]any{"display_name": "Inspector", "roles": []string{}}), 200)
	want("sysadmin lists grants", status(sam, "GET", "/api/v1/grants", nil), 403)
	want("sysadmin grants", status(sam, "POST", "/api/v1/grants", map[string]any{"user": "insp", "categories": []string{"reservoir"},
		"regions": []string{"*"}, "max_level": 4, "actions": []string{"audit"}}), 403)
	want("sysadmin verifies the audit chain", status(sam, "GET", "/api/v1/audit/verify", nil), 403)
	for _, p := range []map[string]any{
		{"id": "res1", "name": "水库", "category": "reservoir", "source": map[string]string{"type": "publish"}},
		{"id": "sch1", "name": "学校", "category": "school", "source": map[string]string{"type": "publish"}},
	} {
		want("sysadmin creates point "+p["id"].(string), status(sam, "POST", "/api/v1/points", p), 201)
	}

	// Handed over, the admin role gives nothing by itself: the bootstrap
	// admin sees points through grants like anyone else (none here).
	want("admin GETs a point after the handover", status(a.token, "GET", "/api/v1/points/res1", nil), 404)
	want("admin watches a point after the handover", a.do("POST", "/api/v1/points/res1/whep", a.token, "application/sdp", "v=0\r\n").Status, 404)

	// The security administrator: grants and roles, nothing else.
	want("secadmin sets roles", status(sec, "PUT", "/api/v1/users/insp/roles", map[string]any{"roles": []string{}}), 200)
	want("secadmin sets two duties", status(sec, "PUT", "/api/v1/users/insp/roles", map[string]any{"roles": []string{"auditor", "secadmin"}}), 422)
	want("secadmin grants audit on reservoirs", status(sec, "POST", "/api/v1/grants", map[string]any{"user": "insp",
		"categories": []string{"reservoir"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"audit"}}), 201)
	want("secadmin creates a user", status(sec, "POST", "/api/v1/users", map[string]any{"username": "x3", "password": "pass-word-x3"}), 403)
	want("secadmin lists users (to grant them)", status(sec, "GET", "/api/v1/users", nil), 200)
	want("auditor lists users", status(aud, "GET", "/api/v1/users", nil), 403)
	want("secadmin verifies the audit chain", status(sec, "GET", "/api/v1/audit/verify", nil), 403)
	want("sysadmin sets roles", status(sam, "PUT", "/api/v1/users/insp/roles", map[string]any{"roles": []string{}}), 403)

	// The auditor: the whole log and its chain.
	want("auditor verifies", status(aud, "GET", "/api/v1/audit/verify", nil), 200)
	want("auditor creates a user", status(aud, "POST", "/api/v1/users", map[string]any{"username": "x4", "password": "pass-word-x4"}), 403)
	actions := func(tok string) map[string]int {
		t.Helper()
		res := a.do("GET", "/api/v1/audit?limit=1000", tok, "", nil)
		if res.Status != 200 {
			t.Fatalf("audit query: %s", res)
		}
		var page struct {
			Items []struct{ Action, Point string }
		}
		decodeInto(t, res, &page)
		out := map[string]int{}
		for _, r := range page.Items {
			out[r.Action+" "+r.Point]++
		}
		return out
	}
	all := actions(aud)
	if all["login.ok "] == 0 || all["point.create res1"] != 1 || all["point.create sch1"] != 1 || all["grant.create "] == 0 {
		t.Errorf("auditor's log lacks records: %v", all)
	}
	// A point grant's audit action: that grant's points, nothing else.
	scoped := actions(a.loginAs("insp", "pass-word-insp"))
	if scoped["point.create res1"] != 1 || len(scoped) != 1 {
		t.Errorf("reservoir auditor sees %v, want only res1's records", scoped)
	}
	if got := actions(sam); len(got) != 0 {
		t.Errorf("sysadmin without an audit grant sees %v", got)
	}
}
