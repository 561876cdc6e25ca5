package server

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/catalog"
)

// TestMapUsesTheConfiguredTileServerAndShiftsToGCJ02: with a tile URL in
// the server config, the map fetches its basemap from that server (here a
// tile server on 127.0.0.1) and nowhere else, and a gcj02 basemap gets
// points shifted by the GCJ-02 offset.
func TestMapUsesTheConfiguredTileServerAndShiftsToGCJ02(t *testing.T) {
	var tile bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for i := range img.Pix {
		img.Pix[i] = 0x40
	}
	img.Set(0, 0, color.White)
	if err := png.Encode(&tile, img); err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	tiles := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(tile.Bytes())
	}))
	defer tiles.Close()

	cfg := testConfig(t)
	cfg.MapTiles, cfg.MapTilesCRS = tiles.URL+"/tiles/{z}/{x}/{y}.png", "gcj02"
	app, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &testApp{App: app, t: t, http: &http.Client{Timeout: 20 * time.Second}}
	t.Cleanup(func() { app.Close(t.Context()) })
	lat, lon := 22.54, 114.06
	uiPoint(t, a, catalog.Point{ID: "sz1", Name: "福田", Category: "road", Lat: &lat, Lon: &lon})

	b := newUIBrowser(t, 1280, 800, false)
	b.do("open the map", 15*time.Second, chromedp.Navigate(a.HTTPURL()+"/#/map"))
	b.login("admin", adminPassword)
	b.waitJS("the point on the map", `document.querySelector("#map")?.dataset.ready === "1" && document.querySelector("#map .leaflet-marker-icon.pm")`, 15*time.Second)
	b.waitJS("basemap tiles loaded", `document.querySelectorAll("#map img.leaflet-tile-loaded").length > 0`, 10*time.Second)
	if served.Load() == 0 || b.requested(tiles.URL+"/tiles/") == 0 {
		t.Fatalf("the configured tile server got %d requests", served.Load())
	}
	if uiEval[bool](b, `!!document.querySelector("#map-notiles")`) {
		t.Error("the no-basemap note shows although tiles are configured")
	}
	// Shenzhen's GCJ-02 offset is about +0.005° east and -0.003° north.
	shift := uiEval[[]float64](b, `import("/ui/js/gcj02.js").then(m => m.wgs84ToGcj02(22.54, 114.06))`)
	if dLat, dLon := shift[0]-lat, shift[1]-lon; dLat > -0.002 || dLat < -0.0040 || dLon < 0.004 || dLon > 0.006 {
		t.Errorf("GCJ-02 of (22.54, 114.06) = %v: offset (%.5f, %.5f), want about (-0.003, +0.005)", shift, dLat, dLon)
	}
	if out := uiEval[[]float64](b, `import("/ui/js/gcj02.js").then(m => m.wgs84ToGcj02(48.85, 2.35))`); out[0] != 48.85 || out[1] != 2.35 {
		t.Errorf("GCJ-02 outside China moved the point: %v", out)
	}
	b.screenshot("map-tiles")
}
