package gb28181

import (
	"net"
	"sync"
	"time"
)

// Defaults of the TCP guard applied by New for zero Config fields.
const (
	// DefaultMaxTCPConns bounds concurrent TCP signalling connections (one per TCP device or
	// platform): room for the district's devices, not for an attacker's thousands.
	DefaultMaxTCPConns = 8192
	// DefaultTCPIdleTimeout closes a TCP connection that delivered nothing for this long. Devices
	// on TCP send a keepalive every minute or so; one that goes quiet longer is offline anyway
	// and reconnects when it registers again.
	DefaultTCPIdleTimeout = 10 * time.Minute
)

// fromRegistered reports whether r comes from where its From ID holds a live registration: the
// same host over the same transport (the port may change: NAT rebinding, a new TCP connection).
// MESSAGE and NOTIFY carry no credentials in GB/T 28181, so this is all that tells a device's
// keepalive, catalog or answer from a stranger writing its ID in From.
func (s *Server) fromRegistered(r *Request) bool {
	d, ok := s.devices.Get(r.FromID)
	if !ok || d.Expires == 0 || s.cfg.Now().After(d.RegisteredAt.Add(d.Expires)) {
		return false
	}
	return hostOf(d.Addr) == hostOf(r.Source) && d.Transport == r.Transport
}

// guardListener bounds what TCP peers can hold: at most max connections at once (more are closed
// on accept), and each connection is closed when it delivers nothing for idle or cannot take what
// we write within write. sipgo's TCP transport sets no deadlines of its own, so without this a
// peer could open connections until we run out of descriptors, trickle a byte a minute, or stop
// reading and block our writes forever.
type guardListener struct {
	net.Listener
	slots       chan struct{}
	idle, write time.Duration
	onRefuse    func(remote net.Addr)
}

func newGuardListener(l net.Listener, max int, idle, write time.Duration, onRefuse func(net.Addr)) *guardListener {
	return &guardListener{Listener: l, slots: make(chan struct{}, max), idle: idle, write: write, onRefuse: onRefuse}
}

// Accept returns the next connection within the bound; connections over it are closed at once.
func (l *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &guardConn{Conn: c, l: l}, nil
		default:
			c.Close()
			if l.onRefuse != nil {
				l.onRefuse(c.RemoteAddr())
			}
		}
	}
}

type guardConn struct {
	net.Conn
	l    *guardListener
	once sync.Once
}

func (c *guardConn) Read(b []byte) (int, error) {
	if c.l.idle > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.l.idle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *guardConn) Write(b []byte) (int, error) {
	if c.l.write > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.l.write)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

// Close frees the connection's slot (once, however often sipgo closes it).
func (c *guardConn) Close() error {
	c.once.Do(func() { <-c.l.slots })
	return c.Conn.Close()
}
