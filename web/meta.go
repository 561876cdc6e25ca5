package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/pion/webrtc/v4"

	"github.com/tianyan/vms/catalog"
)

// Map tile coordinate systems of UIConfig.MapTileCRS.
const (
	// CRSWGS84 means the tiles are drawn in WGS-84, as points are stored.
	CRSWGS84 = "wgs84"
	// CRSGCJ02 means the tiles are a Chinese basemap in GCJ-02; the UI
	// shifts points into it for display.
	CRSGCJ02 = "gcj02"
)

// UIConfig is what the browser app needs to know about this deployment.
// Without a tile URL the map draws a coordinate grid: the UI never calls
// the internet on its own.
type UIConfig struct {
	// MapTileURL is a slippy-map tile template with {z}, {x} and {y}
	// (Leaflet syntax, {s} allowed), on the private network; "" for none.
	MapTileURL string `json:"map_tile_url"`
	// MapTileCRS is CRSWGS84 (default) or CRSGCJ02.
	MapTileCRS string `json:"map_tile_crs"`
	// MapAttribution is shown in the map corner.
	MapAttribution string `json:"map_attribution,omitempty"`
	// MapMaxZoom is the tiles' deepest zoom level (default 18).
	MapMaxZoom int `json:"map_max_zoom"`
}

// Validate checks a configured tile URL and CRS and fills defaults.
func (c *UIConfig) Validate() error {
	if c.MapTileCRS == "" {
		c.MapTileCRS = CRSWGS84
	}
	if c.MapTileCRS != CRSWGS84 && c.MapTileCRS != CRSGCJ02 {
		return fmt.Errorf("map tile CRS must be %q or %q, not %q", CRSWGS84, CRSGCJ02, c.MapTileCRS)
	}
	if c.MapMaxZoom == 0 {
		c.MapMaxZoom = 18
	}
	if c.MapMaxZoom < 1 || c.MapMaxZoom > 22 {
		return fmt.Errorf("map max zoom must be between 1 and 22")
	}
	if c.MapTileURL == "" {
		return nil
	}
	for _, p := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(c.MapTileURL, p) {
			return fmt.Errorf("map tile URL must contain {z}, {x} and {y}")
		}
	}
	if strings.HasPrefix(c.MapTileURL, "/") && !strings.HasPrefix(c.MapTileURL, "//") {
		return nil // same origin, e.g. a tile server behind the same proxy
	}
	u, err := url.Parse(strings.NewReplacer("{s}", "a", "{z}", "0", "{x}", "0", "{y}", "0", "{r}", "").Replace(c.MapTileURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("map tile URL must be an absolute http(s) URL or a path starting with /")
	}
	return nil
}

// iceServer is one STUN or TURN server in the form a browser's
// RTCPeerConnection takes it.
type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// uiConfigResponse is GET /api/v1/ui-config: the deployment's UIConfig and
// the ICE servers. The browser needs the servers before it makes its offer
// (WHEP here does not trickle), so the Link headers of the WHEP answer come
// too late for the first connection.
type uiConfigResponse struct {
	UIConfig
	ICEServers []iceServer `json:"ice_servers"`
}

// iceSource lists the STUN and TURN servers WebRTC viewers use.
type iceSource interface {
	ICEServers() []webrtc.ICEServer
}

// metaHandler answers what describes the API and the deployment rather
// than any resource of it: the OpenAPI document, the category codes and
// the web app's configuration.
type metaHandler struct {
	ui  UIConfig
	ice iceSource // nil: no WebRTC, no ICE servers
}

// openAPI answers GET /api/v1/openapi.json.
func (h *metaHandler) openAPI(c *gin.Context) {
	c.JSON(http.StatusOK, openAPIDoc())
}

// uiConfig answers GET /api/v1/ui-config. It carries TURN credentials, which
// every logged-in viewer needs anyway, so it is never cached.
func (h *metaHandler) uiConfig(c *gin.Context) {
	out := uiConfigResponse{UIConfig: h.ui, ICEServers: []iceServer{}}
	if h.ice != nil {
		for _, is := range h.ice.ICEServers() {
			e := iceServer{URLs: is.URLs, Username: is.Username}
			if cred, ok := is.Credential.(string); ok {
				e.Credential = cred
			}
			out.ICEServers = append(out.ICEServers, e)
		}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// categories answers GET /api/v1/categories: every category code with its
// Chinese and English name, in display order.
func (h *metaHandler) categories(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"items": catalog.Categories})
}
