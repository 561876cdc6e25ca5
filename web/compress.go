package web

import (
	"net/http"
	"strings"

	"github.com/gin-contrib/gzip"
	"github.com/gin-gonic/gin"
)

// gzippedPaths are the answers that grow with the catalog or the log: a
// page of 1,000 points is about half a megabyte of JSON that compresses
// tenfold, which matters to a phone on 4G. Small answers are left alone:
// compressing them costs more CPU than it saves bytes.
var gzippedPaths = map[string]bool{
	"/api/v1/points":        true,
	"/api/v1/points/facets": true,
	"/api/v1/points/geo":    true,
	"/api/v1/points/export": true,
	"/api/v1/audit":         true,
}

// compressLists gzips GET answers of gzippedPaths for clients that accept
// gzip. Errors (4xx, 5xx) go out uncompressed.
func compressLists() gin.HandlerFunc {
	return gzip.Gzip(gzip.DefaultCompression, gzip.WithCustomShouldCompressFn(func(c *gin.Context) bool {
		r := c.Request
		return r.Method == http.MethodGet && gzippedPaths[strings.TrimSuffix(r.URL.Path, "/")] &&
			acceptsGzip(r.Header.Get("Accept-Encoding"))
	}))
}
