package server

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// rawGet sends a GET with exactly the Accept-Encoding given and returns the
// answer as it came over the wire (no transparent decompression).
func (a *testApp) rawGet(path, acceptEncoding string) (*http.Response, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.HTTPURL()+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	hc := &http.Client{Timeout: a.http.Timeout, Transport: &http.Transport{DisableCompression: true}}
	defer hc.CloseIdleConnections()
	res, err := hc.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return res, body
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("bad gzip: %v", err)
	}
	return out
}

// TestPointListsAndAuditAreGzippedForClientsThatAskForIt: the big lists
// (points, facets, export, audit) go out gzipped to clients that accept
// it, byte for byte the same once unpacked; clients that do not, errors,
// and small answers go out plain.
func TestPointListsAndAuditAreGzippedForClientsThatAskForIt(t *testing.T) {
	a := startApp(t)
	// A page of the district's points as the phone's list asks for it.
	uiDistrictPoints(t, a, 1000)

	for _, path := range []string{"/api/v1/points?limit=1000", "/api/v1/points/facets", "/api/v1/points/export?format=geojson", "/api/v1/audit?limit=50"} {
		plainRes, plain := a.rawGet(path, "")
		if plainRes.StatusCode != http.StatusOK || plainRes.Header.Get("Content-Encoding") != "" {
			t.Fatalf("%s without Accept-Encoding: %d %v", path, plainRes.StatusCode, plainRes.Header)
		}
		gzRes, gz := a.rawGet(path, "gzip, deflate, br")
		if gzRes.StatusCode != http.StatusOK || gzRes.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(gzRes.Header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("%s with gzip: %d %v", path, gzRes.StatusCode, gzRes.Header)
		}
		if unpacked := gunzip(t, gz); !bytes.Equal(unpacked, plain) {
			t.Errorf("%s: gzipped answer unpacks to %d bytes, plain is %d", path, len(unpacked), len(plain))
		}
		t.Logf("%s: %d bytes plain, %d gzipped (%.1fx)", path, len(plain), len(gz), float64(len(plain))/float64(len(gz)))
	}
	if res, _ := a.rawGet("/api/v1/points?limit=10", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent despite gzip;q=0")
	}
	// Errors and small answers go out as they are.
	res, body := a.rawGet("/api/v1/points?level=9", "gzip")
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Content-Encoding") != "" || !bytes.Contains(body, []byte(`"bad_query"`)) {
		t.Errorf("bad query with gzip: %d %v %s", res.StatusCode, res.Header, body)
	}
	if res, body := a.rawGet("/api/v1/me", "gzip"); res.Header.Get("Content-Encoding") != "" || !bytes.Contains(body, []byte(`"admin"`)) {
		t.Errorf("/me with gzip: %v %s", res.Header, body)
	}
	a.token = ""
	if res, body := a.rawGet("/api/v1/points", "gzip"); res.StatusCode != http.StatusUnauthorized || res.Header.Get("Content-Encoding") != "" || !bytes.Contains(body, []byte(`"error"`)) {
		t.Errorf("401 with gzip: %d %v %s", res.StatusCode, res.Header, body)
	}
}

// TestUIConfigCarriesTheICEServers: the browser gets the STUN and TURN
// servers (TURN with its credentials) before it makes its offer, never
// from a cache, and only when logged in.
func TestUIConfigCarriesTheICEServers(t *testing.T) {
	c := testConfig(t)
	c.ICEServers = []string{"stun:127.0.0.1:3478", " turn:127.0.0.1:3478?transport=udp"}
	c.TURNUsername, c.TURNCredential = "phone", "turn-secret-1"
	a := startAppWith(t, c)
	res := a.admin(http.MethodGet, "/api/v1/ui-config", nil)
	var cfg struct {
		ICE []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"ice_servers"`
		CRS string `json:"map_tile_crs"`
	}
	decodeInto(t, res, &cfg)
	if res.Status != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" || cfg.CRS != "wgs84" {
		t.Fatalf("ui-config: %s %v", res, res.Header)
	}
	got := fmt.Sprintf("%+v", cfg.ICE)
	if want := "[{URLs:[stun:127.0.0.1:3478] Username: Credential:} {URLs:[turn:127.0.0.1:3478?transport=udp] Username:phone Credential:turn-secret-1}]"; got != want {
		t.Fatalf("ice_servers %s, want %s", got, want)
	}
	wantError(t, a.do(http.MethodGet, "/api/v1/ui-config", "", "", nil), http.StatusUnauthorized)

	// Without servers configured the list is empty, not absent.
	b := startApp(t)
	if res := b.admin(http.MethodGet, "/api/v1/ui-config", nil); !bytes.Contains(res.Body, []byte(`"ice_servers":[]`)) {
		t.Fatalf("ui-config without ICE servers: %s", res)
	}
}
