// Package netnstest builds throwaway Linux network namespaces joined into
// one LAN, so that tests can run multicast discovery, cameras and clients at
// distinct addresses without touching the host's network.
//
// Each LAN is a "switch" namespace holding a bridge, and one namespace per
// host with a veth link into it (named tyc0 inside the host, so that nothing
// mistakes it for a container's veth) at 10.231.1.N/24, with lo up and a
// multicast route. Nothing is created in the host's own namespace, and every
// namespace is deleted in t.Cleanup.
//
// It needs root and iproute2's `ip`; without them New skips the test with
// the reason. It must never be imported outside tests.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Link is the name of every host's interface inside its namespace.
const Link = "tyc0"

// Prefix is the LAN's subnet. Every LAN uses the same one: LANs never see
// each other or the host, so their addresses cannot clash.
var Prefix = netip.MustParsePrefix("10.231.1.0/24")

// LAN is a set of hosts on one bridged Ethernet.
type LAN struct {
	// Hosts are numbered from 1: Hosts[0] has 10.231.1.1.
	Hosts    []*Host
	switchNS string
}

// Host is one namespace on the LAN.
type Host struct {
	// Namespace is the name under /var/run/netns (for `ip netns exec`).
	Namespace string
	// IP is the host's address on Link.
	IP netip.Addr
}

// New creates a LAN of n hosts (1 ≤ n ≤ 200), or skips t when this machine
// cannot: not root, or no `ip`.
func New(t testing.TB, n int) *LAN {
	t.Helper()
	if n < 1 || n > 200 {
		t.Fatalf("netnstest: %d hosts; want 1 to 200", n)
	}
	if os.Geteuid() != 0 {
		t.Skip("netnstest: needs root to create network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netnstest: needs iproute2's `ip` (apt-get install iproute2)")
	}
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	// Random names: tests of several packages run at once, each with its
	// own LANs.
	prefix := "tyns-" + hex.EncodeToString(id)
	lan := &LAN{switchNS: prefix + "-sw"}

	var created []string
	t.Cleanup(func() {
		for _, ns := range created {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("netnstest: deleting namespace %s: %v: %s", ns, err, out)
			}
		}
	})
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("netnstest: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	addNS := func(name string) {
		t.Helper()
		out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
		if err != nil {
			if len(created) == 0 {
				// The first one failing means this machine cannot (no
				// CAP_SYS_ADMIN in a container), not that the test is wrong.
				t.Skipf("netnstest: cannot create a network namespace here: %v: %s", err, out)
			}
			t.Fatalf("netnstest: ip netns add %s: %v: %s", name, err, out)
		}
		created = append(created, name)
	}

	addNS(lan.switchNS)
	// Snooping off: with no querier on the LAN a snooping bridge may drop
	// the very multicast discovery depends on.
	run("-n", lan.switchNS, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	run("-n", lan.switchNS, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		h := &Host{Namespace: fmt.Sprintf("%s-h%d", prefix, i), IP: Prefix.Addr().Next()}
		for range i - 1 {
			h.IP = h.IP.Next()
		}
		addNS(h.Namespace)
		port := fmt.Sprintf("p%d", i)
		// Both ends are born inside namespaces: the host's namespace never
		// sees the link.
		run("-n", lan.switchNS, "link", "add", port, "type", "veth", "peer", "name", Link, "netns", h.Namespace)
		run("-n", lan.switchNS, "link", "set", port, "master", "br0", "up")
		run("-n", h.Namespace, "link", "set", "lo", "up")
		run("-n", h.Namespace, "addr", "add", fmt.Sprintf("%s/%d", h.IP, Prefix.Bits()), "dev", Link)
		run("-n", h.Namespace, "link", "set", Link, "up")
		run("-n", h.Namespace, "route", "add", "224.0.0.0/4", "dev", Link)
		lan.Hosts = append(lan.Hosts, h)
	}
	return lan
}

// Do runs fn on an OS thread that has entered the host's namespace. Sockets
// fn opens belong to the namespace for their whole life, whatever goroutine
// later uses them; goroutines fn starts do not run in the namespace, so a
// socket opened later from one of them would be the host's.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread dies with this goroutine, so no other
		// goroutine is ever scheduled in the namespace by accident.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", h.Namespace))
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("netnstest: entering %s: %w", h.Namespace, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// DialContext dials from inside the host's namespace; use it as an HTTP
// transport's or an RTSP client's dialer.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var conn net.Conn
	err := h.Do(func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// ListenPacket opens a packet socket inside the host's namespace.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var conn net.PacketConn
	err := h.Do(func() error {
		var err error
		conn, err = net.ListenPacket(network, address)
		return err
	})
	return conn, err
}

// Interface is the host's LAN interface, as seen inside its namespace.
func (h *Host) Interface() (*net.Interface, error) {
	var ifi *net.Interface
	err := h.Do(func() error {
		var err error
		ifi, err = net.InterfaceByName(Link)
		return err
	})
	if err != nil {
		return nil, errors.Join(errors.New("netnstest: "+Link+" in "+h.Namespace), err)
	}
	return ifi, nil
}
