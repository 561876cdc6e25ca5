package onvif

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/html/charset"
)

// Namespaces used when building requests. The use-go/onvif message types
// marshal with literal prefixes (tds:, trt:, tptz:, onvif:), so the envelope
// declares exactly those prefixes.
const (
	nsSOAP12  = "http://www.w3.org/2003/05/soap-envelope"
	nsSOAP11  = "http://schemas.xmlsoap.org/soap/envelope/"
	nsDevice  = "http://www.onvif.org/ver10/device/wsdl"
	nsMedia   = "http://www.onvif.org/ver10/media/wsdl"
	nsPTZ     = "http://www.onvif.org/ver20/ptz/wsdl"
	nsSchema  = "http://www.onvif.org/ver10/schema"
	nsWSSE    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU     = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	pwdDigest = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	b64Nonce  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// buildEnvelope wraps the marshaled request in a SOAP envelope (1.2 unless
// soap11), with the WS-Security header when sec is not empty.
func buildEnvelope(req any, sec string, soap11 bool) ([]byte, error) {
	body, err := xml.Marshal(req)
	if err != nil {
		return nil, err
	}
	env := nsSOAP12
	if soap11 {
		env = nsSOAP11
	}
	var b bytes.Buffer
	b.Grow(len(body) + len(sec) + 512)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	fmt.Fprintf(&b, `<s:Envelope xmlns:s="%s" xmlns:tds="%s" xmlns:trt="%s" xmlns:tptz="%s" xmlns:onvif="%s" xmlns:tt="%s">`,
		env, nsDevice, nsMedia, nsPTZ, nsSchema, nsSchema)
	if sec != "" {
		b.WriteString("<s:Header>")
		b.WriteString(sec)
		b.WriteString("</s:Header>")
	}
	b.WriteString("<s:Body>")
	b.Write(body)
	b.WriteString("</s:Body></s:Envelope>")
	return b.Bytes(), nil
}

// omitElement removes the first <name ...>...</name> (or <name .../>) from
// a request this package marshaled itself. It exists because some use-go
// message types have optional fields without omitempty (GotoPreset's
// Speed), and sending a zero speed would make cameras not move. encoding/xml
// never self-closes elements, so the open/close pair is always there.
func omitElement(b []byte, name string) []byte {
	start := bytes.Index(b, []byte("<"+name+">"))
	if start < 0 {
		return b
	}
	closing := []byte("</" + name + ">")
	end := bytes.Index(b[start:], closing)
	if end < 0 {
		return b
	}
	return append(b[:start:start], b[start+end+len(closing):]...)
}

// soapFault is a SOAP 1.1 or 1.2 fault reduced to what a person needs.
type soapFault struct {
	Code    string // env:Sender, s:Client
	Subcode string // ter:NotAuthorized (innermost first-level chain joined by "/")
	Reason  string
	Detail  string
}

func (f *soapFault) Error() string {
	var parts []string
	if f.Code != "" {
		parts = append(parts, "code="+f.Code)
	}
	if f.Subcode != "" {
		parts = append(parts, "subcode="+f.Subcode)
	}
	if f.Reason != "" {
		parts = append(parts, fmt.Sprintf("reason=%q", f.Reason))
	}
	if f.Detail != "" {
		parts = append(parts, fmt.Sprintf("detail=%q", f.Detail))
	}
	if len(parts) == 0 {
		return "SOAP fault without code or reason"
	}
	return "SOAP fault " + strings.Join(parts, " ")
}

// kind classifies the fault. Vendors word authentication failures many
// ways (ter:NotAuthorized, wsse:FailedAuthentication, "Sender not
// Authorized", "Authority failure"), so this matches on fragments.
func (f *soapFault) kind() ErrorKind {
	all := strings.ToLower(f.Code + " " + f.Subcode + " " + f.Reason)
	for _, w := range []string{"notauthorized", "not authorized", "failedauthentication", "unauthorized",
		"invalidsecurity", "authority failure", "authentication failed", "invalid username", "password"} {
		if strings.Contains(all, w) {
			return KindAuth
		}
	}
	for _, w := range []string{"actionnotsupported", "nosuchservice", "notsupported", "not supported",
		"not implemented", "notimplemented", "method not found", "unknown method"} {
		if strings.Contains(all, w) {
			return KindUnsupported
		}
	}
	return KindSOAPFault
}

// versionMismatch reports a fault saying the camera does not speak the
// SOAP version we sent.
func (f *soapFault) versionMismatch() bool {
	return strings.Contains(strings.ToLower(f.Code), "versionmismatch")
}

type faultCodeXML struct {
	Value   string        `xml:"Value"`
	Subcode *faultCodeXML `xml:"Subcode"`
}

type innerXML struct {
	Inner string `xml:",innerxml"`
}

type faultXML struct {
	Code   faultCodeXML `xml:"Code"`
	Reason struct {
		Text []string `xml:"Text"`
	} `xml:"Reason"`
	Detail      innerXML `xml:"Detail"`
	FaultCode   string   `xml:"faultcode"`
	FaultString string   `xml:"faultstring"`
	DetailLower innerXML `xml:"detail"`
}

func (x *faultXML) fault() *soapFault {
	f := &soapFault{Code: strings.TrimSpace(x.Code.Value), Reason: strings.TrimSpace(strings.Join(x.Reason.Text, " "))}
	var subs []string
	for s := x.Code.Subcode; s != nil && len(subs) < 8; s = s.Subcode {
		if v := strings.TrimSpace(s.Value); v != "" {
			subs = append(subs, v)
		}
	}
	f.Subcode = strings.Join(subs, "/")
	if f.Code == "" {
		f.Code = strings.TrimSpace(x.FaultCode)
	}
	if f.Reason == "" {
		f.Reason = strings.TrimSpace(x.FaultString)
	}
	d := x.Detail.Inner
	if d == "" {
		d = x.DetailLower.Inner
	}
	f.Detail = clip(textOf(d), 200)
	f.Reason = clip(f.Reason, 300)
	return f
}

// parseError is a reply that could not be read as SOAP.
type parseError struct {
	truncated bool
	msg       string
	err       error
}

func (e *parseError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *parseError) Unwrap() error { return e.err }

// newXMLDecoder returns a decoder that accepts what cameras really send:
// non-UTF-8 encodings declared in the prolog, HTML entities such as &nbsp;,
// and stray ampersands in device names.
func newXMLDecoder(r io.Reader) *xml.Decoder {
	d := xml.NewDecoder(r)
	d.Strict = false
	d.Entity = xml.HTMLEntity
	d.CharsetReader = charset.NewReaderLabel
	return d
}

func isTruncation(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var se *xml.SyntaxError
	return errors.As(err, &se) && strings.Contains(se.Msg, "unexpected EOF")
}

func xmlProblem(err error, where string) *parseError {
	if isTruncation(err) {
		return &parseError{truncated: true, msg: "truncated XML reply (ends " + where + ")", err: err}
	}
	return &parseError{msg: "malformed XML reply " + where, err: err}
}

// parseSOAP reads a SOAP 1.1 or 1.2 envelope and decodes the first element
// of its Body into out (nil to ignore it). Element names are matched on
// their local part only. It returns *soapFault when the body is a fault and
// *parseError when the bytes are not a usable envelope.
func parseSOAP(body []byte, out any) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &parseError{msg: fmt.Sprintf("parser panic: %v", v)}
		}
	}()
	d := newXMLDecoder(bytes.NewReader(body))
	root, err := nextStart(d)
	if err != nil {
		if errors.Is(err, io.EOF) && len(bytes.TrimSpace(body)) == 0 {
			return &parseError{msg: "empty reply body"}
		}
		return xmlProblem(err, "before the root element")
	}
	if root.Name.Local != "Envelope" {
		return &parseError{msg: fmt.Sprintf("not a SOAP envelope (root element <%s>)", root.Name.Local)}
	}
	for {
		se, err := nextStart(d)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return &parseError{msg: "SOAP envelope has no Body"}
			}
			return xmlProblem(err, "inside the envelope")
		}
		if se.Name.Local != "Body" {
			if err := d.Skip(); err != nil {
				return xmlProblem(err, "inside <"+se.Name.Local+">")
			}
			continue
		}
		return parseBody(d, out)
	}
}

func parseBody(d *xml.Decoder, out any) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return xmlProblem(err, "inside the SOAP Body")
		}
		switch t := tok.(type) {
		case xml.EndElement:
			// An empty Body answers operations without output (Stop,
			// SetSynchronizationPoint) on some cameras.
			if out == nil {
				return nil
			}
			return &parseError{msg: "SOAP Body is empty"}
		case xml.StartElement:
			if t.Name.Local == "Fault" {
				var fx faultXML
				if err := d.DecodeElement(&fx, &t); err != nil {
					return xmlProblem(err, "inside the SOAP Fault")
				}
				return fx.fault()
			}
			if out == nil {
				if err := d.Skip(); err != nil {
					return xmlProblem(err, "inside <"+t.Name.Local+">")
				}
				return nil
			}
			if err := d.DecodeElement(out, &t); err != nil {
				return xmlProblem(err, "inside <"+t.Name.Local+">")
			}
			return nil
		}
	}
}

// nextStart returns the next start element, skipping prolog, comments and
// character data.
func nextStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, io.EOF
		}
	}
}

// textOf returns the character data of an XML fragment with whitespace
// collapsed, or the fragment itself if it does not parse.
func textOf(fragment string) string {
	if strings.TrimSpace(fragment) == "" {
		return ""
	}
	d := newXMLDecoder(strings.NewReader("<x>" + fragment + "</x>"))
	var parts []string
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if cd, ok := tok.(xml.CharData); ok {
			if s := strings.TrimSpace(string(cd)); s != "" {
				parts = append(parts, s)
			}
		}
	}
	if len(parts) == 0 {
		return strings.Join(strings.Fields(fragment), " ")
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

// clip shortens s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
