package gbsim

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/tianyan/vms/gb28181/manscdp"
)

const (
	testServerID = "34020000002000000001"
	testDomain   = "3402000000"
	testPassword = "12345678"
)

// testServer is a minimal GB platform on sipgo: Digest REGISTER, MESSAGE
// intake, and requests to a device at the address its REGISTER came from.
type testServer struct {
	t      testing.TB
	ua     *sipgo.UserAgent
	client *sipgo.Client
	udp    string
	tcp    string

	mu         sync.Mutex
	nonces     map[string]bool
	devices    map[string]regInfo
	registers  int
	refused    int
	unregister map[string]int
	msgs       chan manscdp.Message
	msgSrc     map[string]string // device ID → last MESSAGE source
	// autoCatalog queries a device's catalog when it first registers;
	// catalogItems counts the items received from all devices.
	autoCatalog  bool
	catalogItems map[string]int
	notifies     int
}

type regInfo struct {
	src, transport, contact string
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("testplatform"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(discard())),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(discard())))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(discard()), sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, ua: ua, client: client, nonces: map[string]bool{}, devices: map[string]regInfo{},
		unregister: map[string]int{}, catalogItems: map[string]int{}, msgs: make(chan manscdp.Message, 10000), msgSrc: map[string]string{}}
	srv.OnRegister(s.onRegister)
	srv.OnMessage(s.onMessage)
	srv.OnNotify(s.onMessage)

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.udp, s.tcp = pc.LocalAddr().String(), ln.Addr().String()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); srv.ServeUDP(pc) }()
	go func() { defer wg.Done(); srv.ServeTCP(ln) }()
	t.Cleanup(func() {
		srv.Close()
		ua.Close()
		pc.Close()
		ln.Close()
		wg.Wait()
	})
	return s
}

func (s *testServer) addr(transport string) string {
	if strings.EqualFold(transport, "tcp") {
		return s.tcp
	}
	return s.udp
}

func (s *testServer) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	h := req.GetHeader("Authorization")
	if h == nil {
		nonce := randHex(16)
		s.mu.Lock()
		s.nonces[nonce] = true
		s.mu.Unlock()
		chal := digest.Challenge{Realm: testDomain, Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}}
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
		tx.Respond(res)
		return
	}
	cred, err := digest.ParseCredentials(h.Value())
	s.mu.Lock()
	known := err == nil && s.nonces[cred.Nonce]
	s.mu.Unlock()
	if !known {
		tx.Respond(sip.NewResponseFromRequest(req, 401, "Unauthorized", nil))
		return
	}
	chal := digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, QOP: []string{"auth"}}
	want, err := digest.Digest(&chal, digest.Options{Method: "REGISTER", URI: cred.URI, Username: cred.Username,
		Password: testPassword, Count: cred.Nc, Cnonce: cred.Cnonce})
	if err != nil || subtle.ConstantTimeCompare([]byte(want.Response), []byte(cred.Response)) != 1 {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}
	expires := 3600
	if e := req.GetHeader("Expires"); e != nil {
		expires, _ = strconv.Atoi(e.Value())
	}
	id := req.From().Address.User
	s.mu.Lock()
	if expires == 0 {
		delete(s.devices, id)
		s.unregister[id]++
	}
	_, known = s.devices[id]
	if expires != 0 {
		s.devices[id] = regInfo{src: req.Source(), transport: req.Transport(), contact: req.Contact().Address.String()}
		s.registers++
	}
	query := s.autoCatalog && expires != 0 && !known
	s.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	tx.Respond(res)
	if query {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s.sendMANSCDP(ctx, id, &manscdp.CatalogQuery{Header: manscdp.Header{SN: 1, DeviceID: id}})
		}()
	}
}

func (s *testServer) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	m, err := manscdp.Parse(req.Body())
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	s.mu.Lock()
	_, ok := s.devices[req.From().Address.User]
	s.msgSrc[req.From().Address.User] = req.Source()
	if req.Method == sip.NOTIFY {
		s.notifies++
	}
	s.mu.Unlock()
	if !ok && req.Method == sip.MESSAGE {
		// An unregistered device's MESSAGE is refused, as platforms do.
		tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	if r, ok := m.Body.(*manscdp.CatalogResponse); ok {
		s.mu.Lock()
		s.catalogItems[m.DeviceID] += len(r.DeviceList.Items)
		s.mu.Unlock()
	}
	select {
	case s.msgs <- m:
	default:
	}
}

func (s *testServer) totalCatalogItems() (devices, items int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.catalogItems {
		devices++
		items += n
	}
	return devices, items
}

func (s *testServer) reg(id string) (regInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.devices[id]
	return r, ok
}

// request sends a request to target on device devID at its registered
// source address over its transport.
func (s *testServer) request(ctx context.Context, devID, target string, method sip.RequestMethod, ctype string, body []byte, extra ...sip.Header) (*sip.Request, *sip.Response, error) {
	r, ok := s.reg(devID)
	if !ok {
		return nil, nil, fmt.Errorf("device %s not registered", devID)
	}
	host, port, _ := net.SplitHostPort(r.src)
	p, _ := strconv.Atoi(port)
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: target, Host: host, Port: p})
	req.SetDestination(r.src)
	req.SetTransport(r.transport)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: testServerID, Host: testDomain}}
	from.Params = sip.NewParams()
	from.Params.Add("tag", randHex(6))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: testDomain}})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: testServerID, Host: "127.0.0.1"}})
	if ctype != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", ctype))
	}
	for _, h := range extra {
		req.AppendHeader(h)
	}
	req.SetBody(body)
	res, err := s.client.Do(ctx, req)
	return req, res, err
}

// sendMANSCDP sends a body to the device; the Request-URI names the
// body's DeviceID, as platforms address channels.
func (s *testServer) sendMANSCDP(ctx context.Context, devID string, v any) error {
	body, err := manscdp.Marshal(v, "")
	if err != nil {
		return err
	}
	m, err := manscdp.Parse(body)
	if err != nil {
		return err
	}
	_, res, err := s.request(ctx, devID, m.DeviceID, sip.MESSAGE, contentTypeMANSCDP, body)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("MESSAGE: %d", res.StatusCode)
	}
	return nil
}

// next returns the next MANSCDP body matching keep.
func (s *testServer) next(ctx context.Context, keep func(manscdp.Message) bool) (manscdp.Message, error) {
	for {
		select {
		case m := <-s.msgs:
			if keep(m) {
				return m, nil
			}
		case <-ctx.Done():
			return manscdp.Message{}, ctx.Err()
		}
	}
}

func startDevice(t testing.TB, cfg DeviceConfig) *Device {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discard()
	}
	d, err := NewDevice(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Start(context.Background())
	t.Cleanup(d.Stop)
	return d
}

func waitFor(t testing.TB, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	// sipgo warns through its package logger when a server-side TCP
	// connection's reference count goes below zero on responses; it does
	// not close the connection, so keep test output readable.
	sip.SetDefaultLogger(discard())
	m.Run()
}

// setAutoCatalog turns catalog queries at registration on. It takes the
// lock although devices only start afterwards: the race detector cannot
// see the ordering that UDP gives.
func (s *testServer) setAutoCatalog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoCatalog = true
}
