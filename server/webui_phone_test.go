package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
)

// uiDistrict creates a district with two streets of two communities each.
func uiDistrict(t *testing.T, a *testApp) {
	t.Helper()
	regions := []catalog.Region{{Code: "440307", Name: "南山区"}}
	for s := 1; s <= 2; s++ {
		street := fmt.Sprintf("440307%03d", s)
		regions = append(regions, catalog.Region{Code: street, Name: fmt.Sprintf("第%d街道", s), Parent: "440307"})
		for k := 1; k <= 2; k++ {
			regions = append(regions, catalog.Region{Code: fmt.Sprintf("%s%03d", street, k), Name: fmt.Sprintf("%d街道%d社区", s, k), Parent: street})
		}
	}
	for _, r := range regions {
		if _, err := a.Catalog.CreateRegion(r); err != nil {
			t.Fatal(err)
		}
	}
}

// uiPoint creates a point straight in the catalog.
func uiPoint(t *testing.T, a *testApp, p catalog.Point) {
	t.Helper()
	if p.Main.Type == "" {
		p.Main = catalog.Source{Type: catalog.SourcePublish}
	}
	if p.Level == 0 {
		p.Level = 1
	}
	p.OnDemand = true
	created, err := a.Catalog.Create(p)
	if err != nil {
		t.Fatalf("create point %s: %v", p.ID, err)
	}
	a.Hub.SetPoint(created.ID, SourceOf(created))
}

// TestPhoneLogsInOpensACategoryAndPlaysLive drives the phone UI at 360×740:
// log in, open a category tile, pick the camera from the list, and watch
// the player decode continuously with the status saying live. Then the
// session ends under the user, and logging in again returns to the page
// they were on.
func TestPhoneLogsInOpensACategoryAndPlaysLive(t *testing.T) {
	a := startApp(t)
	uiDistrict(t, a)
	cam := startCamera(t, camsim.ClipH264Sub)
	lat, lon := 22.53, 113.93
	uiPoint(t, a, catalog.Point{ID: "cam1", Name: "水库大坝 1号", Category: "reservoir", Region: "440307001001", Lat: &lat, Lon: &lon,
		Address: "大坝路1号", Main: catalog.Source{Type: catalog.SourceRTSP, URL: cam.URL("main")}})
	cats := []string{"reservoir", "river", "waterlogging", "hazard", "school", "road"}
	for i := range 30 {
		uiPoint(t, a, catalog.Point{ID: fmt.Sprintf("p%02d", i), Name: fmt.Sprintf("点位 %02d", i), Category: cats[i%len(cats)],
			Region: fmt.Sprintf("440307%03d%03d", i%2+1, i%4/2+1)})
	}
	base := a.HTTPURL()

	b := newUIBrowser(t, 360, 740, true)
	b.do("open the app", 15*time.Second, chromedp.Navigate(base+"/"))
	b.login("admin", adminPassword)
	b.waitJS("category tiles with counts", `document.querySelector('#categories a.tile[data-category="reservoir"] .tile-count')?.textContent === "6"`, 10*time.Second)

	// The phone shell as a first visit transfers it (compressed, headers included).
	sizes := uiEval[[]int](b, `(() => {
		const nav = performance.getEntriesByType("navigation")[0];
		let n = nav.transferSize, raw = nav.decodedBodySize, files = 1;
		for (const r of performance.getEntriesByType("resource")) {
			if (new URL(r.name).pathname.startsWith("/ui/")) n += r.transferSize, raw += r.decodedBodySize, files++;
		}
		return [n, raw, files];
	})()`)
	shell := sizes[0]
	t.Logf("phone shell transferred: %d bytes (%.1f KB, budget 300 KB) for %d files of %.1f KB uncompressed", shell, float64(shell)/1024, sizes[2], float64(sizes[1])/1024)
	if shell <= 0 || shell > 300*1024 {
		t.Errorf("phone shell transferred %d bytes, budget 300 KB", shell)
	}
	b.screenshot("phone-home")

	// Installable: a manifest with icons, and a service worker that keeps
	// the shell and never the API.
	manifest := uiEval[string](b, `fetch(document.querySelector('link[rel="manifest"]').href).then(r => r.json()).then(m => m.start_url + " " + m.display + " " + m.icons.length)`)
	if manifest != "/ standalone 3" {
		t.Errorf("manifest start_url, display, icons: %q", manifest)
	}
	cached := uiEval[[]string](b, `navigator.serviceWorker.ready
		.then(() => caches.open("tianyan-shell-v1")).then(c => c.keys()).then(ks => ks.map(r => new URL(r.url).pathname))`)
	if !slices.Contains(cached, "/ui/js/app.js") || !slices.Contains(cached, "/") {
		t.Errorf("service worker cache %v lacks the shell", cached)
	}
	for _, p := range cached {
		if strings.HasPrefix(p, "/api/") {
			t.Errorf("service worker cached API response %s", p)
		}
	}

	b.do("open the reservoir category", 10*time.Second, chromedp.Click(chromedp.CSS(`#categories a.tile[data-category="reservoir"]`)))
	b.waitJS("the camera in the list", `document.querySelector('#points .vrow[data-id="cam1"]')`, 10*time.Second)
	if n := uiEval[string](b, `document.querySelector("#total").textContent`); n != "6" {
		t.Errorf("category list total %q, want 6", n)
	}
	b.screenshot("phone-list")
	b.do("pick the camera", 10*time.Second, chromedp.Click(chromedp.CSS(`#points .vrow[data-id="cam1"]`)))

	clicked := time.Now()
	b.waitJS("a decoded frame", `document.querySelector("#video")?.getVideoPlaybackQuality().totalVideoFrames > 0`, 20*time.Second)
	t.Logf("first decoded frame %v after tapping the point", time.Since(clicked).Round(time.Millisecond))
	first := b.frames("#video")
	time.Sleep(2 * time.Second)
	second := b.frames("#video")
	if second < first+25 {
		t.Errorf("video stalled: totalVideoFrames %d -> %d in 2 s, want at least +25 (25 fps clip)", first, second)
	}
	b.waitJS("status live", `document.querySelector("#status").dataset.state === "live"`, 5*time.Second)
	if s := uiEval[string](b, `document.querySelector("#status").textContent`); !strings.Contains(s, "直播中") {
		t.Errorf("#status = %q, want 直播中 (live)", s)
	}
	if n := a.WebRTC.SessionCount(); n != 1 {
		t.Errorf("WebRTC sessions while playing: %d, want 1", n)
	}
	b.screenshot("phone-player")

	// The server ends the session under the player (as on a restart or a
	// network change that kills ICE): it notices and is live again by itself.
	session := uiEval[string](b, `document.querySelector("#video").dataset.session`)
	if !strings.HasPrefix(session, "/api/v1/points/cam1/whep/") {
		t.Fatalf("player session %q", session)
	}
	ended := time.Now()
	if res := a.admin(http.MethodDelete, session, nil); res.Status != http.StatusOK {
		t.Fatalf("end the session: %s", res)
	}
	b.waitJS("a new session", fmt.Sprintf(`document.querySelector("#video").dataset.session !== %q`, session), 20*time.Second)
	before := b.frames("#video")
	b.waitJS("live again", fmt.Sprintf(`document.querySelector("#status").dataset.state === "live" && document.querySelector("#video").getVideoPlaybackQuality().totalVideoFrames > %d`, before+10), 20*time.Second)
	t.Logf("player recovered %v after the server ended its session", time.Since(ended).Round(time.Millisecond))

	// Favourite it from the player; the home page lists it.
	b.do("favourite", 5*time.Second, chromedp.Click(chromedp.CSS("#fav")))
	b.waitJS("favourite saved", `document.querySelector("#fav").textContent.includes("★")`, 5*time.Second)

	// The session ends under the user (another tab logged out); the next
	// call is a 401, the login form comes, and after it the same page.
	uiEval[bool](b, `fetch("/api/v1/auth/logout", {method: "POST"}).then(r => r.ok)`)
	b.do("go to the region page", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/r"`))
	b.waitJS("login form after expiry", `document.querySelector("#login") && location.hash === "#/login"`, 10*time.Second)
	waitFor(t, 5*time.Second, "the player's WHEP session to end", func() bool { return a.WebRTC.SessionCount() == 0 })
	b.login("admin", adminPassword)
	b.waitJS("back on the region page", `location.hash === "#/r" && document.querySelector('#regions [data-region="440307"]')`, 10*time.Second)
	b.do("drill into the district", 5*time.Second, chromedp.Click(chromedp.CSS(`#regions [data-region="440307"]`)))
	b.waitJS("streets", `document.querySelector('#regions [data-region="440307001"]')`, 5*time.Second)
	b.do("drill into a street", 5*time.Second, chromedp.Click(chromedp.CSS(`#regions [data-region="440307001"]`)))
	b.waitJS("communities", `document.querySelector('#regions [data-region="440307001001"]')`, 5*time.Second)
	b.screenshot("phone-regions")

	b.do("home", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/"`))
	b.waitJS("favourite and recent on home", `document.querySelector('#favourites [data-id="cam1"]') && document.querySelector('#recent [data-id="cam1"]')`, 10*time.Second)

	// English switch.
	b.do("switch to English", 5*time.Second, chromedp.Click(chromedp.CSS("#lang")))
	b.waitJS("English labels", `document.querySelector('#categories a.tile[data-category="reservoir"] .tile-name')?.textContent === "Reservoir"`, 5*time.Second)

	// The map: the one located point, clicked, plays.
	b.do("open the map", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/map"`))
	b.waitJS("the point on the map", `document.querySelector("#map")?.dataset.ready === "1" && document.querySelector("#map .leaflet-marker-icon.pm")`, 15*time.Second)
	b.do("click the marker", 5*time.Second, chromedp.Click(chromedp.CSS("#map .leaflet-marker-icon.pm")))
	b.waitJS("its popup", `document.querySelector(".leaflet-popup .popup a.btn")`, 5*time.Second)
	b.do("play from the popup", 5*time.Second, chromedp.Click(chromedp.CSS(".leaflet-popup .popup a.btn")))
	b.waitJS("playing from the map", `location.hash === "#/p/cam1" && document.querySelector("#video")?.getVideoPlaybackQuality().totalVideoFrames > 0`, 20*time.Second)

	if res := a.admin(http.MethodGet, "/api/v1/me/favourites", nil); !strings.Contains(string(res.Body), `"cam1"`) {
		t.Errorf("favourite not stored on the server: %s", res)
	}
}
