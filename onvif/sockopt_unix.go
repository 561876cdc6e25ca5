//go:build unix

package onvif

import "syscall"

// reuseAddr lets several discovery listeners share the WS-Discovery port,
// each receiving every multicast datagram.
func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

// listenHost binds the listener to the group address itself, so it gets
// only multicast and does not steal unicast probes from a device (or
// simulator) sharing the port on this host.
func listenHost() string { return discoveryGroup.String() }
