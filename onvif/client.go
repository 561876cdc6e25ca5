package onvif

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults for ClientOptions.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	DefaultMaxSnapshotBytes = 4 << 20
)

// ClientOptions configure a Client. The zero value works for a camera
// without a password.
type ClientOptions struct {
	// Username and Password authenticate every request (WS-Security
	// UsernameToken digest, plus HTTP Digest or Basic when challenged).
	Username, Password string
	// HTTPClient carries the requests. Nil means a client of this package
	// that ignores proxy settings (cameras sit on private networks) and
	// verifies TLS certificates; pass your own to trust a camera's
	// self-signed certificate.
	HTTPClient *http.Client
	// Timeout bounds each ONVIF call, including authentication retries.
	// Default 5 s.
	Timeout time.Duration
	// MaxResponseBytes bounds a SOAP reply. Default 1 MiB.
	MaxResponseBytes int64
	// MaxSnapshotBytes bounds a snapshot image. Default 4 MiB.
	MaxSnapshotBytes int64
	// Logger receives debug lines about exchanges (never credentials).
	// Nil means slog.Default().
	Logger *slog.Logger
}

// Client talks to one camera's ONVIF services. It is safe for concurrent
// use; it remembers the camera's clock offset, the HTTP authentication
// scheme it asked for and its media and PTZ service addresses.
type Client struct {
	xaddr string
	base  *url.URL
	opts  ClientOptions
	hc    *http.Client
	log   *slog.Logger

	mu       sync.Mutex
	offset   time.Duration
	auth     httpAuth
	soap11   bool
	svcAddrs *serviceAddrs
}

// serviceAddrs are the service endpoints learned from the camera.
type serviceAddrs struct {
	media, ptz string
	warnings   []string
}

// defaultTransport is shared by clients without their own HTTPClient so
// that connections to many cameras reuse one pool.
var defaultTransport = &http.Transport{
	Proxy:                 nil,
	DialContext:           (&net.Dialer{Timeout: DefaultTimeout, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConnsPerHost:   2,
	IdleConnTimeout:       30 * time.Second,
	TLSHandshakeTimeout:   DefaultTimeout,
	ExpectContinueTimeout: time.Second,
}

// NewClient returns a client for the device service at xaddr. xaddr may be
// a full URL ("http://10.1.2.3/onvif/device_service"), or just "host" or
// "host:port", in which case http and the standard device service path are
// assumed.
func NewClient(xaddr string, opts ClientOptions) (*Client, error) {
	u, err := normalizeXAddr(xaddr)
	if err != nil {
		return nil, &Error{Op: "NewClient", XAddr: xaddr, Kind: KindInvalid, Detail: err.Error()}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.MaxSnapshotBytes <= 0 {
		opts.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	c := &Client{xaddr: u.String(), base: u, opts: opts, hc: opts.HTTPClient, log: opts.Logger}
	if c.hc == nil {
		c.hc = &http.Client{Transport: defaultTransport}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

func normalizeXAddr(x string) (*url.URL, error) {
	x = strings.TrimSpace(x)
	if x == "" {
		return nil, errors.New("empty device address")
	}
	if !strings.Contains(x, "://") {
		x = "http://" + x
	}
	u, err := url.Parse(x)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("device address has no host")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/onvif/device_service"
	}
	return u, nil
}

// XAddr returns the device service address the client talks to.
func (c *Client) XAddr() string { return c.xaddr }

// ClockOffset returns camera time minus local time as last measured by
// GetSystemDateAndTime (zero before Probe or SyncClock).
func (c *Client) ClockOffset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// callOpts adjust one call.
type callOpts struct {
	noWSSE bool   // leave out the UsernameToken (GetSystemDateAndTime)
	omit   string // element to drop from the marshaled request
}

// call sends one ONVIF request to endpoint and decodes the reply body into
// out (nil to ignore it). It answers HTTP challenges, falls back to SOAP
// 1.1 when the camera refuses 1.2, and returns *Error on any failure.
func (c *Client) call(ctx context.Context, op string, svc service, endpoint string, req, out any, o callOpts) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered(op, endpoint, v)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	fail := func(kind ErrorKind, detail string, cause error) error {
		return &Error{Op: op, XAddr: endpoint, Kind: kind, Detail: detail, Err: cause}
	}
	authRetries, triedSOAP11 := 0, false
	for attempt := 0; attempt < 5; attempt++ {
		c.mu.Lock()
		auth, soap11, offset := c.auth, c.soap11, c.offset
		c.mu.Unlock()
		sec := ""
		if c.opts.Username != "" && !o.noWSSE {
			sec = usernameToken(c.opts.Username, c.opts.Password, time.Now().Add(offset))
		}
		body, err := buildEnvelope(req, sec, soap11)
		if err != nil {
			return fail(KindInternal, "cannot marshal request", err)
		}
		if o.omit != "" {
			body = omitElement(body, o.omit)
		}
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return fail(KindInvalid, "bad service address", err)
		}
		action := string(svc) + "/" + op
		if soap11 {
			hreq.Header.Set("Content-Type", "text/xml; charset=utf-8")
			hreq.Header.Set("SOAPAction", `"`+action+`"`)
		} else {
			hreq.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+action+`"`)
		}
		if c.opts.Username != "" {
			auth.apply(hreq, c.opts.Username, c.opts.Password)
		}
		start := time.Now()
		resp, err := c.hc.Do(hreq)
		if err != nil {
			kind, detail := c.transportProblem(ctx, err)
			return fail(kind, detail, err)
		}
		data, rerr := readBounded(resp.Body, c.opts.MaxResponseBytes)
		resp.Body.Close()
		c.log.Debug("onvif call", "op", op, "xaddr", endpoint, "status", resp.StatusCode,
			"bytes", len(data), "auth", auth.scheme(), "soap11", soap11, "took", time.Since(start))
		if rerr != nil {
			if errors.Is(rerr, errTooLarge) {
				return fail(KindTooLarge, fmt.Sprintf("reply larger than %d bytes", c.opts.MaxResponseBytes), nil)
			}
			kind, detail := c.transportProblem(ctx, rerr)
			if kind == KindNetwork && isTruncation(rerr) {
				kind, detail = KindMalformed, "reply cut off before its end"
			}
			return fail(kind, detail, rerr)
		}

		switch resp.StatusCode {
		case http.StatusUnauthorized:
			if c.opts.Username == "" {
				return fail(KindAuth, "camera requires credentials (HTTP 401)", nil)
			}
			na, why, ok := fromChallenges(resp.Header)
			if !ok {
				return fail(KindAuth, "HTTP 401 with a challenge this client cannot answer: "+why, nil)
			}
			stale := na.digest != nil && strings.EqualFold(parseStale(resp.Header), "true")
			if authRetries > 0 && !(stale && authRetries == 1) {
				return fail(KindAuth, fmt.Sprintf("camera refused the credentials (HTTP 401 after %s authentication)", auth.scheme()), nil)
			}
			authRetries++
			c.mu.Lock()
			c.auth = na
			c.mu.Unlock()
			continue
		case http.StatusUnsupportedMediaType:
			if !soap11 && !triedSOAP11 {
				triedSOAP11 = true
				c.setSOAP11(true)
				continue
			}
		}

		status := resp.StatusCode
		if out == nil && status/100 == 2 && len(bytes.TrimSpace(data)) == 0 {
			// Some PTZ firmwares acknowledge Stop or ContinuousMove with
			// an empty 200; nothing was expected back anyway.
			return nil
		}
		if looksHTML(resp.Header.Get("Content-Type"), data) {
			kind := KindHTTP
			if status/100 == 2 {
				kind = KindMalformed
			}
			return fail(kind, fmt.Sprintf("camera answered HTML, not SOAP (HTTP %d)", status), nil)
		}
		perr := parseSOAP(data, out)
		var fault *soapFault
		var pe *parseError
		switch {
		case errors.As(perr, &fault):
			if fault.versionMismatch() && !soap11 && !triedSOAP11 {
				triedSOAP11 = true
				c.setSOAP11(true)
				continue
			}
			kind := fault.kind()
			if status == http.StatusForbidden {
				kind = KindAuth
			}
			return fail(kind, fmt.Sprintf("%s (HTTP %d)", fault.Error(), status), nil)
		case errors.As(perr, &pe):
			switch {
			case status == http.StatusForbidden:
				return fail(KindAuth, "HTTP 403 Forbidden", nil)
			case status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented:
				return fail(KindUnsupported, fmt.Sprintf("no ONVIF service here (HTTP %d)", status), nil)
			case status/100 != 2:
				return fail(KindHTTP, fmt.Sprintf("HTTP %d with a body that is not SOAP: %s", status, pe.msg), pe.err)
			}
			return fail(KindMalformed, pe.msg, pe.err)
		case perr != nil:
			return fail(KindMalformed, "unreadable reply", perr)
		}
		if status/100 != 2 {
			return fail(KindHTTP, fmt.Sprintf("HTTP %d with a SOAP body that is not a fault", status), nil)
		}
		return nil
	}
	return fail(KindAuth, "gave up after repeated authentication challenges", nil)
}

func (c *Client) setSOAP11(v bool) {
	c.mu.Lock()
	c.soap11 = v
	c.mu.Unlock()
}

// parseStale returns the stale parameter of the Digest challenge.
func parseStale(h http.Header) string {
	for _, ch := range parseChallenges(h.Values("WWW-Authenticate")) {
		if ch.scheme == "digest" {
			return ch.params["stale"]
		}
	}
	return ""
}

// transportProblem classifies an error from the HTTP exchange.
func (c *Client) transportProblem(ctx context.Context, err error) (ErrorKind, string) {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled:
		return KindCanceled, "call canceled"
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded ||
		(errors.As(err, &ne) && ne.Timeout()):
		return KindTimeout, fmt.Sprintf("no complete reply within %s", c.opts.Timeout)
	}
	return KindNetwork, "exchange failed"
}

var errTooLarge = errors.New("body exceeds the size bound")

// readBounded reads at most max bytes, failing with errTooLarge beyond.
func readBounded(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return data, err
	}
	if int64(len(data)) > max {
		return nil, errTooLarge
	}
	return data, nil
}

// looksHTML reports an HTML page, by content type or by its first bytes
// (many cameras label their error pages text/xml or nothing at all).
func looksHTML(contentType string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	head := bytes.ToLower(bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))))
	if len(head) > 64 {
		head = head[:64]
	}
	return bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html"))
}

// resolveServiceAddr makes a service address reported by the camera usable
// from here. Cameras behind NAT or with a stale network configuration
// report addresses with their own private IP; when the reported host
// differs from the one we reached, the path is kept and the host swapped
// for ours (the warning says so).
func (c *Client) resolveServiceAddr(reported, what string) (addr, warning string) {
	reported = strings.TrimSpace(reported)
	if reported == "" {
		return "", ""
	}
	// Some cameras list several addresses separated by spaces.
	if f := strings.Fields(reported); len(f) > 1 {
		reported = f[0]
	}
	u, err := url.Parse(reported)
	if err != nil || u.Host == "" {
		if err == nil && strings.HasPrefix(reported, "/") {
			r := *c.base
			r.Path, r.RawQuery = u.Path, u.RawQuery
			return r.String(), ""
		}
		return "", fmt.Sprintf("%s service address %q is not a URL", what, reported)
	}
	if strings.EqualFold(u.Hostname(), c.base.Hostname()) {
		return u.String(), ""
	}
	r := *u
	r.Scheme, r.Host = c.base.Scheme, c.base.Host
	return r.String(), fmt.Sprintf("%s service reported at %s; using %s", what, reported, r.String())
}
