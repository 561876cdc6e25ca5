// Package cameranet decides which hosts Tianyan may connect to for camera
// traffic: RTSP pulls and relays, ONVIF SOAP calls, snapshots and health
// probes. A Policy is the list of camera networks (--camera-networks on vms
// and edge-agent); its dialer checks every address at connect time, after
// name resolution, so a name that resolves differently later cannot lead a
// connection outside the list. CheckURL gives the same answer early, for
// API validation.
//
// Loopback, link-local, unspecified, multicast and broadcast addresses are
// refused unless a listed network lies inside that range (127.0.0.0/8 allows
// loopback; 0.0.0.0/0 does not), and the listeners of the process itself
// are always refused. It must never import anything of Tianyan's: the
// centre, the agent and their tests all build on it.
package cameranet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Flag is the name of the option that lists the camera networks, on both
// vms and edge-agent; refusals name it so that the operator knows what to
// change.
const Flag = "--camera-networks"

// ErrRefused matches (errors.Is) every refusal of this package.
var ErrRefused = errors.New("address outside the camera networks")

// RefusedError says which address was refused and by which rule. It never
// holds a URL, so it cannot leak a camera password.
type RefusedError struct {
	// Subject names what was checked: "camera URL host localhost",
	// "camera address 10.0.0.9:554".
	Subject string
	// Addr is the address refused (after name resolution).
	Addr netip.Addr
	// Resolved is set when Subject named a host name that resolved to Addr.
	Resolved bool
	// Rule is why, e.g. "is link-local; not inside --camera-networks (10.0.0.0/8)".
	Rule string
}

// Error returns the subject, the address a name resolved to, and the rule.
func (e *RefusedError) Error() string {
	if e.Resolved {
		return e.Subject + " resolves to " + e.Addr.String() + ", which " + e.Rule
	}
	return e.Subject + " " + e.Rule
}

// Is makes errors.Is(err, ErrRefused) hold.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// special are the ranges refused unless listed on their own: a connection
// there reaches this host, a cloud metadata service or many hosts at once,
// never one camera on the camera LAN.
var special = []struct {
	prefix netip.Prefix
	name   string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
}

// centreDefaults are the private ranges a camera private network uses:
// RFC 1918, carrier-grade NAT (RFC 6598) and IPv6 unique local addresses.
var centreDefaults = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fd00::/8"),
}

// CentreDefaults returns the networks the central server connects to when
// none are configured, as text for configuration and docs.
func CentreDefaults() []string {
	out := make([]string, len(centreDefaults))
	for i, p := range centreDefaults {
		out[i] = p.String()
	}
	return out
}

// Policy is a set of camera networks and the listeners of this process. It
// is safe for concurrent use; only AddListeners changes it.
type Policy struct {
	nets     []netip.Prefix
	resolver *net.Resolver
	own      *listeners
}

// listeners are this process's own listening addresses; shared by the
// copies WithResolver makes, so that they learn listeners bound later.
type listeners struct {
	mu    sync.RWMutex
	addrs []netip.AddrPort
	// local are this host's addresses, for listeners on an unspecified
	// address (":8554" listens on every one of them).
	local []netip.Addr
}

// New returns a policy allowing exactly nets (IPv4-mapped IPv6 prefixes
// count as the IPv4 ones). An empty list refuses every address.
func New(nets []netip.Prefix) *Policy {
	p := &Policy{own: &listeners{}}
	for _, n := range nets {
		n = normalizePrefix(n)
		if !slices.Contains(p.nets, n) {
			p.nets = append(p.nets, n)
		}
	}
	return p
}

// CentreDefault is the central server's policy when none is configured:
// the private ranges of CentreDefaults, and never loopback.
func CentreDefault() *Policy { return New(centreDefaults) }

// Parse reads a comma-separated list of CIDRs and single addresses
// ("10.2.0.0/16, 192.168.1.64, 127.0.0.0/8"), as --camera-networks takes it.
// Its errors do not name the flag: the flag parser does.
func Parse(list string) (*Policy, error) {
	return ParseList(strings.Split(list, ","))
}

// ParseList is Parse for a list already split; empty items are skipped but
// the list must name at least one network.
func ParseList(items []string) (*Policy, error) {
	var nets []netip.Prefix
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		n, err := parseNetwork(item)
		if err != nil {
			return nil, err
		}
		nets = append(nets, n)
	}
	if len(nets) == 0 {
		return nil, errors.New("no network listed; list at least one, e.g. 10.0.0.0/8")
	}
	return New(nets), nil
}

func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8", s)
		}
		// 10.1.2.3/8 means the network the operator typed the address of.
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// normalizePrefix turns ::ffff:a.b.c.d/n (n ≥ 96) into a.b.c.d/(n-96):
// addresses are unmapped before they are checked.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p
}

// WithResolver returns a policy that resolves names with r (tests point it
// at a DNS server of their own); it shares the listeners of p.
func (p *Policy) WithResolver(r *net.Resolver) *Policy {
	cp := *p
	cp.resolver = r
	return &cp
}

// Networks returns the allowed networks.
func (p *Policy) Networks() []netip.Prefix { return slices.Clone(p.nets) }

// String lists the networks as the flag takes them.
func (p *Policy) String() string {
	parts := make([]string, len(p.nets))
	for i, n := range p.nets {
		parts[i] = n.String()
	}
	return strings.Join(parts, ",")
}

// AddListeners records addresses this process listens on (HTTP, RTSP,
// ICE-TCP, the agent's page; in the demo, the centre's and the agent's):
// connecting to one of them is refused even inside a listed network, so
// that no point can make the server read itself. A listener on an
// unspecified address covers every address of this host. Unparseable
// entries are ignored.
func (p *Policy) AddListeners(addrs ...string) {
	var add []netip.AddrPort
	for _, s := range addrs {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			host, port, err := net.SplitHostPort(s)
			if err != nil || host != "" {
				continue
			}
			// ":8554": every address.
			if ap, err = netip.ParseAddrPort("0.0.0.0:" + port); err != nil {
				continue
			}
		}
		add = append(add, netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()))
	}
	p.own.mu.Lock()
	defer p.own.mu.Unlock()
	for _, ap := range add {
		if slices.Contains(p.own.addrs, ap) {
			continue
		}
		p.own.addrs = append(p.own.addrs, ap)
		if ap.Addr().IsUnspecified() && p.own.local == nil {
			p.own.local = hostAddrs()
		}
	}
}

// hostAddrs are the addresses of this host's interfaces.
func hostAddrs() []netip.Addr {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range ifAddrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// ownListener reports whether ap is one of this process's listeners.
func (p *Policy) ownListener(ap netip.AddrPort) bool {
	p.own.mu.RLock()
	defer p.own.mu.RUnlock()
	for _, l := range p.own.addrs {
		if l.Port() != ap.Port() {
			continue
		}
		if l.Addr() == ap.Addr() {
			return true
		}
		if l.Addr().IsUnspecified() && (ap.Addr().IsLoopback() || ap.Addr().IsUnspecified() || slices.Contains(p.own.local, ap.Addr())) {
			return true
		}
	}
	return false
}

// classOf returns the special range a belongs to, if any.
func classOf(a netip.Addr) (netip.Prefix, string, bool) {
	for _, s := range special {
		if s.prefix.Contains(a) {
			return s.prefix, s.name, true
		}
	}
	return netip.Prefix{}, "", false
}

// rule returns why a is refused, or "" when it is allowed.
func (p *Policy) rule(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	listed := fmt.Sprintf("%s (%s)", Flag, strings.ReplaceAll(p.String(), ",", ", "))
	if len(p.nets) == 0 {
		listed = Flag + " (none)"
	}
	class, name, isSpecial := classOf(a)
	covered := false
	for _, n := range p.nets {
		if !n.Contains(a) {
			continue
		}
		covered = true
		// A special range counts only when a listed network lies inside
		// it: 0.0.0.0/0 is not a decision to reach loopback.
		if !isSpecial || n.Bits() >= class.Bits() {
			return ""
		}
	}
	switch {
	case isSpecial && covered:
		return fmt.Sprintf("is %s; %s must list a %s range itself (e.g. %s) to allow it", name, listed, name, class)
	case isSpecial:
		return fmt.Sprintf("is %s; not inside %s", name, listed)
	default:
		return "is not inside " + listed
	}
}

// CheckAddr returns a *RefusedError when a is outside the camera networks.
// It does not know the port, so it cannot refuse this process's listeners;
// use CheckAddrPort when the port is known.
func (p *Policy) CheckAddr(a netip.Addr) error {
	if r := p.rule(a); r != "" {
		return &RefusedError{Subject: "camera address " + a.String(), Addr: a, Rule: r}
	}
	return nil
}

// CheckAddrPort returns a *RefusedError when ap is outside the camera
// networks or is one of this process's listeners.
func (p *Policy) CheckAddrPort(ap netip.AddrPort) error {
	return p.check("camera address "+ap.String(), ap)
}

func (p *Policy) check(subject string, ap netip.AddrPort) error {
	a := ap.Addr().Unmap().WithZone("")
	// Shown with its zone (fe80::1%eth0), never IPv4-mapped.
	shown := ap.Addr().Unmap()
	if p.ownListener(netip.AddrPortFrom(a, ap.Port())) {
		return &RefusedError{Subject: subject, Addr: shown, Rule: fmt.Sprintf("is this server's own listener (%s); a camera is never the server itself", netip.AddrPortFrom(a, ap.Port()))}
	}
	if r := p.rule(a); r != "" {
		return &RefusedError{Subject: subject, Addr: shown, Rule: r}
	}
	return nil
}
