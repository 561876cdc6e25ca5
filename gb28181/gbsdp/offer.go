package gbsdp

import (
	"errors"
	"strings"
)

// Transport is how one side of a GB media session carries RTP.
type Transport string

// Transports, named from the side whose SDP it is: TCPPassive listens for
// the peer's connection, TCPActive dials the peer.
const (
	UDP        Transport = "udp"
	TCPPassive Transport = "tcp-passive"
	TCPActive  Transport = "tcp-active"
)

// Peer returns the transport the other side must use.
func (t Transport) Peer() Transport {
	switch t {
	case TCPPassive:
		return TCPActive
	case TCPActive:
		return TCPPassive
	}
	return UDP
}

// Transport returns the author's transport for m. A TCP line without
// a=setup (some 2011 devices) counts as passive, the common default.
func (m *Media) Transport() Transport {
	if !m.TCP() {
		return UDP
	}
	if m.Setup == SetupActive {
		return TCPActive
	}
	return TCPPassive
}

// Offer describes an INVITE offer a platform sends for a channel.
type Offer struct {
	// ID is the offerer's 20-digit GB ID; IP and Port where it receives
	// (for TCPActive, Port may be 0: the offerer will dial).
	ID   string
	IP   string
	Port int
	// Transport is the offerer's own role.
	Transport Transport
	// SSRC is the y= value (see SSRC).
	SSRC string
	// Name defaults to NamePlay; URI, Start and Stop are for playback.
	Name        string
	URI         string
	Start, Stop int64
	// Formats default to DefaultVideoFormats.
	Formats []Format
}

// NewOffer builds the SDP of an offer.
func NewOffer(o Offer) *Session {
	m := Media{Type: "video", Port: o.Port, Proto: ProtoUDP, Direction: "recvonly", Formats: o.Formats}
	if m.Formats == nil {
		m.Formats = append([]Format(nil), DefaultVideoFormats...)
	}
	switch o.Transport {
	case TCPPassive:
		m.Proto, m.Setup, m.Connection = ProtoTCP, SetupPassive, "new"
	case TCPActive:
		m.Proto, m.Setup, m.Connection = ProtoTCP, SetupActive, "new"
	}
	name := o.Name
	if name == "" {
		name = NamePlay
	}
	return &Session{Origin: o.ID, OriginAddr: o.IP, Name: name, URI: o.URI, Addr: o.IP,
		Start: o.Start, Stop: o.Stop, Media: []Media{m}, SSRC: o.SSRC}
}

// Answer describes a device's answer to an offer.
type Answer struct {
	// ID is the answering channel's (or device's) GB ID; IP and Port where
	// it sends from (for TCP passive, where it listens).
	ID   string
	IP   string
	Port int
	// SSRC overrides the offer's y= (a device that picks its own).
	SSRC string
	// F is the f= line, e.g. "v/2/4///a///".
	F string
}

// NewAnswer builds a device's answer: the offer's video line narrowed to
// PS/96, sendonly, with the opposite TCP role, and the offer's y= echoed.
func NewAnswer(offer *Session, a Answer) (*Session, error) {
	v := offer.Video()
	if v == nil {
		return nil, errors.New("gbsdp: offer has no video")
	}
	ps, ok := v.Format(PTPS)
	if !ok || !strings.EqualFold(ps.Name, "PS") {
		ps = Format{PT: PTPS, Name: "PS", Clock: 90000}
		for _, f := range v.Formats {
			if strings.EqualFold(f.Name, "PS") {
				ps = f
			}
		}
	}
	m := Media{Type: "video", Port: a.Port, Proto: ProtoUDP, Direction: "sendonly", Formats: []Format{ps}}
	if v.TCP() {
		m.Proto, m.Connection = ProtoTCP, "new"
		m.Setup = SetupPassive
		if v.Transport() == TCPPassive {
			m.Setup = SetupActive
		}
	}
	ssrc := a.SSRC
	if ssrc == "" {
		ssrc = offer.SSRC
	}
	return &Session{Origin: a.ID, OriginAddr: a.IP, Name: offer.Name, URI: offer.URI, Addr: a.IP,
		Start: offer.Start, Stop: offer.Stop, Media: []Media{m}, SSRC: ssrc, F: a.F}, nil
}
