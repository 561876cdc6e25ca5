package camsim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"time"
)

// ONVIF namespaces the services answer in.
const (
	nsSOAP11   = "http://schemas.xmlsoap.org/soap/envelope/"
	nsSchema   = "http://www.onvif.org/ver10/schema"
	nsMedia    = "http://www.onvif.org/ver10/media/wsdl"
	nsPTZ      = "http://www.onvif.org/ver20/ptz/wsdl"
	nsError    = "http://www.onvif.org/ver10/error"
	soapCT     = "application/soap+xml; charset=utf-8"
	maxSOAPReq = 64 << 10
)

// soapOp answers one SOAP action with a response element, or a fault.
type soapOp func(c *Camera, req *soapRequest) (any, *soapFault)

// soapOps dispatches on the local name of the body's element: no two
// services here share an operation name.
var soapOps = map[string]soapOp{
	// device
	"GetSystemDateAndTime": (*Camera).getSystemDateAndTime,
	"GetDeviceInformation": (*Camera).getDeviceInformation,
	"GetCapabilities":      (*Camera).getCapabilities,
	"GetServices":          (*Camera).getServices,
	"GetScopes":            (*Camera).getScopes,
	// media
	"GetProfiles":             (*Camera).getProfiles,
	"GetProfile":              (*Camera).getProfile,
	"GetVideoSources":         (*Camera).getVideoSources,
	"GetStreamUri":            (*Camera).getStreamURI,
	"GetSnapshotUri":          (*Camera).getSnapshotURI,
	"SetSynchronizationPoint": (*Camera).setSynchronizationPoint,
	// ptz
	"GetNodes":          ptzOnly((*Camera).getNodes),
	"GetConfigurations": ptzOnly((*Camera).getConfigurations),
	"GetPresets":        ptzOnly((*Camera).getPresets),
	"GotoPreset":        ptzOnly((*Camera).gotoPreset),
	"ContinuousMove":    ptzOnly((*Camera).continuousMove),
	"AbsoluteMove":      ptzOnly((*Camera).absoluteMove),
	"Stop":              ptzOnly((*Camera).stop),
	"GetStatus":         ptzOnly((*Camera).getStatus),
}

// publicOps need no credentials: a client reads the camera's clock before
// it can build a UsernameToken the camera will accept.
var publicOps = map[string]bool{"GetSystemDateAndTime": true}

// soapRequest is one parsed SOAP request.
type soapRequest struct {
	action string
	raw    []byte
	token  *usernameToken // nil when the header carries none
}

// decode reads the operation element, the Body's first child, into v.
// Decoding from the envelope keeps the prefixes declared on it resolvable.
func (r *soapRequest) decode(v any) *soapFault {
	dec := xml.NewDecoder(bytes.NewReader(r.raw))
	depth := 0
	inBody := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return faultWellFormed("cannot read " + r.action + ": " + err.Error())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if inBody {
				if err := dec.DecodeElement(v, &t); err != nil {
					return faultWellFormed("cannot read " + r.action + ": " + err.Error())
				}
				return nil
			}
			inBody = depth == 2 && t.Name.Local == "Body"
		case xml.EndElement:
			depth--
		}
	}
}

// soapEnvelopeIn is what is read of every request before dispatch.
type soapEnvelopeIn struct {
	XMLName xml.Name
	Header  struct {
		Security struct {
			UsernameToken *usernameToken `xml:"UsernameToken"`
		} `xml:"Security"`
	} `xml:"Header"`
	Body struct {
		Op *struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"Body"`
}

func parseSOAP(body []byte) (*soapRequest, *soapFault) {
	var env soapEnvelopeIn
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, faultWellFormed("malformed XML: " + err.Error())
	}
	if env.XMLName.Local != "Envelope" {
		return nil, faultWellFormed("the root element is not a SOAP Envelope")
	}
	if env.XMLName.Space != nsSOAP12 && env.XMLName.Space != nsSOAP11 {
		return nil, &soapFault{status: http.StatusBadRequest, code: "s:VersionMismatch", reason: "not a SOAP 1.2 envelope"}
	}
	if env.Body.Op == nil {
		return nil, &soapFault{status: http.StatusBadRequest, code: "s:Sender", subcodes: []string{"ter:Tag"}, reason: "empty SOAP Body"}
	}
	return &soapRequest{action: env.Body.Op.XMLName.Local, raw: body, token: env.Header.Security.UsernameToken}, nil
}

// soapFault is a SOAP 1.2 fault with ONVIF's subcodes.
type soapFault struct {
	status   int
	code     string   // s:Sender, s:Receiver, s:VersionMismatch
	subcodes []string // ter:…, outermost first (ter:InvalidArgVal, ter:NoProfile)
	reason   string
}

func faultWellFormed(reason string) *soapFault {
	return &soapFault{status: http.StatusBadRequest, code: "s:Sender", subcodes: []string{"ter:WellFormed"}, reason: reason}
}

// faultInvalidArg is ONVIF's ter:InvalidArgVal with the detail subcode
// (ter:NoProfile, ter:NoToken …) nested in it.
func faultInvalidArg(detail, reason string) *soapFault {
	return &soapFault{status: http.StatusBadRequest, code: "s:Sender", subcodes: []string{"ter:InvalidArgVal", detail}, reason: reason}
}

func faultActionNotSupported(action string) *soapFault {
	// SOAP 1.2's HTTP binding maps Receiver faults to 500.
	return &soapFault{status: http.StatusInternalServerError, code: "s:Receiver", subcodes: []string{"ter:ActionNotSupported"},
		reason: "action not supported: " + action}
}

func faultNotAuthorized(status int) *soapFault {
	return &soapFault{status: status, code: "s:Sender", subcodes: []string{"ter:NotAuthorized"}, reason: "Sender not Authorized"}
}

func ptzOnly(op soapOp) soapOp {
	return func(c *Camera, req *soapRequest) (any, *soapFault) {
		if c.ptz == nil {
			return nil, faultActionNotSupported(req.action)
		}
		return op(c, req)
	}
}

// serveSOAP is the one handler behind every service path.
func (c *Camera) serveSOAP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "SOAP wants POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSOAPReq))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			f := faultWellFormed("request body over 64 KiB")
			f.status = http.StatusRequestEntityTooLarge
			writeSOAP(w, nil, f)
		}
		return // a body that could not be read has no one left to answer
	}
	if !c.waitSlow(r.Context()) {
		return
	}
	req, fault := parseSOAP(body)
	if fault != nil {
		writeSOAP(w, nil, fault)
		return
	}
	if !publicOps[req.action] && !c.soapAuthorized(r, req) {
		c.log.Debug("camsim soap unauthorized", "action", req.action, "remote", r.RemoteAddr)
		if req.token == nil {
			// No WS-Security: 401 with a challenge tells an HTTP-Digest
			// client how to log in; the body still says NotAuthorized.
			c.digest.challenge(w, false)
			writeSOAP(w, nil, faultNotAuthorized(http.StatusUnauthorized))
			return
		}
		// A wrong UsernameToken: 400, as many cameras answer.
		writeSOAP(w, nil, faultNotAuthorized(http.StatusBadRequest))
		return
	}
	op, ok := soapOps[req.action]
	if !ok {
		writeSOAP(w, nil, faultActionNotSupported(req.action))
		return
	}
	resp, fault := op(c, req)
	writeSOAP(w, resp, fault)
}

// soapAuthorized accepts a WS-Security PasswordDigest token or HTTP Digest.
func (c *Camera) soapAuthorized(r *http.Request, req *soapRequest) bool {
	if c.Faults().WrongPassword {
		return false
	}
	if c.cfg.Username == "" {
		return true
	}
	return req.token.verify(c.cfg.Username, c.cfg.Password) || c.digest.verify(r, c.cfg.Username, c.cfg.Password)
}

// waitSlow holds a reply for the SlowReplies fault; false means give up
// (client gone or camera closing).
func (c *Camera) waitSlow(ctx context.Context) bool {
	d := c.Faults().SlowReplies
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-c.closing:
		return false
	}
}

// soapEnvelopeOut declares every prefix the responses use, once.
type soapEnvelopeOut struct {
	XMLName xml.Name `xml:"s:Envelope"`
	NSs     string   `xml:"xmlns:s,attr"`
	NSter   string   `xml:"xmlns:ter,attr"`
	NStt    string   `xml:"xmlns:tt,attr"`
	NStds   string   `xml:"xmlns:tds,attr"`
	NStrt   string   `xml:"xmlns:trt,attr"`
	NStptz  string   `xml:"xmlns:tptz,attr"`
	Body    struct {
		Content any
	} `xml:"s:Body"`
}

type soapFaultOut struct {
	XMLName xml.Name `xml:"s:Fault"`
	Code    struct {
		Value   string        `xml:"s:Value"`
		Subcode *soapSubcodes `xml:"s:Subcode"`
	} `xml:"s:Code"`
	Reason struct {
		Text struct {
			Lang  string `xml:"xml:lang,attr"`
			Value string `xml:",chardata"`
		} `xml:"s:Text"`
	} `xml:"s:Reason"`
}

type soapSubcodes struct {
	Value   string        `xml:"s:Value"`
	Subcode *soapSubcodes `xml:"s:Subcode"`
}

func writeSOAP(w http.ResponseWriter, resp any, fault *soapFault) {
	env := soapEnvelopeOut{NSs: nsSOAP12, NSter: nsError, NStt: nsSchema, NStds: nsDeviceWSDL, NStrt: nsMedia, NStptz: nsPTZ}
	status := http.StatusOK
	if fault != nil {
		var f soapFaultOut
		f.Code.Value = fault.code
		for i := len(fault.subcodes) - 1; i >= 0; i-- {
			f.Code.Subcode = &soapSubcodes{Value: fault.subcodes[i], Subcode: f.Code.Subcode}
		}
		f.Reason.Text.Lang = "en"
		f.Reason.Text.Value = fault.reason
		env.Body.Content = f
		status = fault.status
	} else {
		env.Body.Content = resp
	}
	out, err := xml.Marshal(env)
	if err != nil {
		http.Error(w, "camsim: cannot encode reply: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", soapCT)
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(out)
}

// routes serves SOAP on every /onvif/ path (device_service, media_service,
// ptz_service, as GetServices lists them) and snapshots.
func (c *Camera) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/onvif/snapshot", c.serveSnapshot)
	mux.HandleFunc("/onvif/", c.serveSOAP)
	return mux
}
