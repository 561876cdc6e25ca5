package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/tianyan/vms/gb28181/ps"
)

// SenderConfig says where and how a Sender sends a stream.
type SenderConfig struct {
	Transport Transport
	// Remote is the peer's host:port (UDP and TCPActive).
	Remote string
	// LocalBind is the local IP or IP:port to send from (UDP, TCPActive)
	// or listen on (TCPPassive); empty for any address and a free port.
	LocalBind string
	SSRC      uint32
	// PayloadType is the RTP payload type; 0 means DefaultPayloadType (96).
	PayloadType uint8
	// Video and Audio are the stream types written in the PSM; 0 takes
	// them from the first frames.
	Video, Audio ps.StreamType
	// ConnectTimeout bounds the TCP dial, or the wait for the peer to
	// connect (TCPPassive); 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// WriteTimeout bounds each write; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// Sender muxes access units into PS and sends them over RTP. WriteFrame
// may be called from one goroutine at a time; Close from any.
type Sender struct {
	cfg SenderConfig
	log *slog.Logger

	ln       *net.TCPListener
	accepted chan struct{} // closed when the passive wait ended
	acceptWG sync.WaitGroup

	mu        sync.Mutex
	conn      net.Conn
	acceptErr error
	closed    bool

	// Owned by the WriteFrame caller.
	mux          *ps.Muxer
	video, audio ps.StreamType
	seq          uint16
	buf          []byte
}

// ErrNotConnected is returned by WriteFrame when a TCPPassive peer never
// connected within the connect timeout.
var ErrNotConnected = errors.New("media: peer did not connect")

// NewSender opens the Sender's socket: a UDP socket aimed at Remote, a TCP
// connection dialled to Remote (TCPActive), or a TCP listener (TCPPassive)
// whose peer is waited for in the background, for at most the connect
// timeout: WriteFrame waits for it.
func NewSender(ctx context.Context, cfg SenderConfig) (*Sender, error) {
	s := &Sender{cfg: cfg, log: cfg.Logger, accepted: make(chan struct{}), video: cfg.Video, audio: cfg.Audio}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cfg.PayloadType == 0 {
		s.cfg.PayloadType = DefaultPayloadType
	}
	s.cfg.ConnectTimeout = orDuration(cfg.ConnectTimeout, DefaultConnectTimeout)
	s.cfg.WriteTimeout = orDuration(cfg.WriteTimeout, DefaultWriteTimeout)
	local := cfg.LocalBind
	if local != "" {
		if _, _, err := net.SplitHostPort(local); err != nil {
			local = net.JoinHostPort(local, "0")
		}
	}
	switch cfg.Transport {
	case UDP, TCPActive:
		network := "udp"
		if cfg.Transport == TCPActive {
			network = "tcp"
		}
		d := net.Dialer{Timeout: s.cfg.ConnectTimeout}
		if local != "" {
			a, err := resolve(network, local)
			if err != nil {
				return nil, err
			}
			d.LocalAddr = a
		}
		c, err := d.DialContext(ctx, network, cfg.Remote)
		if err != nil {
			return nil, fmt.Errorf("media: dial %s %s: %w", network, cfg.Remote, err)
		}
		s.conn = c
		close(s.accepted)
	case TCPPassive:
		if local == "" {
			local = ":0"
		}
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", local)
		if err != nil {
			return nil, fmt.Errorf("media: listen tcp %s: %w", local, err)
		}
		s.ln = l.(*net.TCPListener)
		s.acceptWG.Add(1)
		go s.accept()
	default:
		return nil, fmt.Errorf("media: unknown transport %q", cfg.Transport)
	}
	return s, nil
}

// Dial is NewSender.
func Dial(ctx context.Context, cfg SenderConfig) (*Sender, error) { return NewSender(ctx, cfg) }

func resolve(network, addr string) (net.Addr, error) {
	if network == "udp" {
		return net.ResolveUDPAddr("udp", addr)
	}
	return net.ResolveTCPAddr("tcp", addr)
}

// accept waits for the one peer of a TCPPassive Sender.
func (s *Sender) accept() {
	defer s.acceptWG.Done()
	defer close(s.accepted)
	defer s.ln.Close()
	_ = s.ln.SetDeadline(time.Now().Add(s.cfg.ConnectTimeout))
	c, err := s.ln.Accept()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.acceptErr = fmt.Errorf("%w within %v: %v", ErrNotConnected, s.cfg.ConnectTimeout, err)
	case s.closed:
		c.Close()
		s.acceptErr = net.ErrClosed
	default:
		s.conn = c
	}
}

// Port is the local port: the one a TCPPassive Sender listens on (for the
// SDP answer), or the one the others send from.
func (s *Sender) Port() int {
	if s.ln != nil {
		return s.ln.Addr().(*net.TCPAddr).Port
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch a := s.conn.LocalAddr().(type) {
	case *net.UDPAddr:
		return a.Port
	case *net.TCPAddr:
		return a.Port
	}
	return 0
}

// WriteFrame muxes f into a pack and sends it as RTP packets of at most
// 1,400 bytes of payload, the marker on the last. A TCPPassive Sender
// first waits for its peer. An error means the stream is broken (except a
// UDP peer not listening yet, which is not an error).
func (s *Sender) WriteFrame(f ps.Frame) error {
	<-s.accepted
	s.mu.Lock()
	c, err, closed := s.conn, s.acceptErr, s.closed
	s.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	if err != nil {
		return err
	}
	var pack []byte
	if f.Type.IsVideo() {
		if s.mux == nil || s.video != f.Type {
			s.video = f.Type
			s.mux = ps.NewMuxer(s.video, s.audio)
		}
		pack = s.mux.Video(f.PTS, f.DTS, f.Data, f.Key)
	} else {
		if s.mux == nil || s.audio != f.Type {
			// The PSM names the audio from the next keyframe on.
			s.audio = f.Type
			s.mux = ps.NewMuxer(s.video, s.audio)
		}
		pack = s.mux.Audio(f.PTS, f.Data)
	}
	if err := c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
		return err
	}
	ts := uint32(f.PTS)
	if s.cfg.Transport == UDP {
		for len(pack) > 0 {
			n := min(len(pack), maxPayload)
			b := appendRTPHeader(s.buf[:0], s.cfg.PayloadType, n == len(pack), s.seq, ts, s.cfg.SSRC)
			s.buf = append(b, pack[:n]...)
			s.seq++
			pack = pack[n:]
			if _, err := c.Write(s.buf); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("media: send: %w", err)
			}
		}
		return nil
	}
	// TCP: the whole frame in one write, each packet behind its length.
	b := s.buf[:0]
	for len(pack) > 0 {
		n := min(len(pack), maxPayload)
		l := 12 + n
		b = append(b, byte(l>>8), byte(l))
		b = appendRTPHeader(b, s.cfg.PayloadType, n == len(pack), s.seq, ts, s.cfg.SSRC)
		b = append(b, pack[:n]...)
		s.seq++
		pack = pack[n:]
	}
	s.buf = b
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("media: send: %w", err)
	}
	return nil
}

// Close closes the Sender's socket and ends a passive wait.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.acceptWG.Wait()
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}
