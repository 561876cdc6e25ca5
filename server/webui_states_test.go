package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
)

// TestPhoneShowsEachProblemWithItsOwnMessage: a user granted reservoirs
// only sees that one category tile; a point outside the grant says no
// permission, a publish point nobody publishes says camera offline, a point
// whose edge agent is not connected says so (not camera offline), and an
// H.265 camera says this browser cannot play the codec.
func TestPhoneShowsEachProblemWithItsOwnMessage(t *testing.T) {
	a := startApp(t)
	uiDistrict(t, a)
	h265 := startCamera(t, camsim.ClipH265Sub)
	uiPoint(t, a, catalog.Point{ID: "res-off", Name: "无人推流", Category: "reservoir", Region: "440307001001"})
	uiPoint(t, a, catalog.Point{ID: "res-265", Name: "H265 摄像机", Category: "reservoir", Region: "440307001001",
		Main: catalog.Source{Type: catalog.SourceRTSP, URL: h265.URL("main")}})
	uiPoint(t, a, catalog.Point{ID: "res-agent", Name: "代理离线", Category: "reservoir", Region: "440307001001", Agent: "agt-away", Camera: "cam-1"})
	uiPoint(t, a, catalog.Point{ID: "sch", Name: "学校", Category: "school", Region: "440307002001"})
	if _, err := a.Accounts.CreateUser(accounts.User{Username: "water", DisplayName: "水务局"}, "water-pass-123"); err != nil {
		t.Fatal(err)
	}
	if res := a.admin(http.MethodPost, "/api/v1/grants", map[string]any{
		"user": "water", "categories": []string{"reservoir"}, "regions": []string{"440307"}, "max_level": 4, "actions": []string{"view"},
	}); res.Status != http.StatusCreated {
		t.Fatalf("grant: %s", res)
	}

	b := newUIBrowser(t, 360, 740, true)
	b.do("open the app", 15*time.Second, chromedp.Navigate(a.HTTPURL()+"/"))
	b.login("water", "water-pass-123")
	b.waitJS("only the granted category", `document.querySelectorAll("#categories a.tile").length === 1 && document.querySelector('#categories a.tile[data-category="reservoir"] .tile-count').textContent === "3"`, 10*time.Second)
	if uiEval[bool](b, `!!document.querySelector('#nav [data-nav="admin"]')`) {
		t.Error("a non-admin sees the admin entry")
	}

	for _, tc := range []struct{ point, state, text string }{
		{"sch", "denied", "无权查看此点位"},
		{"res-off", "camOffline", "摄像机离线"},
		{"res-agent", "agentOffline", "边缘代理暂时失联"},
		{"res-265", "codec", "不支持该摄像机的视频编码"},
	} {
		b.do("open "+tc.point, 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/p/`+tc.point+`"`))
		b.waitJS(tc.point+" says "+tc.state, `document.querySelector("#status")?.dataset.state === "`+tc.state+`" && document.querySelector("#status").textContent.includes("`+tc.text+`")`, 20*time.Second)
		b.screenshot("phone-state-" + tc.state)
	}
}
