package onvif

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCamera is an ONVIF camera on an httptest server that checks the
// credentials it receives the way strict firmware does: it recomputes the
// WS-Security PasswordDigest, refuses tokens whose Created is more than 5 s
// from its own (skewed) clock or whose nonce was seen before, and, when
// asked to, demands HTTP Digest and verifies it too.
type fakeCamera struct {
	t    *testing.T
	srv  *httptest.Server
	user string
	pass string

	skew         time.Duration // camera clock minus real time
	requireWSSE  bool
	digestAlgo   string // "", "MD5" or "SHA-256": HTTP Digest demanded
	ptz          bool
	noCaps       bool // GetCapabilities is not implemented
	failOps      map[string]bool
	snapshotType string // Content-Type of snapshots
	snapshotBody []byte
	only11       bool // rejects SOAP 1.2 content types with 415

	mu          sync.Mutex
	nonces      map[string]bool
	digestNonce string
	lastNC      map[string]int64
	requests    []fakeRequest
	challenges  int
}

// fakeRequest is what the camera saw in one SOAP request.
type fakeRequest struct {
	Op          string
	Path        string
	Body        string
	HadToken    bool
	ContentType string
}

func newFakeCamera(t *testing.T, user, pass string, configure func(*fakeCamera)) *fakeCamera {
	t.Helper()
	fc := &fakeCamera{t: t, user: user, pass: pass, requireWSSE: user != "", ptz: true,
		nonces: map[string]bool{}, lastNC: map[string]int64{}, failOps: map[string]bool{},
		snapshotType: "image/jpeg", snapshotBody: fakeJPEG}
	if configure != nil {
		configure(fc)
	}
	fc.digestNonce = randomHex(12)
	fc.srv = httptest.NewServer(http.HandlerFunc(fc.serve))
	t.Cleanup(fc.srv.Close)
	return fc
}

// fakeJPEG is the start of a JPEG file: enough for content sniffing.
var fakeJPEG = append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00}, bytes.Repeat([]byte{0x42}, 200)...)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (fc *fakeCamera) xaddr() string { return fc.srv.URL + "/onvif/device_service" }

func (fc *fakeCamera) seen() []fakeRequest {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]fakeRequest(nil), fc.requests...)
}

func (fc *fakeCamera) serve(w http.ResponseWriter, r *http.Request) {
	if fc.digestAlgo != "" && !fc.checkDigest(w, r) {
		return
	}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/snapshot/") {
		w.Header().Set("Content-Type", fc.snapshotType)
		_, _ = w.Write(fc.snapshotBody)
		return
	}
	ct := r.Header.Get("Content-Type")
	if fc.only11 && !strings.HasPrefix(ct, "text/xml") {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	op, token, err := fakeParseRequest(body)
	if err != nil {
		fc.t.Errorf("fake camera: unparseable request: %v\n%s", err, body)
		w.WriteHeader(400)
		return
	}
	fc.mu.Lock()
	fc.requests = append(fc.requests, fakeRequest{Op: op, Path: r.URL.Path, Body: string(body), HadToken: token != nil, ContentType: ct})
	fc.mu.Unlock()

	if op != "GetSystemDateAndTime" && fc.requireWSSE {
		if why := fc.checkToken(token); why != "" {
			fc.t.Logf("fake camera refused token for %s: %s", op, why)
			fc.fault(w, 400, "env:Sender", "ter:NotAuthorized", "Sender not Authorized")
			return
		}
	}
	if fc.failOps[op] {
		fc.fault(w, 500, "env:Receiver", "ter:Action", "Internal failure in "+op)
		return
	}
	fc.answer(w, op, body)
}

type fakeToken struct {
	Username string `xml:"Username"`
	Password struct {
		Type  string `xml:"Type,attr"`
		Value string `xml:",chardata"`
	} `xml:"Password"`
	Nonce   string `xml:"Nonce"`
	Created string `xml:"Created"`
}

// fakeParseRequest finds the operation (first element in Body) and the
// UsernameToken, if any.
func fakeParseRequest(body []byte) (op string, token *fakeToken, err error) {
	var env struct {
		Header struct {
			Security struct {
				UsernameToken *fakeToken `xml:"UsernameToken"`
			} `xml:"Security"`
		} `xml:"Header"`
		Body struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		return "", nil, err
	}
	d := xml.NewDecoder(bytes.NewReader(env.Body.Inner))
	for {
		tok, err := d.RawToken()
		if err != nil {
			return "", nil, fmt.Errorf("no operation in body: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local, env.Header.Security.UsernameToken, nil
		}
	}
}

func (fc *fakeCamera) checkToken(tok *fakeToken) string {
	if tok == nil {
		return "no UsernameToken"
	}
	if tok.Username != fc.user {
		return "unknown user " + tok.Username
	}
	if !strings.HasSuffix(tok.Password.Type, "#PasswordDigest") {
		return "password type " + tok.Password.Type
	}
	nonce, err := base64.StdEncoding.DecodeString(tok.Nonce)
	if err != nil || len(nonce) == 0 {
		return "bad nonce"
	}
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(tok.Created))
	h.Write([]byte(fc.pass))
	if base64.StdEncoding.EncodeToString(h.Sum(nil)) != tok.Password.Value {
		return "digest mismatch"
	}
	created, err := time.Parse(time.RFC3339Nano, tok.Created)
	if err != nil {
		return "bad Created " + tok.Created
	}
	if d := created.Sub(time.Now().Add(fc.skew)); d > 5*time.Second || d < -5*time.Second {
		return fmt.Sprintf("Created %s is %v off the camera clock", tok.Created, d)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.nonces[tok.Nonce] {
		return "nonce replayed"
	}
	fc.nonces[tok.Nonce] = true
	return ""
}

var digestParam = regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^,\s]*))`)

// checkDigest verifies RFC 7616 Digest authentication, challenging when it
// is missing or wrong.
func (fc *fakeCamera) checkDigest(w http.ResponseWriter, r *http.Request) bool {
	authz := r.Header.Get("Authorization")
	ok := false
	if rest, found := strings.CutPrefix(authz, "Digest "); found {
		p := map[string]string{}
		for _, m := range digestParam.FindAllStringSubmatch(rest, -1) {
			p[m[1]] = m[2] + m[3]
		}
		var newHash func() hash.Hash = md5.New
		if fc.digestAlgo == "SHA-256" {
			newHash = sha256.New
		}
		H := func(s string) string {
			h := newHash()
			h.Write([]byte(s))
			return hex.EncodeToString(h.Sum(nil))
		}
		ha1 := H(fc.user + ":fakecam:" + fc.pass)
		ha2 := H(r.Method + ":" + r.URL.RequestURI())
		want := H(ha1 + ":" + fc.digestNonce + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
		var nc int64
		_, _ = fmt.Sscanf(p["nc"], "%x", &nc)
		fc.mu.Lock()
		fresh := nc > fc.lastNC[p["cnonce"]]
		if fresh {
			fc.lastNC[p["cnonce"]] = nc
		}
		fc.mu.Unlock()
		ok = p["username"] == fc.user && p["realm"] == "fakecam" && p["nonce"] == fc.digestNonce &&
			p["uri"] == r.URL.RequestURI() && p["qop"] == "auth" && p["opaque"] == "op4que" &&
			p["response"] == want && fresh
	}
	if ok {
		return true
	}
	fc.mu.Lock()
	fc.challenges++
	fc.mu.Unlock()
	w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Digest realm="fakecam", qop="auth,auth-int", nonce="%s", opaque="op4que", algorithm=%s`, fc.digestNonce, fc.digestAlgo))
	w.Header().Add("WWW-Authenticate", `Basic realm="fakecam"`)
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, "<html><body>401 Unauthorized</body></html>")
	return false
}

func (fc *fakeCamera) fault(w http.ResponseWriter, status int, code, subcode, reason string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><env:Body><env:Fault><env:Code><env:Value>%s</env:Value><env:Subcode><env:Value>%s</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">%s</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`, code, subcode, reason)
}

func (fc *fakeCamera) answer(w http.ResponseWriter, op string, req []byte) {
	base := fc.srv.URL
	var body string
	switch op {
	case "GetSystemDateAndTime":
		now := time.Now().Add(fc.skew).UTC()
		body = fmt.Sprintf(`<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute><tt:Second>%d</tt:Second></tt:Time><tt:Date><tt:Year>%d</tt:Year><tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`,
			now.Hour(), now.Minute(), now.Second(), now.Year(), now.Month(), now.Day())
	case "GetDeviceInformation":
		body = `<tds:GetDeviceInformationResponse><tds:Manufacturer>FakeVision</tds:Manufacturer><tds:Model>FV-PTZ-9</tds:Model><tds:FirmwareVersion>3.1.4</tds:FirmwareVersion><tds:SerialNumber>FV123456</tds:SerialNumber><tds:HardwareId>HW-9</tds:HardwareId></tds:GetDeviceInformationResponse>`
	case "GetCapabilities":
		if fc.noCaps {
			fc.fault(w, 500, "env:Receiver", "ter:ActionNotSupported", "Optional Action Not Implemented")
			return
		}
		ptz := ""
		if fc.ptz {
			ptz = `<tt:PTZ><tt:XAddr>` + base + `/onvif/ptz_service</tt:XAddr></tt:PTZ>`
		}
		body = `<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>` + base + `/onvif/device_service</tt:XAddr></tt:Device><tt:Media><tt:XAddr>` + base + `/onvif/media_service</tt:XAddr></tt:Media>` + ptz + `</tds:Capabilities></tds:GetCapabilitiesResponse>`
	case "GetServices":
		ptz := ""
		if fc.ptz {
			ptz = `<tds:Service><tds:Namespace>http://www.onvif.org/ver20/ptz/wsdl</tds:Namespace><tds:XAddr>` + base + `/onvif/ptz_service</tds:XAddr></tds:Service>`
		}
		body = `<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>` + base + `/onvif/device_service</tds:XAddr></tds:Service><tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>` + base + `/onvif/media_service</tds:XAddr></tds:Service>` + ptz + `</tds:GetServicesResponse>`
	case "GetProfiles":
		ptz := ""
		if fc.ptz {
			ptz = `<tt:PTZConfiguration token="ptzcfg"><tt:Name>PTZ</tt:Name><tt:NodeToken>node0</tt:NodeToken></tt:PTZConfiguration>`
		}
		body = `<trt:GetProfilesResponse>` +
			`<trt:Profiles token="sub" fixed="true"><tt:Name>Sub stream</tt:Name><tt:VideoEncoderConfiguration token="enc2"><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>640</tt:Width><tt:Height>360</tt:Height></tt:Resolution><tt:RateControl><tt:FrameRateLimit>15</tt:FrameRateLimit><tt:BitrateLimit>512</tt:BitrateLimit></tt:RateControl></tt:VideoEncoderConfiguration>` + ptz + `</trt:Profiles>` +
			`<trt:Profiles token="main" fixed="true"><tt:Name>Main stream</tt:Name><tt:VideoEncoderConfiguration token="enc1"><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution><tt:RateControl><tt:FrameRateLimit>25</tt:FrameRateLimit><tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl></tt:VideoEncoderConfiguration>` + ptz + `</trt:Profiles>` +
			`</trt:GetProfilesResponse>`
	case "GetStreamUri":
		if !bytes.Contains(req, []byte("RTP-Unicast")) || !bytes.Contains(req, []byte(">RTSP<")) {
			fc.fault(w, 400, "env:Sender", "ter:InvalidArgVal", "unsupported stream setup")
			return
		}
		body = `<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://127.0.0.1:8554/` + profileIn(req) + `</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>`
	case "GetSnapshotUri":
		body = `<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>` + base + `/snapshot/` + profileIn(req) + `.jpg</tt:Uri></trt:MediaUri></trt:GetSnapshotUriResponse>`
	case "GetNodes":
		body = `<tptz:GetNodesResponse><tptz:PTZNode token="node0"><tt:Name>Dome</tt:Name></tptz:PTZNode></tptz:GetNodesResponse>`
	case "GetPresets":
		body = `<tptz:GetPresetsResponse><tptz:Preset token="1"><tt:Name>Gate</tt:Name></tptz:Preset><tptz:Preset token="2"><tt:Name>Spillway</tt:Name></tptz:Preset><tptz:Preset token=""><tt:Name>broken</tt:Name></tptz:Preset></tptz:GetPresetsResponse>`
	case "ContinuousMove", "Stop", "GotoPreset":
		body = `<tptz:` + op + `Response/>`
	case "SetSynchronizationPoint":
		body = `<trt:SetSynchronizationPointResponse/>`
	default:
		fc.fault(w, 500, "env:Receiver", "ter:ActionNotSupported", "Unknown action "+op)
		return
	}
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body>%s</env:Body></env:Envelope>`, body)
}

var profileTokenRE = regexp.MustCompile(`ProfileToken>([^<]*)<`)

func profileIn(req []byte) string {
	if m := profileTokenRE.FindSubmatch(req); m != nil {
		return string(m[1])
	}
	return "none"
}
