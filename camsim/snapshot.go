package camsim

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// serveSnapshot answers GET /onvif/snapshot?profile=main|sub with a JPEG
// test pattern rendered now: colour bars, a banner with the camera's name
// and the time, a block that moves one step per snapshot, and, on a PTZ
// camera, a crosshair where the head points. Credentials as for SOAP, by
// HTTP Digest or Basic (what snapshot clients use).
func (c *Camera) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "snapshot wants GET", http.StatusMethodNotAllowed)
		return
	}
	if !c.waitSlow(r.Context()) {
		return
	}
	if !c.httpAuthorized(r) {
		c.digest.challenge(w, true)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	profile := r.URL.Query().Get("profile")
	if profile == "" {
		profile = ProfileMain
	}
	clip, ok := c.clips[profile]
	if !ok {
		http.Error(w, "no profile "+strconv.Quote(profile), http.StatusNotFound)
		return
	}
	seq := c.snapshots.Add(1)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, c.renderSnapshot(profile, clip.Width, clip.Height, seq, time.Now()), &jpeg.Options{Quality: 80}); err != nil {
		http.Error(w, "cannot encode snapshot", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodGet {
		w.Write(buf.Bytes())
	}
}

// httpAuthorized checks HTTP Digest or Basic credentials.
func (c *Camera) httpAuthorized(r *http.Request) bool {
	if c.Faults().WrongPassword {
		return false
	}
	if c.cfg.Username == "" {
		return true
	}
	return c.digest.verify(r, c.cfg.Username, c.cfg.Password) || basicOK(r, c.cfg.Username, c.cfg.Password)
}

var snapshotBars = []color.RGBA{
	{192, 192, 192, 255}, {192, 192, 0, 255}, {0, 192, 192, 255}, {0, 192, 0, 255},
	{192, 0, 192, 255}, {192, 0, 0, 255}, {0, 0, 192, 255}, {16, 16, 16, 255},
}

func (c *Camera) renderSnapshot(profile string, w, h int, seq uint64, now time.Time) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	barW := (w + len(snapshotBars) - 1) / len(snapshotBars)
	for i, col := range snapshotBars {
		draw.Draw(img, image.Rect(i*barW, 0, (i+1)*barW, h*2/3), image.NewUniform(col), image.Point{}, draw.Src)
	}
	for x := 0; x < w; x++ { // grey ramp under the bars
		v := uint8(x * 255 / w)
		draw.Draw(img, image.Rect(x, h*2/3, x+1, h), image.NewUniform(color.RGBA{v, v, v, 255}), image.Point{}, draw.Src)
	}

	// The moving block: one step per snapshot, so two snapshots differ.
	size := h / 8
	steps := uint64(max(1, (w-size)/(w/16)))
	bx := int(seq%steps) * (w / 16)
	draw.Draw(img, image.Rect(bx, h*3/4, bx+size, h*3/4+size), image.NewUniform(color.White), image.Point{}, draw.Src)

	// The banner with the name, the profile and the time.
	scale := max(1, h/180)
	banner := image.Rect(0, 0, w, 2*13*scale+6*scale)
	draw.Draw(img, banner, image.NewUniform(color.RGBA{0, 0, 0, 255}), image.Point{}, draw.Src)
	c.drawText(img, fmt.Sprintf("%s  [%s %dx%d]", c.cfg.Name, profile, w, h), 2*scale, 2*scale, scale)
	c.drawText(img, fmt.Sprintf("%s  #%d", now.UTC().Format("2006-01-02 15:04:05.000Z"), seq), 2*scale, 15*scale+4*scale, scale)

	if c.ptz != nil {
		pos := c.ptz.position()
		cx := int((pos.Pan + 1) / 2 * float64(w-1))
		cy := int((1 - (pos.Tilt+1)/2) * float64(h-1))
		arm := int(float64(h/10) * (1 + 2*pos.Zoom)) // a longer cross the more zoomed in
		red := image.NewUniform(color.RGBA{255, 0, 0, 255})
		draw.Draw(img, image.Rect(cx-arm, cy-scale, cx+arm, cy+scale), red, image.Point{}, draw.Src)
		draw.Draw(img, image.Rect(cx-scale, cy-arm, cx+scale, cy+arm), red, image.Point{}, draw.Src)
	}
	return img
}

// drawText writes s in the 7x13 bitmap font, enlarged scale times, with its
// top-left corner at (x, y). Characters the font lacks are skipped.
func (c *Camera) drawText(dst *image.RGBA, s string, x, y, scale int) {
	face := basicfont.Face7x13
	small := image.NewRGBA(image.Rect(0, 0, font.MeasureString(face, s).Ceil()+1, 13))
	d := font.Drawer{Dst: small, Src: image.NewUniform(color.White), Face: face, Dot: fixed.P(0, face.Ascent)}
	d.DrawString(s)
	r := image.Rect(x, y, x+small.Bounds().Dx()*scale, y+13*scale)
	draw.NearestNeighbor.Scale(dst, r, small, small.Bounds(), draw.Over, nil)
}
