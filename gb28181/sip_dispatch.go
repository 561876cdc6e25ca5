package gb28181

import (
	"bytes"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// Request is an incoming SIP request with what the server learned about it.
type Request struct {
	// SIP is the request as parsed by sipgo.
	SIP *sip.Request
	// Tx is its server transaction (nil for ACK).
	Tx sip.ServerTransaction
	// FromID is the user part of From: the device's (or platform's) 20-digit ID.
	FromID string
	// Source is the host:port the request came from (after NAT).
	Source string
	// Transport is "UDP" or "TCP".
	Transport string
	// Upstream is true when the request came from an upstream platform.
	Upstream bool

	// Root, CmdType, SN and DeviceID are sniffed from a MANSCDP body (MESSAGE, NOTIFY, SUBSCRIBE);
	// empty when the body is not MANSCDP. Root is "Query", "Response", "Notify" or "Control".
	Root     string
	CmdType  string
	SN       int
	DeviceID string

	server    *Server
	responded atomic.Bool
}

// Body is the request body.
func (r *Request) Body() []byte { return r.SIP.Body() }

// Peer is where to send requests to the sender of r: its source address over its transport.
func (r *Request) Peer() Peer {
	return Peer{ID: r.FromID, Domain: domainOf(r.FromID), Addr: r.Source, Transport: r.Transport}
}

// Respond answers the request with code; body may be nil. Extra headers are appended. Answering twice
// is ignored (the first answer stands).
func (r *Request) Respond(code int, reason string, body []byte, headers ...sip.Header) error {
	if r.Tx == nil || !r.responded.CompareAndSwap(false, true) {
		return nil
	}
	res := sip.NewResponseFromRequest(r.SIP, code, reason, body)
	r.answerSource(res)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	if code >= 200 {
		if to := res.To(); to != nil && (to.Params == nil || !to.Params.Has("tag")) {
			if to.Params == nil {
				to.Params = sip.NewParams()
			}
			to.Params.Add("tag", sip.GenerateTagN(10))
		}
	}
	return r.Tx.Respond(res)
}

// RespondResponse sends a prepared response (for handlers that need full control, e.g. INVITE 200
// with SDP and Contact).
func (r *Request) RespondResponse(res *sip.Response) error {
	if r.Tx == nil || !r.responded.CompareAndSwap(false, true) {
		return nil
	}
	r.answerSource(res)
	return r.Tx.Respond(res)
}

// answerSource sends a UDP answer to the address the request came from. sipgo picks the Via port
// unless the request asked for rport, so a device behind NAT that did not ask would never hear
// us, and any sender could point our answers at another port of its host.
func (r *Request) answerSource(res *sip.Response) {
	if r.Transport == "UDP" && r.Source != "" {
		res.SetDestination(r.Source)
	}
}

// Responded reports whether the request has been answered.
func (r *Request) Responded() bool { return r.responded.Load() }

func domainOf(id string) string {
	if len(id) >= 10 {
		return id[:10]
	}
	return id
}

// dispatch is the single entry point for every request sipgo hands us.
func (s *Server) dispatch(req *sip.Request, tx sip.ServerTransaction) {
	r := &Request{SIP: req, Tx: tx, Source: req.Source(), Transport: strings.ToUpper(req.Transport()), server: s}
	if from := req.From(); from != nil {
		r.FromID = from.Address.User
	}
	defer func() {
		// A handler panicking on a hostile message must not take the process down.
		if p := recover(); p != nil {
			s.log.Error("gb28181: handler panic", "method", req.Method.String(), "from", r.FromID, "panic", p)
			r.Respond(500, "Server Internal Error", nil)
		}
	}()
	if n := len(req.Body()); n > s.cfg.MaxBody {
		s.log.Warn("gb28181: body too large", "method", req.Method.String(), "from", r.FromID, "source", r.Source, "bytes", n)
		r.Respond(413, "Request Entity Too Large", nil)
		return
	}
	// Answer to where the request came from even if the sender did not ask (no rport): devices
	// behind NAT put their private address in Via.
	if via := req.Via(); via != nil && r.Transport == "UDP" && via.Params != nil && !via.Params.Has("rport") {
		via.Params.Add("rport", "")
	}
	switch req.Method {
	case sip.MESSAGE, sip.NOTIFY, sip.SUBSCRIBE:
		sniffMANSCDP(req.Body(), r)
	}

	s.mu.RLock()
	up := s.isUpstream != nil && r.FromID != "" && s.isUpstream(r.FromID)
	var h Handler
	if up {
		h = s.upstream[req.Method]
	} else {
		if (req.Method == sip.MESSAGE || req.Method == sip.NOTIFY) && r.CmdType != "" {
			h = s.cmds[strings.ToLower(r.CmdType)]
		}
		if h == nil {
			h = s.handlers[req.Method]
		}
	}
	s.mu.RUnlock()
	r.Upstream = up

	// Answers to our own queries (Response root) go to whoever waits for them first, if they come
	// from where the device registered: SNs are no secret, and anyone can write a device's ID.
	if !up && req.Method == sip.MESSAGE && r.CmdType != "" && strings.EqualFold(r.Root, "Response") && s.fromRegistered(r) {
		if s.deliver(r) {
			return
		}
	}

	if h == nil {
		switch req.Method {
		case sip.ACK:
			return
		case sip.MESSAGE, sip.NOTIFY:
			// Unknown commands are acknowledged so devices do not retry them forever.
			r.Respond(200, "OK", nil)
		case sip.OPTIONS:
			r.Respond(200, "OK", nil)
		case sip.CANCEL:
			r.Respond(481, "Call/Transaction Does Not Exist", nil)
		default:
			r.Respond(405, "Method Not Allowed", nil)
		}
		return
	}
	h(s.ctx, r)
	if !r.Responded() && req.Method != sip.ACK {
		s.log.Warn("gb28181: handler did not answer", "method", req.Method.String(), "from", r.FromID)
		r.Respond(500, "Server Internal Error", nil)
	}
}

// sniffMANSCDP reads the root element, CmdType, SN and DeviceID of a MANSCDP body without decoding
// its charset (those fields are ASCII in every vendor's encoding). Malformed XML leaves them empty.
func sniffMANSCDP(body []byte, r *Request) {
	if len(body) == 0 || !bytes.Contains(body, []byte("CmdType")) && !bytes.Contains(body, []byte("cmdtype")) && !bytes.Contains(body, []byte("CMDTYPE")) {
		return
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	depth := 0
	field := ""
	for i := 0; i < 4096; i++ {
		tok, err := d.Token()
		if err != nil {
			return
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				r.Root = t.Name.Local
			}
			field = ""
			if depth == 2 {
				field = strings.ToLower(t.Name.Local)
			}
		case xml.EndElement:
			depth--
			field = ""
			if depth == 0 {
				return
			}
		case xml.CharData:
			v := strings.TrimSpace(string(t))
			switch field {
			case "cmdtype":
				r.CmdType = v
			case "sn":
				r.SN, _ = strconv.Atoi(v)
			case "deviceid":
				r.DeviceID = v
			}
		}
		if r.CmdType != "" && r.SN != 0 && r.DeviceID != "" {
			return
		}
	}
}

type waitKey struct {
	device  string
	cmdType string
	sn      int
}

type waiter struct {
	f func(*Request)
}

// Expect routes MESSAGE responses (root Response) from device deviceID with CmdType cmdType and SN sn
// to f until the returned cancel is called. f runs on the request's goroutine and must be quick; the
// request is answered 200 OK after f returns unless f answered it. Several MESSAGEs may arrive for
// one SN (a Catalog in pages).
func (s *Server) Expect(deviceID, cmdType string, sn int, f func(*Request)) (cancel func()) {
	k := waitKey{deviceID, strings.ToLower(cmdType), sn}
	w := &waiter{f: f}
	s.mu.Lock()
	m := s.waiters[k]
	if m == nil {
		m = map[*waiter]struct{}{}
		s.waiters[k] = m
	}
	m[w] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.waiters[k], w)
			if len(s.waiters[k]) == 0 {
				delete(s.waiters, k)
			}
			s.mu.Unlock()
		})
	}
}

// deliver hands r to the waiters expecting it; it reports whether any did.
func (s *Server) deliver(r *Request) bool {
	k := waitKey{r.FromID, strings.ToLower(r.CmdType), r.SN}
	s.mu.RLock()
	var fs []func(*Request)
	for w := range s.waiters[k] {
		fs = append(fs, w.f)
	}
	s.mu.RUnlock()
	for _, f := range fs {
		f(r)
	}
	if len(fs) > 0 {
		r.Respond(200, "OK", nil)
	}
	return len(fs) > 0
}

// NextSN returns a fresh MANSCDP SN for a query we send. It is random, not a counter: an answer is
// matched by device and SN, and an SN that cannot be guessed is one more thing a stranger spoofing
// the device's address over UDP would have to know.
func NextSN() int {
	return rand.IntN(999_999_999) + 1
}
