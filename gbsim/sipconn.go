package gbsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// SIP timers (RFC 3261 §17): retransmit UDP requests from T1 doubling to
// T2 until a final response or the caller's deadline.
const (
	sipT1 = 500 * time.Millisecond
	sipT2 = 4 * time.Second
	// serverTxLinger is how long answers to requests are kept to answer
	// their retransmissions (Timer J).
	serverTxLinger = 32 * time.Second
	maxSIPMessage  = 64 << 10
)

var errConnClosed = errors.New("gbsim: SIP connection closed")

// sipConn is one device's SIP transport: a UDP socket or a TCP connection
// to the server, with just enough transaction handling for a device —
// client retransmissions, response matching by branch, and replaying the
// answer to a retransmitted request.
type sipConn struct {
	network string // "UDP" or "TCP"
	server  *net.UDPAddr
	udp     *net.UDPConn
	tcp     net.Conn
	wmu     sync.Mutex // serialises TCP writes

	// viaHost/viaPort are what the device advertises in Via and Contact:
	// its real local address, or a NAT-like private one.
	viaHost string
	viaPort int
	log     *slog.Logger

	onRequest func(req *sip.Request, src net.Addr)

	mu      sync.Mutex
	pending map[string]chan *sip.Response
	answers map[string]*serverTx
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

type serverTx struct {
	res  []byte // nil while the request is being handled
	src  net.Addr
	when time.Time
}

// dialSIP opens the device's transport to server ("host:port").
func dialSIP(ctx context.Context, network, localIP, server string, log *slog.Logger) (*sipConn, error) {
	c := &sipConn{network: strings.ToUpper(network), log: log,
		pending: map[string]chan *sip.Response{}, answers: map[string]*serverTx{}, done: make(chan struct{})}
	switch c.network {
	case "UDP":
		raddr, err := net.ResolveUDPAddr("udp", server)
		if err != nil {
			return nil, err
		}
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(localIP)})
		if err != nil {
			return nil, err
		}
		c.server, c.udp = raddr, conn
		la := conn.LocalAddr().(*net.UDPAddr)
		c.viaHost, c.viaPort = la.IP.String(), la.Port
	case "TCP":
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
		conn, err := d.DialContext(ctx, "tcp", server)
		if err != nil {
			return nil, err
		}
		c.tcp = conn
		la := conn.LocalAddr().(*net.TCPAddr)
		c.viaHost, c.viaPort = la.IP.String(), la.Port
	default:
		return nil, fmt.Errorf("gbsim: unknown SIP transport %q", network)
	}
	return c, nil
}

// start runs the reader; onRequest is called on its own goroutine per
// request, tracked by the connection's WaitGroup.
func (c *sipConn) start(onRequest func(*sip.Request, net.Addr)) {
	c.onRequest = onRequest
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if c.udp != nil {
			c.readUDP()
		} else {
			c.readTCP()
		}
	}()
}

// close stops the reader and waits for request handlers to return.
func (c *sipConn) close() {
	c.markClosed()
	if c.udp != nil {
		c.udp.Close()
	} else {
		c.tcp.Close()
	}
	c.wg.Wait()
}

// Done is closed when the connection is closed or (TCP) lost.
func (c *sipConn) Done() <-chan struct{} { return c.done }

func (c *sipConn) readUDP() {
	buf := make([]byte, maxSIPMessage)
	for {
		n, src, err := c.udp.ReadFrom(buf)
		if err != nil {
			c.markClosed()
			return
		}
		msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			c.log.Debug("gbsim: bad SIP datagram", "err", err)
			continue
		}
		c.dispatch(msg, src)
	}
}

func (c *sipConn) readTCP() {
	stream := sip.NewParser().NewSIPStream()
	defer stream.Close()
	buf := make([]byte, 16<<10)
	src := c.tcp.RemoteAddr()
	for {
		n, err := c.tcp.Read(buf)
		if err != nil {
			c.markClosed()
			return
		}
		stream.Write(buf[:n])
		for {
			msg, _, err := stream.ParseNext()
			if err != nil {
				if errors.Is(err, sip.ErrMessageTooLarge) {
					c.log.Warn("gbsim: SIP message too large, dropping connection")
					c.tcp.Close()
				}
				break
			}
			c.dispatch(msg, src)
		}
	}
}

// markClosed is the reader noticing the transport is gone.
func (c *sipConn) markClosed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
}

func (c *sipConn) dispatch(msg sip.Message, src net.Addr) {
	switch m := msg.(type) {
	case *sip.Response:
		via := m.Via()
		if via == nil {
			return
		}
		branch, _ := via.Params.Get("branch")
		c.mu.Lock()
		ch := c.pending[branch]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	case *sip.Request:
		// A request without the headers every answer needs is dropped:
		// a peer under test must not be able to crash the simulator.
		if m.Via() == nil || m.CallID() == nil || m.From() == nil || m.To() == nil || m.CSeq() == nil {
			c.log.Debug("gbsim: request without Via/Call-ID/From/To/CSeq dropped", "method", m.Method)
			return
		}
		key := txKey(m)
		now := time.Now()
		c.mu.Lock()
		if tx, ok := c.answers[key]; ok {
			res := tx.res
			c.mu.Unlock()
			if res != nil && !m.IsAck() {
				c.write(res, src) // retransmitted request: replay the answer
			}
			return
		}
		if !m.IsAck() {
			c.answers[key] = &serverTx{src: src, when: now}
		}
		// Forget old answers here rather than on a timer goroutine.
		if len(c.answers) > 64 {
			for k, tx := range c.answers {
				if now.Sub(tx.when) > serverTxLinger {
					delete(c.answers, k)
				}
			}
		}
		if c.closed {
			c.mu.Unlock()
			return
		}
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			c.onRequest(m, src)
		}()
	}
}

func txKey(req *sip.Request) string {
	branch := ""
	if via := req.Via(); via != nil {
		branch, _ = via.Params.Get("branch")
	}
	return branch + "|" + string(req.Method)
}

// respond answers req and remembers the answer for retransmissions. The
// answer goes to the request's source address: the only address a NAT'd
// peer can be reached at.
func (c *sipConn) respond(req *sip.Request, src net.Addr, res *sip.Response) {
	b := []byte(res.String())
	c.mu.Lock()
	if tx, ok := c.answers[txKey(req)]; ok && res.StatusCode >= 200 {
		tx.res = b
	}
	c.mu.Unlock()
	c.write(b, src)
}

// reply builds and sends a response without a body.
func (c *sipConn) reply(req *sip.Request, src net.Addr, code int, reason string) {
	c.respond(req, src, sip.NewResponseFromRequest(req, code, reason, nil))
}

func (c *sipConn) write(b []byte, dst net.Addr) error {
	if c.udp != nil {
		if dst == nil {
			dst = c.server
		}
		_, err := c.udp.WriteTo(b, dst)
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.tcp.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.tcp.Write(b)
	return err
}

// outRequest is a request the device originates.
type outRequest struct {
	method      string
	uri         string // Request-URI
	from, to    string // header values, with tags
	callID      string
	cseq        uint32
	contact     string // header value, "" for none
	expires     int    // -1 for no Expires header
	auth        string // Authorization value
	contentType string
	body        []byte
	extra       []string // more "Name: value" lines
}

func newBranch() string { return "z9hG4bK" + randHex(8) }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *sipConn) format(r *outRequest, branch string) []byte {
	var b strings.Builder
	b.Grow(512 + len(r.body))
	b.WriteString(r.method + " " + r.uri + " SIP/2.0\r\n")
	b.WriteString("Via: SIP/2.0/" + c.network + " " + c.viaHost + ":" + strconv.Itoa(c.viaPort) + ";rport;branch=" + branch + "\r\n")
	b.WriteString("From: " + r.from + "\r\n")
	b.WriteString("To: " + r.to + "\r\n")
	b.WriteString("Call-ID: " + r.callID + "\r\n")
	b.WriteString("CSeq: " + strconv.FormatUint(uint64(r.cseq), 10) + " " + r.method + "\r\n")
	b.WriteString("Max-Forwards: 70\r\n")
	if r.contact != "" {
		b.WriteString("Contact: " + r.contact + "\r\n")
	}
	if r.expires >= 0 {
		b.WriteString("Expires: " + strconv.Itoa(r.expires) + "\r\n")
	}
	if r.auth != "" {
		b.WriteString("Authorization: " + r.auth + "\r\n")
	}
	b.WriteString("User-Agent: gbsim\r\n")
	for _, e := range r.extra {
		b.WriteString(e + "\r\n")
	}
	if r.contentType != "" {
		b.WriteString("Content-Type: " + r.contentType + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(r.body)) + "\r\n\r\n")
	b.Write(r.body)
	return []byte(b.String())
}

// do sends r and returns its final response, retransmitting over UDP,
// until ctx ends.
func (c *sipConn) do(ctx context.Context, r *outRequest) (*sip.Response, error) {
	branch := newBranch()
	ch := make(chan *sip.Response, 4)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errConnClosed
	}
	c.pending[branch] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, branch)
		c.mu.Unlock()
	}()
	msg := c.format(r, branch)
	if err := c.write(msg, nil); err != nil {
		return nil, err
	}
	interval := sipT1
	retx := time.NewTimer(interval)
	defer retx.Stop()
	for {
		select {
		case res := <-ch:
			if res.StatusCode >= 200 {
				return res, nil
			}
			// Provisional: stop retransmitting, keep waiting.
			retx.Stop()
		case <-retx.C:
			if c.udp != nil {
				c.write(msg, nil)
				interval = min(interval*2, sipT2)
				retx.Reset(interval)
			}
		case <-c.done:
			return nil, errConnClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// send writes a request without waiting for an answer (ACK).
func (c *sipConn) send(r *outRequest) error {
	return c.write(c.format(r, newBranch()), nil)
}
