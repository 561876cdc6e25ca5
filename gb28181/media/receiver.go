package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/tianyan/vms/gb28181/ps"
)

// ErrReadTimeout is returned by Run when no RTP arrived within the read
// timeout (or, on TCP, no peer connected within it).
var ErrReadTimeout = errors.New("media: no RTP within the read timeout")

// ReceiverConfig says where and how a Receiver takes a device's stream.
type ReceiverConfig struct {
	Transport Transport
	// Bind is the local IP to listen on (UDP, TCPPassive) or dial from
	// (TCPActive); empty for all.
	Bind string
	// Port is the local port to listen on; 0 picks a free one.
	Port int
	// SSRC is the one the SDP's y= line asked for. With ExpectSSRC a
	// packet with another SSRC is still taken if it is the first seen (a
	// device that ignores y=, logged once); without it the first SSRC is
	// learned silently. Either way a second SSRC is ignored.
	SSRC       uint32
	ExpectSSRC bool
	// ReadTimeout bounds the wait for a packet (and for the peer's TCP
	// connection); 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// ConnectTimeout bounds Connect's dial; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Payload is what the RTP carries: 0 for PS (GB/T 28181's PS/96);
	// ps.H264 or ps.H265 when the device answered the offer's H264 or
	// H265 payload type and sends RFC 6184/7798 RTP instead.
	Payload ps.StreamType
	Logger  *slog.Logger
}

// Receiver takes PS over RTP from one device and demuxes it. Listen it,
// then run it in one goroutine; Close (or the Run context) stops it.
type Receiver struct {
	cfg ReceiverConfig
	log *slog.Logger
	udp *net.UDPConn
	ln  *net.TCPListener

	mu        sync.Mutex
	conn      net.Conn // the TCP connection, once there is one
	connected chan struct{}
	closed    chan struct{}
	closeOnce sync.Once

	// Owned by Run's goroutine.
	demux       *ps.Demuxer
	raw         *rawDepacketizer // set for H.264/H.265 RTP
	reorder     reorder
	ssrc        uint32
	haveSSRC    bool
	warnedOther bool
	lastTS      uint32
	haveTS      bool
	corrupt     int
	lastCorrupt time.Time
}

// Listen opens the Receiver's socket: a UDP socket or a TCP listener on
// Bind:Port. A TCPActive Receiver opens nothing until Connect.
func Listen(ctx context.Context, cfg ReceiverConfig) (*Receiver, error) {
	r := &Receiver{
		cfg:       cfg,
		log:       cfg.Logger,
		connected: make(chan struct{}),
		closed:    make(chan struct{}),
		demux:     ps.NewDemuxer(),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	switch cfg.Payload {
	case 0:
	case ps.H264, ps.H265:
		r.raw = newRawDepacketizer(cfg.Payload)
	default:
		return nil, fmt.Errorf("media: cannot receive %v over RTP", cfg.Payload)
	}
	r.cfg.ReadTimeout = orDuration(cfg.ReadTimeout, DefaultReadTimeout)
	r.cfg.ConnectTimeout = orDuration(cfg.ConnectTimeout, DefaultConnectTimeout)
	addr := net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.Port))
	var lc net.ListenConfig
	switch cfg.Transport {
	case UDP:
		c, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, fmt.Errorf("media: listen udp %s: %w", addr, err)
		}
		r.udp = c.(*net.UDPConn)
		// A keyframe arrives as a burst of packets: room for several.
		_ = r.udp.SetReadBuffer(4 << 20)
	case TCPPassive:
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("media: listen tcp %s: %w", addr, err)
		}
		r.ln = l.(*net.TCPListener)
	case TCPActive:
	default:
		return nil, fmt.Errorf("media: unknown transport %q", cfg.Transport)
	}
	return r, nil
}

// Port is the local port the device sends to (UDP) or connects to
// (TCPPassive); for TCPActive the local port of the connection once
// Connect succeeded, else 0.
func (r *Receiver) Port() int {
	switch {
	case r.udp != nil:
		return r.udp.LocalAddr().(*net.UDPAddr).Port
	case r.ln != nil:
		return r.ln.Addr().(*net.TCPAddr).Port
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		return r.conn.LocalAddr().(*net.TCPAddr).Port
	}
	return 0
}

// Connect dials the device's TCP port (TCPActive: the device's SDP said
// setup:passive). Run reads from the connection once it is made.
func (r *Receiver) Connect(ctx context.Context, addr string) error {
	if r.cfg.Transport != TCPActive {
		return fmt.Errorf("media: Connect on a %s receiver", r.cfg.Transport)
	}
	d := net.Dialer{Timeout: r.cfg.ConnectTimeout}
	if r.cfg.Bind != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(r.cfg.Bind), Port: r.cfg.Port}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("media: connect %s: %w", addr, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.closed:
		c.Close()
		return net.ErrClosed
	default:
	}
	if r.conn != nil {
		c.Close()
		return errors.New("media: already connected")
	}
	r.conn = c
	close(r.connected)
	return nil
}

// Close stops the Receiver: Run returns and the sockets close.
func (r *Receiver) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.mu.Lock()
		if r.conn != nil {
			r.conn.Close()
		}
		r.mu.Unlock()
		if r.udp != nil {
			r.udp.Close()
		}
		if r.ln != nil {
			r.ln.Close()
		}
	})
	return nil
}

// Run reads the stream and calls emit with each access unit, in this
// goroutine, until ctx ends or Close (nil), or the read timeout passes or
// the connection fails (an error). A TCPPassive Receiver takes a device
// that reconnects; a TCPActive one ends when its connection does.
func (r *Receiver) Run(ctx context.Context, emit func(ps.Frame)) error {
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	var err error
	switch r.cfg.Transport {
	case UDP:
		err = r.runUDP(emit)
	case TCPPassive:
		err = r.runPassive(emit)
	case TCPActive:
		err = r.runActive(emit)
	}
	if r.stopped() {
		return nil
	}
	return err
}

func (r *Receiver) stopped() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

func (r *Receiver) runUDP(emit func(ps.Frame)) error {
	buf := make([]byte, 65536)
	for {
		if err := r.udp.SetReadDeadline(time.Now().Add(r.cfg.ReadTimeout)); err != nil {
			return err
		}
		n, _, err := r.udp.ReadFromUDP(buf)
		if err != nil {
			return readErr(err)
		}
		r.packet(buf[:n], emit)
	}
}

func (r *Receiver) runPassive(emit func(ps.Frame)) error {
	for {
		if err := r.ln.SetDeadline(time.Now().Add(r.cfg.ReadTimeout)); err != nil {
			return err
		}
		c, err := r.ln.Accept()
		if err != nil {
			return readErr(err)
		}
		r.mu.Lock()
		r.conn = c
		r.mu.Unlock()
		if r.stopped() {
			c.Close()
			return nil
		}
		r.log.Debug("gb media: device connected", "remote", c.RemoteAddr().String())
		err = r.serveTCP(c, emit)
		c.Close()
		r.mu.Lock()
		r.conn = nil
		r.mu.Unlock()
		if !errors.Is(err, io.EOF) {
			return err
		}
		// The device closed: it may reconnect (a restart mid-session),
		// with a new SSRC and sequence.
		r.resetStream()
		r.haveSSRC = false
	}
}

func (r *Receiver) runActive(emit func(ps.Frame)) error {
	t := time.NewTimer(r.cfg.ReadTimeout)
	defer t.Stop()
	select {
	case <-r.connected:
	case <-r.closed:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: not connected", ErrReadTimeout)
	}
	r.mu.Lock()
	c := r.conn
	r.mu.Unlock()
	return r.serveTCP(c, emit)
}

// serveTCP reads framed packets from one connection until it fails.
func (r *Receiver) serveTCP(c net.Conn, emit func(ps.Frame)) error {
	fr := newFrameReader(c)
	var deadline time.Time
	for {
		// A deadline per read costs a timer reset; refreshing it when a
		// quarter of it is gone keeps the bound within 25 %.
		if now := time.Now(); deadline.Sub(now) < r.cfg.ReadTimeout*3/4 {
			deadline = now.Add(r.cfg.ReadTimeout)
			if err := c.SetReadDeadline(deadline); err != nil {
				return err
			}
		}
		pkt, err := fr.next()
		if err != nil {
			return readErr(err)
		}
		r.packet(pkt, emit)
	}
}

func readErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrReadTimeout
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		return errFraming
	}
	return err
}

// packet takes one RTP packet off the wire.
func (r *Receiver) packet(b []byte, emit func(ps.Frame)) {
	p, ssrc, ok := parseRTP(b)
	if !ok || !r.acceptSSRC(ssrc) {
		return
	}
	r.reorder.push(p, func(p packet, lost bool) { r.inOrder(p, lost, emit) })
}

// acceptSSRC decides whether a packet's SSRC is the stream's.
func (r *Receiver) acceptSSRC(ssrc uint32) bool {
	if r.haveSSRC {
		if ssrc == r.ssrc {
			return true
		}
		if r.cfg.ExpectSSRC && ssrc == r.cfg.SSRC {
			// What y= asked for wins over a stream learned before it.
			r.log.Warn("gb media: the expected SSRC arrived; dropping the one learned", "ssrc", ssrc, "learned", r.ssrc)
			r.ssrc = ssrc
			r.resetStream()
			return true
		}
		if !r.warnedOther {
			r.warnedOther = true
			r.log.Warn("gb media: ignoring a second RTP stream", "ssrc", ssrc, "following", r.ssrc)
		}
		return false
	}
	r.haveSSRC, r.ssrc = true, ssrc
	if r.cfg.ExpectSSRC && ssrc != r.cfg.SSRC {
		r.log.Warn("gb media: device ignored the SDP's SSRC; following the one it sends",
			"expected", r.cfg.SSRC, "got", ssrc)
	}
	return true
}

// resetStream forgets the sequence and any partial frame, for a new
// stream from the same device.
func (r *Receiver) resetStream() {
	r.demux.Reset()
	if r.raw != nil {
		r.raw.reset()
	}
	r.reorder = reorder{}
	r.haveTS = false
}

// inOrder feeds the demuxer packets in sequence order. A frame ends at
// the marker, or where the timestamp changes if the marker was lost.
func (r *Receiver) inOrder(p packet, lost bool, emit func(ps.Frame)) {
	if r.raw != nil {
		r.raw.push(p, lost, emit)
		return
	}
	if lost {
		r.demux.Reset()
	}
	if r.haveTS && p.ts != r.lastTS {
		r.demux.Flush(emit)
	}
	r.lastTS, r.haveTS = p.ts, true
	if err := r.demux.Feed(p.payload, emit); err != nil {
		r.corrupt++
		if now := time.Now(); now.Sub(r.lastCorrupt) > 10*time.Second {
			r.lastCorrupt = now
			r.log.Debug("gb media: skipped bad PS", "err", err, "times", r.corrupt)
		}
	}
	if p.marker {
		r.demux.Flush(emit)
	}
}
