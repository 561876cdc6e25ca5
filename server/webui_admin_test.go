package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/edge"
)

// Admin pages are drawn for a desktop: the IOC's duty officers and the
// bureau's administrators work at one.
const adminWidth, adminHeight = 1366, 900

// openAdmin shows an admin section and waits until it has drawn.
func (b *uiBrowser) openAdmin(section, query string) {
	b.t.Helper()
	b.do("open admin "+section, 5*time.Second, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, "#/admin/"+section+query)))
	b.waitJS(section+" drawn", fmt.Sprintf(`document.querySelector('#admin-%s')?.dataset.ready === "1"`, section), 10*time.Second)
}

// click clicks the element matched by css.
func (b *uiBrowser) click(what, css string) {
	b.t.Helper()
	b.do(what, 5*time.Second, chromedp.Click(chromedp.CSS(css)))
}

// typeIn replaces the text of the input matched by css, typing it.
func (b *uiBrowser) typeIn(css, text string) {
	b.t.Helper()
	b.do("type into "+css, 5*time.Second,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ""`, css)),
		chromedp.SendKeys(chromedp.CSS(css), text))
}

// text is the textContent of the element matched by css ("" when absent).
func (b *uiBrowser) text(css string) string {
	b.t.Helper()
	return uiEval[string](b, fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ""`, css))
}

// TestAdminGrantsARestrictedUserWhoSeesExactlyThat is the admin's day: in
// the web app, create a user and a grant and check both previews; then, in
// another person's browser, that user sees the granted category only, and
// a typed link to a point outside it says "no permission". A second grant
// shows up for the user on reload, without logging in again. The audit
// page lists the user's view and exports it as CSV, the chain verifies,
// the health page shows online rates and the offline points longest first,
// and an expired admin session returns to the same admin page after login.
func TestAdminGrantsARestrictedUserWhoSeesExactlyThat(t *testing.T) {
	a := startApp(t)
	uiDistrict(t, a)
	cam := startCamera(t, camsim.ClipH264Sub)
	uiPoint(t, a, catalog.Point{ID: "res1", Name: "水库大坝", Category: "reservoir", Region: "440307001001",
		Main: catalog.Source{Type: catalog.SourceRTSP, URL: cam.URL("main")}})
	uiPoint(t, a, catalog.Point{ID: "res2", Name: "水库泄洪道", Category: "reservoir", Region: "440307002001"})
	uiPoint(t, a, catalog.Point{ID: "riv1", Name: "河道闸口", Category: "river", Region: "440307001002"})
	uiPoint(t, a, catalog.Point{ID: "sch1", Name: "学校正门", Category: "school", Region: "440307002002"})
	now := time.Now()
	for id, st := range map[string]struct {
		state string
		ago   time.Duration
	}{"res1": {catalog.StateOnline, time.Hour}, "res2": {catalog.StateOffline, 3 * time.Hour}, "riv1": {catalog.StateOffline, 90 * time.Minute}} {
		if err := a.Catalog.SetStatus(id, st.state, now.Add(-st.ago)); err != nil {
			t.Fatal(err)
		}
	}
	base := a.HTTPURL()

	b := newUIBrowser(t, adminWidth, adminHeight, false)
	b.do("open the admin section", 15*time.Second, chromedp.Navigate(base+"/#/admin/users"))
	b.login("admin", adminPassword)
	b.waitJS("users drawn", `document.querySelector('#admin-users')?.dataset.ready === "1"`, 10*time.Second)

	// A user, created through the form.
	b.typeIn("#nu-name", "water")
	b.typeIn("#nu-pass", "water-pass-123")
	b.typeIn("#nu-display", "水务局 王工")
	b.click("create the user", `#user-form button[type="submit"]`)
	b.waitJS("the new user listed", `document.querySelector('#users tr[data-user="water"]')`, 10*time.Second)
	if u, err := a.Accounts.GetUser("water"); err != nil || u.DisplayName != "水务局 王工" || u.IsAdmin() {
		t.Fatalf("user as stored: %+v, %v", u, err)
	}
	b.screenshot("admin-users")

	// A grant: reservoirs, every region, level 1, view.
	b.openAdmin("grants", "?user=water")
	b.click("pick reservoirs", `#grant-form input[name="g-cat"][value="reservoir"]`)
	b.click("pick every region", `#grant-form input[name="g-region"][value="*"]`)
	b.click("grant", `#grant-form button[type="submit"]`)
	b.waitJS("the grant listed", `document.querySelector('#grants tr[data-user="water"]')`, 10*time.Second)
	var stored struct {
		Items []struct {
			User                string
			Categories, Regions []string
			MaxLevel            int `json:"max_level"`
			Actions             []string
		}
	}
	decodeInto(t, a.admin(http.MethodGet, "/api/v1/grants", nil), &stored)
	grants := stored.Items
	if len(grants) != 1 || grants[0].User != "water" || strings.Join(grants[0].Categories, ",") != "reservoir" ||
		strings.Join(grants[0].Regions, ",") != "*" || grants[0].MaxLevel != 1 || fmt.Sprint(grants[0].Actions) != "[view]" {
		t.Fatalf("grants as stored: %+v", grants)
	}
	// What can water see: the two reservoirs, nothing else.
	b.waitJS("the user preview", `document.querySelector('#ua-total')?.textContent === "2"`, 10*time.Second)
	if cats := uiEval[[]string](b, `[...document.querySelectorAll('#ua-categories li')].map(li => li.dataset.category + "=" + li.querySelector("b").textContent)`); fmt.Sprint(cats) != "[reservoir=2]" {
		t.Errorf("user preview categories %v, want [reservoir=2]", cats)
	}
	// Who can see res1: admin by role and water by the grant; riv1: admin only.
	whoCanSee := func(id string) []string {
		t.Helper()
		b.typeIn("#pa-point", id)
		b.click("check the point", `#pa-form button[type="submit"]`)
		b.waitJS("the point preview of "+id, fmt.Sprintf(`document.querySelector('#pa-result b')?.textContent === %q`, map[string]string{"res1": "水库大坝", "riv1": "河道闸口"}[id]), 10*time.Second)
		return uiEval[[]string](b, `[...document.querySelectorAll('#pa-table tr[data-user]')].map(r => r.dataset.user)`)
	}
	if got := whoCanSee("riv1"); fmt.Sprint(got) != "[admin]" {
		t.Errorf("who can see riv1: %v, want [admin]", got)
	}
	if got := whoCanSee("res1"); fmt.Sprint(got) != "[admin water]" {
		t.Errorf("who can see res1: %v, want [admin water]", got)
	}
	b.screenshot("admin-grants-previews")
	b.do("scroll to the top", 5*time.Second, chromedp.Evaluate[chromedp.Void](`document.querySelector(".view").scrollTo(0, 0)`))
	b.screenshot("admin-grants")

	// The user, in a browser of their own.
	u := b.incognito()
	u.do("open the app as the user", 15*time.Second, chromedp.Navigate(base+"/#/"))
	u.login("water", "water-pass-123")
	u.waitJS("the granted category", `document.querySelector('#categories a.tile[data-category="reservoir"] .tile-count')?.textContent === "2"`, 10*time.Second)
	if tiles := uiEval[[]string](u, `[...document.querySelectorAll('#categories a.tile')].map(a => a.dataset.category)`); fmt.Sprint(tiles) != "[reservoir]" {
		t.Errorf("the user's category tiles: %v, want [reservoir]", tiles)
	}
	u.do("search everything", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/l"`))
	u.waitJS("the full list", `document.querySelector("#total")?.textContent === "2" && document.querySelectorAll('#points .vrow[data-id]').length === 2`, 10*time.Second)
	if ids := uiEval[[]string](u, `[...document.querySelectorAll('#points .vrow[data-id]')].map(r => r.dataset.id).sort()`); fmt.Sprint(ids) != "[res1 res2]" {
		t.Errorf("the user's list: %v, want [res1 res2]", ids)
	}
	u.do("type the river point's link", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/p/riv1"`))
	u.waitJS("no permission", `document.querySelector("#status")?.dataset.state === "denied"`, 10*time.Second)
	if s := u.text("#status"); !strings.Contains(s, "无权查看") {
		t.Errorf("status for a point outside the grant: %q, want it to say 无权查看", s)
	}
	u.screenshot("admin-restricted-user-denied")
	u.do("open the reservoir point", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/p/res1"`))
	u.waitJS("the granted point live", `document.querySelector("#status")?.dataset.state === "live"`, 20*time.Second)
	// A camera pulled over RTSP has no agent to ask: the snapshot is the frame on screen.
	u.click("snapshot", "#snap")
	u.waitJS("a snapshot of the frame", `document.querySelector("#snap").dataset.source === "frame"`, 10*time.Second)
	if n := u.requested(base + "/api/v1/points/res1/snapshot.jpg"); n != 0 {
		t.Errorf("asked the server for a snapshot of a point without an agent %d times", n)
	}

	// The admin grants rivers too; the user reloads and sees them, still logged in.
	b.do("pick rivers only", 5*time.Second, chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('#grant-form input[name="g-cat"]:checked').forEach(i => i.click())`))
	b.click("pick rivers", `#grant-form input[name="g-cat"][value="river"]`)
	b.click("grant again", `#grant-form button[type="submit"]`)
	b.waitJS("two grants for water", `document.querySelectorAll('#grants tr[data-user="water"]').length === 2`, 10*time.Second)
	b.waitJS("the preview follows", `document.querySelector('#ua-total')?.textContent === "3"`, 10*time.Second)
	u.do("back home and reload", 10*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/"; location.reload()`))
	u.waitJS("rivers appear without a new login", `document.querySelector('#categories a.tile[data-category="river"] .tile-count')?.textContent === "1"`, 10*time.Second)
	if u.requested(base+"/api/v1/auth/login") != 1 {
		t.Errorf("the user logged in %d times, want once", u.requested(base+"/api/v1/auth/login"))
	}

	// The audit log has the user's view; the CSV export has it too.
	b.openAdmin("audit", "?user=water&action=view.")
	b.waitJS("the view in the log", `document.querySelector('#audit tr[data-action="view.start"][data-point="res1"][data-user="water"]')`, 10*time.Second)
	csv := uiEval[string](b, `fetch(document.querySelector("#audit-csv").href).then(async r => r.headers.get("content-type") + "\n" + await r.text())`)
	if !strings.HasPrefix(csv, "text/csv") || !strings.Contains(csv, "view.start") || !strings.Contains(csv, "res1") || !strings.Contains(csv, "water") || strings.Contains(csv, "login.ok") {
		t.Errorf("audit CSV of water's views:\n%s", csv)
	}
	if href := uiEval[string](b, `document.querySelector("#audit-csv").getAttribute("href")`); !strings.Contains(href, "format=csv") || !strings.Contains(href, "user=water") {
		t.Errorf("CSV link %q does not carry the filter", href)
	}
	b.click("verify the chain", "#audit-verify")
	b.waitJS("chain verified", `document.querySelector('#audit-verify-result [data-ok="true"]')`, 10*time.Second)
	b.screenshot("admin-audit")

	// Health: online rates by category and street, the offline points longest first.
	b.openAdmin("health", "")
	rows := uiEval[[]string](b, `[...document.querySelectorAll('#h-categories tr[data-category], #h-streets tr[data-region]')]
		.map(r => (r.dataset.category || r.dataset.region) + "=" + r.dataset.online + "/" + r.dataset.total + " " + r.cells[3].textContent)`)
	want := "[reservoir=1/2 50.0% river=0/1 0.0% school=0/1 0.0% 440307001=1/2 50.0% 440307002=0/2 0.0%]"
	if fmt.Sprint(rows) != want {
		t.Errorf("health rows %v, want %s", rows, want)
	}
	if rate := b.text("#h-rate"); rate != "25.0%" {
		t.Errorf("overall online rate %q, want 25.0%% (1 of 4)", rate)
	}
	if off := uiEval[[]string](b, `[...document.querySelectorAll('#h-offline tr[data-id]')].map(r => r.dataset.id + " " + r.cells[5].textContent)`); fmt.Sprint(off) != "[res2 3 小时 riv1 1 小时]" {
		t.Errorf("offline points %v, want [res2 3 小时 riv1 1 小时]", off)
	}
	b.screenshot("admin-health")

	// English, then a session that ends under the admin: the login form,
	// and after it the same admin page.
	b.click("switch to English", "#lang")
	b.waitJS("English tabs", `document.querySelector('.admin-tabs a[data-section="health"]')?.textContent === "Health" && document.querySelector('#admin-health')?.dataset.ready === "1"`, 10*time.Second)
	uiEval[bool](b, `fetch("/api/v1/auth/logout", {method: "POST"}).then(r => r.ok)`)
	b.do("go to the audit page", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/admin/audit?user=water"`))
	b.waitJS("login form after expiry", `document.querySelector("#login") && location.hash === "#/login"`, 10*time.Second)
	b.login("admin", adminPassword)
	b.waitJS("back on the audit page", `location.hash.startsWith("#/admin/audit") && document.querySelector('#admin-audit')?.dataset.ready === "1" && document.querySelector('#af-user').value === "water"`, 10*time.Second)
	if res := a.admin(http.MethodGet, "/api/v1/audit?action=login.ok&user=admin", nil); strings.Count(string(res.Body), `"login.ok"`) < 3 {
		t.Errorf("admin logins in the audit log: %s", res.Body)
	}
}

// TestAdminEnrollsAnAgentAndImportsPoints drives the users, agents and
// points pages: a role and a user through their life; a new agent's one-time code and the exact enroll command, which
// really enrolls an agent that then shows online with its version; revoke
// and delete. A bulk import with a bad row shows the row's line and field
// and writes nothing; the fixed file passes the dry run and imports. A
// point is edited in place, and the export links download the catalog.
func TestAdminEnrollsAnAgentAndImportsPoints(t *testing.T) {
	a := startApp(t)
	a.importRegionsFixture()
	base := a.HTTPURL()
	b := newUIBrowser(t, adminWidth, adminHeight, false)
	b.do("open the users page", 15*time.Second, chromedp.Navigate(base+"/#/admin/users"))
	b.login("admin", adminPassword)
	b.waitJS("users drawn", `document.querySelector('#admin-users')?.dataset.ready === "1"`, 10*time.Second)

	// Roles and the rest of a user's life: a role, a user holding it,
	// disabled, password reset, the role refused while held, then both gone.
	b.typeIn("#nr-name", "water-bureau")
	b.typeIn("#nr-desc", "水务局")
	b.click("create the role", `#role-form button[type="submit"]`)
	b.waitJS("the role listed and offered", `document.querySelector('#roles tr[data-role="water-bureau"]') && document.querySelector('#nu-roles input[value="water-bureau"]')`, 10*time.Second)
	b.typeIn("#nu-name", "temp")
	b.typeIn("#nu-pass", "temp-pass-123")
	b.click("give the role", `#nu-roles input[value="water-bureau"]`)
	b.click("create the user", `#user-form button[type="submit"]`)
	b.waitJS("the user listed with the role", `document.querySelector('#users tr[data-user="temp"] .chip-s')?.textContent === "water-bureau"`, 10*time.Second)
	b.click("disable", `#users tr[data-user="temp"] .act-toggle`)
	b.waitJS("shown disabled", `document.querySelector('#users tr[data-user="temp"]')?.classList.contains("off")`, 10*time.Second)
	if u, err := a.Accounts.GetUser("temp"); err != nil || !u.Disabled {
		t.Fatalf("temp after disabling: %+v %v", u, err)
	}
	b.click("enable", `#users tr[data-user="temp"] .act-toggle`)
	b.waitJS("shown enabled", `!document.querySelector('#users tr[data-user="temp"]')?.classList.contains("off")`, 10*time.Second)
	b.click("open the password form", `#users tr[data-user="temp"] .act-reset`)
	b.typeIn(`#users tr[data-user="temp"] .pwform input`, "temp-pass-456")
	b.click("reset", `#users tr[data-user="temp"] .pwform button`)
	b.waitJS("password reset said", `document.querySelector('#users-msg').dataset.kind === "ok" && document.querySelector('#users-msg').textContent === "已重置密码： temp"`, 10*time.Second)
	tempToken := a.loginAs("temp", "temp-pass-456")
	if res := a.do(http.MethodPost, "/api/v1/me/tokens", tempToken, "", map[string]string{"name": "大屏对接"}); res.Status != http.StatusCreated {
		t.Fatalf("temp's API token: %s", res)
	}
	// The user's session and API token, each ended from the page.
	tempRow := `#users tr[data-user="temp"]`
	b.click("show sessions and tokens", tempRow+" .act-sessions")
	b.waitJS("one session and one token", fmt.Sprintf(`document.querySelector(%q)?.textContent === "1" && document.querySelector(%q)?.textContent === "1"`,
		tempRow+" .count-sessions", tempRow+" .count-tokens"), 10*time.Second)
	b.click("end the session", tempRow+" li[data-session] button")
	b.waitJS("the session gone", fmt.Sprintf(`document.querySelector(%q)?.textContent === "0"`, tempRow+" .count-sessions"), 10*time.Second)
	b.click("revoke the token", tempRow+" li[data-token] .act-revoke")
	b.click("confirm", tempRow+" li[data-token] .act-revoke")
	b.waitJS("none left", fmt.Sprintf(`document.querySelector(%q)?.textContent === "0" && document.querySelector(%q)?.textContent === "0"`,
		tempRow+" .count-sessions", tempRow+" .count-tokens"), 10*time.Second)
	wantError(t, a.do(http.MethodGet, "/api/v1/me", tempToken, "", nil), http.StatusUnauthorized)
	roleDelete := `#roles tr[data-role="water-bureau"] .act-delete`
	b.click("delete the held role", roleDelete)
	b.click("confirm", roleDelete)
	b.waitJS("refused while held", `document.querySelector('#users-msg').dataset.kind === "error"`, 10*time.Second)
	if msg := b.text("#users-msg"); !strings.Contains(msg, "仍有用户持有该角色") {
		t.Errorf("message for deleting a held role: %q", msg)
	}
	b.click("delete the user", `#users tr[data-user="temp"] .act-delete`)
	b.click("confirm", `#users tr[data-user="temp"] .act-delete`)
	b.waitJS("the user gone", `!document.querySelector('#users tr[data-user="temp"]')`, 10*time.Second)
	b.click("delete the role", roleDelete)
	b.click("confirm", roleDelete)
	b.waitJS("the role gone", `!document.querySelector('#roles tr[data-role="water-bureau"]')`, 10*time.Second)
	if _, err := a.Accounts.GetUser("temp"); err == nil {
		t.Error("temp still exists")
	}

	b.openAdmin("agents", "")
	b.waitJS("no agents yet", `document.querySelector('#agents-empty')`, 5*time.Second)

	b.typeIn("#na-name", "水库机房")
	// The agent's region: where its unbound cameras are for technicians.
	uiEval[bool](b, `(() => { document.querySelector('#na-region').value = "440307001"; return true; })()`)
	b.click("create the agent", `#agent-form button[type="submit"]`)
	b.waitJS("the enrollment code", `document.querySelector("#enroll-code")?.textContent.length > 10`, 10*time.Second)
	code := b.text("#enroll-code")
	if cmd, want := b.text("#enroll-cmd"), "edge-agent enroll --server "+base+" --code "+code; cmd != want {
		t.Errorf("enroll command %q, want %q", cmd, want)
	}
	b.waitJS("the agent listed, not enrolled", `document.querySelector('#agents tr[data-agent] .state')?.textContent === "未注册"`, 10*time.Second)
	agentID := uiEval[string](b, `document.querySelector('#agents tr[data-agent]').dataset.agent`)
	agentRegion := func() string {
		var ag struct{ Region string }
		decodeInto(t, a.admin(http.MethodGet, "/api/v1/agents/"+agentID, nil), &ag)
		return ag.Region
	}
	if r := agentRegion(); r != "440307001" {
		t.Fatalf("agent created in region %q, chosen 440307001", r)
	}
	uiEval[bool](b, fmt.Sprintf(`(() => { const s = document.querySelector('#agents tr[data-agent=%q] select.agent-region');
		s.value = "440307002"; s.dispatchEvent(new Event("change")); return true; })()`, agentID))
	waitFor(t, 10*time.Second, "the region changed from the list", func() bool { return agentRegion() == "440307002" })

	// The code on the page is the real thing: an agent enrolls with it and
	// comes online; the list shows it by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := edge.Enroll(ctx, nil, base, code, "reservoir-box")
	if err != nil {
		t.Fatalf("enroll with the code from the page: %v", err)
	}
	if creds.AgentID != agentID {
		t.Fatalf("enrolled as %s, the page lists %s", creds.AgentID, agentID)
	}
	a.runAgent(creds)
	b.waitJS("the agent online with its version", fmt.Sprintf(`(() => { const r = document.querySelector('#agents tr[data-agent=%q]');
		return r?.dataset.online === "true" && r.cells[3].textContent === %q && r.cells[7].textContent !== "—"; })()`, agentID, edge.Version), 15*time.Second)
	b.screenshot("admin-agents")

	row := fmt.Sprintf(`#agents tr[data-agent=%q]`, agentID)
	b.click("revoke", row+" .act-revoke")
	b.waitJS("revoke asks to confirm", fmt.Sprintf(`document.querySelector(%q).classList.contains("armed")`, row+" .act-revoke"), 5*time.Second)
	b.click("confirm revoke", row+" .act-revoke")
	b.waitJS("the agent revoked", fmt.Sprintf(`document.querySelector(%q)?.dataset.revoked === "true"`, row), 10*time.Second)
	b.click("delete", row+" .act-delete")
	b.click("confirm delete", row+" .act-delete")
	b.waitJS("the agent gone", `document.querySelector('#agents-empty')`, 10*time.Second)
	if res := a.admin(http.MethodGet, "/api/v1/agents/"+agentID, nil); res.Status != http.StatusNotFound {
		t.Errorf("deleted agent still there: %s", res)
	}

	// Bulk import: a file with a bad category on line 3 is refused with
	// the line and field, and writes nothing.
	dir := t.TempDir()
	bad := filepath.Join(dir, "points-bad.csv")
	good := filepath.Join(dir, "points.csv")
	header := "id,name,kind,category,region,lat,lon,level,address,tags,ptz,main_url,sub_url\n"
	row1 := "imp-1,一号闸,hd,river,440307001,22.55,113.94,1,闸口路 1 号,gate,false,,\n"
	if err := os.WriteFile(bad, []byte(header+row1+"imp-2,火山口,hd,volcano,440307002,,,1,,,false,,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte(header+row1+"imp-2,二号闸,hd,river,440307002,,,2,,,false,,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.openAdmin("points", "")
	b.do("choose the bad file", 5*time.Second, chromedp.SetUploadFiles(chromedp.CSS("#imp-file"), []string{bad}))
	b.click("check it", "#imp-check")
	b.waitJS("the bad row", `document.querySelector('#imp-rows tr[data-line="3"][data-field="category"]')`, 10*time.Second)
	if n := uiEval[int](b, `document.querySelectorAll('#imp-rows tr[data-line]').length`); n != 1 {
		t.Errorf("%d rows reported, want 1", n)
	}
	if uiEval[bool](b, `!document.querySelector("#imp-run").disabled`) {
		t.Error("import is possible after a failed check")
	}
	b.do("scroll to the import", 5*time.Second, chromedp.ScrollIntoView(chromedp.CSS("#import")))
	b.screenshot("admin-import-rejected")
	if n := a.Catalog.Len(); n != 0 {
		t.Fatalf("a rejected check wrote %d points", n)
	}

	b.do("choose the fixed file", 5*time.Second, chromedp.SetUploadFiles(chromedp.CSS("#imp-file"), []string{good}))
	b.click("check it", "#imp-check")
	b.waitJS("the dry run passes", `document.querySelector('#imp-ok')?.dataset.valid === "2" && !document.querySelector("#imp-run").disabled`, 10*time.Second)
	if n := a.Catalog.Len(); n != 0 {
		t.Fatalf("a dry run wrote %d points", n)
	}
	b.click("import", "#imp-run")
	b.waitJS("imported", `document.querySelector('#imp-done')?.dataset.imported === "2"`, 10*time.Second)
	b.waitJS("the list shows them", `document.querySelectorAll('#points-table tr[data-id]').length === 2`, 10*time.Second)
	if n := a.Catalog.Len(); n != 2 {
		t.Fatalf("catalog holds %d points after the import, want 2", n)
	}

	// Edit a point in place.
	b.click("open a point", `#points-table tr[data-id="imp-2"]`)
	b.waitJS("its form", `document.querySelector('#point-form #pe-name')?.value === "二号闸"`, 10*time.Second)
	b.typeIn("#pe-name", "二号闸（改）")
	b.typeIn("#pe-tags", "gate, 汛期")
	b.typeIn("#pe-lat", "22.561")
	b.typeIn("#pe-lon", "113.951")
	b.do("pick the level", 5*time.Second, chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#pe-level"); s.value = "3"; })()`))
	b.screenshot("admin-point-edit")
	// The page draws the form again after a save; mark this one to tell.
	b.do("mark the form", 5*time.Second, chromedp.Evaluate[chromedp.Void](`document.querySelector("#point-form").dataset.stale = "1"`))
	b.click("save", `#point-form button[type="submit"]`)
	b.waitJS("saved", `document.querySelector('#points-msg').dataset.kind === "ok" && document.querySelector('#points-table tr[data-id="imp-2"] b')?.textContent === "二号闸（改）"`, 10*time.Second)
	p, err := a.Catalog.Get("imp-2")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "二号闸（改）" || p.Level != 3 || strings.Join(p.Tags, ",") != "gate,汛期" || p.Lat == nil || *p.Lat != 22.561 || *p.Lon != 113.951 {
		t.Errorf("point after the edit: %+v", p)
	}
	// Clearing the location clears it. The form is drawn again after the
	// save; wait for that before typing, or the redraw wins the race.
	b.waitJS("the form drawn again with the saved point", `(() => { const f = document.querySelector('#point-form'); return f && !f.dataset.stale && f.querySelector('#pe-lat').value === "22.561"; })()`, 10*time.Second)
	b.typeIn("#pe-lat", "")
	b.typeIn("#pe-lon", "")
	b.waitJS("both fields empty", `document.querySelector('#pe-lat').value === "" && document.querySelector('#pe-lon').value === ""`, 5*time.Second)
	b.click("save again", `#point-form button[type="submit"]`)
	waitFor(t, 10*time.Second, "location cleared", func() bool { p, _ := a.Catalog.Get("imp-2"); return p.Lat == nil && p.Lon == nil })

	// The export links download the catalog in the import's form.
	csv := uiEval[string](b, `fetch(document.querySelector("#exp-csv").href).then(r => r.text())`)
	if !strings.HasPrefix(csv, strings.TrimSuffix(header, "\n")) || !strings.Contains(csv, "imp-1,一号闸") || !strings.Contains(csv, "二号闸（改）") {
		t.Errorf("CSV export:\n%s", csv)
	}
	geo := uiEval[string](b, `fetch(document.querySelector("#exp-geojson").href).then(r => r.text())`)
	if !strings.Contains(geo, `"FeatureCollection"`) || !strings.Contains(geo, `"imp-1"`) {
		t.Errorf("GeoJSON export: %s", geo)
	}
}

// Each duty role sees its own admin pages and lands on the first of them;
// the web app learns them from /api/v1/me (system_actions).
func TestAdminPagesShowEachDutyRoleItsOwnSections(t *testing.T) {
	a := startApp(t)
	a.createUser("sec", "sec-pass-1234", "secadmin")
	a.createUser("aud", "aud-pass-1234", "auditor")
	base := a.HTTPURL()
	b := newUIBrowser(t, adminWidth, adminHeight, false)
	for _, tc := range []struct{ user, pass, tabs, landed string }{
		{"sec", "sec-pass-1234", "grants,health", "grants"},
		{"aud", "aud-pass-1234", "audit,health", "audit"},
	} {
		tab := b.incognito()
		tab.do("open the admin section", 15*time.Second, chromedp.Navigate(base+"/#/admin"))
		tab.login(tc.user, tc.pass)
		tab.do("open the admin section", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/admin"`))
		tab.waitJS(tc.user+"'s admin page drawn", `document.querySelector('.admin-body')?.dataset.ready === "1"`, 10*time.Second)
		tabs := uiEval[string](tab, `[...document.querySelectorAll('.admin-tabs a')].map(a => a.dataset.section).join(",")`)
		landed := uiEval[string](tab, `document.querySelector('.admin-body').dataset.section`)
		if tabs != tc.tabs || landed != tc.landed {
			t.Errorf("%s: tabs %q landed on %q, want %q on %q", tc.user, tabs, landed, tc.tabs, tc.landed)
		}
	}
}
