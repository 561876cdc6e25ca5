package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestAdminRegistersUpwardFromThePlatformsPage(t *testing.T) {
	a := startApp(t)
	upperSIP := startSIP(t, a, e2eUpperID, e2eDomain, e2eUpperPass, false)
	lowerSIP := startSIP(t, a, e2eLowerID, e2eLowerDom, "", false)
	a.startCascade(lowerSIP, a.decider)
	t.Cleanup(a.Cascade.Close)

	b := newUIBrowser(t, adminWidth, adminHeight, false)
	b.do("open the users page", 15*time.Second, chromedp.Navigate(a.HTTPURL()+"/#/admin/users"))
	b.login("admin", adminPassword)
	b.waitJS("users drawn", `document.querySelector('#admin-users')?.dataset.ready === "1"`, 10*time.Second)

	// The platform account: no password field to fill, no password to reset.
	b.typeIn("#nu-name", "city")
	uiEval[bool](b, `(() => { const k = document.querySelector('#nu-kind'); k.value = "platform"; k.dispatchEvent(new Event("change")); return true; })()`)
	if !uiEval[bool](b, `document.querySelector('#nu-pass').disabled`) {
		t.Error("the password field stays open for a platform account")
	}
	b.click("create the platform account", `#user-form button[type="submit"]`)
	b.waitJS("listed as a platform", `document.querySelector('#users tr[data-user="city"] .kind-platform')`, 10*time.Second)
	if uiEval[bool](b, `!!document.querySelector('#users tr[data-user="city"] .act-reset, #users tr[data-user="city"] .act-sessions')`) {
		t.Error("a platform account is offered a password reset or sessions")
	}
	if u, err := a.Accounts.GetUser("city"); err != nil || !u.IsPlatform() {
		t.Fatalf("city: %+v %v", u, err)
	}

	b.openAdmin("platforms", "")
	b.waitJS("none yet", `document.querySelector('#platforms-empty')`, 5*time.Second)
	b.typeIn("#gbp-id", e2eUpperID)
	b.typeIn("#gbp-name", "市级平台")
	b.typeIn("#gbp-address", upperSIP.UDPAddr().String())
	b.typeIn("#gbp-password", e2eUpperPass)
	uiEval[bool](b, `(() => { document.querySelector('#gbp-keepalive').value = "5"; return document.querySelector('#gbp-account').value === "city"; })()`)
	b.click("add the platform", `#platform-form button[type="submit"]`)
	b.waitJS("registered", `document.querySelector('#platforms tr[data-platform="`+e2eUpperID+`"]')?.dataset.registered === "true"`, 20*time.Second)
	if strings.Contains(b.text("body"), e2eUpperPass) {
		t.Error("the page shows the platform's password")
	}
	if d, ok := upperSIP.Devices().Get(e2eLowerID); !ok || !d.Online {
		t.Errorf("the upper does not see us online: %+v", d)
	}
	res := a.admin(http.MethodGet, "/api/v1/gb/platforms/"+e2eUpperID, nil)
	if res.Status != http.StatusOK || strings.Contains(string(res.Body), e2eUpperPass) || !strings.Contains(string(res.Body), `"password_set":true`) {
		t.Errorf("platform over the API: %s", res)
	}
	if recs := a.audited("gb.platform.create"); len(recs) != 1 || recs[0].User != "admin" {
		t.Errorf("gb.platform.create records %+v", recs)
	}
}
