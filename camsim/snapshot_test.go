package camsim

import (
	"bytes"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"testing"
)

func snapshotURI(t *testing.T, c *soapClient, profile string) string {
	t.Helper()
	var resp struct {
		MediaUri struct{ Uri string }
	}
	c.mustCall(`<trt:GetSnapshotUri><trt:ProfileToken>`+profile+`</trt:ProfileToken></trt:GetSnapshotUri>`, &resp)
	return resp.MediaUri.Uri
}

// get fetches a URL with an optional Authorization header.
func get(t *testing.T, rawURL, auth string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func basicAuth(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// getJPEG fetches and decodes a snapshot, wanting 200 and image/jpeg.
func getJPEG(t *testing.T, rawURL, auth string) image.Image {
	t.Helper()
	resp, body := get(t, rawURL, auth)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("snapshot: %d %s: %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	img, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("snapshot is not a JPEG: %v", err)
	}
	return img
}

func TestSnapshotIsAFreshJPEGBehindCredentials(t *testing.T) {
	cfg := authedConfig()
	cfg.PTZ = true
	cam := startCam(t, cfg)
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
	uri := snapshotURI(t, c, "main")
	if uri != cam.SnapshotURL("main") {
		t.Fatalf("GetSnapshotUri = %q, want %q", uri, cam.SnapshotURL("main"))
	}

	resp, _ := get(t, uri, "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("snapshot without credentials: %d", resp.StatusCode)
	}
	challenge := digestChallenge(t, resp.Header)
	if resp, _ := get(t, uri, basicAuth(testUser, "wrong")); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("snapshot with a wrong password: %d", resp.StatusCode)
	}

	first := getJPEG(t, uri, basicAuth(testUser, testPass))
	if b := first.Bounds(); b.Dx() != 1280 || b.Dy() != 720 {
		t.Fatalf("main snapshot is %v", b)
	}
	u, _ := url.Parse(uri)
	second := getJPEG(t, uri, digestAuthorization(t, challenge, http.MethodGet, u.RequestURI(), testUser, testPass))
	if sameImage(first, second) {
		t.Error("two snapshots are identical; the moving block should differ")
	}

	sub := getJPEG(t, snapshotURI(t, c, "sub"), basicAuth(testUser, testPass))
	if b := sub.Bounds(); b.Dx() != 640 || b.Dy() != 360 {
		t.Fatalf("sub snapshot is %v", b)
	}
	if resp, _ := get(t, cam.SnapshotURL("third"), basicAuth(testUser, testPass)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown profile: %d", resp.StatusCode)
	}
}

// sameImage compares every 8th pixel both ways: the moving block is far
// larger than that.
func sameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y += 8 {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x += 8 {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				return false
			}
		}
	}
	return true
}
