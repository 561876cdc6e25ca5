package server

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/catalog"
)

// uiDistrictPoints imports n points over 11 streets × 10 communities, as
// the district has (13,000 HD + 635 panoramic), through the catalog's CSV
// import. It returns how many are in category reservoir.
func uiDistrictPoints(t *testing.T, a *testApp, n int) int {
	t.Helper()
	var regions bytes.Buffer
	regions.WriteString("code,name,parent\n440307,南山区,\n")
	for s := 1; s <= 11; s++ {
		fmt.Fprintf(&regions, "440307%03d,第%d街道,440307\n", s, s)
		for k := 1; k <= 10; k++ {
			fmt.Fprintf(&regions, "440307%03d%03d,%d街道%d社区,440307%03d\n", s, k, s, k, s)
		}
	}
	if _, rowErrs, err := a.Catalog.ImportRegionsCSV(&regions, false); err != nil {
		t.Fatalf("import regions: %v %v", err, rowErrs)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(catalog.PointColumns)
	reservoirs := 0
	for i := range n {
		cat := catalog.Categories[i%len(catalog.Categories)]
		if cat.Code == "reservoir" {
			reservoirs++
		}
		kind, typ := "hd", "132"
		if i%21 == 0 {
			kind, typ = "panoramic", "131"
		}
		s, k := rng.IntN(11)+1, rng.IntN(10)+1
		lat, lon := 22.45+rng.Float64()*0.2, 113.75+rng.Float64()*0.3
		_ = w.Write([]string{fmt.Sprintf("4403070000%s0%06d", typ, i+1), fmt.Sprintf("%s %d号", cat.ZH, i+1), kind, cat.Code,
			fmt.Sprintf("440307%03d%03d", s, k), strconv.FormatFloat(lat, 'f', 6, 64), strconv.FormatFloat(lon, 'f', 6, 64),
			strconv.Itoa(1 + i%4), "", "", strconv.FormatBool(kind == "panoramic"), "", ""})
	}
	w.Flush()
	start := time.Now()
	if got, rowErrs, err := a.Catalog.ImportPoints(&buf, catalog.ContentTypeCSV, false); err != nil || got != n {
		t.Fatalf("import points: %d, %v %v", got, err, rowErrs)
	}
	t.Logf("imported %d points in %v", n, time.Since(start).Round(time.Millisecond))
	return reservoirs
}

// TestListAndMapOf13635Points: the phone list of every point keeps a few
// dozen rows in the DOM however far it scrolls, and the map shows all
// 13,635 points clustered (the time to render is logged, not asserted).
func TestListAndMapOf13635Points(t *testing.T) {
	const n = 13_635
	a := startApp(t)
	reservoirs := uiDistrictPoints(t, a, n)
	base := a.HTTPURL()

	b := newUIBrowser(t, 360, 740, true)
	b.do("open the list of all points", 15*time.Second, chromedp.Navigate(base+"/#/l"))
	b.login("admin", adminPassword)
	b.waitJS("the list total", fmt.Sprintf(`document.querySelector("#total")?.textContent === "%d" && document.querySelector("#points .vrow[data-id]")`, n), 15*time.Second)
	rows := func() int { return uiEval[int](b, `document.querySelectorAll("#points .vrow").length`) }
	if r := rows(); r > 60 {
		t.Errorf("%d rows in the DOM for a list of %d, want a virtualised few dozen", r, n)
	}
	height := uiEval[int](b, `document.querySelector("#points .vspacer").offsetHeight`)
	if height < n*50 {
		t.Errorf("list spacer %d px high; the scrollbar should span all %d rows", height, n)
	}
	start := time.Now()
	b.do("scroll to the end", 5*time.Second, chromedp.Evaluate[chromedp.Void](`(s => s.scrollTop = s.scrollHeight)(document.querySelector("#points"))`))
	b.waitJS("the last row loaded", fmt.Sprintf(`document.querySelector('#points .vrow[data-index="%d"][data-id]')`, n-1), 30*time.Second)
	t.Logf("scrolled to row %d: loaded in %v", n, time.Since(start).Round(time.Millisecond))
	if r := rows(); r > 60 {
		t.Errorf("%d rows in the DOM after scrolling to the end, want a few dozen", r)
	}
	b.do("scroll to the middle", 5*time.Second, chromedp.Evaluate[chromedp.Void](`(s => s.scrollTop = s.scrollHeight / 2)(document.querySelector("#points"))`))
	b.waitJS("middle rows drawn", fmt.Sprintf(`document.querySelector('#points .vrow[data-index="%d"][data-id]')`, n/2), 5*time.Second)
	b.screenshot("phone-list-13635")

	b.do("desktop viewport", 5*time.Second, chromedp.EmulateViewport(1600, 900))
	b.mu.Lock()
	before := len(b.requests)
	b.mu.Unlock()
	start = time.Now()
	b.do("open the map", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = "#/map"`))
	b.waitJS("every point on the map", `document.querySelector("#map")?.dataset.ready === "1"`, 60*time.Second)
	took := time.Since(start)
	// The map asks for its points once, in the compact form.
	b.mu.Lock()
	var pointCalls []string
	for _, r := range b.requests[before:] {
		if strings.Contains(r, "/api/v1/points") {
			pointCalls = append(pointCalls, strings.TrimPrefix(r, base))
		}
	}
	b.mu.Unlock()
	if len(pointCalls) != 1 || pointCalls[0] != "/api/v1/points/geo" {
		t.Errorf("the map asked the server for points with %v, want one call of /api/v1/points/geo", pointCalls)
	}
	located := uiEval[string](b, `document.querySelector("#map").dataset.located`)
	pageMs := uiEval[string](b, `document.querySelector("#map").dataset.ms`)
	fetchMs := uiEval[string](b, `document.querySelector("#map").dataset.fetchMs`)
	addMs := uiEval[string](b, `document.querySelector("#map").dataset.addMs`)
	icons := uiEval[int](b, `document.querySelectorAll("#map .leaflet-marker-icon").length`)
	t.Logf("map: %s points clustered; %v from navigation to all markers added (page: %s ms, of which Leaflet load and the one fetch of the points %s ms, clustering %s ms); %d marker/cluster icons in the DOM",
		located, took.Round(time.Millisecond), pageMs, fetchMs, addMs, icons)
	if located != strconv.Itoa(n) {
		t.Errorf("map shows %s points, want %d", located, n)
	}
	if icons == 0 || icons > 2000 {
		t.Errorf("%d marker icons in the DOM; clustering should show some and keep them few", icons)
	}
	b.waitJS("grid basemap without a tile URL", `document.querySelector("#map-notiles") && document.querySelector("#map canvas, #map .leaflet-tile")`, 5*time.Second)
	b.screenshot("map")

	start = time.Now()
	b.do("filter reservoir", 5*time.Second, chromedp.SetValue(chromedp.CSS("#map-category"), "reservoir"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#map-category").dispatchEvent(new Event("change"))`))
	b.waitJS("reservoir points only", fmt.Sprintf(`document.querySelector("#map").dataset.ready === "1" && document.querySelector("#map").dataset.located === "%d"`, reservoirs), 20*time.Second)
	t.Logf("map: category filter to %d points re-clustered in %v", reservoirs, time.Since(start).Round(time.Millisecond))
	b.do("status filter offline", 5*time.Second, chromedp.Click(chromedp.CSS(`.map-panel .chip[data-status="offline"]`)))
	b.waitJS("no offline reservoirs", `document.querySelector("#map").dataset.ready === "1" && document.querySelector("#map").dataset.located === "0"`, 20*time.Second)

	b.do("all statuses", 5*time.Second, chromedp.Click(chromedp.CSS(`.map-panel .chip[data-status=""]`)))
	b.waitJS("reservoirs again", fmt.Sprintf(`document.querySelector("#map").dataset.ready === "1" && document.querySelector("#map").dataset.located === "%d"`, reservoirs), 20*time.Second)

	// Clicking clusters zooms in until single markers show; clicking one
	// opens its popup (made only then) with the play link of that point.
	for range 10 {
		if uiEval[bool](b, `!!document.querySelector("#map .leaflet-marker-icon.pm")`) {
			break
		}
		b.do("click a cluster", 5*time.Second, chromedp.Click(chromedp.CSS("#map .marker-cluster")))
		time.Sleep(400 * time.Millisecond) // the zoom animation
	}
	b.do("click a marker", 5*time.Second, chromedp.Click(chromedp.CSS("#map .leaflet-marker-icon.pm")))
	b.waitJS("its popup", `document.querySelector(".leaflet-popup .popup a.btn")`, 5*time.Second)
	href := uiEval[string](b, `document.querySelector(".leaflet-popup .popup a.btn").getAttribute("href")`)
	title := uiEval[string](b, `document.querySelector(".leaflet-popup .popup strong").textContent`)
	if !strings.HasPrefix(href, "#/p/4403070000") || !strings.Contains(title, "水库") {
		t.Errorf("popup of a reservoir marker: %q plays %q", title, href)
	}
	b.screenshot("map-popup")
}
