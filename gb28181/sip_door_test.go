package gb28181

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/catalog"
)

// The tests in this file hold the SIP door shut: what strangers, spoofers and misbehaving peers can
// and cannot do to the server (README, Security model).

// TestCatalogNotifyFromAStrangerWritingADeviceIDChangesNothing: a NOTIFY (or unsolicited answer)
// in a registered device's name but from another host, over another transport, or after the
// device unregistered, neither adds nor deletes its channels.
func TestCatalogNotifyFromAStrangerWritingADeviceIDChangesNothing(t *testing.T) {
	w := newCatalogWorld(t, func(c *Config) { c.SubscribeExpiry = -1 })
	d := newCatalogDevice(t, w.s, nvrID, "UDP", nvrItems(), 1)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	w.waitPoints(t, nvrID, 5)
	notify := func(added string) []byte {
		return gbk(`<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Catalog</CmdType><SN>9</SN><DeviceID>` + nvrID + `</DeviceID><SumNum>2</SumNum><DeviceList Num="2">
<Item><DeviceID>` + added + `</DeviceID><Name>注入</Name><CivilCode>440307</CivilCode><Event>ADD</Event><Status>ON</Status></Item>
<Item><DeviceID>44030700001310000002</DeviceID><Event>DEL</Event></Item>
</DeviceList></Notify>`)
	}
	answer := func(added string) []byte {
		return gbk(`<?xml version="1.0" encoding="GB2312"?>
<Response><CmdType>Catalog</CmdType><SN>9</SN><DeviceID>` + nvrID + `</DeviceID><SumNum>1</SumNum><DeviceList Num="1">
<Item><DeviceID>` + added + `</DeviceID><Name>注入</Name><CivilCode>440307</CivilCode><Status>ON</Status></Item>
</DeviceList></Response>`)
	}
	otherHost := newSIPDeviceAt(t, w.s, nvrID, "UDP", net.IPv4(127, 0, 0, 2))
	otherTransport := newSIPDevice(t, w.s, nvrID, "TCP")
	for i, spoof := range []*sipDevice{otherHost, otherTransport} {
		added := fmt.Sprintf("4403070000131000009%d", i)
		if res := spoof.do(spoof.request(sip.NOTIFY, ContentTypeMANSCDP, notify(added), sip.NewHeader("Event", "Catalog"))); res.StatusCode < 400 {
			t.Fatalf("spoofed NOTIFY (%s from %s) answered %d", spoof.transport, spoof.server, res.StatusCode)
		}
		if res := spoof.message(string(answer(added + "1"))); res.StatusCode < 400 {
			t.Fatalf("spoofed catalog answer answered %d", res.StatusCode)
		}
	}
	// After the device unregistered, even its own address cannot change its channels.
	if _, final := d.register("secret-12345", 0); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	if res := d.do(d.request(sip.NOTIFY, ContentTypeMANSCDP, notify("44030700001310000099"), sip.NewHeader("Event", "Catalog"))); res.StatusCode < 400 {
		t.Fatalf("NOTIFY of an unregistered device answered %d", res.StatusCode)
	}
	time.Sleep(300 * time.Millisecond) // a NOTIFY is applied after its answer
	for _, id := range []string{"44030700001310000090", "440307000013100000901", "44030700001310000091", "440307000013100000911", "44030700001310000099"} {
		if _, err := w.cat.Get(id); err == nil {
			t.Fatalf("a stranger added channel %s", id)
		}
	}
	if p, err := w.cat.Get("44030700001310000002"); err != nil || slices.Contains(p.Tags, TagGone) {
		t.Fatalf("a stranger deleted a channel: %+v %v", p.Tags, err)
	}
}

// TestAnswerToAQueryIsBelievedOnlyFromTheDevice: while we wait for a device's answer (SN known to
// anyone who can count), the same answer from another host is not taken, and the device's own is.
func TestAnswerToAQueryIsBelievedOnlyFromTheDevice(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.SubscribeExpiry = -1 })
	d := newSIPDevice(t, s, "34020000001320000031", "UDP")
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	sn := NextSN()
	got := make(chan string, 4)
	cancel := s.Expect(d.id, "DeviceInfo", sn, func(r *Request) { got <- r.Source })
	defer cancel()
	body := fmt.Sprintf("<Response><CmdType>DeviceInfo</CmdType><SN>%d</SN><DeviceID>%s</DeviceID><Manufacturer>Evil</Manufacturer></Response>", sn, d.id)
	spoof := newSIPDeviceAt(t, s, d.id, "UDP", net.IPv4(127, 0, 0, 2))
	spoof.message(body)
	select {
	case src := <-got:
		t.Fatalf("an answer from %s was taken as the device's", src)
	case <-time.After(200 * time.Millisecond):
	}
	d.message(body)
	select {
	case src := <-got:
		if hostOf(src) != "127.0.0.1" {
			t.Fatalf("answer from %s", src)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the device's own answer was not taken")
	}
}

// TestUDPAnswersGoToTheSourceAddress: a device behind NAT writes its private port in Via and does
// not ask for rport; the answer must still reach the port its request came from, never the port
// Via names (which would let any sender aim our answers at another port).
func TestUDPAnswersGoToTheSourceAddress(t *testing.T) {
	s := newTestServer(t, nil)
	src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	viaPort := other.LocalAddr().(*net.UDPAddr).Port
	reg := wireMsg("REGISTER sip:"+testServerID+"@"+testDomain+" SIP/2.0", []string{
		fmt.Sprintf("Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKnat1", viaPort),
		"From: <sip:34020000001320000032@3402000000>;tag=nat",
		"To: <sip:34020000001320000032@3402000000>",
		"Call-ID: nat-1",
		"CSeq: 1 REGISTER",
		"Max-Forwards: 70",
		"Expires: 3600",
	}, "", "")
	if _, err := src.WriteTo(reg, s.UDPAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	src.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := src.ReadFrom(buf)
	if err != nil {
		other.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if m, _, err2 := other.ReadFrom(buf); err2 == nil {
			t.Fatalf("the answer went to the Via port: %q", firstLine(buf[:m]))
		}
		t.Fatalf("no answer at the source port: %v", err)
	}
	if !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 401")) {
		t.Fatalf("answer %q", firstLine(buf[:n]))
	}
}

// TestStrangersCannotInviteByeOrRegisterByAnswering: requests other than REGISTER from devices that
// never registered change no state, and REGISTER answers do not tell known devices from unknown
// ones.
func TestStrangersCannotInviteByeOrRegisterByAnswering(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.SubscribeExpiry = -1 })
	known := newSIPDevice(t, s, "34020000001320000033", "UDP")
	if _, final := known.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	stranger := newSIPDeviceAt(t, s, "34020000001320000034", "UDP", net.IPv4(127, 0, 0, 2))
	sdp := []byte("v=0\r\no=34020000001320000034 0 0 IN IP4 127.0.0.2\r\ns=Play\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\na=recvonly\r\ny=0100000001\r\n")
	inv := stranger.request(sip.INVITE, ContentTypeSDP, sdp, sip.NewHeader("Subject", "34020000001310000001:0,"+testServerID+":0"))
	if res := stranger.do(inv); res.StatusCode < 400 {
		t.Fatalf("INVITE from a stranger answered %d", res.StatusCode)
	}
	if res := stranger.do(stranger.request(sip.BYE, "", nil)); res.StatusCode < 400 {
		t.Fatalf("BYE from a stranger answered %d", res.StatusCode)
	}
	if res := stranger.message(keepaliveBody(stranger.id, 1)); res.StatusCode < 400 {
		t.Fatalf("keepalive from a stranger answered %d", res.StatusCode)
	}
	if _, ok := s.Devices().Get(stranger.id); ok {
		t.Fatal("a stranger's requests created a device")
	}
	// A stranger writing the known device's ID cannot keep it alive, move it, or end it.
	spoof := newSIPDeviceAt(t, s, known.id, "UDP", net.IPv4(127, 0, 0, 2))
	if res := spoof.message(keepaliveBody(known.id, 2)); res.StatusCode < 400 {
		t.Fatalf("spoofed keepalive answered %d", res.StatusCode)
	}
	if res := spoof.do(spoof.request(sip.BYE, "", nil)); res.StatusCode < 400 {
		t.Fatalf("spoofed BYE answered %d", res.StatusCode)
	}
	if dev, _ := s.Devices().Get(known.id); !dev.Online || hostOf(dev.Addr) != "127.0.0.1" {
		t.Fatalf("spoofed requests changed the device: %+v", dev)
	}
	// REGISTER: known and unknown IDs get the same challenge and the same refusal.
	unknown := newSIPDevice(t, s, "34020000001320000035", "UDP")
	kFirst, kFinal := newSIPDevice(t, s, known.id, "UDP").register("wrong", 3600)
	uFirst, uFinal := unknown.register("wrong", 3600)
	if kFirst.StatusCode != 401 || uFirst.StatusCode != 401 || kFinal.StatusCode != uFinal.StatusCode || kFinal.Reason != uFinal.Reason {
		t.Fatalf("known %d/%d %q, unknown %d/%d %q", kFirst.StatusCode, kFinal.StatusCode, kFinal.Reason, uFirst.StatusCode, uFinal.StatusCode, uFinal.Reason)
	}
	kc, uc := kFirst.GetHeader("WWW-Authenticate").Value(), uFirst.GetHeader("WWW-Authenticate").Value()
	if strip := func(v string) string { return v[:strings.Index(v, "nonce=")] }; strip(kc) != strip(uc) {
		t.Fatalf("challenges differ: %q vs %q", kc, uc)
	}
}

// TestTCPConnectionsAreBoundedAndIdleOnesClosed: a peer cannot hold more than MaxTCPConns
// connections, nor keep one open by saying nothing (or half a message).
func TestTCPConnectionsAreBoundedAndIdleOnesClosed(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.MaxTCPConns = 3; c.TCPIdleTimeout = 300 * time.Millisecond })
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", s.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	held[0].Write([]byte("REGISTER sip:" + testServerID)) // half a start line, then silence
	time.Sleep(50 * time.Millisecond)                     // the server accepted the three
	extra, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedWithin(extra, time.Second) {
		t.Fatal("a connection over MaxTCPConns stayed open")
	}
	for i, c := range held {
		if !closedWithin(c, 3*time.Second) {
			t.Fatalf("idle connection %d stayed open", i)
		}
	}
	// Their slots are free again: a device can connect and register.
	assertAlive(t, s)
}

// closedWithin reports whether the peer closed c (read EOF or reset) within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// TestAbsurdContentLengthOverTCPClosesTheConnection: a message announcing a body larger than any
// SIP message, or a header that never ends, is not buffered: the connection is closed before the
// peer has sent a megabyte, and the server goes on answering.
func TestAbsurdContentLengthOverTCPClosesTheConnection(t *testing.T) {
	s := newTestServer(t, nil)
	for name, head := range map[string][]byte{
		"content-length": wireMsg("MESSAGE sip:"+testServerID+"@"+testDomain+" SIP/2.0", messageHeaders("MESSAGE", wireDevice), "", "1000000000"),
		"endless header": []byte("MESSAGE sip:" + testServerID + "@" + testDomain + " SIP/2.0\r\nX-Junk: "),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.TCPAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(head); err != nil {
				t.Fatal(err)
			}
			junk := bytes.Repeat([]byte("A"), 16<<10)
			sent := 0
			for sent < 1<<20 {
				n, err := c.Write(junk)
				sent += n
				if err != nil {
					break
				}
			}
			if !closedWithin(c, 2*time.Second) {
				t.Fatalf("connection still open after %d bytes", sent)
			}
			assertAlive(t, s)
		})
	}
}

// TestWritesToATCPPeerThatStoppedReadingTimeOut: a device that registered over TCP and then stops
// reading cannot block the goroutine sending to it: every request gives up within RequestTimeout.
func TestWritesToATCPPeerThatStoppedReadingTimeOut(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.RequestTimeout = 500 * time.Millisecond; c.SubscribeExpiry = -1 })
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Say something so the server knows the connection's address, then never read again.
	c.Write(registerText("TCP"))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SIP/2.0 401") {
		t.Fatalf("REGISTER answered %q %v", line, err)
	}
	peer := Peer{ID: wireDevice, Addr: c.LocalAddr().String(), Transport: "TCP"}
	body := bytes.Repeat([]byte("x"), 60<<10)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ { // far more than the socket buffers hold
			req, err := s.NewRequest(sip.MESSAGE, peer, "", ContentTypeMANSCDP, body)
			if err != nil {
				done <- err
				return
			}
			start := time.Now()
			err = s.Write(req)
			if took := time.Since(start); took > 3*time.Second {
				done <- fmt.Errorf("write %d took %v", i, took)
				return
			}
			if err != nil {
				done <- nil // the write gave up
				return
			}
		}
		done <- fmt.Errorf("200 requests of 60 KiB to a peer that reads nothing all went out")
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a write to a peer that stopped reading blocked")
	}
}

// TestADeviceCannotTakeOverAnRTSPPointWithTheSameID: a registered device whose catalog (answer or
// NOTIFY) lists a channel with the ID of a camera point pulled over RTSP leaves that point exactly
// as it was, and a later offline of the device does not touch it.
func TestADeviceCannotTakeOverAnRTSPPointWithTheSameID(t *testing.T) {
	w := newCatalogWorld(t, func(c *Config) { c.SubscribeExpiry = -1 })
	const id = "44030700001310000001"
	orig, err := w.cat.Create(catalog.Point{ID: id, Name: "路口球机", Category: "road", Region: "440307",
		Main: catalog.Source{Type: catalog.SourceRTSP, URL: "rtsp://127.0.0.1:8554/cam"}, OnDemand: true})
	if err != nil {
		t.Fatal(err)
	}
	d := newCatalogDevice(t, w.s, nvrID, "UDP", nvrItems(), 1)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	waitFor(t, "the catalog synced", 10*time.Second, func() bool {
		dev, _ := w.s.Devices().Get(nvrID)
		return dev.Channels == 5 && dev.Flagged >= 1
	})
	notify := `<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>` + nvrID + `</DeviceID><SumNum>1</SumNum><DeviceList Num="1">
<Item><DeviceID>` + id + `</DeviceID><Name>改名</Name><CivilCode>440307001</CivilCode><Event>DEL</Event></Item>
</DeviceList></Notify>`
	if res := d.do(d.request(sip.NOTIFY, ContentTypeMANSCDP, gbk(notify), sip.NewHeader("Event", "Catalog"))); res.StatusCode != 200 {
		t.Fatalf("NOTIFY answered %d", res.StatusCode)
	}
	if _, final := d.register("secret-12345", 0); final.StatusCode != 200 { // offline: its channels go offline
		t.Fatal(final.StatusCode)
	}
	time.Sleep(300 * time.Millisecond)
	p, err := w.cat.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Main != orig.Main || p.Name != orig.Name || p.Status.State == catalog.StateOffline || slices.Contains(p.Tags, TagGone) {
		t.Fatalf("the RTSP point was changed by a device: %+v", p)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAMessageThatDoesNotParseKeepsItsDigestAnswerOutOfTheLog: sipgo logs what it cannot parse;
// a REGISTER carrying credentials and one broken header must not put the Digest answer in our log.
func TestAMessageThatDoesNotParseKeepsItsDigestAnswerOutOfTheLog(t *testing.T) {
	var logs syncBuffer
	s := newTestServer(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	const answer = "6629fae49393a05397450978507c4ef1"
	bad := wireMsg("REGISTER sip:"+testServerID+"@"+testDomain+" SIP/2.0", append(hikRegister(wireDevice)[:4], "CSeq: one REGISTER",
		`Authorization: Digest username="`+wireDevice+`", realm="`+testDomain+`", nonce="00", uri="sip:`+testServerID+`@`+testDomain+`", response="`+answer+`", algorithm=MD5`), "", "")
	for _, tp := range []string{"udp", "tcp"} {
		c, err := net.Dial(tp, s.UDPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(bad)
		c.Close()
	}
	waitFor(t, "both parse failures logged", 3*time.Second, func() bool { return strings.Count(logs.String(), "failed to parse") >= 2 })
	if strings.Contains(logs.String(), answer) {
		t.Fatalf("the Digest answer is in the log:\n%s", logs.String())
	}
}

// TestDatagramsFromManyAddressesDoNotGrowMemoryWithoutBound: sipgo remembers every UDP source;
// past MaxUDPPeers the server makes it forget, and a registered device goes on working.
func TestDatagramsFromManyAddressesDoNotGrowMemoryWithoutBound(t *testing.T) {
	prev := udpPeerCheck
	udpPeerCheck = 20 * time.Millisecond
	defer func() { udpPeerCheck = prev }()
	s := newTestServer(t, func(c *Config) { c.MaxUDPPeers = 100; c.KeepaliveInterval = time.Hour; c.SubscribeExpiry = -1 })
	d := newSIPDevice(t, s, "34020000001320000036", "UDP")
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	pool := s.ua.TransportLayer().Pool("udp")
	for i := 0; i < 1000; i++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		c.WriteTo([]byte("junk"), s.UDPAddr())
		c.Close()
		if i%100 == 99 {
			time.Sleep(30 * time.Millisecond) // let the watcher look
		}
	}
	waitFor(t, "sipgo to forget", 3*time.Second, func() bool {
		assertAlive(t, s) // a datagram lets a pending restart happen
		return pool.Size() <= 200
	})
	if res := d.message(keepaliveBody(d.id, 5)); res.StatusCode != 200 {
		t.Fatalf("keepalive after the restart answered %d", res.StatusCode)
	}
	if err := s.SendMANSCDP(context.Background(), Peer{ID: d.id, Addr: d.udp.LocalAddr().String(), Transport: "UDP"}, "",
		[]byte(fmt.Sprintf("<Query><CmdType>DeviceStatus</CmdType><SN>1</SN><DeviceID>%s</DeviceID></Query>", d.id))); err != nil {
		t.Fatalf("sending to the device after the restart: %v", err)
	}
}

// TestARequestWhoseTCPConnectionClosedIsNotAnsweredByDialingItsVia: sipgo answers a TCP request
// whose connection is gone by dialing the host in its Via, which anyone can write; a sender must
// not make us open connections to other hosts and ports that way.
func TestARequestWhoseTCPConnectionClosedIsNotAnsweredByDialingItsVia(t *testing.T) {
	s := newTestServer(t, nil)
	trap, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trap.Close()
	dialed := make(chan string, 64)
	go func() {
		for {
			c, err := trap.Accept()
			if err != nil {
				return
			}
			dialed <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	for i := 0; i < 40; i++ {
		req := wireMsg("OPTIONS sip:"+testServerID+"@"+testDomain+" SIP/2.0", []string{
			fmt.Sprintf("Via: SIP/2.0/TCP %s;branch=z9hG4bKvia%d", trap.Addr().String(), i),
			"From: <sip:34020000001320000037@3402000000>;tag=via",
			"To: <sip:" + testServerID + "@3402000000>",
			fmt.Sprintf("Call-ID: via-%d", i),
			"CSeq: 1 OPTIONS",
			"Max-Forwards: 70",
		}, "", "")
		c, err := net.Dial("tcp", s.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(req)
		c.(*net.TCPConn).SetLinger(0) // reset at once: the connection is gone before the answer
		c.Close()
	}
	select {
	case from := <-dialed:
		t.Fatalf("the server dialed the Via of a closed connection's request (from %s)", from)
	case <-time.After(time.Second):
	}
	assertAlive(t, s)
}

// TestQuerySNsCannotBePredicted: seeing one of our SNs tells nothing about the next.
func TestQuerySNsCannotBePredicted(t *testing.T) {
	prev := NextSN()
	near := 0
	for i := 0; i < 1000; i++ {
		sn := NextSN()
		if sn < 1 || sn > 999_999_999 {
			t.Fatalf("SN %d out of range", sn)
		}
		if d := sn - prev; d >= -1000 && d <= 1000 {
			near++
		}
		prev = sn
	}
	if near > 5 {
		t.Fatalf("%d of 1000 SNs were within 1000 of the one before", near)
	}
}

// TestCatalogNotificationsFasterThanTheyApplyAreRefusedNotQueued: a device flooding catalog
// NOTIFYs while the sync is busy is told to retry (503) once the backlog is full; memory does not
// grow with the flood.
func TestCatalogNotificationsFasterThanTheyApplyAreRefusedNotQueued(t *testing.T) {
	w := newCatalogWorld(t, func(c *Config) { c.SubscribeExpiry = -1 })
	d := newCatalogDevice(t, w.s, nvrID, "TCP", nvrItems(), 5)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	w.waitPoints(t, nvrID, 5)
	w.s.applyMu.Lock() // the sync is busy
	locked := true
	defer func() {
		if locked {
			w.s.applyMu.Unlock()
		}
	}()
	notify := gbk(`<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Catalog</CmdType><SN>5</SN><DeviceID>` + nvrID + `</DeviceID><SumNum>1</SumNum><DeviceList Num="1">
<Item><DeviceID>44030700001310000001</DeviceID><Name>河道一号</Name><CivilCode>440307001001</CivilCode><Event>UPDATE</Event></Item>
</DeviceList></Notify>`)
	codes := map[int]int{}
	for i := 0; i < maxPendingNotifies+20; i++ {
		codes[int(d.do(d.request(sip.NOTIFY, ContentTypeMANSCDP, notify, sip.NewHeader("Event", "Catalog"))).StatusCode)]++
	}
	if codes[200] > maxPendingNotifies || codes[503] < 20 {
		t.Fatalf("answers %v with the sync busy: the backlog is not bounded", codes)
	}
	w.s.applyMu.Unlock()
	locked = false
	// Once the backlog drains, notifications are taken again.
	waitFor(t, "the backlog to drain", 10*time.Second, func() bool { return len(w.s.notifySem) == 0 })
	if res := d.do(d.request(sip.NOTIFY, ContentTypeMANSCDP, notify, sip.NewHeader("Event", "Catalog"))); res.StatusCode != 200 {
		t.Fatalf("after the backlog drained: %d", res.StatusCode)
	}
}
