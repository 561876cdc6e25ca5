package cameranet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// InterfaceNetworks returns the networks of this host's interfaces that are
// up (in the calling thread's network namespace), without loopback,
// link-local or other special ranges: the LAN segments an edge agent sits
// on, where its cameras are.
func InterfaceNetworks() ([]netip.Prefix, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var out []netip.Prefix
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if _, _, isSpecial := classOf(ip); isSpecial {
				continue
			}
			ones, _ := n.Mask.Size()
			if ip.Is4() && ones > 32 {
				ones -= 96
			}
			out = append(out, netip.PrefixFrom(ip, ones).Masked())
		}
	}
	return out, nil
}

// AgentDefault is an edge agent's policy when none is configured: the
// networks of its interfaces. It fails when there are none, since an agent
// that may reach no camera is a configuration error worth stopping for.
func AgentDefault() (*Policy, error) {
	nets, err := InterfaceNetworks()
	if err != nil {
		return nil, err
	}
	if len(nets) == 0 {
		return nil, errors.New("no interface with a camera network (only loopback or link-local); set " + Flag)
	}
	return New(nets), nil
}
