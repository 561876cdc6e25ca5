package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
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
	}{"res1": {catalog.StateOnline, time.Hour}, "res2": {catalog.StateOffline, 3 * time.Hour}, "riv1": {catalog.StateOffline, 30 * time.Minute}} {
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
	if off := uiEval[[]string](b, `[...document.querySelectorAll('#h-offline tr[data-id]')].map(r => r.dataset.id + " " + r.cells[5].textContent)`); fmt.Sprint(off) != "[res2 3 小时 riv1 30 分钟]" {
		t.Errorf("offline points %v, want [res2 3 小时 riv1 30 分钟]", off)
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
