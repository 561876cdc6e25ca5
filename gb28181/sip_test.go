package gb28181

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

const (
	testServerID = "44030700002000000001"
	testDomain   = "4403070000"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestServer starts a Server on an ephemeral loopback port; it is closed with the test.
func newTestServer(t testing.TB, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{ID: testServerID, Domain: testDomain, Listen: "127.0.0.1:0", Password: "secret-12345",
		KeepaliveInterval: time.Second, RequestTimeout: 2 * time.Second, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sipDevice is a minimal device made of a real sipgo stack: it sends from its own listening UDP port
// (or over one TCP connection) and answers what the server sends it.
type sipDevice struct {
	t         testing.TB
	id        string
	transport string
	server    string // host:port of the gb28181 server
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	cli       *sipgo.Client
	udp       *net.UDPConn
	localPort int
	regCallID string // kept across REGISTER refreshes, as devices do; a restart makes a new one

	mu       sync.Mutex
	received []*sip.Request
	onReq    func(req *sip.Request) (int, []byte)
}

func newSIPDevice(t testing.TB, s *Server, id, transport string) *sipDevice {
	t.Helper()
	return newSIPDeviceAt(t, s, id, transport, net.IPv4(127, 0, 0, 1))
}

// newSIPDeviceAt is newSIPDevice sending UDP from ip (another loopback address stands for another
// host).
func newSIPDeviceAt(t testing.TB, s *Server, id, transport string, ip net.IP) *sipDevice {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(id),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quietLogger())),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quietLogger())))
	if err != nil {
		t.Fatal(err)
	}
	d := &sipDevice{t: t, id: id, transport: transport, ua: ua, server: s.UDPAddr().String()}
	if transport == "TCP" {
		d.server = s.TCPAddr().String()
	}
	d.srv, _ = sipgo.NewServer(ua, sipgo.WithServerLogger(quietLogger()))
	d.cli, _ = sipgo.NewClient(ua, sipgo.WithClientLogger(quietLogger()))
	handle := func(req *sip.Request, tx sip.ServerTransaction) {
		d.mu.Lock()
		d.received = append(d.received, req)
		on := d.onReq
		d.mu.Unlock()
		code, body := 200, []byte(nil)
		if on != nil {
			code, body = on(req)
		}
		if tx != nil {
			tx.Respond(sip.NewResponseFromRequest(req, code, "", body))
		}
	}
	for _, m := range []sip.RequestMethod{sip.MESSAGE, sip.INVITE, sip.BYE, sip.SUBSCRIBE, sip.NOTIFY, sip.INFO, sip.ACK} {
		d.srv.OnRequest(m, handle)
	}
	if transport == "UDP" {
		d.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		d.localPort = d.udp.LocalAddr().(*net.UDPAddr).Port
		go d.srv.ServeUDP(d.udp)
		if err := waitUDPListener(ua.TransportLayer(), d.udp.LocalAddr().String()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if d.udp != nil {
			d.udp.Close()
		}
		ua.Close()
	})
	return d
}

// request builds a request from the device to the server.
func (d *sipDevice) request(method sip.RequestMethod, contentType string, body []byte, extra ...sip.Header) *sip.Request {
	host, portStr, _ := net.SplitHostPort(d.server)
	port, _ := strconv.Atoi(portStr)
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: testServerID, Host: host, Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: d.id[:10]}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: d.id[:10]}, Params: sip.NewParams()}
	if method != sip.REGISTER {
		to.Address.User = testServerID
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(uuid.NewString())
	if method == sip.REGISTER {
		if d.regCallID == "" {
			d.regCallID = uuid.NewString()
		}
		cid = sip.CallIDHeader(d.regCallID)
	}
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: "192.168.1.64", Port: 5060}})
	for _, h := range extra {
		req.AppendHeader(h)
	}
	if body != nil {
		ct := sip.ContentTypeHeader(contentType)
		req.AppendHeader(&ct)
	}
	req.SetBody(body)
	req.SetTransport(d.transport)
	req.SetDestination(d.server)
	if d.udp != nil {
		req.Laddr = sip.Addr{IP: d.udp.LocalAddr().(*net.UDPAddr).IP, Port: d.localPort}
	}
	return req
}

func (d *sipDevice) do(req *sip.Request) *sip.Response {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := d.cli.Do(ctx, req)
	if err != nil {
		d.t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

func (d *sipDevice) message(body string) *sip.Response {
	return d.do(d.request(sip.MESSAGE, ContentTypeMANSCDP, []byte(body)))
}

func (d *sipDevice) requests() []*sip.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*sip.Request(nil), d.received...)
}

func keepaliveBody(id string, sn int) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="GB2312"?>
<Notify>
<CmdType>Keepalive</CmdType>
<SN>%d</SN>
<DeviceID>%s</DeviceID>
<Status>OK</Status>
</Notify>`, sn, id)
}

func TestServerDispatchesByMethodAndCmdTypeOverUDPAndTCP(t *testing.T) {
	for _, tp := range []string{"UDP", "TCP"} {
		t.Run(tp, func(t *testing.T) {
			s := newTestServer(t, nil)
			got := make(chan *Request, 4)
			s.HandleCmd("keepalive", func(_ context.Context, r *Request) {
				got <- r
				r.Respond(200, "OK", nil)
			})
			s.Handle(sip.INFO, func(_ context.Context, r *Request) {
				got <- r
				r.Respond(202, "Accepted", nil)
			})
			d := newSIPDevice(t, s, "34020000001320000001", tp)
			if res := d.message(keepaliveBody(d.id, 7)); res.StatusCode != 200 {
				t.Fatalf("keepalive answered %d", res.StatusCode)
			}
			r := <-got
			if r.CmdType != "Keepalive" || r.SN != 7 || r.DeviceID != d.id || r.FromID != d.id || r.Root != "Notify" || r.Transport != tp {
				t.Fatalf("sniffed %+v", r)
			}
			if res := d.do(d.request(sip.INFO, "Application/MANSRTSP", []byte("PLAY RTSP/1.0\r\n"))); res.StatusCode != 202 {
				t.Fatalf("INFO answered %d", res.StatusCode)
			}
			// No handler for SUBSCRIBE on the device side: refused, not hung.
			if res := d.do(d.request(sip.SUBSCRIBE, ContentTypeMANSCDP, []byte("<Query/>"))); res.StatusCode != 405 {
				t.Fatalf("unhandled SUBSCRIBE answered %d", res.StatusCode)
			}
			// Unknown MANSCDP commands are acknowledged so devices do not retry them.
			if res := d.message("<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>x</DeviceID></Notify>"); res.StatusCode != 200 {
				t.Fatalf("unknown command answered %d", res.StatusCode)
			}
		})
	}
}

func TestServerRoutesUpstreamRequestsToTheCascadeHandlers(t *testing.T) {
	s := newTestServer(t, nil)
	const upID = "44000000002000000001"
	s.SetUpstream(func(id string) bool { return id == upID })
	var device, upstream int
	var mu sync.Mutex
	s.HandleCmd("Catalog", func(_ context.Context, r *Request) {
		mu.Lock()
		device++
		mu.Unlock()
		r.Respond(200, "OK", nil)
	})
	s.HandleUpstream(sip.MESSAGE, func(_ context.Context, r *Request) {
		mu.Lock()
		upstream++
		mu.Unlock()
		if !r.Upstream || r.CmdType != "Catalog" {
			t.Errorf("upstream request %+v", r)
		}
		r.Respond(200, "OK", nil)
	})
	q := "<Query><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>" + testServerID + "</DeviceID></Query>"
	up := newSIPDevice(t, s, upID, "UDP")
	if res := up.message(q); res.StatusCode != 200 {
		t.Fatalf("upstream catalog query answered %d", res.StatusCode)
	}
	dev := newSIPDevice(t, s, "34020000001320000002", "TCP")
	if res := dev.message(q); res.StatusCode != 200 {
		t.Fatalf("device catalog answered %d", res.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if device != 1 || upstream != 1 {
		t.Fatalf("device handler ran %d times, upstream %d times; want 1 and 1", device, upstream)
	}
}

func TestServerSendsToTheDeviceSourceAddressAndMatchesAnswers(t *testing.T) {
	for _, tp := range []string{"UDP", "TCP"} {
		t.Run(tp, func(t *testing.T) {
			s := newTestServer(t, nil)
			d := newSIPDevice(t, s, "34020000001320000003", tp)
			// The device makes itself known (its REGISTER in real life); the server learns its source.
			learned := make(chan Peer, 1)
			s.HandleCmd("Keepalive", func(_ context.Context, r *Request) {
				learned <- r.Peer()
				r.Respond(200, "OK", nil)
			})
			d.message(keepaliveBody(d.id, 1))
			peer := <-learned
			// Answers are believed only from where the device registered: stand in for its REGISTER.
			s.devices.Update(d.id, true, func(dev *Device) DeviceEventKind {
				dev.Addr, dev.Transport, dev.RegisteredAt, dev.Expires = peer.Addr, peer.Transport, time.Now(), time.Hour
				return 0
			})
			if tp == "UDP" && peer.Addr != net.JoinHostPort("127.0.0.1", strconv.Itoa(d.localPort)) {
				t.Fatalf("learned %s, device sends from port %d", peer.Addr, d.localPort)
			}
			sn := NextSN()
			answers := make(chan *Request, 4)
			cancel := s.Expect(d.id, "DeviceInfo", sn, func(r *Request) { answers <- r })
			defer cancel()
			answered := make(chan struct{})
			var once sync.Once
			defer func() { <-answered }()
			d.mu.Lock()
			d.onReq = func(req *sip.Request) (int, []byte) {
				// Answer the query in a separate MESSAGE, as devices do (once, even if retransmitted).
				once.Do(func() {
					go func() {
						defer close(answered)
						ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
						defer cancel()
						body := fmt.Sprintf("<Response><CmdType>DeviceInfo</CmdType><SN>%d</SN><DeviceID>%s</DeviceID><Manufacturer>Hikvision</Manufacturer></Response>", sn, d.id)
						if res, err := d.cli.Do(ctx, d.request(sip.MESSAGE, ContentTypeMANSCDP, []byte(body))); err != nil || res.StatusCode != 200 {
							t.Errorf("answer: %v %v", res, err)
						}
					}()
				})
				return 200, nil
			}
			d.mu.Unlock()
			query := fmt.Sprintf("<Query><CmdType>DeviceInfo</CmdType><SN>%d</SN><DeviceID>%s</DeviceID></Query>", sn, d.id)
			if err := s.SendMANSCDP(context.Background(), peer, "", []byte(query)); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-answers:
				if r.CmdType != "DeviceInfo" || r.SN != sn {
					t.Fatalf("answer %+v", r)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("the answer never reached the waiter")
			}
			reqs := d.requests()
			if len(reqs) != 1 {
				t.Fatalf("device received %d requests", len(reqs))
			}
			got := reqs[0]
			if got.From().Address.User != testServerID || got.From().Address.Host != testDomain || got.To().Address.User != d.id || got.Recipient.User != d.id {
				t.Fatalf("request headers: from %s to %s uri %s", got.From().Value(), got.To().Value(), got.Recipient.String())
			}
			if ct := got.ContentType(); ct == nil || ct.Value() != ContentTypeMANSCDP {
				t.Fatalf("content type %v", ct)
			}
		})
	}
}

func TestServerRefusesOversizedBodies(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.MaxBody = 512 })
	called := false
	s.HandleCmd("Keepalive", func(_ context.Context, r *Request) { called = true; r.Respond(200, "OK", nil) })
	d := newSIPDevice(t, s, "34020000001320000004", "TCP")
	big := keepaliveBody(d.id, 1) + "<!--" + string(make([]byte, 0)) + fmt.Sprintf("%0600d", 0) + "-->"
	if res := d.message(big); res.StatusCode != 413 {
		t.Fatalf("oversized body answered %d", res.StatusCode)
	}
	if called {
		t.Fatal("handler saw an oversized body")
	}
}

func TestServerSurvivesAPanickingHandler(t *testing.T) {
	s := newTestServer(t, nil)
	s.HandleCmd("Keepalive", func(_ context.Context, r *Request) { panic("boom") })
	d := newSIPDevice(t, s, "34020000001320000005", "UDP")
	if res := d.message(keepaliveBody(d.id, 1)); res.StatusCode != 500 {
		t.Fatalf("panicking handler answered %d", res.StatusCode)
	}
	if res := d.message(keepaliveBody(d.id, 2)); res.StatusCode != 500 {
		t.Fatalf("server did not survive: %d", res.StatusCode)
	}
}

func TestNewRejectsBadIDs(t *testing.T) {
	for _, c := range []Config{{ID: "123", Domain: testDomain}, {ID: testServerID, Domain: "44030"}, {ID: "4403070000200000000x", Domain: testDomain}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

func TestStartOnPortZeroSharesOnePortAndCloseStopsEverything(t *testing.T) {
	before := runtimeGoroutines()
	s, err := New(Config{ID: testServerID, Domain: testDomain, Listen: "127.0.0.1:0", Logger: quietLogger(), KeepaliveInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.UDPAddr().Port == 0 || s.UDPAddr().Port != s.TCPAddr().Port {
		t.Fatalf("udp %v tcp %v", s.UDPAddr(), s.TCPAddr())
	}
	d := newSIPDevice(t, s, "34020000001320000006", "TCP")
	d.message(keepaliveBody(d.id, 1))
	ran := make(chan struct{})
	s.Go(func(ctx context.Context) { <-ctx.Done(); close(ran) })
	if err := s.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	select {
	case <-ran:
	default:
		t.Fatal("Close returned before an owned goroutine ended")
	}
	// The listeners are gone.
	if c, err := net.DialTimeout("tcp", s.TCPAddr().String(), 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("TCP still accepts after Close")
	}
	waitGoroutines(t, before+8) // the test device's own stack is closed by Cleanup later
}

func runtimeGoroutines() int { return runtime.NumGoroutine() }

// waitGoroutines waits until at most n goroutines remain (sipgo's transaction timers end on their own).
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines remain (want <= %d):\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
