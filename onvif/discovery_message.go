package onvif

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/google/uuid"
)

// WS-Discovery constants (the 2005/04 draft that ONVIF mandates).
const (
	nsDiscovery   = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
	nsAddressing  = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsNetwork     = "http://www.onvif.org/ver10/network/wsdl"
	discoveryTo   = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
	probeAction   = nsDiscovery + "/Probe"
	anonymousRole = nsAddressing + "/role/anonymous"
	onvifScope    = "onvif://www.onvif.org/"
)

// Probe types sent: cameras answer one or the other (some older ones only
// know tds:Device), so both are asked for in separate probes — a probe
// listing both would match only devices declaring both.
var probeTypes = []string{"dn:NetworkVideoTransmitter", "tds:Device"}

// buildProbe returns a Probe for one type with a fresh message id.
func buildProbe(typ string) (msg []byte, messageID string) {
	messageID = "uuid:" + uuid.NewString()
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	fmt.Fprintf(&b, `<s:Envelope xmlns:s="%s" xmlns:a="%s" xmlns:d="%s" xmlns:dn="%s" xmlns:tds="%s">`,
		nsSOAP12, nsAddressing, nsDiscovery, nsNetwork, nsDevice)
	fmt.Fprintf(&b, `<s:Header><a:Action s:mustUnderstand="1">%s</a:Action><a:MessageID>%s</a:MessageID>`, probeAction, messageID)
	fmt.Fprintf(&b, `<a:ReplyTo><a:Address>%s</a:Address></a:ReplyTo><a:To s:mustUnderstand="1">%s</a:To></s:Header>`, anonymousRole, discoveryTo)
	fmt.Fprintf(&b, `<s:Body><d:Probe><d:Types>%s</d:Types></d:Probe></s:Body></s:Envelope>`, typ)
	return b.Bytes(), messageID
}

// Found is a device that answered a probe or announced itself.
type Found struct {
	// EndpointRef is the device's stable WS-Addressing address, usually
	// "urn:uuid:...".
	EndpointRef string
	// XAddrs are the device service addresses it announced.
	XAddrs []string
	Types  []string
	Scopes []string
	// IP is the source address of the reply.
	IP string
	// Name, Hardware and Location come from onvif://www.onvif.org/name/,
	// hardware/ and location/ scopes, percent-decoded.
	Name, Hardware, Location string
}

type discoveryKind string

const (
	kindProbeMatches discoveryKind = "probematches"
	kindHello        discoveryKind = "hello"
	kindBye          discoveryKind = "bye"
	kindOther        discoveryKind = "other"
)

// discoveryMessage is a parsed WS-Discovery datagram.
type discoveryMessage struct {
	kind      discoveryKind
	relatesTo string
	found     []Found
	// notONVIF counts matches dropped because they are other kinds of
	// WS-Discovery devices (printers, computers).
	notONVIF int
}

type matchXML struct {
	EndpointReference struct {
		Address string `xml:"Address"`
	} `xml:"EndpointReference"`
	Types  string `xml:"Types"`
	Scopes string `xml:"Scopes"`
	XAddrs string `xml:"XAddrs"`
}

type discoveryEnvelope struct {
	Header struct {
		RelatesTo string `xml:"RelatesTo"`
	} `xml:"Header"`
	Body struct {
		ProbeMatches *struct {
			ProbeMatch []matchXML `xml:"ProbeMatch"`
		} `xml:"ProbeMatches"`
		Hello *matchXML `xml:"Hello"`
		Bye   *matchXML `xml:"Bye"`
	} `xml:"Body"`
}

// maxMatches bounds how many matches one datagram may carry.
const maxMatches = 64

// parseDiscovery parses a WS-Discovery datagram on local element names.
// src is the sender's IP, recorded in each Found.
func parseDiscovery(data []byte, src string) (msg discoveryMessage, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("parser panic: %v", v)
		}
	}()
	prefixes, err := namespacePrefixes(data)
	if err != nil {
		return msg, err
	}
	d := newXMLDecoder(bytes.NewReader(data))
	root, err := nextStart(d)
	if err != nil {
		return msg, fmt.Errorf("no XML element: %w", err)
	}
	if root.Name.Local != "Envelope" {
		return msg, fmt.Errorf("not a SOAP envelope (root element <%s>)", root.Name.Local)
	}
	var env discoveryEnvelope
	if err := d.DecodeElement(&env, &root); err != nil {
		return msg, fmt.Errorf("bad envelope: %w", err)
	}
	msg.relatesTo = strings.TrimSpace(env.Header.RelatesTo)
	var matches []matchXML
	switch {
	case env.Body.ProbeMatches != nil:
		msg.kind = kindProbeMatches
		matches = env.Body.ProbeMatches.ProbeMatch
	case env.Body.Hello != nil:
		msg.kind = kindHello
		matches = []matchXML{*env.Body.Hello}
	case env.Body.Bye != nil:
		msg.kind = kindBye
		matches = []matchXML{*env.Body.Bye}
	default:
		msg.kind = kindOther
		return msg, nil
	}
	if len(matches) > maxMatches {
		matches = matches[:maxMatches]
	}
	for _, m := range matches {
		f := foundFrom(m, src)
		if f.EndpointRef == "" && len(f.XAddrs) == 0 {
			continue // nothing to identify or reach it by
		}
		if msg.kind != kindBye && !isONVIF(f, prefixes) {
			msg.notONVIF++
			continue
		}
		msg.found = append(msg.found, f)
	}
	if msg.kind == kindProbeMatches && len(msg.found) == 0 && msg.notONVIF == 0 {
		return msg, errors.New("ProbeMatches without a usable match")
	}
	return msg, nil
}

// namespacePrefixes collects the xmlns:prefix declarations of a document
// (flattened: datagrams are small and vendors do not rebind prefixes) so
// QNames in Types can be resolved.
func namespacePrefixes(data []byte) (map[string]string, error) {
	d := newXMLDecoder(bytes.NewReader(data))
	m := map[string]string{}
	for {
		tok, err := d.RawToken()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return m, nil
			}
			return nil, fmt.Errorf("malformed XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Space == "xmlns" && len(m) < 256 {
					m[a.Name.Local] = a.Value
				}
			}
		}
	}
}

func foundFrom(m matchXML, src string) Found {
	f := Found{
		EndpointRef: strings.TrimSpace(m.EndpointReference.Address),
		XAddrs:      strings.Fields(m.XAddrs),
		Types:       strings.Fields(m.Types),
		Scopes:      strings.Fields(m.Scopes),
		IP:          src,
	}
	f.Name, f.Hardware, f.Location = scopeFields(f.Scopes)
	return f
}

// isONVIF accepts a match typed NetworkVideoTransmitter (in any
// namespace), the ONVIF tds:Device type, or carrying ONVIF scopes. A
// Device type in another known namespace (WS-Discovery printers and
// computers use devprof's Device) is refused.
func isONVIF(f Found, prefixes map[string]string) bool {
	for _, t := range f.Types {
		prefix, local := "", t
		if i := strings.LastIndexByte(t, ':'); i >= 0 {
			prefix, local = t[:i], t[i+1:]
		}
		switch local {
		case "NetworkVideoTransmitter":
			return true
		case "Device":
			ns, known := prefixes[prefix]
			if !known || ns == nsDevice {
				return true
			}
		}
	}
	for _, s := range f.Scopes {
		if hasPrefixFold(s, onvifScope) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// scopeFields extracts name, hardware and location from ONVIF scopes.
// Several location scopes (country/…, city/…) are joined with ", ".
func scopeFields(scopes []string) (name, hardware, location string) {
	var locs []string
	for _, s := range scopes {
		if !hasPrefixFold(s, onvifScope) {
			continue
		}
		rest := s[len(onvifScope):]
		key, val, _ := strings.Cut(rest, "/")
		val = strings.TrimSuffix(val, "/")
		if v, err := url.PathUnescape(val); err == nil {
			val = v
		}
		val = strings.TrimSpace(val)
		if val == "" {
			continue
		}
		switch strings.ToLower(key) {
		case "name":
			if name == "" {
				name = val
			}
		case "hardware":
			if hardware == "" {
				hardware = val
			}
		case "location":
			if len(locs) < 8 {
				locs = append(locs, val)
			}
		}
	}
	return name, hardware, strings.Join(locs, ", ")
}
