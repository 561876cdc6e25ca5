package onvif

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quirk reads a reply from the quirk corpus.
func quirk(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "quirks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cannedCamera answers every POST with the same status, content type and
// body, like a camera whose firmware has exactly one way of answering.
func cannedCamera(t *testing.T, status int, contentType string, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/onvif/device_service"
}

func newTestClient(t *testing.T, xaddr string, opts ClientOptions) *Client {
	t.Helper()
	c, err := NewClient(xaddr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantKind fails unless err is an *Error of the given kind whose message
// contains every fragment.
func wantKind(t *testing.T, err error, kind ErrorKind, fragments ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error of kind %s, got %T %v", kind, err, err)
	}
	if e.Kind != kind {
		t.Fatalf("want kind %s, got %s: %v", kind, e.Kind, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

func getDeviceInfo(t *testing.T, c *Client) (deviceInformationResponse, error) {
	t.Helper()
	var r deviceInformationResponse
	err := c.call(context.Background(), "GetDeviceInformation", svcDevice, c.xaddr, reqGetDeviceInformation(), &r, callOpts{})
	return r, err
}

func TestDeviceInformationWithNs0PrefixesAndExtraElements(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 200, "application/soap+xml; charset=utf-8", quirk(t, "device_info_ns0.xml")), ClientOptions{})
	r, err := getDeviceInfo(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Manufacturer != "Acme" || r.Model != "IPC-2000" || strings.TrimSpace(r.FirmwareVersion) != "V5.4.1 build 190101" ||
		r.SerialNumber != "SN0001" || r.HardwareID != "88" {
		t.Fatalf("parsed %+v", r)
	}
}

func TestDeviceInformationInWrongNamespacesWithBareAmpersandAndHTMLEntity(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 200, "application/soap+xml", quirk(t, "device_info_wrong_ns.xml")), ClientOptions{})
	r, err := getDeviceInfo(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Manufacturer != "Smith & Sons\u00a0Security" || r.Model != "DomeX" || r.SerialNumber != "SN-WRONG-NS" || r.HardwareID != "" {
		t.Fatalf("parsed %+v", r)
	}
}

func TestDeviceInformationLatin1WithByteOrderMark(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 200, "text/xml", quirk(t, "device_info_latin1.xml")), ClientOptions{})
	r, err := getDeviceInfo(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Manufacturer != "Caméra SA" || r.SerialNumber != "LATIN1" {
		t.Fatalf("parsed %+v", r)
	}
}

func TestSOAP11ReplyWithTextXMLContentType(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 200, "text/xml; charset=utf-8", quirk(t, "device_info_soap11.xml")), ClientOptions{})
	r, err := getDeviceInfo(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Manufacturer != "OldCam" || r.SerialNumber != "SOAP11" {
		t.Fatalf("parsed %+v", r)
	}
}

func TestProfilesWithMissingOptionalFieldsAndVendorSpellings(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 200, "application/soap+xml", quirk(t, "profiles_missing_optional.xml")), ClientOptions{})
	var r profilesResponse
	if err := c.call(context.Background(), "GetProfiles", svcMedia, c.xaddr, reqGetProfiles(), &r, callOpts{}); err != nil {
		t.Fatal(err)
	}
	if len(r.Profiles) != 3 {
		t.Fatalf("want 3 profiles, got %d", len(r.Profiles))
	}
	got := []Profile{r.Profiles[0].profile(), r.Profiles[1].profile(), r.Profiles[2].profile()}
	want := []Profile{
		{Token: "Profile_1", Name: "mainStream", Codec: "H264", Width: 2560, Height: 1440, FPS: 25, Bitrate: 4096, PTZ: true},
		{Token: "Profile_2", Name: "subStream", Codec: "H265", Width: 640, Height: 360},
		{Token: "Profile_3", Name: "audioOnly"},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("profile %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	d := Device{Profiles: got}
	main, sub := d.MainSub()
	if main == nil || sub == nil || main.Token != "Profile_1" || sub.Token != "Profile_2" {
		t.Fatalf("MainSub = %v, %v", main, sub)
	}
}

func TestSystemDateAndTimeGivesClockOffset(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 200, "application/soap+xml", quirk(t, "system_date_time.xml")), ClientOptions{})
	if err := c.SyncClock(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The corpus camera says 2020-11-15T04:05:06Z.
	camera := time.Date(2020, 11, 15, 4, 5, 6, 0, time.UTC)
	want := camera.Sub(time.Now())
	if d := c.ClockOffset() - want; d < -time.Minute || d > time.Minute {
		t.Fatalf("offset %v, want about %v", c.ClockOffset(), want)
	}
}

func TestCapabilitiesWithForeignHostAreRewrittenToTheReachedHost(t *testing.T) {
	xaddr := cannedCamera(t, 200, "application/soap+xml", quirk(t, "capabilities_ns0.xml"))
	c := newTestClient(t, xaddr, ClientOptions{})
	s, err := c.services(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(xaddr, "http://"), "/onvif/device_service")
	if s.media != "http://"+host+"/onvif/Media" || s.ptz != "http://"+host+"/onvif/PTZ" {
		t.Fatalf("services %+v", s)
	}
	if len(s.warnings) != 2 || !strings.Contains(s.warnings[0], "127.0.0.2") {
		t.Fatalf("warnings %q", s.warnings)
	}
}

func TestFaultsAreClassified(t *testing.T) {
	cases := []struct {
		file      string
		status    int
		ctype     string
		kind      ErrorKind
		fragments []string
	}{
		{"fault_soap12_notauthorized.xml", 400, "application/soap+xml", KindAuth,
			[]string{"code=env:Sender", "subcode=ter:NotAuthorized", `reason="Sender not Authorized"`, "HTTP 400"}},
		{"fault_soap11_auth.xml", 500, "text/xml", KindAuth,
			[]string{"code=wsse:FailedAuthentication", "could not be authenticated", `detail="bad digest"`}},
		{"fault_soap12_actionnotsupported.xml", 500, "application/soap+xml", KindUnsupported,
			[]string{"subcode=ter:ActionNotSupported/ter:NoSuchService", "Optional Action Not Implemented"}},
		{"fault_soap12_invalidarg.xml", 500, "application/soap+xml", KindSOAPFault,
			[]string{"subcode=ter:InvalidArgVal/ter:NoProfile", "does not exist", `detail="profile 99"`}},
		// A fault delivered with 200 OK is still a fault.
		{"fault_soap12_notauthorized.xml", 200, "application/soap+xml", KindAuth, []string{"NotAuthorized", "HTTP 200"}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			c := newTestClient(t, cannedCamera(t, tc.status, tc.ctype, quirk(t, tc.file)), ClientOptions{Username: "admin", Password: "wrong"})
			_, err := getDeviceInfo(t, c)
			wantKind(t, err, tc.kind, append(tc.fragments, "GetDeviceInformation")...)
		})
	}
}

func TestHTMLErrorPageIsReportedAsSuch(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 500, "text/html", quirk(t, "html_500.html")), ClientOptions{})
	_, err := getDeviceInfo(t, c)
	wantKind(t, err, KindHTTP, "camera answered HTML, not SOAP (HTTP 500)")

	// Mislabelled as XML, still recognised by its first bytes.
	c = newTestClient(t, cannedCamera(t, 500, "application/soap+xml", quirk(t, "html_500.html")), ClientOptions{})
	_, err = getDeviceInfo(t, c)
	wantKind(t, err, KindHTTP, "camera answered HTML, not SOAP (HTTP 500)")
}

func TestTruncatedXMLIsReportedAsTruncated(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 200, "application/soap+xml", quirk(t, "truncated.xml")), ClientOptions{})
	var r profilesResponse
	err := c.call(context.Background(), "GetProfiles", svcMedia, c.xaddr, reqGetProfiles(), &r, callOpts{})
	wantKind(t, err, KindMalformed, "truncated XML reply", "GetProfiles")
}

func TestReplyThatIsNotAnEnvelope(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 200, "text/xml", quirk(t, "not_envelope.xml")), ClientOptions{})
	_, err := getDeviceInfo(t, c)
	wantKind(t, err, KindMalformed, "not a SOAP envelope (root element <response>)")
}

func TestHTTP404IsUnsupported(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 404, "text/plain", []byte("not found")), ClientOptions{})
	_, err := getDeviceInfo(t, c)
	wantKind(t, err, KindUnsupported, "HTTP 404")
}

func TestOversizeReplyIsRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetDeviceInformationResponse><Manufacturer>`)
	b.WriteString(strings.Repeat("A", 2<<20))
	b.WriteString(`</Manufacturer></GetDeviceInformationResponse></s:Body></s:Envelope>`)
	c := newTestClient(t, cannedCamera(t, 200, "application/soap+xml", []byte(b.String())), ClientOptions{})
	_, err := getDeviceInfo(t, c)
	wantKind(t, err, KindTooLarge, "reply larger than 1048576 bytes")

	// The bound is configurable; a larger one lets the same reply through.
	c = newTestClient(t, c.xaddr, ClientOptions{MaxResponseBytes: 4 << 20})
	if r, err := getDeviceInfo(t, c); err != nil || len(r.Manufacturer) != 2<<20 {
		t.Fatalf("with a 4 MiB bound: %v (manufacturer %d bytes)", err, len(r.Manufacturer))
	}
}

func TestSlowReplyPastTheTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := newTestClient(t, srv.URL, ClientOptions{Timeout: 200 * time.Millisecond})
	_, err := getDeviceInfo(t, c)
	wantKind(t, err, KindTimeout, "no complete reply within 200ms")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout error does not wrap context.DeadlineExceeded: %v", err)
	}
}

func TestCallerCancellationIsNotATimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, ClientOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var r deviceInformationResponse
	err := c.call(ctx, "GetDeviceInformation", svcDevice, c.xaddr, reqGetDeviceInformation(), &r, callOpts{})
	wantKind(t, err, KindCanceled)
}

// rawHTTPCamera accepts one connection at a time and answers each request
// with whatever write does on the raw connection, so tests control the
// framing byte for byte (chunk boundaries, a body shorter than announced).
func rawHTTPCamera(t *testing.T, write func(w *bufio.Writer)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			req, err := http.ReadRequest(br)
			if err == nil {
				_, _ = io.Copy(io.Discard, req.Body)
				bw := bufio.NewWriter(conn)
				write(bw)
				_ = bw.Flush()
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String() + "/onvif/device_service"
}

func TestChunkedReplySplitMidElement(t *testing.T) {
	body := quirk(t, "stream_uri.xml")
	xaddr := rawHTTPCamera(t, func(w *bufio.Writer) {
		w.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml; charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
		// Chunks of 7 bytes cut through tags and the URI.
		for i := 0; i < len(body); i += 7 {
			chunk := body[i:min(i+7, len(body))]
			fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		w.WriteString("0\r\n\r\n")
	})
	c := newTestClient(t, xaddr, ClientOptions{})
	uri, err := c.StreamURI(context.Background(), "Profile_1")
	if err != nil {
		t.Fatal(err)
	}
	if uri != "rtsp://127.0.0.1:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1" {
		t.Fatalf("uri %q", uri)
	}
}

func TestReplyCutOffBeforeContentLength(t *testing.T) {
	body := quirk(t, "stream_uri.xml")
	xaddr := rawHTTPCamera(t, func(w *bufio.Writer) {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
		w.Write(body[:len(body)/2])
	})
	c := newTestClient(t, xaddr, ClientOptions{})
	_, err := c.StreamURI(context.Background(), "Profile_1")
	wantKind(t, err, KindMalformed, "reply cut off")
}

// exploding is a request whose marshaling panics, standing in for a bug.
type exploding struct{}

func (exploding) MarshalXML(*xml.Encoder, xml.StartElement) error { panic("boom") }

func TestPanicBelowACallBecomesAnInternalError(t *testing.T) {
	c := newTestClient(t, cannedCamera(t, 200, "application/soap+xml", quirk(t, "device_info_ns0.xml")), ClientOptions{})
	err := c.call(context.Background(), "GetDeviceInformation", svcDevice, c.xaddr, exploding{}, nil, callOpts{})
	wantKind(t, err, KindInternal, "recovered panic: boom")
}

func TestEmptyAcknowledgementForOperationsWithoutOutput(t *testing.T) {
	xaddr := cannedCamera(t, 200, "", nil)
	c := newTestClient(t, xaddr, ClientOptions{})
	if err := c.SetSynchronizationPoint(context.Background(), "main"); err != nil {
		t.Fatalf("empty 200 to SetSynchronizationPoint: %v", err)
	}
	// Where an answer is needed, an empty body is an error.
	_, err := getDeviceInfo(t, c)
	wantKind(t, err, KindMalformed, "empty reply body")
}
