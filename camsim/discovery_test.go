package camsim

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/ipv4"
)

// --- a WS-Discovery client, written from the spec for these tests ---

func probeMessage(id, types, scopes string) []byte {
	scopeEl := ""
	if scopes != "" {
		scopeEl = "<d:Scopes>" + xmlText(scopes) + "</d:Scopes>"
	}
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` +
		`<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing"` +
		` xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">` +
		`<e:Header><w:MessageID>` + id + `</w:MessageID><w:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>` +
		`<w:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header>` +
		`<e:Body><d:Probe><d:Types>` + types + `</d:Types>` + scopeEl + `</d:Probe></e:Body></e:Envelope>`)
}

type wsdEndpointIn struct {
	EPR             string `xml:"EndpointReference>Address"`
	Types           string `xml:"Types"`
	Scopes          string `xml:"Scopes"`
	XAddrs          string `xml:"XAddrs"`
	MetadataVersion int    `xml:"MetadataVersion"`
}

type wsdMessageIn struct {
	Header struct {
		MessageID string `xml:"MessageID"`
		RelatesTo string `xml:"RelatesTo"`
		Action    string `xml:"Action"`
	} `xml:"Header"`
	Body struct {
		Matches []wsdEndpointIn `xml:"ProbeMatches>ProbeMatch"`
		Hello   *wsdEndpointIn  `xml:"Hello"`
		Bye     *wsdEndpointIn  `xml:"Bye"`
	} `xml:"Body"`
	from net.Addr
}

// readMessages reads until done says enough, failing after 5 s (a bound
// on a hang, not a timing check).
func readMessages(t *testing.T, conn net.PacketConn, done func([]wsdMessageIn) bool) []wsdMessageIn {
	t.Helper()
	var got []wsdMessageIn
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 64<<10)
	for !done(got) {
		conn.SetReadDeadline(deadline)
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		var m wsdMessageIn
		if err := xml.Unmarshal(buf[:n], &m); err != nil {
			t.Fatalf("unreadable discovery message: %v: %s", err, buf[:n])
		}
		m.from = from
		got = append(got, m)
	}
	return got
}

func loopbackInterface(t *testing.T) *net.Interface {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for i := range ifs {
		if ifs[i].Flags&net.FlagLoopback != 0 {
			return &ifs[i]
		}
	}
	t.Fatal("no loopback interface")
	return nil
}

// prober is a client socket that sends multicast on ifi.
func prober(t *testing.T, conn net.PacketConn, ifi *net.Interface) *ipv4.PacketConn {
	t.Helper()
	p := ipv4.NewPacketConn(conn)
	if err := p.SetMulticastInterface(ifi); err != nil {
		t.Fatal(err)
	}
	if err := p.SetMulticastLoopback(true); err != nil {
		t.Fatal(err)
	}
	return p
}

var groupAddr = &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 3702}

// loopbackIP picks a random 127.x.y.z: a unicast probe to it reaches this
// test's camera only, whatever else listens on 127.0.0.1:3702.
func loopbackIP() string {
	b := uuid.New()
	return fmt.Sprintf("127.%d.%d.%d", 100+b[0]%100, b[1], 1+b[2]%250)
}

func TestMulticastProbeOnLoopbackFindsEveryCamera(t *testing.T) {
	var cams []*Camera
	for i := range 3 {
		cfg := authedConfig()
		cfg.Name = uniqueName(t, fmt.Sprintf("Gate %d", i)) // a space, to see it escaped in the scope
		cfg.ProbeReplyDelay = 20 * time.Millisecond
		cams = append(cams, startCam(t, cfg))
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := prober(t, conn, loopbackInterface(t))
	id := "urn:uuid:" + uuid.NewString()
	if _, err := p.WriteTo(probeMessage(id, "dn:NetworkVideoTransmitter", ""), nil, groupAddr); err != nil {
		t.Fatal(err)
	}

	byEPR := map[string]*Camera{}
	for _, c := range cams {
		byEPR[c.Endpoint()] = c
	}
	found := map[string]wsdEndpointIn{}
	readMessages(t, conn, func(ms []wsdMessageIn) bool {
		if len(ms) > 0 {
			m := ms[len(ms)-1]
			// Cameras of other test processes on loopback may answer too.
			for _, e := range m.Body.Matches {
				if _, ours := byEPR[e.EPR]; ours {
					if m.Header.RelatesTo != id {
						t.Errorf("RelatesTo %q, want the probe's %q", m.Header.RelatesTo, id)
					}
					if m.Header.Action != "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches" {
						t.Errorf("Action %q", m.Header.Action)
					}
					found[e.EPR] = e
				}
			}
		}
		return len(found) == len(cams)
	})
	for epr, e := range found {
		c := byEPR[epr]
		if !strings.HasPrefix(epr, "urn:uuid:") {
			t.Errorf("endpoint %q is not a urn:uuid", epr)
		}
		if e.XAddrs != c.XAddr() || !strings.HasPrefix(e.XAddrs, "http://127.0.0.1:") {
			t.Errorf("XAddrs %q, want %q", e.XAddrs, c.XAddr())
		}
		if !strings.Contains(e.Types, "NetworkVideoTransmitter") {
			t.Errorf("Types %q", e.Types)
		}
		scopes := strings.Fields(e.Scopes)
		for _, want := range []string{"onvif://www.onvif.org/name/" + url.PathEscape(c.Name()), "onvif://www.onvif.org/hardware/CamSim-1",
			"onvif://www.onvif.org/location/camsim"} {
			if !contains(scopes, want) {
				t.Errorf("scopes %q lack %q", scopes, want)
			}
		}
		if e.MetadataVersion < 1 {
			t.Errorf("MetadataVersion %d", e.MetadataVersion)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// unicastProbe sends probes, in order, to ip:3702 and returns the first
// reply. The responder handles one socket's probes in order, so a reply
// relating to a later probe proves the earlier ones went unanswered.
func unicastProbe(t *testing.T, ip string, probes ...[]byte) wsdMessageIn {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := &net.UDPAddr{IP: net.ParseIP(ip), Port: 3702}
	for _, p := range probes {
		if _, err := conn.WriteTo(p, to); err != nil {
			t.Fatal(err)
		}
	}
	ms := readMessages(t, conn, func(ms []wsdMessageIn) bool { return len(ms) == 1 })
	if got := ms[0].from.String(); got != to.String() {
		t.Errorf("reply came from %s, want the camera's %s", got, to)
	}
	return ms[0]
}

func TestUnicastProbeToTheCamerasAddressIsAnswered(t *testing.T) {
	ip := loopbackIP()
	cam := startCam(t, CameraConfig{DiscoveryIP: ip})
	id := "urn:uuid:" + uuid.NewString()
	m := unicastProbe(t, ip, probeMessage(id, "", ""))
	if m.Header.RelatesTo != id || len(m.Body.Matches) != 1 || m.Body.Matches[0].EPR != cam.Endpoint() {
		t.Fatalf("reply %+v, want one match for %s relating to %s", m, cam.Endpoint(), id)
	}
	if want := "http://" + ip + ":"; !strings.HasPrefix(m.Body.Matches[0].XAddrs, want) {
		t.Errorf("XAddrs %q, want the camera's own address %s…", m.Body.Matches[0].XAddrs, want)
	}
}

func TestProbeForOtherTypesOrScopesIsIgnored(t *testing.T) {
	ip := loopbackIP()
	cam := startCam(t, CameraConfig{DiscoveryIP: ip, Name: "Dam East"})
	nameScope := "onvif://www.onvif.org/name/Dam%20East"
	cases := []struct {
		name, types, scopes string
		match               bool
	}{
		{"printer type", "wprt:PrintDeviceType", "", false},
		{"device type", "tds:Device", "", true},
		{"both ONVIF types", "dn:NetworkVideoTransmitter tds:Device", "", true},
		{"own name scope", "", nameScope, true},
		{"scope prefix on a segment", "", "onvif://www.onvif.org/location", true},
		{"scope prefix mid-segment", "", "onvif://www.onvif.org/loc", false},
		{"other name", "", "onvif://www.onvif.org/name/Dam%20West", false},
		{"one scope of two missing", "", nameScope + " onvif://www.onvif.org/hardware/Other", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			probe := "urn:uuid:" + uuid.NewString()
			marker := "urn:uuid:" + uuid.NewString()
			m := unicastProbe(t, ip, probeMessage(probe, tc.types, tc.scopes), probeMessage(marker, "", ""))
			want := marker
			if tc.match {
				want = probe
			}
			if m.Header.RelatesTo != want || m.Body.Matches[0].EPR != cam.Endpoint() {
				t.Fatalf("first reply relates to %q, want %q (match=%v)", m.Header.RelatesTo, want, tc.match)
			}
		})
	}
}

func TestNoDiscoveryFaultSilencesTheCamera(t *testing.T) {
	ip := loopbackIP()
	cam := startCam(t, CameraConfig{DiscoveryIP: ip})
	cam.SetFaults(Faults{NoDiscovery: true})
	ignored := "urn:uuid:" + uuid.NewString()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := &net.UDPAddr{IP: net.ParseIP(ip), Port: 3702}
	before := cam.discovery.unicastHandled.Load()
	if _, err := conn.WriteTo(probeMessage(ignored, "", ""), to); err != nil {
		t.Fatal(err)
	}
	// Heal only once the silenced probe has been read; then the first reply
	// must be to the next probe.
	waitHandled(t, cam, before+1)
	cam.SetFaults(Faults{})
	answered := "urn:uuid:" + uuid.NewString()
	if _, err := conn.WriteTo(probeMessage(answered, "", ""), to); err != nil {
		t.Fatal(err)
	}
	ms := readMessages(t, conn, func(ms []wsdMessageIn) bool { return len(ms) == 1 })
	if ms[0].Header.RelatesTo != answered {
		t.Fatalf("reply relates to %q; the probe sent while silent (%q) must go unanswered", ms[0].Header.RelatesTo, ignored)
	}
}

// waitHandled waits until the camera's responder has dealt with n
// datagrams in all (bounded at 5 s against a hang).
func waitHandled(t *testing.T, cam *Camera, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for cam.discovery.unicastHandled.Load() < n {
		if time.Now().After(deadline) {
			t.Fatal("the responder never read the probe")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHelloOnStartAndByeOnClose(t *testing.T) {
	// Listen on the group as a client would, sharing the port with any
	// camera already bound to it.
	lc := net.ListenConfig{Control: reuseControl(true)}
	conn, err := lc.ListenPacket(context.Background(), "udp4", "239.255.255.250:3702")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := ipv4.NewPacketConn(conn).JoinGroup(loopbackInterface(t), &net.UDPAddr{IP: groupAddr.IP}); err != nil {
		t.Fatal(err)
	}
	cam, err := StartCamera(CameraConfig{Name: uniqueName(t, "hello"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	ours := func(e *wsdEndpointIn) bool { return e != nil && e.EPR == cam.Endpoint() }
	ms := readMessages(t, conn, func(ms []wsdMessageIn) bool { return len(ms) > 0 && ours(ms[len(ms)-1].Body.Hello) })
	hello := ms[len(ms)-1]
	if hello.Body.Hello.XAddrs != cam.XAddr() || hello.Header.Action != "http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello" {
		t.Errorf("Hello %+v", hello)
	}
	cam.Close()
	readMessages(t, conn, func(ms []wsdMessageIn) bool { return len(ms) > 0 && ours(ms[len(ms)-1].Body.Bye) })
}

func TestScopesMatchingRules(t *testing.T) {
	ours := []string{"onvif://www.onvif.org/name/A", "onvif://www.onvif.org/location/city/east"}
	for _, tc := range []struct {
		req, by string
		want    bool
	}{
		{"", "", true},
		{"onvif://www.onvif.org/location/city", "", true},
		{"onvif://www.onvif.org/location/city/", "", true},
		{"onvif://www.onvif.org/location/ci", "", false},
		{"onvif://www.onvif.org/location/city", matchByStrcmp0, false},
		{"onvif://www.onvif.org/name/A", matchByStrcmp0, true},
		{"onvif://www.onvif.org/name/A", "http://example.invalid/unknown-rule", false},
	} {
		if got := scopesMatch(ours, tc.req, tc.by); got != tc.want {
			t.Errorf("scopesMatch(%q, %q) = %v, want %v", tc.req, tc.by, got, tc.want)
		}
	}
}
