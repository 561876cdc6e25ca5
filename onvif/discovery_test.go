package onvif

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// recordingHandler keeps log records so tests can see what was ignored.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// attr returns the value of key in the first record with message msg.
func (h *recordingHandler) attr(msg, key string) (slog.Value, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		var v slog.Value
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v, found = a.Value, true
				return false
			}
			return true
		})
		return v, found
	}
	return slog.Value{}, false
}

var (
	messageIDRE = regexp.MustCompile(`MessageID>([^<]+)<`)
	typesRE     = regexp.MustCompile(`Types>([^<]*)<`)
)

// responder is a WS-Discovery device on loopback: it answers each Probe
// with the datagrams reply returns, sent back to the prober.
type responder struct {
	conn   net.PacketConn
	port   int
	mu     sync.Mutex
	probes []string // the Types of every probe heard
	done   chan struct{}
}

func (r *responder) heard() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.probes)
}

// startMulticastResponder joins the discovery group on loopback at port
// (0 picks a free one) and answers probes; several may share a port.
func startMulticastResponder(t *testing.T, port int, reply func(messageID, types string) [][]byte) *responder {
	t.Helper()
	lc := net.ListenConfig{Control: reuseAddr}
	conn, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("239.255.255.250:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	lo := loopbackInterface(t)
	p := ipv4.NewPacketConn(conn)
	if err := p.JoinGroup(lo, &net.UDPAddr{IP: discoveryGroup}); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return serveResponder(t, conn, reply)
}

// startUnicastResponder answers unicast probes on 127.0.0.1.
func startUnicastResponder(t *testing.T, reply func(messageID, types string) [][]byte) *responder {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveResponder(t, conn, reply)
}

func serveResponder(t *testing.T, conn net.PacketConn, reply func(messageID, types string) [][]byte) *responder {
	r := &responder{conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 65536)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			msg := buf[:n]
			if !bytes.Contains(msg, []byte("Probe>")) && !bytes.Contains(msg, []byte("Probe ")) {
				continue
			}
			id, types := "", ""
			if m := messageIDRE.FindSubmatch(msg); m != nil {
				id = string(m[1])
			}
			if m := typesRE.FindSubmatch(msg); m != nil {
				types = string(m[1])
			}
			r.mu.Lock()
			r.probes = append(r.probes, types)
			r.mu.Unlock()
			for _, d := range reply(id, types) {
				_, _ = conn.WriteTo(d, from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-r.done })
	return r
}

func loopbackInterface(t *testing.T) *net.Interface {
	t.Helper()
	ifi, err := interfaceWithIP(net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	return ifi
}

// probeMatch renders a ProbeMatches datagram the way a camera would.
func probeMatch(relatesTo, endpoint, types, scopes, xaddrs string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><SOAP-ENV:Header><wsa:RelatesTo>` + relatesTo +
		`</wsa:RelatesTo><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header><SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference><wsa:Address>` + endpoint +
		`</wsa:Address></wsa:EndpointReference><d:Types>` + types + `</d:Types><d:Scopes>` + scopes + `</d:Scopes><d:XAddrs>` + xaddrs + `</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>`)
}

func TestDiscoverOnLoopbackFindsCamerasAndIgnoresGarbage(t *testing.T) {
	// A modern camera answers both probe types; an old one only tds:Device.
	camera := startMulticastResponder(t, 0, func(id, types string) [][]byte {
		return [][]byte{probeMatch(id, "urn:uuid:cam-1", "dn:NetworkVideoTransmitter tds:Device",
			"onvif://www.onvif.org/name/Reservoir%20North onvif://www.onvif.org/hardware/FV-9 onvif://www.onvif.org/location/city/Shenzhen",
			"http://127.0.0.1:8080/onvif/device_service")}
	})
	port := camera.port
	old := startMulticastResponder(t, port, func(id, types string) [][]byte {
		if !strings.Contains(types, "tds:Device") {
			return nil
		}
		return [][]byte{quirk(t, "probematch_prefixless.xml")}
	})
	var junkOnce sync.Once
	junk := startMulticastResponder(t, port, func(id, types string) [][]byte {
		d := [][]byte{
			[]byte("\x00\x01\x02 not xml at all"),
			[]byte("<html><body>hello</body></html>"),
			[]byte(`<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Body><d:ProbeMatches><d:ProbeMatch><d:XAddrs>http://127.0.0.1/`),
			quirk(t, "probematch_printer.xml"),
		}
		// One oversize datagram is enough; more would only crowd the
		// socket buffer under a loaded test machine.
		junkOnce.Do(func() { d = append(d, append([]byte("<Envelope>"), bytes.Repeat([]byte("A"), 40<<10)...)) })
		return d
	})
	for _, tc := range []struct {
		name string
		opts DiscoverOptions
	}{
		{"pinned by IP", DiscoverOptions{MulticastIP: "127.0.0.1"}},
		{"by interface name", DiscoverOptions{Interfaces: []string{loopbackInterface(t).Name}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &recordingHandler{}
			opts := tc.opts
			opts.Port, opts.Timeout, opts.Logger = port, 1500*time.Millisecond, slog.New(logs)
			found, err := Discover(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 2 {
				t.Fatalf("want 2 cameras, got %+v", found)
			}
			byRef := map[string]Found{}
			for _, f := range found {
				byRef[f.EndpointRef] = f
			}
			c1, c2 := byRef["urn:uuid:cam-1"], byRef["urn:uuid:prefixless-camera"]
			if c1.IP != "127.0.0.1" || c1.Name != "Reservoir North" || c1.Hardware != "FV-9" || c1.Location != "city/Shenzhen" ||
				!slices.Equal(c1.XAddrs, []string{"http://127.0.0.1:8080/onvif/device_service"}) ||
				!slices.Equal(c1.Types, []string{"dn:NetworkVideoTransmitter", "tds:Device"}) || len(c1.Scopes) != 3 {
				t.Errorf("camera 1: %+v", c1)
			}
			if c2.Name != "Bridge_Cam_7" || c2.Hardware != "IPC-HFW" || !slices.Equal(c2.Types, []string{"tdn:NetworkVideoTransmitter"}) {
				t.Errorf("camera 2: %+v", c2)
			}
			g, ok := logs.attr("onvif discovery finished", "garbage")
			if !ok || g.Int64() < 4 {
				t.Errorf("garbage count %v (logged %v)", g, ok)
			}
			if n, _ := logs.attr("onvif discovery finished", "not_onvif"); n.Int64() < 1 {
				t.Errorf("printer not counted as a non-ONVIF device: %v", n)
			}
		})
	}
	for _, typ := range probeTypes {
		if !slices.Contains(camera.heard(), typ) || !slices.Contains(old.heard(), typ) || !slices.Contains(junk.heard(), typ) {
			t.Errorf("probe for %s not heard by every responder: %q", typ, camera.heard())
		}
	}
}

func TestSweepFindsUnicastResponder(t *testing.T) {
	r := startUnicastResponder(t, func(id, types string) [][]byte {
		return [][]byte{probeMatch(id, "urn:uuid:routed-cam", "dn:NetworkVideoTransmitter",
			"onvif://www.onvif.org/name/Mast%2012", "http://127.0.0.1:80/onvif/device_service")}
	})
	found, err := Discover(context.Background(), DiscoverOptions{
		NoMulticast: true, CIDRs: []string{"127.0.0.1/32"}, Port: r.port, SweepHostWait: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].EndpointRef != "urn:uuid:routed-cam" || found[0].Name != "Mast 12" || found[0].IP != "127.0.0.1" {
		t.Fatalf("found %+v", found)
	}
	// The sweep stops waiting on the host at its first answer, so the
	// responder may not have read the second probe yet.
	if h := r.heard(); len(h) == 0 || !slices.Contains(probeTypes, h[0]) {
		t.Fatalf("responder heard %q", h)
	}
}

func TestOnFoundSeesEachDeviceOnceAndCancellingStopsDiscovery(t *testing.T) {
	// Each device answers every probe (two types, each sent twice), so the
	// collector sees it up to four times.
	cam := startMulticastResponder(t, 0, func(id, types string) [][]byte {
		return [][]byte{probeMatch(id, "urn:uuid:early-cam", "dn:NetworkVideoTransmitter", "", "http://127.0.0.1:8080/onvif/device_service")}
	})
	startMulticastResponder(t, cam.port, func(id, types string) [][]byte {
		return [][]byte{probeMatch(id, "urn:uuid:late-cam", "dn:NetworkVideoTransmitter", "", "http://127.0.0.1:8081/onvif/device_service")}
	})
	t.Run("once per device", func(t *testing.T) {
		var mu sync.Mutex
		seen := map[string]int{}
		found, err := Discover(context.Background(), DiscoverOptions{MulticastIP: "127.0.0.1", Port: cam.port, Timeout: time.Second,
			OnFound: func(f Found) {
				mu.Lock()
				seen[f.EndpointRef]++
				mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(found) != 2 || seen["urn:uuid:early-cam"] != 1 || seen["urn:uuid:late-cam"] != 1 {
			t.Fatalf("found %+v, OnFound calls %v", found, seen)
		}
	})
	t.Run("cancel on the first", func(t *testing.T) {
		// The timeout is far beyond the test's patience: only the
		// cancellation can end this discovery.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		found, err := Discover(ctx, DiscoverOptions{MulticastIP: "127.0.0.1", Port: cam.port, Timeout: time.Hour,
			OnFound: func(Found) { cancel() }})
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 0 || ctx.Err() == nil {
			t.Fatalf("found %+v (ctx %v)", found, ctx.Err())
		}
	})
}

func TestDiscoverRefusesBadOptions(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []DiscoverOptions{
		{NoMulticast: true, CIDRs: []string{"10.0.0.0/15"}},
		{NoMulticast: true, CIDRs: []string{"fd00::/120"}},
		{NoMulticast: true, CIDRs: []string{"not-a-range"}},
		{NoMulticast: true},
		{MulticastIP: "192.0.2.250"},
		{MulticastIP: "fe80::1"},
		{Interfaces: []string{"no-such-interface0"}},
	} {
		_, err := Discover(ctx, opts)
		wantKind(t, err, KindInvalid)
	}
}

func TestSweepHosts(t *testing.T) {
	hosts, err := sweepHosts([]string{"10.1.2.0/30", "10.1.2.1", "10.9.0.0/16", " "})
	if err != nil {
		t.Fatal(err)
	}
	// /30: two usable hosts (the single address repeats one); /16: 65534.
	if len(hosts) != 2+65534 || hosts[0].String() != "10.1.2.1" || hosts[1].String() != "10.1.2.2" ||
		hosts[2].String() != "10.9.0.1" || hosts[len(hosts)-1].String() != "10.9.255.254" {
		t.Fatalf("%d hosts, first %v last %v", len(hosts), hosts[:3], hosts[len(hosts)-1])
	}
	if hosts, _ := sweepHosts([]string{"10.1.2.4/31"}); len(hosts) != 2 {
		t.Fatalf("/31 should keep both addresses: %v", hosts)
	}
}

func TestListenReportsHelloAndBye(t *testing.T) {
	// Hold a port in the group so Listen (sharing it) gets a free one.
	holder := startMulticastResponder(t, 0, func(string, string) [][]byte { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan Event, 16)
	listenErr := make(chan error, 1)
	go func() {
		listenErr <- Listen(ctx, ListenOptions{MulticastIP: "127.0.0.1", Port: holder.port}, func(e Event) {
			events <- e
		})
	}()

	sender, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	if err := ipv4.NewPacketConn(sender).SetMulticastInterface(loopbackInterface(t)); err != nil {
		t.Fatal(err)
	}
	group := &net.UDPAddr{IP: discoveryGroup, Port: holder.port}
	// Listen gives no ready signal, so announce until heard, as a camera
	// repeats its Hello.
	await := func(datagram []byte, kind string) Event {
		t.Helper()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(10 * time.Second)
		for {
			if _, err := sender.WriteTo(datagram, group); err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-events:
				if e.Kind == kind {
					return e
				}
			case <-tick.C:
			case err := <-listenErr:
				t.Fatalf("Listen ended: %v", err)
			case <-deadline:
				t.Fatalf("no %s event", kind)
			}
		}
	}
	// Probes from other clients and garbage are not events.
	probe, _ := buildProbe("dn:NetworkVideoTransmitter")
	_, _ = sender.WriteTo(probe, group)
	_, _ = sender.WriteTo([]byte("garbage"), group)

	hello := await(quirk(t, "hello.xml"), EventHello)
	if hello.Found.EndpointRef != "urn:uuid:hello-camera" || hello.Found.Name != "River Cam" || hello.Found.Location != "street/futian" ||
		hello.Found.IP != "127.0.0.1" || !slices.Equal(hello.Found.XAddrs, []string{"http://127.0.0.1:8000/onvif/device_service"}) {
		t.Fatalf("hello %+v", hello)
	}
	bye := await(quirk(t, "bye.xml"), EventBye)
	if bye.Found.EndpointRef != "urn:uuid:hello-camera" {
		t.Fatalf("bye %+v", bye)
	}
	cancel()
	if err := <-listenErr; err != nil {
		t.Fatalf("Listen returned %v after cancel", err)
	}
}
