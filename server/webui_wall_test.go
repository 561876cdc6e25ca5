package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
)

// dropJS drags the element matched by from onto wall tile i with the
// browser's own DragEvent and DataTransfer, through the page's handlers.
func dropJS(from string, tile int) string {
	return fmt.Sprintf(`(() => {
		const src = document.querySelector(%q);
		const dst = document.querySelectorAll("#wall-grid .tile-cell")[%d];
		if (!src || !dst) return false;
		const dt = new DataTransfer();
		src.dispatchEvent(new DragEvent("dragstart", {bubbles: true, cancelable: true, dataTransfer: dt}));
		dst.dispatchEvent(new DragEvent("dragover", {bubbles: true, cancelable: true, dataTransfer: dt}));
		dst.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: dt}));
		return true;
	})()`, from, tile)
}

// tilesJS reports, per wall tile, its point name, state and decoded frames.
const tilesJS = `[...document.querySelectorAll("#wall-grid .tile-cell")].map(el => ({
	name: el.querySelector(".tile-name").textContent,
	state: el.dataset.state || "",
	frames: el.querySelector("video").getVideoPlaybackQuality().totalVideoFrames,
}))`

type tileInfo struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Frames int    `json:"frames"`
}

// waitWallDecoding waits until the first n tiles are live and then until
// every one of them has decoded another second of video (25 frames). A
// stalled tile fails; a slow machine only takes longer.
func waitWallDecoding(t *testing.T, b *uiBrowser, n int) {
	t.Helper()
	b.waitJS(fmt.Sprintf("%d tiles decoding", n),
		fmt.Sprintf(`(%s).slice(0, %d).every(x => x.frames > 0 && x.state === "live")`, tilesJS, n), 30*time.Second)
	before := uiEval[[]tileInfo](b, tilesJS)
	start := time.Now()
	want := make([]int, n)
	for i := range n {
		want[i] = before[i].Frames + 25
	}
	wantJSON, _ := json.Marshal(want)
	b.waitJS(fmt.Sprintf("%d tiles to keep decoding", n),
		fmt.Sprintf(`(%s).slice(0, %d).every((x, i) => x.frames >= %s[i])`, tilesJS, n, wantJSON), 20*time.Second)
	t.Logf("%d tiles each decoded 25 more frames in %v", n, time.Since(start).Round(time.Millisecond))
}

// TestWallPlaysFourTilesSavesAndReloadsTheLayout drives the IOC wall at
// 1920×1080: fill a 4-tile layout by dragging from search and the region
// tree and by keyboard, see all four decode, save the layout, reload the
// page and get the same four tiles back; then keyboard fullscreen, a
// 1+7 layout and a category tour.
func TestWallPlaysFourTilesSavesAndReloadsTheLayout(t *testing.T) {
	a := startApp(t)
	uiDistrict(t, a)
	cam := startCamera(t, camsim.ClipH264Sub)
	for i, cat := range []string{"reservoir", "reservoir", "river", "river"} {
		uiPoint(t, a, catalog.Point{ID: fmt.Sprintf("w%d", i+1), Name: fmt.Sprintf("墙%d", i+1), Category: cat,
			Region: "440307001001", Main: catalog.Source{Type: catalog.SourceRTSP, URL: cam.URL("main")}})
	}
	// Publish points nobody publishes: the camera-offline state.
	for i := 5; i <= 7; i++ {
		uiPoint(t, a, catalog.Point{ID: fmt.Sprintf("w%d", i), Name: fmt.Sprintf("墙%d", i), Category: "river", Region: "440307002001"})
	}
	base := a.HTTPURL()

	b := newUIBrowser(t, 1920, 1080, false)
	b.do("open the wall", 15*time.Second, chromedp.Navigate(base+"/#/wall"))
	b.login("admin", adminPassword)
	b.waitJS("the 4-tile wall", `location.hash === "#/wall" && document.querySelectorAll("#wall-grid .tile-cell").length === 4`, 10*time.Second)

	b.do("search tab", 5*time.Second, chromedp.Click(chromedp.CSS(`.tab[data-tab="search"]`)))
	b.waitJS("search results", `document.querySelector('#wall-results .vrow[data-id="w2"]')`, 10*time.Second)
	for i, id := range []string{"w1", "w2"} {
		if !uiEval[bool](b, dropJS(fmt.Sprintf(`#wall-results .vrow[data-id=%q]`, id), i)) {
			t.Fatalf("drag %s: source or tile missing", id)
		}
	}
	// Tile 3 by keyboard: select it with "3", double-click a result.
	b.do("select tile 3 and double-click w3", 5*time.Second,
		chromedp.KeyEvent("3"),
		chromedp.DoubleClick(chromedp.CSS(`#wall-results .vrow[data-id="w3"]`)))
	// Tile 4 from the region tree.
	b.do("tree tab", 5*time.Second, chromedp.Click(chromedp.CSS(`.tab[data-tab="tree"]`)))
	for _, code := range []string{"440307", "440307001", "440307001001"} {
		b.waitJS("tree node "+code, fmt.Sprintf(`document.querySelector('#tree [data-region="%s"]')`, code), 5*time.Second)
		b.do("open "+code, 5*time.Second, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#tree [data-region="%s"]`, code))))
	}
	b.waitJS("w4 in the tree", `document.querySelector('#tree .side-point[data-id="w4"]')`, 5*time.Second)
	if !uiEval[bool](b, dropJS(`#tree .side-point[data-id="w4"]`, 3)) {
		t.Fatal("drag w4 from the tree: source or tile missing")
	}
	waitWallDecoding(t, b, 4)
	tiles := uiEval[[]tileInfo](b, tilesJS)
	for i, want := range []string{"墙1", "墙2", "墙3", "墙4"} {
		if tiles[i].Name != want {
			t.Errorf("tile %d shows %q, want %q", i+1, tiles[i].Name, want)
		}
	}
	b.screenshot("wall")

	const name = "值班四画面"
	b.do("save the layout", 5*time.Second,
		chromedp.SendKeys(chromedp.CSS("#layout-name"), name),
		chromedp.Click(chromedp.CSS("#layout-save")))
	b.waitJS("saved layout listed", fmt.Sprintf(`document.querySelector("#layout-select").value === %q`, name), 5*time.Second)
	res := a.admin(http.MethodGet, "/api/v1/me/layouts/"+url.PathEscape(name), nil)
	var saved struct {
		Grid  string
		Tiles []string
	}
	decodeInto(t, res, &saved)
	if saved.Grid != "4" || !slices.Equal(saved.Tiles, []string{"w1", "w2", "w3", "w4"}) {
		t.Fatalf("stored layout: %s", res)
	}

	b.do("reload", 15*time.Second, chromedp.Reload())
	b.waitJS("the saved layout back after reload", fmt.Sprintf(`document.querySelector("#layout-select")?.value === %q && document.querySelectorAll("#wall-grid .tile-cell").length === 4`, name), 15*time.Second)
	waitWallDecoding(t, b, 4)

	// Keyboard: 2 selects, F shows it alone on the main stream, Esc returns.
	b.do("2 then F", 5*time.Second, chromedp.KeyEvent("2"), chromedp.KeyEvent("f"))
	b.waitJS("tile 2 alone", `document.querySelector("#wall-grid").classList.contains("solo") && document.querySelectorAll("#wall-grid .tile-cell")[1].classList.contains("solo-tile")`, 5*time.Second)
	b.waitJS("tile 2 live again on main", `document.querySelectorAll("#wall-grid .tile-cell")[1].dataset.state === "live"`, 15*time.Second)
	b.do("Esc", 5*time.Second, chromedp.KeyEvent(kb.Escape))
	b.waitJS("back to the grid", `!document.querySelector("#wall-grid").classList.contains("solo")`, 5*time.Second)
	b.do("arrow right from tile 2", 5*time.Second, chromedp.KeyEvent("1"), chromedp.KeyEvent(kb.ArrowRight))
	if sel := uiEval[int](b, `[...document.querySelectorAll("#wall-grid .tile-cell")].findIndex(el => el.classList.contains("selected"))`); sel != 1 {
		t.Errorf("after 1 then →, tile %d is selected, want 2", sel+1)
	}

	b.do("map tab", 5*time.Second, chromedp.Click(chromedp.CSS(`.tab[data-tab="map"]`)))
	b.waitJS("the side map", `document.querySelector(".side-mapbox.leaflet-container .leaflet-tile-container canvas")`, 10*time.Second)

	b.do("1+7 layout", 5*time.Second, chromedp.Click(chromedp.CSS(`.chip[data-grid="1+7"]`)))
	b.waitJS("8 tiles", `document.querySelectorAll("#wall-grid .tile-cell").length === 8`, 5*time.Second)
	b.screenshot("wall-1p7")

	// A tour through category river (w3 w4 w5 w6 w7) on 4 tiles, every 5 s.
	b.do("4 tiles, tour river every 5 s", 5*time.Second,
		chromedp.Click(chromedp.CSS(`.chip[data-grid="4"]`)),
		chromedp.SetValue(chromedp.CSS("#tour-source"), "river"),
		chromedp.SetValue(chromedp.CSS("#tour-interval"), "5"),
		chromedp.Click(chromedp.CSS("#tour-btn")))
	b.waitJS("first tour page", `(`+tilesJS+`).map(x => x.name).join() === "墙3,墙4,墙5,墙6"`, 10*time.Second)
	b.waitJS("offline message on an unpublished point", `(`+tilesJS+`)[2].state === "camOffline"`, 15*time.Second)
	b.waitJS("second tour page", `(`+tilesJS+`)[0].name === "墙7"`, 10*time.Second)
	b.do("stop the tour", 5*time.Second, chromedp.Click(chromedp.CSS("#tour-btn")))
}
