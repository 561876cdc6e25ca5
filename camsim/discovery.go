package camsim

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// WS-Discovery (2005/04, the version ONVIF uses) names and the group.
const (
	nsSOAP12      = "http://www.w3.org/2003/05/soap-envelope"
	nsAddressing  = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsDiscovery   = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
	nsNetworkWSDL = "http://www.onvif.org/ver10/network/wsdl"
	nsDeviceWSDL  = "http://www.onvif.org/ver10/device/wsdl"

	discoveryPort   = 3702
	discoveryTo     = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
	addressingAnon  = nsAddressing + "/role/anonymous"
	actionProbe     = nsDiscovery + "/Probe"
	actionMatches   = nsDiscovery + "/ProbeMatches"
	actionHello     = nsDiscovery + "/Hello"
	actionBye       = nsDiscovery + "/Bye"
	discoveryTypes  = "dn:NetworkVideoTransmitter tds:Device"
	matchByRFC3986  = "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc3986"
	matchByStrcmp0  = "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0"
	maxDiscoveryMsg = 64 << 10
	// maxPendingReplies bounds delayed ProbeMatches waiting at once.
	maxPendingReplies = 64
)

var discoveryGroup = net.IPv4(239, 255, 255, 250)

type discoveryConfig struct {
	IP       string
	MaxDelay time.Duration
	Endpoint string
	Scopes   []string
	XAddrs   string
	// Silent reports whether the NoDiscovery fault is on.
	Silent func() bool
	Logger *slog.Logger
}

// discoveryResponder answers WS-Discovery probes for one camera. It listens
// on two sockets, so that it hears nothing but what a camera at its address
// would: one bound to the group address (multicast probes that arrive on
// the pinned interface only) and one bound to the camera's own IP (unicast
// probes of a subnet sweep). Every reply and announcement leaves from the
// second, so its source is the camera's IP and port 3702.
type discoveryResponder struct {
	cfg        discoveryConfig
	group      net.PacketConn
	unicast    net.PacketConn
	unicastP   *ipv4.PacketConn
	instanceID uint32
	msgNum     atomic.Uint32
	// unicastHandled counts datagrams read on the unicast socket and dealt
	// with (answered or not), so that a test can tell a probe was ignored
	// rather than not yet read.
	unicastHandled atomic.Uint64
	// pending bounds the delayed replies waiting to be sent, so that a
	// flood of probes cannot start goroutines without limit.
	pending   chan struct{}
	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func startDiscovery(cfg discoveryConfig) (*discoveryResponder, error) {
	ifi, err := interfaceOf(net.ParseIP(cfg.IP))
	if err != nil {
		return nil, err
	}
	d := &discoveryResponder{cfg: cfg, instanceID: uint32(time.Now().Unix()), stop: make(chan struct{}),
		pending: make(chan struct{}, maxPendingReplies)}

	// Several cameras may share one IP (all on 127.0.0.1 in tests): with
	// SO_REUSEPORT each of them gets its own copy of every multicast probe.
	// A unicast probe reaches only one of them, as it would on a network.
	lc := net.ListenConfig{Control: reuseControl(false)}
	d.unicast, err = lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort(cfg.IP, fmt.Sprint(discoveryPort)))
	if err != nil {
		return nil, err
	}
	d.unicastP = ipv4.NewPacketConn(d.unicast)
	if err := d.unicastP.SetMulticastInterface(ifi); err != nil {
		d.unicast.Close()
		return nil, fmt.Errorf("multicast interface %s: %w", ifi.Name, err)
	}
	// Loopback on, so that a client on the same host (or the same
	// namespace) hears Hello and Bye; TTL 1 keeps them on the link.
	if err := d.unicastP.SetMulticastLoopback(true); err != nil {
		d.unicast.Close()
		return nil, err
	}
	if err := d.unicastP.SetMulticastTTL(1); err != nil {
		d.unicast.Close()
		return nil, err
	}

	lc = net.ListenConfig{Control: reuseControl(true)}
	d.group, err = lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort(discoveryGroup.String(), fmt.Sprint(discoveryPort)))
	if err != nil {
		d.unicast.Close()
		return nil, err
	}
	if err := ipv4.NewPacketConn(d.group).JoinGroup(ifi, &net.UDPAddr{IP: discoveryGroup}); err != nil {
		d.unicast.Close()
		d.group.Close()
		return nil, fmt.Errorf("join %s on %s: %w", discoveryGroup, ifi.Name, err)
	}

	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.serve(d.group, nil)
	}()
	go func() {
		defer d.wg.Done()
		d.serve(d.unicast, &d.unicastHandled)
	}()
	return d, nil
}

// reuseControl sets SO_REUSEADDR and SO_REUSEPORT, and on the group socket
// turns IP_MULTICAST_ALL off: Linux otherwise hands a socket datagrams for
// every group any socket on the host joined, on any interface, and a camera
// pinned to loopback would answer probes from elsewhere.
func reuseControl(group bool) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var sockErr error
		err := c.Control(func(fd uintptr) {
			opts := [][2]int{{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_REUSEPORT}}
			for _, o := range opts {
				if sockErr = unix.SetsockoptInt(int(fd), o[0], o[1], 1); sockErr != nil {
					return
				}
			}
			if group {
				sockErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
			}
		})
		if err != nil {
			return err
		}
		return sockErr
	}
}

// interfaceOf finds the interface that has ip, or failing that, the one
// whose subnet holds it (127.0.0.2 is on lo although only 127.0.0.1/8 is
// configured).
func interfaceOf(ip net.IP) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var holder *net.Interface
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ipn.IP.Equal(ip) {
				return &ifs[i], nil
			}
			if holder == nil && ipn.Contains(ip) {
				holder = &ifs[i]
			}
		}
	}
	if holder == nil {
		return nil, fmt.Errorf("no interface has address %s", ip)
	}
	return holder, nil
}

func (d *discoveryResponder) serve(conn net.PacketConn, handled *atomic.Uint64) {
	buf := make([]byte, maxDiscoveryMsg)
	for {
		n, src, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.cfg.Logger.Warn("camsim discovery read", "err", err)
			select {
			case <-d.stop:
				return
			case <-time.After(100 * time.Millisecond): // do not spin on a persistent error
			}
			continue
		}
		d.handle(buf[:n], src)
		if handled != nil {
			handled.Add(1)
		}
	}
}

// probeEnvelope is what a responder reads of an incoming message.
type probeEnvelope struct {
	Header struct {
		MessageID string `xml:"MessageID"`
	} `xml:"Header"`
	Body struct {
		Probe *struct {
			Types  string `xml:"Types"`
			Scopes *struct {
				MatchBy string `xml:"MatchBy,attr"`
				List    string `xml:",chardata"`
			} `xml:"Scopes"`
		} `xml:"http://schemas.xmlsoap.org/ws/2005/04/discovery Probe"`
	} `xml:"Body"`
}

func (d *discoveryResponder) handle(msg []byte, src net.Addr) {
	if d.cfg.Silent() {
		return
	}
	var env probeEnvelope
	if err := xml.Unmarshal(msg, &env); err != nil || env.Body.Probe == nil {
		return // Hello, Bye and ProbeMatches of others, or noise
	}
	p := env.Body.Probe
	if !typesMatch(p.Types) {
		return
	}
	if p.Scopes != nil && !scopesMatch(d.cfg.Scopes, p.Scopes.List, p.Scopes.MatchBy) {
		return
	}
	if d.cfg.MaxDelay <= 0 {
		d.reply(env.Header.MessageID, src)
		return
	}
	// Random back-off so that a hundred cameras do not answer in the same
	// millisecond (WS-Discovery's APP_MAX_DELAY). Each reply waits on its
	// own, as a device's timers do: waiting in the read loop would delay
	// the reply to every later probe by the sum of the earlier delays.
	select {
	case d.pending <- struct{}{}:
	default:
		d.cfg.Logger.Debug("camsim discovery: too many replies pending; probe dropped", "from", src)
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() { <-d.pending }()
		select {
		case <-d.stop:
			return
		case <-time.After(rand.N(d.cfg.MaxDelay + 1)):
		}
		d.reply(env.Header.MessageID, src)
	}()
}

// reply sends a ProbeMatch for the probe relatesTo to src.
func (d *discoveryResponder) reply(relatesTo string, src net.Addr) {
	out, err := d.message(actionMatches, relatesTo, addressingAnon, probeMatches{Match: []wsdEndpoint{d.endpoint()}})
	if err != nil {
		d.cfg.Logger.Error("camsim discovery", "err", err)
		return
	}
	if _, err := d.unicast.WriteTo(out, src); err != nil {
		d.cfg.Logger.Debug("camsim probe reply", "to", src, "err", err)
	}
}

// typesMatch: no Types matches; otherwise each requested type must be one
// the camera is. Types are QNames; prefixes are the client's own, so only
// local names are compared.
func typesMatch(types string) bool {
	for _, qn := range strings.Fields(types) {
		local := qn
		if i := strings.LastIndexByte(qn, ':'); i >= 0 {
			local = qn[i+1:]
		}
		if local != "NetworkVideoTransmitter" && local != "Device" {
			return false
		}
	}
	return true
}

// scopesMatch: every requested scope must match one of ours, by RFC 3986
// segment prefix (the default) or exactly (strcmp0).
func scopesMatch(ours []string, requested, matchBy string) bool {
	matchBy = strings.TrimSpace(matchBy)
	if matchBy != "" && matchBy != matchByRFC3986 && matchBy != matchByStrcmp0 {
		return false
	}
	for _, want := range strings.Fields(requested) {
		found := false
		for _, s := range ours {
			if s == want || (matchBy != matchByStrcmp0 && strings.HasPrefix(s, strings.TrimSuffix(want, "/")+"/")) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (d *discoveryResponder) endpoint() wsdEndpoint {
	e := wsdEndpoint{Types: discoveryTypes, Scopes: strings.Join(d.cfg.Scopes, " "), XAddrs: d.cfg.XAddrs, MetadataVersion: 1}
	e.EPR.Address = d.cfg.Endpoint
	return e
}

// hello announces the camera to the group.
func (d *discoveryResponder) hello() {
	if d.cfg.Silent() {
		return
	}
	d.announce(actionHello, hello{wsdEndpoint: d.endpoint()})
}

func (d *discoveryResponder) announce(action string, body any) {
	out, err := d.message(action, "", discoveryTo, body)
	if err == nil {
		_, err = d.unicastP.WriteTo(out, nil, &net.UDPAddr{IP: discoveryGroup, Port: discoveryPort})
	}
	if err != nil {
		d.cfg.Logger.Warn("camsim discovery announce", "action", action, "err", err)
	}
}

// close says Bye and stops both listeners.
func (d *discoveryResponder) close() {
	d.closeOnce.Do(func() {
		if !d.cfg.Silent() {
			var b bye
			b.EPR.Address = d.cfg.Endpoint
			d.announce(actionBye, b)
		}
		close(d.stop)
		d.group.Close()
		d.unicast.Close()
		d.wg.Wait()
	})
}

func (d *discoveryResponder) message(action, relatesTo, to string, body any) ([]byte, error) {
	env := wsdEnvelope{NSs: nsSOAP12, NSa: nsAddressing, NSd: nsDiscovery, NSdn: nsNetworkWSDL, NStds: nsDeviceWSDL}
	env.Header.MessageID = "urn:uuid:" + uuid.NewString()
	env.Header.RelatesTo = relatesTo
	env.Header.To = to
	env.Header.Action = action
	env.Header.AppSequence.InstanceID = d.instanceID
	env.Header.AppSequence.MessageNumber = d.msgNum.Add(1)
	env.Body.Content = body
	out, err := xml.Marshal(env)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), out...), nil
}

// The outgoing messages. Element names carry their prefixes, declared once
// on the envelope; encoding/xml escapes every value.
type wsdEnvelope struct {
	XMLName xml.Name `xml:"s:Envelope"`
	NSs     string   `xml:"xmlns:s,attr"`
	NSa     string   `xml:"xmlns:a,attr"`
	NSd     string   `xml:"xmlns:d,attr"`
	NSdn    string   `xml:"xmlns:dn,attr"`
	NStds   string   `xml:"xmlns:tds,attr"`
	Header  struct {
		MessageID   string `xml:"a:MessageID"`
		RelatesTo   string `xml:"a:RelatesTo,omitempty"`
		To          string `xml:"a:To"`
		Action      string `xml:"a:Action"`
		AppSequence struct {
			InstanceID    uint32 `xml:"InstanceId,attr"`
			MessageNumber uint32 `xml:"MessageNumber,attr"`
		} `xml:"d:AppSequence"`
	} `xml:"s:Header"`
	Body struct {
		Content any
	} `xml:"s:Body"`
}

type wsdEndpoint struct {
	EPR struct {
		Address string `xml:"a:Address"`
	} `xml:"a:EndpointReference"`
	Types           string `xml:"d:Types"`
	Scopes          string `xml:"d:Scopes"`
	XAddrs          string `xml:"d:XAddrs"`
	MetadataVersion int    `xml:"d:MetadataVersion"`
}

type probeMatches struct {
	XMLName xml.Name      `xml:"d:ProbeMatches"`
	Match   []wsdEndpoint `xml:"d:ProbeMatch"`
}

type hello struct {
	XMLName xml.Name `xml:"d:Hello"`
	wsdEndpoint
}

type bye struct {
	XMLName xml.Name `xml:"d:Bye"`
	EPR     struct {
		Address string `xml:"a:Address"`
	} `xml:"a:EndpointReference"`
}
