package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
)

// uiAsset is one embedded UI file, gzipped once at start when that pays.
type uiAsset struct {
	body, gz    []byte
	contentType string
	etag        string
}

// compressible lists the extensions worth gzipping; images are already compressed.
var compressible = map[string]bool{
	".html": true, ".js": true, ".css": true, ".json": true, ".svg": true,
	".webmanifest": true, ".txt": true, "": true,
}

// loadUIAssets reads every embedded UI file into memory. The UI is small
// (a few hundred KB) and fixed at build time, so compressing it once beats
// compressing it per request.
func loadUIAssets(root fs.FS) (map[string]*uiAsset, error) {
	assets := map[string]*uiAsset{}
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		ext := path.Ext(name)
		ct := mime.TypeByExtension(ext)
		switch ext {
		case ".webmanifest":
			ct = "application/manifest+json"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case "":
			ct = "text/plain; charset=utf-8"
		}
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		sum := sha256.Sum256(body)
		a := &uiAsset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if compressible[ext] && len(body) > 512 {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(body)
			_ = zw.Close()
			if buf.Len() < len(body) {
				a.gz = buf.Bytes()
			}
		}
		assets["/"+name] = a
		return nil
	})
	return assets, err
}

// embeddedUI loads and compresses the embedded UI once per process.
var embeddedUI = sync.OnceValues(func() (map[string]*uiAsset, error) {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		return nil, err
	}
	return loadUIAssets(sub)
})

// acceptsGzip reads Accept-Encoding, honouring an explicit gzip;q=0.
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// serveUIAsset answers with the asset at name, gzipped when the client takes
// it. Cache-Control no-cache makes browsers revalidate by ETag, so a new
// build shows at once and an unchanged file costs a 304.
func serveUIAsset(c *gin.Context, assets map[string]*uiAsset, name string) {
	a, ok := assets[name]
	if !ok {
		notFound(c, "file")
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if a.gz != nil {
		h.Set("Vary", "Accept-Encoding")
	}
	if name == "/sw.js" {
		// The worker lives under /ui/ but controls the whole app at /.
		h.Set("Service-Worker-Allowed", "/")
	}
	if inm := c.GetHeader("If-None-Match"); inm != "" && strings.Contains(inm, a.etag) {
		c.Status(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && acceptsGzip(c.GetHeader("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	if c.Request.Method == http.MethodHead {
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		c.Status(http.StatusOK)
		return
	}
	c.Data(http.StatusOK, a.contentType, body)
}

// uiHandler answers the browser app's files, embedded at build time.
type uiHandler struct {
	assets map[string]*uiAsset
}

// index answers / with the browser app.
func (h *uiHandler) index(c *gin.Context) { serveUIAsset(c, h.assets, "/index.html") }

// file answers /ui/* with the browser app's files.
func (h *uiHandler) file(c *gin.Context) { serveUIAsset(c, h.assets, path.Clean(c.Param("file"))) }
