package gb28181

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
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
	// DefaultMaxUDPPeers is how many UDP source addresses sipgo may remember (about 150 bytes
	// each) before its read loop is restarted to forget them.
	DefaultMaxUDPPeers = 65536
)

// fromRegistered reports whether r comes from where its From ID holds a live registration: the
// same host over the same transport (the port may change: NAT rebinding, a new TCP connection).
// MESSAGE and NOTIFY carry no credentials in GB/T 28181, so this is all that tells a device's
// keepalive, catalog or answer from a stranger writing its ID in From.
func (s *Server) fromRegistered(r *Request) bool {
	d, ok := s.devices.Get(r.FromID)
	if !ok {
		return false
	}
	// Online (between an accepted REGISTER and offline) or within the registration's lifetime
	// (offline only for missed keepalives: its next keepalive brings it back).
	if !d.Online && (d.Expires == 0 || s.cfg.Now().After(d.RegisteredAt.Add(d.Expires))) {
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
	done        <-chan struct{} // the server closed: stop lingering
	onRefuse    func(remote net.Addr)
}

func newGuardListener(l net.Listener, max int, idle, write time.Duration, done <-chan struct{}, onRefuse func(net.Addr)) *guardListener {
	return &guardListener{Listener: l, slots: make(chan struct{}, max), idle: idle, write: write, done: done, onRefuse: onRefuse}
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
	n, err := c.Conn.Read(b)
	if err != nil && n == 0 && !errors.Is(err, net.ErrClosed) {
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			// The peer closed or reset the connection. sipgo may still be starting the transaction
			// of the last request it read, on another goroutine, and looks this connection up to
			// answer on; once sipgo forgets it (as soon as we report the close), it would dial the
			// host and port in that request's Via instead, which anyone can write. Report the
			// close a little later.
			select {
			case <-time.After(closeGrace):
			case <-c.l.done:
			}
		}
	}
	return n, err
}

// closeGrace is how long a TCP connection the peer closed stays known to sipgo.
const closeGrace = 2 * time.Second

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

// redactHandler keeps the raw bytes sipgo's transports log with a message that does not parse
// ("data") out of our logs, logging their length instead: they may carry a device's Digest answer,
// and a flood of junk must not copy up to 64 KiB per datagram into the log.
type redactHandler struct{ slog.Handler }

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "data" {
			a = slog.Int("bytes", len(a.Value.String()))
		}
		out.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return redactHandler{h.Handler.WithAttrs(as)}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h.Handler.WithGroup(name)}
}

// errRestartRead ends sipgo's UDP read loop without closing the socket. It wraps net.ErrClosed so
// sipgo takes it as a normal end (and logs it at debug level only).
var errRestartRead = fmt.Errorf("gb28181: UDP read loop restarted to forget old peers: %w", net.ErrClosed)

// restartableConn is the UDP socket as sipgo sees it. sipgo's read loop remembers every source
// address a datagram ever came from (its connection pool and a map of its own) and forgets them
// only when the loop ends, so anyone sending from many ports or spoofed addresses grows our memory
// without bound. When asked, the next read ends the loop instead (sipgo then drops what it
// remembered) and the server serves the same socket again.
type restartableConn struct {
	net.PacketConn
	restart    atomic.Bool // end the loop at the next read
	restarting atomic.Bool // the loop ended because we asked
}

func (c *restartableConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.restart.CompareAndSwap(true, false) {
		c.restarting.Store(true)
		return 0, nil, errRestartRead
	}
	return c.PacketConn.ReadFrom(b)
}

// serveUDP runs sipgo's UDP loop on c until the server closes, restarting it when it was ended to
// forget peers.
func (s *Server) serveUDP(c *restartableConn) {
	for {
		err := s.srv.ServeUDP(c)
		if c.restarting.CompareAndSwap(true, false) && s.ctx.Err() == nil {
			continue
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("gb28181: udp serve ended", "err", err)
		}
		return
	}
}

// watchUDPPeers asks for a restart of the UDP read loop when sipgo remembers more than
// MaxUDPPeers source addresses. A restart costs nothing to registered devices: their address is
// in our registry, and sipgo learns it again from their next datagram.
func (s *Server) watchUDPPeers(ctx context.Context, c *restartableConn) {
	pool := s.ua.TransportLayer().Pool("udp")
	every(ctx, udpPeerCheck, func() {
		if n := pool.Size(); n > s.cfg.MaxUDPPeers {
			s.log.Info("gb28181: forgetting UDP peers", "remembered", n, "max", s.cfg.MaxUDPPeers)
			c.restart.Store(true)
		}
	})
}

// udpPeerCheck is how often the size of sipgo's UDP pool is looked at.
var udpPeerCheck = 2 * time.Second
