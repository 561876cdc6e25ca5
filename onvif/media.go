package onvif

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// StreamURI asks for the RTSP (RTP unicast) URI of a profile.
func (c *Client) StreamURI(ctx context.Context, profileToken string) (uri string, err error) {
	defer guard("GetStreamUri", c.xaddr, &err)
	return c.mediaURI(ctx, "GetStreamUri", reqGetStreamURI(profileToken))
}

// SnapshotURI asks for the JPEG snapshot URI of a profile.
func (c *Client) SnapshotURI(ctx context.Context, profileToken string) (uri string, err error) {
	defer guard("GetSnapshotUri", c.xaddr, &err)
	return c.mediaURI(ctx, "GetSnapshotUri", reqGetSnapshotURI(profileToken))
}

func (c *Client) mediaURI(ctx context.Context, op string, req any) (string, error) {
	s, err := c.services(ctx)
	if err != nil {
		return "", err
	}
	var r mediaURIResponse
	if err := c.call(ctx, op, svcMedia, s.media, req, &r, callOpts{}); err != nil {
		return "", err
	}
	uri := strings.TrimSpace(r.MediaURI.URI)
	if uri == "" {
		return "", &Error{Op: op, XAddr: s.media, Kind: KindMalformed, Detail: "reply has no Uri"}
	}
	return uri, nil
}

// SetSynchronizationPoint asks the camera to send a keyframe (and
// parameter sets) on the profile's stream soon, so a new viewer need not
// wait for the next GOP.
func (c *Client) SetSynchronizationPoint(ctx context.Context, profileToken string) (err error) {
	defer guard("SetSynchronizationPoint", c.xaddr, &err)
	if profileToken == "" {
		return &Error{Op: "SetSynchronizationPoint", XAddr: c.xaddr, Kind: KindInvalid, Detail: "empty profile token"}
	}
	s, err := c.services(ctx)
	if err != nil {
		return err
	}
	return c.call(ctx, "SetSynchronizationPoint", svcMedia, s.media, reqSetSynchronizationPoint(profileToken), nil, callOpts{})
}

// Snapshot fetches a snapshot image with HTTP GET, answering a Digest or
// Basic challenge with the client's credentials. The body is bounded by
// MaxSnapshotBytes and must be an image. A relative uri is resolved
// against the device address.
func (c *Client) Snapshot(ctx context.Context, uri string) (data []byte, contentType string, err error) {
	const op = "Snapshot"
	defer func() {
		if v := recover(); v != nil {
			data, contentType, err = nil, "", recovered(op, uri, v)
		}
	}()
	u, perr := c.base.Parse(strings.TrimSpace(uri))
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, "", &Error{Op: op, XAddr: uri, Kind: KindInvalid, Detail: "snapshot URI is not an http(s) URL", Err: perr}
	}
	target := u.String()
	fail := func(kind ErrorKind, detail string, cause error) error {
		return &Error{Op: op, XAddr: redact(u), Kind: kind, Detail: detail, Err: cause}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var auth httpAuth
	for attempt := 0; attempt < 3; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, "", fail(KindInvalid, "bad snapshot URI", err)
		}
		req.Header.Set("Accept", "image/*")
		if c.opts.Username != "" {
			auth.apply(req, c.opts.Username, c.opts.Password)
		}
		start := time.Now()
		resp, err := c.hc.Do(req)
		if err != nil {
			kind, detail := c.transportProblem(ctx, err)
			return nil, "", fail(kind, detail, errors.Unwrap(err))
		}
		body, rerr := readBounded(resp.Body, c.opts.MaxSnapshotBytes)
		resp.Body.Close()
		c.log.Debug("onvif snapshot", "uri", redact(u), "status", resp.StatusCode, "bytes", len(body), "took", time.Since(start))
		if rerr != nil {
			if errors.Is(rerr, errTooLarge) {
				return nil, "", fail(KindTooLarge, fmt.Sprintf("snapshot larger than %d bytes", c.opts.MaxSnapshotBytes), nil)
			}
			kind, detail := c.transportProblem(ctx, rerr)
			return nil, "", fail(kind, detail, rerr)
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			if c.opts.Username == "" {
				return nil, "", fail(KindAuth, "camera requires credentials (HTTP 401)", nil)
			}
			if !auth.none() {
				return nil, "", fail(KindAuth, fmt.Sprintf("camera refused the credentials (HTTP 401 after %s authentication)", auth.scheme()), nil)
			}
			na, why, ok := fromChallenges(resp.Header)
			if !ok {
				return nil, "", fail(KindAuth, "HTTP 401 with a challenge this client cannot answer: "+why, nil)
			}
			auth = na
			continue
		case resp.StatusCode == http.StatusForbidden:
			return nil, "", fail(KindAuth, "HTTP 403 Forbidden", nil)
		case resp.StatusCode/100 != 2:
			return nil, "", fail(KindHTTP, fmt.Sprintf("HTTP %d", resp.StatusCode), nil)
		}
		ct := resp.Header.Get("Content-Type")
		mt, _, _ := mime.ParseMediaType(ct)
		if !strings.HasPrefix(mt, "image/") {
			// Some cameras label JPEGs application/octet-stream or not at
			// all; trust the bytes then, but never an HTML login page.
			sniffed := http.DetectContentType(body)
			if !strings.HasPrefix(sniffed, "image/") {
				if ct == "" {
					ct = sniffed
				}
				return nil, "", fail(KindMalformed, fmt.Sprintf("snapshot is %s, not an image", ct), nil)
			}
			ct = sniffed
		}
		return body, ct, nil
	}
	return nil, "", fail(KindAuth, "gave up after repeated authentication challenges", nil)
}

// redact drops user information from a URI before it is logged or put in
// an error: some cameras embed credentials in snapshot URIs.
func redact(u *url.URL) string {
	if u.User == nil && !strings.Contains(strings.ToLower(u.RawQuery), "pass") {
		return u.String()
	}
	r := *u
	r.User = nil
	if r.RawQuery != "" {
		r.RawQuery = "…"
	}
	return r.String()
}
