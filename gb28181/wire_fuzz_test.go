package gb28181

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// wireDevice is the 20-digit ID the wire seeds speak for; the fuzz server has it registered from
// 127.0.0.1 over UDP, so fuzzed keepalives and catalogs in its name reach the deep paths.
const wireDevice = "34020000001320000001"

// wireMsg lays out a SIP request the way vendor firmware writes them (CRLF lines, a computed
// Content-Length unless cl overrides it). Shapes follow captures of Hikvision (IP Camera,
// numeric branch and Call-ID) and Dahua (SIP UAS V3, hex branch, Route, From with host:port)
// devices.
func wireMsg(startLine string, headers []string, body string, cl string) []byte {
	var b strings.Builder
	b.WriteString(startLine + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if cl == "" {
		cl = fmt.Sprint(len(body))
	}
	if cl != "-" {
		b.WriteString("Content-Length: " + cl + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

func hikRegister(id string) []string {
	return []string{
		"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1371463273",
		"From: <sip:" + id + "@3402000000>;tag=2043466181",
		"To: <sip:" + id + "@3402000000>",
		"Call-ID: 1011047669",
		"CSeq: 1 REGISTER",
		"Contact: <sip:" + id + "@192.168.1.64:5060>",
		"Max-Forwards: 70",
		"User-Agent: IP Camera",
		"Expires: 3600",
	}
}

func dahuaRegister(id string) []string {
	return []string{
		"Call-ID: b954e1e87c6d580eaec2c2755aba3e54",
		"Contact: <sip:" + id + "@192.168.1.108:5060>",
		"CSeq: 1 REGISTER",
		"Expires: 3600",
		"From: <sip:" + id + "@192.168.1.108:5060>;tag=d28d156d2c72dcfb6a49ceb55f9627e8",
		"Max-Forwards: 70",
		"Route: <sip:" + testServerID + "@192.168.1.125:5060;lr>",
		"To: <sip:" + id + "@192.168.1.108:5060>",
		"User-Agent: SIP UAS V3.0.0.1208500",
		"Via: SIP/2.0/UDP 192.168.1.108:5060;rport;branch=z9hG4bK9ffcac0c7c50cdbc062009c67a39ecfb",
	}
}

func messageHeaders(method, id string) []string {
	return []string{
		"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1583412901",
		"From: <sip:" + id + "@3402000000>;tag=1402785735",
		"To: <sip:" + testServerID + "@3402000000>",
		"Call-ID: 1839513286",
		"CSeq: 20 " + method,
		"Content-Type: Application/MANSCDP+xml",
		"Max-Forwards: 70",
		"User-Agent: IP Camera",
	}
}

const wireCatalog = `<?xml version="1.0" encoding="GB2312"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>17430</SN>
<DeviceID>` + wireDevice + `</DeviceID>
<SumNum>1</SumNum>
<DeviceList Num="1">
<Item>
<DeviceID>34020000001310000001</DeviceID>
<Name>Camera 01</Name>
<Manufacturer>Hikvision</Manufacturer>
<Model>IP Camera</Model>
<Owner>Owner</Owner>
<CivilCode>3402000000</CivilCode>
<Address>Address</Address>
<Parental>0</Parental>
<ParentID>` + wireDevice + `</ParentID>
<SafetyWay>0</SafetyWay>
<RegisterWay>1</RegisterWay>
<Secrecy>0</Secrecy>
<Status>ON</Status>
</Item>
</DeviceList>
</Response>
`

// wireSeeds are well-formed vendor messages and the ways firmware and attackers break them.
func wireSeeds() [][]byte {
	reg := "REGISTER sip:" + testServerID + "@3402000000 SIP/2.0"
	msg := "MESSAGE sip:" + testServerID + "@3402000000 SIP/2.0"
	ka := keepaliveBody(wireDevice, 20)
	without := func(hs []string, prefix string) []string {
		var out []string
		for _, h := range hs {
			if !strings.HasPrefix(h, prefix) {
				out = append(out, h)
			}
		}
		return out
	}
	replace := func(hs []string, prefix, with string) []string {
		out := without(hs, prefix)
		return append(out, with)
	}
	seeds := [][]byte{
		wireMsg(reg, hikRegister(wireDevice), "", ""),
		wireMsg(reg, dahuaRegister(wireDevice), "", ""),
		wireMsg(reg, hikRegister("3402000000132000000"), "", ""),   // 19 digits
		wireMsg(reg, hikRegister("340200000013200000012"), "", ""), // 21 digits
		wireMsg(reg, hikRegister("admin"), "", ""),
		wireMsg(reg, append(hikRegister(wireDevice), `Authorization: Digest username="`+wireDevice+`", realm="3402000000", nonce="00", uri="sip:`+testServerID+`@3402000000", response="00000000000000000000000000000000", algorithm=MD5`), "", ""),
		wireMsg(reg, append(hikRegister(wireDevice), `Authorization: Digest username=, realm, nonce="`), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "Expires", "Expires: soon"), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "Expires", "Expires: 99999999999999999999"), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "Expires", "Expires: -1"), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "CSeq", "CSeq: x REGISTER"), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "CSeq", "CSeq: 4294967296 REGISTER"), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "CSeq", "CSeq: 1 INVITE"), "", ""),
		wireMsg(reg, without(hikRegister(wireDevice), "Via"), "", ""),
		wireMsg(reg, without(hikRegister(wireDevice), "From"), "", ""),
		wireMsg(reg, without(hikRegister(wireDevice), "To"), "", ""),
		wireMsg(reg, without(hikRegister(wireDevice), "Call-ID"), "", ""),
		wireMsg(reg, without(hikRegister(wireDevice), "CSeq"), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "Via", "Via: SIP/2.0/UDP"), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "Via", "Via: SIP/2.0/UDP 10.0.0.1:99999;branch=z9hG4bK1"), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "From", "From: <sip:@>;tag="), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "Contact", "Contact: *"), "", ""),
		wireMsg(reg, replace(hikRegister(wireDevice), "Contact", "Contact: <sip:"+wireDevice+"@192.168.1.64:5060>;expires=abc"), "", ""),
		wireMsg(reg, hikRegister(wireDevice), "", "-"),                    // no Content-Length
		wireMsg(reg, hikRegister(wireDevice), "", "70000"),                // a lie
		wireMsg(reg, hikRegister(wireDevice), "", "-5"),                   // a negative one
		wireMsg(reg, hikRegister(wireDevice), "", "18446744073709551616"), // overflow
		wireMsg(reg, append(hikRegister(wireDevice), "Content-Length: 3"), "abc", "3"),
		wireMsg(reg, append(hikRegister(wireDevice), "X-Junk: "+strings.Repeat("A", 4000)), "", ""),
		wireMsg(msg, messageHeaders("MESSAGE", wireDevice), ka, ""),
		wireMsg(msg, messageHeaders("MESSAGE", wireDevice), ka, "5"),
		wireMsg(msg, messageHeaders("MESSAGE", wireDevice), ka+ka, ""), // two bodies
		wireMsg(msg, messageHeaders("MESSAGE", wireDevice), wireCatalog, ""),
		wireMsg(msg, messageHeaders("MESSAGE", "34020000001320000999"), wireCatalog, ""),
		wireMsg(msg, messageHeaders("MESSAGE", "device"), ka, ""),
		wireMsg("NOTIFY sip:"+testServerID+"@3402000000 SIP/2.0", append(messageHeaders("NOTIFY", wireDevice), "Event: Catalog"),
			strings.Replace(strings.Replace(wireCatalog, "Response>", "Notify>", 2), "<Status>ON</Status>", "<Event>DEL</Event>", 1), ""),
		wireMsg("INVITE sip:34020000001310000001@3402000000 SIP/2.0", append(messageHeaders("INVITE", wireDevice)[:4], "CSeq: 1 INVITE",
			"Content-Type: application/sdp", "Subject: 34020000001310000001:0,"+testServerID+":0"),
			"v=0\r\no=34020000001310000001 0 0 IN IP4 10.0.0.1\r\ns=Play\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 6000 RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\ny=0100000001\r\n", ""),
		wireMsg("BYE sip:"+testServerID+"@3402000000 SIP/2.0", append(messageHeaders("BYE", wireDevice)[:4], "CSeq: 2 BYE"), "", ""),
		wireMsg("ACK sip:"+testServerID+"@3402000000 SIP/2.0", append(messageHeaders("ACK", wireDevice)[:4], "CSeq: 1 ACK"), "", ""),
		wireMsg("CANCEL sip:"+testServerID+"@3402000000 SIP/2.0", append(messageHeaders("CANCEL", wireDevice)[:4], "CSeq: 1 CANCEL"), "", ""),
		wireMsg("SIP/2.0 200 OK", messageHeaders("MESSAGE", wireDevice), "", ""), // an answer to nothing
		wireMsg("SIP/2.0 99999 OK", messageHeaders("MESSAGE", wireDevice), "", ""),
		wireMsg("FOO sip:x SIP/2.0", nil, "", ""),
		[]byte("REGISTER sip:" + testServerID + "@3402000000 SIP/2.0\n" + strings.Join(hikRegister(wireDevice), "\n") + "\n\n"), // LF only
		[]byte("\r\n\r\n"), []byte("\x00\x00\x00"), []byte("\xff\xfe\xfd"), []byte(" "), []byte("SIP/2.0"),
		bytes.Repeat([]byte("A"), 2000),
	}
	return seeds
}

// wireServer is one server for a whole fuzz run, with wireDevice registered.
func wireServer(t testing.TB) *Server {
	t.Helper()
	w := newCatalogWorld(t, func(c *Config) {
		c.KeepaliveInterval = time.Hour
		c.SubscribeExpiry = -1
		c.CatalogPageTimeout = 100 * time.Millisecond
	})
	d := newSIPDevice(t, w.s, wireDevice, "UDP")
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatalf("register: %d", final.StatusCode)
	}
	return w.s
}

var aliveSeq atomic.Int64

// registerText is a well-formed REGISTER without credentials (answered 401) over transport tp.
func registerText(tp string) []byte {
	n := aliveSeq.Add(1)
	return wireMsg("REGISTER sip:"+testServerID+"@"+testDomain+" SIP/2.0", []string{
		fmt.Sprintf("Via: SIP/2.0/%s 127.0.0.1:5060;rport;branch=z9hG4bKalive%d", tp, n),
		"From: <sip:34020000001320000777@3402000000>;tag=alive",
		"To: <sip:34020000001320000777@3402000000>",
		fmt.Sprintf("Call-ID: alive-%d", n),
		"CSeq: 1 REGISTER",
		"Max-Forwards: 70",
		"Expires: 3600",
	}, "", "")
}

// assertAlive checks that the server still answers a well-formed REGISTER over UDP and TCP.
func assertAlive(t testing.TB, s *Server) {
	t.Helper()
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	got := false
	for try := 0; try < 3 && !got; try++ { // UDP: a lost datagram is retried, as a device would
		if _, err := c.Write(registerText("UDP")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err == nil {
			if !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 401")) {
				t.Fatalf("REGISTER over UDP answered %q", firstLine(buf[:n]))
			}
			got = true
		}
	}
	if !got {
		t.Fatal("the server no longer answers REGISTER over UDP")
	}
	tc, err := net.DialTimeout("tcp", s.TCPAddr().String(), 2*time.Second)
	if err != nil {
		t.Fatalf("the server no longer accepts TCP: %v", err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := tc.Write(registerText("TCP")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SIP/2.0 401") {
		t.Fatalf("REGISTER over TCP answered %q (%v)", line, err)
	}
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// FuzzWireUDP: any datagram at the SIP port, from the registered device's host, leaves the process
// running and the server answering REGISTER. Fuzz the wire with -fuzzminimizetime 0s: the
// server's own goroutines make coverage differ from run to run, so the fuzzer would otherwise
// spend its time minimising inputs that only look new.
func FuzzWireUDP(f *testing.F) {
	for _, s := range wireSeeds() {
		f.Add(s)
	}
	s := wireServer(f)
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, datagram []byte) {
		if len(datagram) > 65000 {
			datagram = datagram[:65000]
		}
		c.Write(datagram)
		// Checking after every input would halve the fuzzing rate; every 16th (and the seeds) is
		// enough to catch a server that stopped answering.
		if n.Add(1)%16 == 1 {
			assertAlive(t, s)
		}
	})
	assertAlive(f, s)
}

// FuzzWireTCP: any byte stream, cut anywhere and written in pieces, on one TCP connection leaves
// the process running and the server answering REGISTER.
func FuzzWireTCP(f *testing.F) {
	for i, s := range wireSeeds() {
		f.Add(s, uint16(len(s)/2), uint8(i%3))
	}
	// Two messages in one write, and one message split in its header.
	two := append(wireMsg("MESSAGE sip:"+testServerID+"@3402000000 SIP/2.0", messageHeaders("MESSAGE", wireDevice), keepaliveBody(wireDevice, 1), ""), registerText("TCP")...)
	f.Add(two, uint16(40), uint8(2))
	s := wireServer(f)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16, repeat uint8) {
		c, err := net.DialTimeout("tcp", s.TCPAddr().String(), 2*time.Second)
		if err != nil {
			t.Fatalf("the server no longer accepts TCP: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		at := min(int(cut), len(stream))
		for r := 0; r <= int(repeat%4); r++ {
			if _, err := c.Write(stream[:at]); err != nil {
				break // the server may close on garbage: that is allowed
			}
			if _, err := c.Write(stream[at:]); err != nil {
				break
			}
		}
		if n.Add(1)%16 == 1 {
			assertAlive(t, s)
		}
	})
	assertAlive(f, s)
}

// FuzzSIPParser runs sipgo's datagram and stream parsers directly (the transport goroutines that
// call them have no recover): no input may panic them, and the stream parser may never hold more
// than its message limit.
func FuzzSIPParser(f *testing.F) {
	for _, s := range wireSeeds() {
		f.Add(s)
	}
	p := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		p.ParseSIP(data)
		st := p.NewSIPStream()
		defer st.Close()
		for i := 0; i < 3; i++ {
			if err := st.ParseSIPStream(data, func(sip.Message) {}); err != nil && err != sip.ErrParseSipPartial {
				return // the transport closes the connection here
			}
			if held := st.Buffer().Len(); held > p.MaxMessageLength+len(data) {
				t.Fatalf("stream parser holds %d bytes", held)
			}
		}
	})
}

// FuzzDigestAnswer: whatever a REGISTER's Authorization says (algorithm, qop, nc, userhash, odd
// quoting), checking it against our nonce never panics and never lets a made-up answer in.
func FuzzDigestAnswer(f *testing.F) {
	for _, a := range []string{
		`Digest username="` + wireDevice + `", realm="` + testDomain + `", nonce="NONCE", uri="sip:` + testServerID + `@` + testDomain + `", response="00000000000000000000000000000000", algorithm=MD5`,
		`Digest username="` + wireDevice + `", realm="` + testDomain + `", nonce="NONCE", uri="sip:x", response="0", algorithm=MD5-sess, qop=auth, nc=00000001, cnonce="abc"`,
		`Digest username="` + wireDevice + `", realm="` + testDomain + `", nonce="NONCE", uri="", response="", algorithm=SHA-256, qop="auth-int", nc=zz`,
		`Digest username="` + wireDevice + `", realm="` + testDomain + `", nonce="NONCE", response="x", algorithm=SHA-512-256, userhash=true`,
		`Digest username="` + wireDevice + `", realm="` + testDomain + `", nonce="NONCE", algorithm=UNKNOWN`,
		`Digest username=, realm="`, `Basic dXNlcjpwYXNz`, `Digest "`,
	} {
		f.Add(a)
	}
	s := newTestServer(f, nil)
	nonce := s.newNonce(wireDevice, "127.0.0.1", time.Now())
	f.Fuzz(func(t *testing.T, authz string) {
		cred, err := digest.ParseCredentials(strings.ReplaceAll(authz, "NONCE", nonce))
		if err != nil {
			return
		}
		if s.credentialsMatch(wireDevice, cred) {
			t.Fatalf("made-up credentials %q matched", authz)
		}
	})
}
