package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// limitedBody is a request body cut off at a limit that remembers whether
// the limit was crossed. Decoders further down (catalog's) turn read errors
// into their own validation errors; asking the body afterwards is how a
// handler still answers 413 rather than 400 for an oversized upload.
type limitedBody struct {
	r    io.Reader
	over bool
}

// limitBody bounds the request body at n bytes.
func limitBody(c *gin.Context, n int64) *limitedBody {
	return &limitedBody{r: http.MaxBytesReader(c.Writer, c.Request.Body, n)}
}

// Read reads the body and notes a crossed limit.
func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var tooBig *http.MaxBytesError
	if err != nil && errors.As(err, &tooBig) {
		b.over = true
	}
	return n, err
}

// exceeded reports whether the body is over the limit. A decoder with a
// cap of its own (catalog stops at 1 MiB) may stop reading exactly at the
// limit and call the cut-off document malformed; one more byte tells a body
// that ends there from one that goes on.
func (b *limitedBody) exceeded() bool {
	if !b.over {
		var one [1]byte
		_, _ = b.Read(one[:])
	}
	return b.over
}

// declaredTooLarge answers 413 when the client announced a body over n
// bytes, before anything is read.
func declaredTooLarge(c *gin.Context, n int64) bool {
	if c.Request.ContentLength > n {
		tooLarge(c, n)
		return true
	}
	return false
}

func tooLarge(c *gin.Context, n int64) {
	fail(c, http.StatusRequestEntityTooLarge, "too_large", "request body larger than "+byteSize(n))
}

// byteSize renders a limit for people: "64 MiB", "1 MiB", "512 KiB", "100 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// decodeJSON reads a bounded JSON body into v, answering 400/413 itself.
func decodeJSON(c *gin.Context, v any) bool {
	if !requireJSON(c) {
		return false
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(c, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
			return false
		}
		fail(c, http.StatusBadRequest, "bad_json", "malformed JSON: "+err.Error())
		return false
	}
	return true
}

// drain discards what is left of a body so keep-alive connections survive.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, maxJSONBody)) }
