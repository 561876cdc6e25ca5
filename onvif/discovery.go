package onvif

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// WS-Discovery multicast group and port.
var discoveryGroup = net.IPv4(239, 255, 255, 250)

// Discovery defaults.
const (
	DefaultDiscoveryPort    = 3702
	DefaultDiscoverTimeout  = 3 * time.Second
	DefaultSweepConcurrency = 64
	DefaultSweepHostWait    = time.Second
	// maxDatagram bounds a discovery datagram; real ProbeMatches are a few
	// KiB, so anything larger is dropped as garbage.
	maxDatagram = 32 << 10
	// maxSweepBits refuses ranges larger than a /16.
	maxSweepHostBits = 16
)

// DiscoverOptions configure Discover.
type DiscoverOptions struct {
	// Interfaces names the interfaces to multicast probes on; empty means
	// every interface that is up, multicast-capable and has IPv4.
	Interfaces []string
	// MulticastIP pins the outgoing multicast interface by address (e.g.
	// "127.0.0.1"): probes leave only through the interface holding it,
	// from that address. It overrides Interfaces.
	MulticastIP string
	// NoMulticast skips multicast probing (sweep only).
	NoMulticast bool
	// Timeout is how long multicast replies are collected. Default 3 s.
	Timeout time.Duration
	// CIDRs are IPv4 ranges ("10.2.0.0/24", or a single address) swept
	// with unicast probes, for routed networks that do not pass multicast.
	// Ranges larger than /16 are refused.
	CIDRs []string
	// Concurrency is how many hosts of a sweep are probed at once.
	// Default 64.
	Concurrency int
	// SweepHostWait is how long a swept host gets to answer. Default 1 s,
	// so a /24 takes about 4 s and a /16 about 17 min at the default
	// concurrency.
	SweepHostWait time.Duration
	// Port is the UDP port probes go to. Default 3702; tests use others.
	Port int
	// Logger receives debug lines about ignored datagrams. Nil means
	// slog.Default().
	Logger *slog.Logger
	// OnFound, if set, is called once for each device as its first reply
	// arrives, one call at a time, while Discover runs; it must return
	// quickly. It lets a caller show devices as they answer, or stop early
	// by cancelling ctx once it has what it needs.
	OnFound func(Found)
}

// Discover multicasts WS-Discovery probes for ONVIF devices and/or sweeps
// CIDR ranges with unicast probes, and returns the devices that answered,
// de-duplicated by endpoint reference (else first XAddr) and sorted by IP.
// Datagrams that are not ProbeMatches are ignored and counted in a debug
// log line; they never end the discovery. It returns when the Timeout and
// the sweep are over or ctx is done, with what was found so far.
func Discover(ctx context.Context, opts DiscoverOptions) (found []Found, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered("Discover", "", v)
		}
	}()
	fail := func(kind ErrorKind, format string, a ...any) error {
		return &Error{Op: "Discover", Kind: kind, Detail: fmt.Sprintf(format, a...)}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultDiscoverTimeout
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultSweepConcurrency
	}
	if opts.SweepHostWait <= 0 {
		opts.SweepHostWait = DefaultSweepHostWait
	}
	if opts.Port <= 0 || opts.Port > 65535 {
		opts.Port = DefaultDiscoveryPort
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	hosts, err := sweepHosts(opts.CIDRs)
	if err != nil {
		return nil, fail(KindInvalid, "%v", err)
	}
	if opts.NoMulticast && len(hosts) == 0 {
		return nil, fail(KindInvalid, "multicast is off and no CIDR range is given: nothing to probe")
	}
	var targets []mcastTarget
	if !opts.NoMulticast {
		targets, err = multicastTargets(opts.Interfaces, opts.MulticastIP)
		if err != nil {
			return nil, fail(KindInvalid, "%v", err)
		}
		if len(targets) == 0 && len(hosts) == 0 {
			return nil, fail(KindNetwork, "no up, multicast-capable IPv4 interface to probe on")
		}
	}

	col := newCollector(log, opts.OnFound)
	var wg sync.WaitGroup
	errs := make(chan error, len(targets)+1)
	// Every socket is opened here, on the caller's goroutine, before any
	// goroutine starts: a caller that entered a network namespace on its
	// locked OS thread (an agent serving one LAN of several, or a test)
	// gets sockets in that namespace, whereas goroutines run on other
	// threads, in the process's own namespace.
	for _, t := range targets {
		conn, err := net.ListenPacket("udp4", net.JoinHostPort(t.addr.String(), "0"))
		if err != nil {
			log.Warn("onvif discovery: interface not probed", "interface", t.ifi.Name, "err", err)
			errs <- err
			continue
		}
		growReadBuffer(conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			if err := probeMulticast(ctx, conn, t, opts, col); err != nil {
				log.Warn("onvif discovery: interface not probed", "interface", t.ifi.Name, "err", err)
				errs <- err
			}
		}()
	}
	if len(hosts) > 0 {
		conn, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			log.Warn("onvif discovery: sweep failed", "err", err)
			errs <- err
		} else {
			growReadBuffer(conn)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				if err := sweep(ctx, conn, hosts, opts, col); err != nil {
					log.Warn("onvif discovery: sweep failed", "err", err)
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	found, garbage, other := col.result()
	log.Debug("onvif discovery finished", "found", len(found), "garbage", garbage, "not_onvif", other)
	var failures []string
	for e := range errs {
		failures = append(failures, e.Error())
	}
	if len(found) == 0 && len(failures) > 0 && len(failures) == len(targets)+btoi(len(hosts) > 0) {
		return nil, fail(KindNetwork, "no probe could be sent: %s", strings.Join(failures, "; "))
	}
	return found, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mcastTarget is one interface to probe on and the address to send from.
type mcastTarget struct {
	ifi  *net.Interface
	addr net.IP
}

// multicastTargets resolves the interfaces to probe on.
func multicastTargets(names []string, pinIP string) ([]mcastTarget, error) {
	if pinIP != "" {
		ip := net.ParseIP(pinIP).To4()
		if ip == nil {
			return nil, fmt.Errorf("multicast IP %q is not an IPv4 address", pinIP)
		}
		ifi, err := interfaceWithIP(ip)
		if err != nil {
			return nil, err
		}
		return []mcastTarget{{ifi: ifi, addr: ip}}, nil
	}
	var ifis []net.Interface
	if len(names) > 0 {
		for _, n := range names {
			ifi, err := net.InterfaceByName(n)
			if err != nil {
				return nil, fmt.Errorf("interface %q: %w", n, err)
			}
			ifis = append(ifis, *ifi)
		}
	} else {
		all, err := net.Interfaces()
		if err != nil {
			return nil, err
		}
		for _, ifi := range all {
			if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 {
				ifis = append(ifis, ifi)
			}
		}
	}
	var out []mcastTarget
	for i := range ifis {
		ifi := &ifis[i]
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		if ip := firstIPv4(ifi); ip != nil {
			out = append(out, mcastTarget{ifi: ifi, addr: ip})
		}
	}
	return out, nil
}

func firstIPv4(ifi *net.Interface) net.IP {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip4 := n.IP.To4(); ip4 != nil {
				return ip4
			}
		}
	}
	return nil
}

func interfaceWithIP(ip net.IP) (*net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range all {
		addrs, err := all[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return &all[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no interface has address %s", ip)
}

// probeMulticast sends the probes on one interface and collects replies
// until the timeout. conn is bound to the interface's address, so that the
// probe leaves from it and the unicast replies come back to it.
func probeMulticast(ctx context.Context, conn net.PacketConn, t mcastTarget, opts DiscoverOptions, col *collector) error {
	p := ipv4.NewPacketConn(conn)
	if err := p.SetMulticastInterface(t.ifi); err != nil {
		return fmt.Errorf("set multicast interface %s: %w", t.ifi.Name, err)
	}
	// Loopback on, so devices (and simulators) on this host hear us too.
	_ = p.SetMulticastLoopback(true)

	deadline := time.Now().Add(opts.Timeout)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	if err := conn.SetReadDeadline(deadline); err != nil {
		return err
	}
	group := &net.UDPAddr{IP: discoveryGroup, Port: opts.Port}
	var msgs [][]byte
	for _, typ := range probeTypes {
		m, _ := buildProbe(typ)
		msgs = append(msgs, m)
	}
	send := func() error {
		var last error
		sent := 0
		for _, m := range msgs {
			if _, err := conn.WriteTo(m, group); err != nil {
				last = err
				continue
			}
			sent++
		}
		if sent == 0 {
			return last
		}
		return nil
	}
	if err := send(); err != nil {
		return fmt.Errorf("send probe on %s: %w", t.ifi.Name, err)
	}
	// UDP multicast is lossy; WS-Discovery repeats a probe once. The
	// repeat keeps the message ids, so devices treat it as the same probe.
	repeat := time.NewTimer(min(opts.Timeout/4, 500*time.Millisecond))
	defer repeat.Stop()
	done := make(chan struct{})
	var repeater sync.WaitGroup
	repeater.Add(1)
	go func() {
		defer repeater.Done()
		select {
		case <-repeat.C:
			_ = send()
		case <-done:
		case <-ctx.Done():
		}
	}()
	col.readLoop(conn, nil)
	close(done)
	repeater.Wait()
	return nil
}

// growReadBuffer asks for a larger socket buffer: a segment with a hundred
// cameras answers a probe in one burst, and datagrams that do not fit are
// dropped by the kernel. The system may grant less; that is not an error.
func growReadBuffer(conn net.PacketConn) {
	if u, ok := conn.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(1 << 20)
	}
}

// collector merges replies from all sockets.
type collector struct {
	log      *slog.Logger
	onFound  func(Found)
	mu       sync.Mutex
	byKey    map[string]*Found
	order    []string
	garbage  int
	notONVIF int
}

func newCollector(log *slog.Logger, onFound func(Found)) *collector {
	return &collector{log: log, onFound: onFound, byKey: map[string]*Found{}}
}

// readLoop reads datagrams until the socket's read deadline or an error,
// handing each to the collector. onReply, if set, sees the source of every
// datagram that parsed as ProbeMatches.
func (c *collector) readLoop(conn net.PacketConn, onReply func(netip.Addr)) {
	buf := make([]byte, maxDatagram+1)
	transient := 0
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout()) {
				return
			}
			// Some systems report ICMP errors from earlier unicast probes
			// on the socket; they say nothing about the next datagram.
			if transient++; transient > 100 {
				c.log.Debug("onvif discovery: giving up on socket", "err", err)
				return
			}
			continue
		}
		transient = 0
		src := ""
		var srcAddr netip.Addr
		if ua, ok := from.(*net.UDPAddr); ok {
			srcAddr, _ = netip.AddrFromSlice(ua.IP)
			srcAddr = srcAddr.Unmap()
			src = srcAddr.String()
		}
		if n > maxDatagram {
			c.countGarbage(src, fmt.Errorf("datagram larger than %d bytes", maxDatagram))
			continue
		}
		msg, err := parseDiscovery(buf[:n], src)
		if err != nil {
			c.countGarbage(src, err)
			continue
		}
		if msg.kind != kindProbeMatches {
			// Another client's Probe or an announcement: not a reply.
			continue
		}
		// RelatesTo is not checked against our message ids: several
		// camera firmwares echo the wrong id, and a ProbeMatch is useful
		// whoever it answers.
		if onReply != nil && srcAddr.IsValid() {
			onReply(srcAddr)
		}
		c.add(msg)
	}
}

func (c *collector) countGarbage(src string, err error) {
	c.mu.Lock()
	c.garbage++
	c.mu.Unlock()
	c.log.Debug("onvif discovery: ignored datagram", "from", src, "err", err)
}

func (c *collector) add(msg discoveryMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notONVIF += msg.notONVIF
	for _, f := range msg.found {
		key := f.EndpointRef
		if key == "" {
			key = f.XAddrs[0]
		}
		if old, ok := c.byKey[key]; ok {
			mergeFound(old, f)
			continue
		}
		f := f
		c.byKey[key] = &f
		c.order = append(c.order, key)
		if c.onFound != nil {
			c.onFound(f)
		}
	}
}

// mergeFound folds a second sighting of a device into the first.
func mergeFound(dst *Found, src Found) {
	dst.XAddrs = unionStrings(dst.XAddrs, src.XAddrs)
	dst.Types = unionStrings(dst.Types, src.Types)
	dst.Scopes = unionStrings(dst.Scopes, src.Scopes)
	if dst.Name == "" {
		dst.Name = src.Name
	}
	if dst.Hardware == "" {
		dst.Hardware = src.Hardware
	}
	if dst.Location == "" {
		dst.Location = src.Location
	}
	if dst.IP == "" {
		dst.IP = src.IP
	}
}

func unionStrings(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

func (c *collector) result() (found []Found, garbage, notONVIF int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.order {
		found = append(found, *c.byKey[k])
	}
	sort.SliceStable(found, func(i, j int) bool {
		a, _ := netip.ParseAddr(found[i].IP)
		b, _ := netip.ParseAddr(found[j].IP)
		if a != b {
			return a.Less(b)
		}
		return found[i].EndpointRef < found[j].EndpointRef
	})
	return found, c.garbage, c.notONVIF
}
