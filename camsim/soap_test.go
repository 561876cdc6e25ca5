package camsim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type deviceInfo struct {
	Manufacturer, Model, FirmwareVersion, SerialNumber, HardwareId string
}

const opDeviceInfo = `<tds:GetDeviceInformation/>`

func TestSOAPWithPasswordDigestPassesAndWrongPasswordFaults(t *testing.T) {
	cam := startCam(t, authedConfig())

	var info deviceInfo
	newSOAPClient(t, cam.XAddr(), testUser, testPass).mustCall(opDeviceInfo, &info)
	if info.Manufacturer != "Tianyan Simulated" || info.Model != "CamSim-1" || info.SerialNumber == "" || info.FirmwareVersion == "" {
		t.Errorf("device information %+v", info)
	}

	status, body := newSOAPClient(t, cam.XAddr(), testUser, "wrong").call(opDeviceInfo)
	wantFault(t, status, body, http.StatusBadRequest, "ter:NotAuthorized")
	status, body = newSOAPClient(t, cam.XAddr(), "other", testPass).call(opDeviceInfo)
	wantFault(t, status, body, http.StatusBadRequest, "ter:NotAuthorized")

	// No credentials at all: 401 with a Digest challenge, NotAuthorized in
	// the body.
	c := newSOAPClient(t, cam.XAddr(), "", "")
	status, hdr, body := c.post(soapEnvelope("", opDeviceInfo), nil)
	wantFault(t, status, body, http.StatusUnauthorized, "ter:NotAuthorized")
	digestChallenge(t, hdr)

	// The clock is public: a client reads it to build its first token.
	var sdt struct {
		SystemDateAndTime struct {
			UTCDateTime struct {
				Time struct{ Hour, Minute, Second int }
				Date struct{ Year, Month, Day int }
			}
		}
	}
	c.mustCall(`<tds:GetSystemDateAndTime/>`, &sdt)
	if sdt.SystemDateAndTime.UTCDateTime.Date.Year < 2025 {
		t.Errorf("date and time %+v", sdt)
	}
}

func TestSOAPPasswordTextTokenIsRefused(t *testing.T) {
	cam := startCam(t, authedConfig())
	c := newSOAPClient(t, cam.XAddr(), "", "")
	token := `<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsse:UsernameToken>` +
		`<wsse:Username>` + testUser + `</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">` +
		xmlText(testPass) + `</wsse:Password></wsse:UsernameToken></wsse:Security>`
	status, _, body := c.post(soapEnvelope(token, opDeviceInfo), nil)
	wantFault(t, status, body, http.StatusBadRequest, "ter:NotAuthorized")
}

func TestSOAPAcceptsHTTPDigestInstead(t *testing.T) {
	cam := startCam(t, authedConfig())
	c := newSOAPClient(t, cam.XAddr(), "", "")
	env := soapEnvelope("", opDeviceInfo)
	uri := "/onvif/device_service"

	status, hdr, _ := c.post(env, nil)
	if status != http.StatusUnauthorized {
		t.Fatalf("status %d without credentials, want 401", status)
	}
	challenge := digestChallenge(t, hdr)

	auth := http.Header{"Authorization": {digestAuthorization(t, challenge, http.MethodPost, uri, testUser, testPass)}}
	status, _, body := c.post(env, auth)
	if status != http.StatusOK {
		t.Fatalf("status %d with Digest: %s", status, body)
	}
	var info deviceInfo
	decodeBody(t, body, &info)
	if info.Model != "CamSim-1" {
		t.Errorf("device information %+v", info)
	}

	bad := http.Header{"Authorization": {digestAuthorization(t, challenge, http.MethodPost, uri, testUser, "nope")}}
	status, _, body = c.post(env, bad)
	wantFault(t, status, body, http.StatusUnauthorized, "ter:NotAuthorized")

	// A response computed for another URI is not accepted here.
	other := http.Header{"Authorization": {digestAuthorization(t, challenge, http.MethodPost, "/onvif/ptz_service", testUser, testPass)}}
	status, _, _ = c.post(env, other)
	if status != http.StatusUnauthorized {
		t.Errorf("status %d for a Digest response bound to another URI, want 401", status)
	}
}

func TestCameraWithoutCredentialsAnswersAnyone(t *testing.T) {
	cam := startCam(t, CameraConfig{})
	var info deviceInfo
	newSOAPClient(t, cam.XAddr(), "", "").mustCall(opDeviceInfo, &info)
	if info.Model == "" {
		t.Fatalf("device information %+v", info)
	}
}

func TestUnknownActionFaultsActionNotSupported(t *testing.T) {
	cam := startCam(t, authedConfig())
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
	status, body := c.call(`<tds:SystemReboot/>`)
	wantFault(t, status, body, http.StatusInternalServerError, "ter:ActionNotSupported")
	// A fixed camera has no PTZ service.
	status, body = c.call(`<tptz:GetNodes/>`)
	wantFault(t, status, body, http.StatusInternalServerError, "ter:ActionNotSupported")
}

func TestBadRequestsGetClearFaults(t *testing.T) {
	cam := startCam(t, authedConfig())
	c := newSOAPClient(t, cam.XAddr(), "", "")

	status, _, body := c.post(strings.Repeat("<a>", 30000), nil)
	wantFault(t, status, body, http.StatusRequestEntityTooLarge, "ter:WellFormed")

	status, _, body = c.post(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><tds:GetDevice`, nil)
	wantFault(t, status, body, http.StatusBadRequest, "ter:WellFormed")

	status, _, body = c.post(`<Envelope><Body/></Envelope>`, nil)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "VersionMismatch") {
		t.Errorf("plain-XML envelope: status %d: %s", status, body)
	}

	status, _, body = c.post(soapEnvelope("", ""), nil)
	wantFault(t, status, body, http.StatusBadRequest, "ter:Tag")

	resp, err := c.http.Get(cam.XAddr())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET on the service: %d, want 405", resp.StatusCode)
	}
}

func TestRepliesEscapeWhatTheyCarry(t *testing.T) {
	cfg := authedConfig()
	cfg.Name = `Gate <1> & "East"`
	cfg.Manufacturer = "A&B <Cameras>"
	cam := startCam(t, cfg)
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)

	var info deviceInfo
	c.mustCall(opDeviceInfo, &info)
	if info.Manufacturer != cfg.Manufacturer {
		t.Errorf("manufacturer %q, want %q", info.Manufacturer, cfg.Manufacturer)
	}
	var scopes struct {
		Scopes []struct{ ScopeDef, ScopeItem string }
	}
	c.mustCall(`<tds:GetScopes/>`, &scopes)
	want := "onvif://www.onvif.org/name/" + url.PathEscape(cfg.Name)
	found := false
	for _, s := range scopes.Scopes {
		found = found || s.ScopeItem == want
		if strings.ContainsAny(s.ScopeItem, " <>\"") {
			t.Errorf("scope %q is not a URI", s.ScopeItem)
		}
	}
	if !found {
		t.Errorf("scopes %+v lack %q", scopes, want)
	}
}

func TestCapabilitiesAndServicesPointAtTheCamera(t *testing.T) {
	for _, ptz := range []bool{false, true} {
		cfg := authedConfig()
		cfg.PTZ = ptz
		cam := startCam(t, cfg)
		c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
		var caps struct {
			Capabilities struct {
				Device struct{ XAddr string }
				Media  struct {
					XAddr                 string
					StreamingCapabilities struct{ RTP_RTSP_TCP bool }
				}
				PTZ *struct{ XAddr string }
			}
		}
		c.mustCall(`<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>`, &caps)
		base := strings.TrimSuffix(cam.XAddr(), "device_service")
		if caps.Capabilities.Device.XAddr != cam.XAddr() || caps.Capabilities.Media.XAddr != base+"media_service" ||
			!caps.Capabilities.Media.StreamingCapabilities.RTP_RTSP_TCP {
			t.Errorf("capabilities %+v", caps)
		}
		if (caps.Capabilities.PTZ != nil) != ptz || (ptz && caps.Capabilities.PTZ.XAddr != base+"ptz_service") {
			t.Errorf("PTZ=%v but PTZ capabilities %+v", ptz, caps.Capabilities.PTZ)
		}

		var svcs struct {
			Service []struct {
				Namespace, XAddr string
				Version          struct{ Major, Minor int }
			}
		}
		c.mustCall(`<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>`, &svcs)
		got := map[string]string{}
		for _, s := range svcs.Service {
			got[s.Namespace] = s.XAddr
			if s.Version.Major != 2 {
				t.Errorf("service %s version %+v", s.Namespace, s.Version)
			}
		}
		if got[nsDeviceWSDL] != cam.XAddr() || got[nsMedia] != base+"media_service" || (got[nsPTZ] != "") != ptz {
			t.Errorf("PTZ=%v: services %v", ptz, got)
		}
	}
}

func TestClockOffsetShowsInSystemDateAndTime(t *testing.T) {
	cfg := CameraConfig{ClockOffset: -3 * time.Hour}
	cam := startCam(t, cfg)
	var sdt struct {
		SystemDateAndTime struct {
			UTCDateTime struct {
				Time struct{ Hour, Minute, Second int }
				Date struct{ Year, Month, Day int }
			}
		}
	}
	newSOAPClient(t, cam.XAddr(), "", "").mustCall(`<tds:GetSystemDateAndTime/>`, &sdt)
	u := sdt.SystemDateAndTime.UTCDateTime
	got := time.Date(u.Date.Year, time.Month(u.Date.Month), u.Date.Day, u.Time.Hour, u.Time.Minute, u.Time.Second, 0, time.UTC)
	if skew := time.Until(got); skew > -170*time.Minute || skew < -190*time.Minute {
		t.Fatalf("camera clock %v is %v from ours, want about -3h", got, skew)
	}
}

func TestParseXSDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT5S": 5 * time.Second, "PT0.5S": 500 * time.Millisecond, "PT1M30S": 90 * time.Second,
		"P1DT2H": 26 * time.Hour, "PT2H": 2 * time.Hour, " PT1S ": time.Second,
	} {
		got, err := parseXSDuration(in)
		if err != nil || got != want {
			t.Errorf("parseXSDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P", "PT", "5S", "P1Y", "P1M", "PT5S3M", "PT-1S", "-PT1S", "PTxS", "PT1S1S", "PT1e400S"} {
		if got, err := parseXSDuration(in); err == nil {
			t.Errorf("parseXSDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseAuthParams(t *testing.T) {
	p, err := parseAuthParams(`username="a\"b", realm="x, y", nc=00000001, qop=auth`)
	if err != nil || p["username"] != `a"b` || p["realm"] != "x, y" || p["nc"] != "00000001" || p["qop"] != "auth" {
		t.Fatalf("%v %v", p, err)
	}
	for _, bad := range []string{`username="open`, `=x`, `novalue`} {
		if _, err := parseAuthParams(bad); err == nil {
			t.Errorf("parseAuthParams(%q) accepted", bad)
		}
	}
	if _, err := parseAuthParams(strings.Repeat("a=b,", 40)); err == nil {
		t.Error("40 parameters accepted")
	}
}
