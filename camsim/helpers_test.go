package camsim

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

const (
	testUser = "admin"
	testPass = "s3cret&<pass>"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// uniqueName keeps this test's cameras apart from those other test
// processes may have answering on loopback at the same time.
func uniqueName(t *testing.T, base string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return base + "-" + hex.EncodeToString(b)
}

// startCam starts a camera with test defaults (credentials on, no probe
// delay) and closes it at the end of the test.
func startCam(t *testing.T, cfg CameraConfig) *Camera {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = uniqueName(t, "cam")
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	cam, err := StartCamera(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

func authedConfig() CameraConfig {
	return CameraConfig{Username: testUser, Password: testPass}
}

// --- SOAP client side, written from the specs, independent of camsim ---

type soapClient struct {
	t          *testing.T
	url        string
	user, pass string
	http       *http.Client
}

func newSOAPClient(t *testing.T, xaddr, user, pass string) *soapClient {
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &soapClient{t: t, url: xaddr, user: user, pass: pass, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// wsseHeader builds a WS-Security UsernameToken with PasswordDigest.
func wsseHeader(user, pass string) string {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	created := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(pass))
	return fmt.Sprintf(`<wsse:Security s:mustUnderstand="1" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">`+
		`<wsse:UsernameToken><wsse:Username>%s</wsse:Username>`+
		`<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">%s</wsse:Password>`+
		`<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">%s</wsse:Nonce>`+
		`<wsu:Created>%s</wsu:Created></wsse:UsernameToken></wsse:Security>`,
		xmlText(user), base64.StdEncoding.EncodeToString(h.Sum(nil)), base64.StdEncoding.EncodeToString(nonce), created)
}

func xmlText(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func soapEnvelope(header, body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` +
		`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"` +
		` xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">` +
		`<s:Header>` + header + `</s:Header><s:Body>` + body + `</s:Body></s:Envelope>`
}

// post sends a raw body and returns the status, headers and body.
func (c *soapClient) post(body string, hdr http.Header) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", soapCT)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

// call sends one operation with a UsernameToken (when the client has a
// user) and returns the status and the body.
func (c *soapClient) call(op string) (int, []byte) {
	c.t.Helper()
	header := ""
	if c.user != "" {
		header = wsseHeader(c.user, c.pass)
	}
	status, _, body := c.post(soapEnvelope(header, op), nil)
	return status, body
}

// mustCall is call that wants 200 and decodes the reply's Body into v.
func (c *soapClient) mustCall(op string, v any) {
	c.t.Helper()
	status, body := c.call(op)
	if status != http.StatusOK {
		c.t.Fatalf("%s: status %d: %s", op, status, body)
	}
	decodeBody(c.t, body, v)
}

func decodeBody(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(body))
	inBody := false
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("no element in a SOAP 1.2 Body: %v: %s", err, body)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if inBody {
			if err := dec.DecodeElement(v, &se); err != nil {
				t.Fatalf("decoding %s: %v", se.Name.Local, err)
			}
			return
		}
		inBody = se.Name == xml.Name{Space: nsSOAP12, Local: "Body"}
	}
}

// soapFaultIn is a SOAP 1.2 fault as a client reads it.
type soapFaultIn struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Fault"`
	Code    struct {
		Value   string `xml:"Value"`
		Subcode struct {
			Value   string `xml:"Value"`
			Subcode struct {
				Value string `xml:"Value"`
			} `xml:"Subcode"`
		} `xml:"Subcode"`
	} `xml:"Code"`
	Reason string `xml:"Reason>Text"`
}

// wantFault checks status and fault subcodes (prefix "ter:" as sent).
func wantFault(t *testing.T, status int, body []byte, wantStatus int, subcodes ...string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %s", status, wantStatus, body)
	}
	var f soapFaultIn
	decodeBody(t, body, &f)
	got := []string{f.Code.Subcode.Value, f.Code.Subcode.Subcode.Value}
	for i, want := range subcodes {
		if got[i] != want {
			t.Fatalf("fault subcodes %q, want %q (reason %q)", got, subcodes, f.Reason)
		}
	}
}

// digestAuthorization answers an HTTP Digest challenge (RFC 7616, MD5).
func digestAuthorization(t *testing.T, challenge, method, uri, user, pass string) string {
	t.Helper()
	params := map[string]string{}
	rest, ok := strings.CutPrefix(challenge, "Digest ")
	if !ok {
		t.Fatalf("not a Digest challenge: %q", challenge)
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		params[k] = strings.Trim(v, `"`)
	}
	md := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	ha1 := md(user + ":" + params["realm"] + ":" + pass)
	ha2 := md(method + ":" + uri)
	cnonce, nc := "0a4f113b", "00000001"
	resp := md(ha1 + ":" + params["nonce"] + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, qop=auth, nc=%s, cnonce=%q, response=%q, algorithm=MD5`,
		user, params["realm"], params["nonce"], uri, nc, cnonce, resp)
}

func digestChallenge(t *testing.T, h http.Header) string {
	t.Helper()
	for _, v := range h.Values("WWW-Authenticate") {
		if strings.HasPrefix(v, "Digest ") {
			return v
		}
	}
	t.Fatalf("no Digest challenge in %q", h.Values("WWW-Authenticate"))
	return ""
}

// --- RTSP reading ---

// frame is what a test keeps of one received access unit.
type frame struct {
	key bool
	sps []byte // in-band SPS, when the AU carries one
}

// frameReader plays a URL over TCP and records each access unit.
type frameReader struct {
	client *gortsplib.Client
	desc   *description.Session
	codec  string
	done   chan error // Wait's result

	mu     sync.Mutex
	frames []frame
	more   chan struct{} // signalled after each frame
}

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// openReader starts reading rawURL with user/pass (empty: none). dial may be
// nil (the default dialer).
func openReader(t *testing.T, rawURL, user, pass string, dial dialFunc) (*frameReader, error) {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	tcp := gortsplib.TransportTCP
	r := &frameReader{more: make(chan struct{}, 1), done: make(chan error, 1)}
	r.client = &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, DialContext: dial}
	if err := r.client.Start2(); err != nil {
		return nil, err
	}
	t.Cleanup(r.client.Close)
	r.desc, _, err = r.client.Describe(u)
	if err != nil {
		return nil, err
	}
	if len(r.desc.Medias) != 1 || len(r.desc.Medias[0].Formats) != 1 {
		t.Fatalf("want one video format, got %+v", r.desc.Medias)
	}
	var decode func(*rtp.Packet) ([][]byte, error)
	switch f := r.desc.Medias[0].Formats[0].(type) {
	case *format.H264:
		r.codec = "H264"
		d, err := f.CreateDecoder()
		if err != nil {
			t.Fatal(err)
		}
		decode = d.Decode
	case *format.H265:
		r.codec = "H265"
		d, err := f.CreateDecoder()
		if err != nil {
			t.Fatal(err)
		}
		decode = d.Decode
	default:
		t.Fatalf("unexpected format %T", f)
	}
	if err := r.client.SetupAll(r.desc.BaseURL, r.desc.Medias); err != nil {
		return nil, err
	}
	r.client.OnPacketRTPAny(func(_ *description.Media, _ format.Format, pkt *rtp.Packet) {
		au, err := decode(pkt)
		if err != nil {
			return // more packets needed, or a loss before the first start
		}
		r.record(au)
	})
	if _, err := r.client.Play(nil); err != nil {
		return nil, err
	}
	go func() { r.done <- r.client.Wait() }()
	return r, nil
}

func (r *frameReader) record(au [][]byte) {
	var f frame
	if r.codec == "H264" {
		f.key = h264.IsRandomAccess(au)
		for _, n := range au {
			if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
				f.sps = n
			}
		}
	} else {
		f.key = h265.IsRandomAccess(au)
		for _, n := range au {
			if len(n) > 1 && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT {
				f.sps = n
			}
		}
	}
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// waitFrames waits until at least n frames have arrived, then returns them
// all. It fails the test after 10 s: a bound on a hang, not a timing check.
func (r *frameReader) waitFrames(t *testing.T, n int) []frame {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.frames) >= n {
			out := append([]frame(nil), r.frames...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("only %d of %d frames arrived", len(r.frames), n)
		}
	}
}

// spsSize reads the resolution out of an SPS.
func spsSize(t *testing.T, codec string, sps []byte) (int, int) {
	t.Helper()
	if codec == "H264" {
		var s h264.SPS
		if err := s.Unmarshal(sps); err != nil {
			t.Fatal(err)
		}
		return s.Width(), s.Height()
	}
	var s h265.SPS
	if err := s.Unmarshal(sps); err != nil {
		t.Fatal(err)
	}
	return s.Width(), s.Height()
}
