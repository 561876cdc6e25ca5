// Package gbsdp builds and parses the SDP that GB/T 28181 carries in INVITE
// offers and answers: s=Play|Playback|Download|Talk, u= for playback, a
// video m= line over RTP/AVP or TCP/RTP/AVP with PS/H.264/H.265 rtpmaps,
// a=setup/a=connection for TCP (RFC 4145), and the GB-only y= (SSRC) and
// f= (media format) lines.
//
// It has its own parser because general SDP libraries refuse y= and f=
// (pion/sdp stops with a syntax error at y=), and because devices write
// SDP loosely: bare LF line ends, spaces around values, y= before m=,
// media-level c= only, "RTP/AVP/TCP" for the TCP profile. The parser is
// bounded (MaxSize) and never panics on bad input.
package gbsdp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxSize bounds an SDP body; a GB offer is a few hundred bytes.
const MaxSize = 16 << 10

// Session names (s=) used by GB/T 28181.
const (
	NamePlay     = "Play"
	NamePlayback = "Playback"
	NameDownload = "Download"
	NameTalk     = "Talk"
)

// Protocols of a media line.
const (
	ProtoUDP = "RTP/AVP"
	ProtoTCP = "TCP/RTP/AVP"
)

// Setup roles (a=setup, RFC 4145) of the SDP's author on TCP: "active"
// dials, "passive" listens.
const (
	SetupActive  = "active"
	SetupPassive = "passive"
	SetupActPass = "actpass"
)

// Format is one payload type of a media line with its rtpmap.
type Format struct {
	PT    uint8
	Name  string // "PS", "H264", "H265", "PCMA", …
	Clock int
}

// Payload types GB platforms offer for video (wvp/ZLMediaKit numbering).
const (
	PTPS   = 96
	PTH264 = 98
	PTH265 = 99
)

// DefaultVideoFormats is the offer a platform makes for live video: PS
// first (what every device sends), then raw H.264 and H.265.
var DefaultVideoFormats = []Format{
	{PT: PTPS, Name: "PS", Clock: 90000},
	{PT: PTH264, Name: "H264", Clock: 90000},
	{PT: PTH265, Name: "H265", Clock: 90000},
}

// Media is one m= section.
type Media struct {
	Type    string // "video" or "audio"
	Port    int
	Proto   string // ProtoUDP or ProtoTCP as written ("RTP/AVP/TCP" is read as TCP too)
	Formats []Format
	// Direction is "recvonly", "sendonly", "sendrecv" or "inactive" ("" when absent).
	Direction string
	// Setup and Connection are the RFC 4145 attributes for TCP.
	Setup      string
	Connection string // "new" or "existing"
	// Addr is a media-level c= address ("" when absent).
	Addr string
	// DownloadSpeed and FileSize are GB's a=downloadspeed / a=filesize.
	DownloadSpeed int
	FileSize      int64
	// Attrs keeps every other a= line, without "a=".
	Attrs []string
}

// TCP reports whether the media travels over TCP (RFC 4571 framing).
func (m *Media) TCP() bool {
	p := strings.ToUpper(m.Proto)
	return strings.HasPrefix(p, "TCP/") || strings.HasSuffix(p, "/TCP")
}

// Format returns the format with payload type pt.
func (m *Media) Format(pt uint8) (Format, bool) {
	for _, f := range m.Formats {
		if f.PT == pt {
			return f, true
		}
	}
	return Format{}, false
}

// Session is a GB SDP offer or answer.
type Session struct {
	// Origin is the o= username: the author's 20-digit GB ID.
	Origin string
	// OriginAddr is the o= address.
	OriginAddr string
	// Name is the s= line: NamePlay, NamePlayback, NameDownload, NameTalk.
	Name string
	// URI is u= ("channelID:0" for playback).
	URI string
	// Addr is the session-level c= address.
	Addr string
	// Start and Stop are t= (0 0 for live; Unix seconds for playback).
	Start, Stop int64
	Media       []Media
	// SSRC is y= as written (10 decimal digits); see SSRCValue.
	SSRC string
	// F is f= as written (e.g. "v/2/4///a///"), often empty.
	F string
}

// Video returns the first video media, or nil.
func (s *Session) Video() *Media {
	for i := range s.Media {
		if strings.EqualFold(s.Media[i].Type, "video") {
			return &s.Media[i]
		}
	}
	return nil
}

// MediaAddr returns where m's RTP goes: its own c= address, else the
// session's, else the o= address.
func (s *Session) MediaAddr(m *Media) string {
	if m != nil && m.Addr != "" {
		return m.Addr
	}
	if s.Addr != "" {
		return s.Addr
	}
	return s.OriginAddr
}

// SSRCValue returns y= as the RTP SSRC (its decimal value).
func (s *Session) SSRCValue() (uint32, error) { return ParseSSRC(s.SSRC) }

// Marshal writes the session in GB order (v o s u c t m a… y f), CRLF ends.
func (s *Session) Marshal() []byte {
	var b strings.Builder
	line := func(k, v string) { b.WriteString(k + "=" + v + "\r\n") }
	line("v", "0")
	origin, oaddr := s.Origin, s.OriginAddr
	if origin == "" {
		origin = "-"
	}
	if oaddr == "" {
		oaddr = s.Addr
	}
	line("o", origin+" 0 0 IN IP4 "+oaddr)
	name := s.Name
	if name == "" {
		name = NamePlay
	}
	line("s", name)
	if s.URI != "" {
		line("u", s.URI)
	}
	if s.Addr != "" {
		line("c", "IN IP4 "+s.Addr)
	}
	line("t", strconv.FormatInt(s.Start, 10)+" "+strconv.FormatInt(s.Stop, 10))
	for _, m := range s.Media {
		proto := m.Proto
		if proto == "" {
			proto = ProtoUDP
		}
		pts := make([]string, 0, len(m.Formats))
		for _, f := range m.Formats {
			pts = append(pts, strconv.Itoa(int(f.PT)))
		}
		line("m", m.Type+" "+strconv.Itoa(m.Port)+" "+proto+" "+strings.Join(pts, " "))
		if m.Addr != "" {
			line("c", "IN IP4 "+m.Addr)
		}
		if m.Direction != "" {
			line("a", m.Direction)
		}
		for _, f := range m.Formats {
			if f.Name != "" {
				line("a", fmt.Sprintf("rtpmap:%d %s/%d", f.PT, f.Name, f.Clock))
			}
		}
		if m.Setup != "" {
			line("a", "setup:"+m.Setup)
		}
		if m.Connection != "" {
			line("a", "connection:"+m.Connection)
		}
		if m.DownloadSpeed > 0 {
			line("a", "downloadspeed:"+strconv.Itoa(m.DownloadSpeed))
		}
		if m.FileSize > 0 {
			line("a", "filesize:"+strconv.FormatInt(m.FileSize, 10))
		}
		for _, a := range m.Attrs {
			line("a", a)
		}
	}
	if s.SSRC != "" {
		line("y", s.SSRC)
	}
	if s.F != "" {
		line("f", s.F)
	}
	return []byte(b.String())
}

// Errors returned by Parse.
var (
	ErrTooLarge = errors.New("gbsdp: SDP too large")
	ErrNoMedia  = errors.New("gbsdp: no usable m= line")
)

// Parse reads a GB SDP offer or answer. It refuses bodies over MaxSize
// and SDP without a usable m= line, and tolerates everything else it can.
func Parse(b []byte) (*Session, error) {
	if len(b) > MaxSize {
		return nil, ErrTooLarge
	}
	s := &Session{}
	var cur *Media
	for _, raw := range strings.Split(string(b), "\n") {
		ln := strings.TrimSpace(raw)
		if len(ln) < 2 || ln[1] != '=' {
			continue // blank or not SDP: skip, as devices add junk
		}
		key, val := ln[0], strings.TrimSpace(ln[2:])
		switch key {
		case 'o':
			f := strings.Fields(val)
			if len(f) > 0 {
				s.Origin = f[0]
			}
			if len(f) >= 6 {
				s.OriginAddr = f[5]
			}
		case 's':
			s.Name = val
		case 'u':
			s.URI = val
		case 'c':
			f := strings.Fields(val)
			if len(f) < 3 {
				continue
			}
			if cur != nil {
				cur.Addr = f[2]
			} else {
				s.Addr = f[2]
			}
		case 't':
			f := strings.Fields(val)
			if len(f) >= 2 {
				s.Start, _ = strconv.ParseInt(f[0], 10, 64)
				s.Stop, _ = strconv.ParseInt(f[1], 10, 64)
			}
		case 'm':
			m, ok := parseMediaLine(val)
			if !ok {
				cur = nil
				continue
			}
			s.Media = append(s.Media, m)
			cur = &s.Media[len(s.Media)-1]
		case 'a':
			if cur != nil {
				parseAttr(cur, val)
			}
		case 'y':
			s.SSRC = val
		case 'f':
			s.F = val
		}
		if len(s.Media) > 16 {
			return nil, errors.New("gbsdp: too many m= lines")
		}
	}
	if len(s.Media) == 0 {
		return nil, ErrNoMedia
	}
	return s, nil
}

func parseMediaLine(val string) (Media, bool) {
	f := strings.Fields(val)
	if len(f) < 3 {
		return Media{}, false
	}
	port, err := strconv.Atoi(strings.SplitN(f[1], "/", 2)[0])
	if err != nil || port < 0 || port > 65535 {
		return Media{}, false
	}
	m := Media{Type: strings.ToLower(f[0]), Port: port, Proto: f[2]}
	for _, p := range f[3:] {
		pt, err := strconv.Atoi(p)
		if err != nil || pt < 0 || pt > 127 {
			continue
		}
		m.Formats = append(m.Formats, Format{PT: uint8(pt)})
		if len(m.Formats) > 32 {
			break
		}
	}
	return m, true
}

func parseAttr(m *Media, val string) {
	name, arg, _ := strings.Cut(val, ":")
	name = strings.ToLower(strings.TrimSpace(name))
	arg = strings.TrimSpace(arg)
	switch name {
	case "recvonly", "sendonly", "sendrecv", "inactive":
		m.Direction = name
	case "rtpmap":
		ptStr, enc, ok := strings.Cut(arg, " ")
		if !ok {
			return
		}
		pt, err := strconv.Atoi(strings.TrimSpace(ptStr))
		if err != nil || pt < 0 || pt > 127 {
			return
		}
		encName, clock, _ := strings.Cut(strings.TrimSpace(enc), "/")
		clock, _, _ = strings.Cut(clock, "/")
		c, _ := strconv.Atoi(clock)
		for i := range m.Formats {
			if m.Formats[i].PT == uint8(pt) {
				m.Formats[i].Name, m.Formats[i].Clock = encName, c
				return
			}
		}
		// An rtpmap for a type the m= line did not list: devices do
		// this; keep it rather than lose the codec name.
		if len(m.Formats) < 32 {
			m.Formats = append(m.Formats, Format{PT: uint8(pt), Name: encName, Clock: c})
		}
	case "setup":
		m.Setup = strings.ToLower(arg)
	case "connection":
		m.Connection = strings.ToLower(arg)
	case "downloadspeed":
		m.DownloadSpeed, _ = strconv.Atoi(arg)
	case "filesize":
		m.FileSize, _ = strconv.ParseInt(arg, 10, 64)
	default:
		if len(m.Attrs) < 64 {
			m.Attrs = append(m.Attrs, val)
		}
	}
}
