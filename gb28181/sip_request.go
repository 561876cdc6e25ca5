package gb28181

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/icholy/digest"
)

// ContentTypeMANSCDP is the content type of GB/T 28181 XML bodies.
const ContentTypeMANSCDP = "Application/MANSCDP+xml"

// ContentTypeSDP is the content type of session descriptions.
const ContentTypeSDP = "application/sdp"

// Peer is the far end of a request we send: a device, a lower platform or an upper platform, reached
// at Addr over Transport (for devices: the source address and transport of their REGISTER).
type Peer struct {
	// ID is the peer's 20-digit ID.
	ID string
	// Domain is the peer's 10-digit domain; "" means the first 10 digits of ID.
	Domain string
	// Addr is host:port to send to.
	Addr string
	// Transport is "UDP" or "TCP".
	Transport string
}

func (p Peer) domain() string {
	if p.Domain != "" {
		return p.Domain
	}
	return domainOf(p.ID)
}

func (p Peer) transport() string {
	if strings.EqualFold(p.Transport, "TCP") {
		return "TCP"
	}
	return "UDP"
}

// ErrNoPeer is returned when a request names a device that is not registered.
var ErrNoPeer = errors.New("gb28181: device not registered")

// DevicePeer returns where to reach the registered device id.
func (s *Server) DevicePeer(id string) (Peer, error) {
	d, ok := s.devices.Get(id)
	if !ok || d.Addr == "" {
		return Peer{}, ErrNoPeer
	}
	return d.Peer(), nil
}

// LocalHost is the host we advertise to peer (in Via, Contact and SDP): Config.Advertise if set,
// else our address on the route to the peer.
func (s *Server) LocalHost(peerAddr string) string {
	if s.cfg.Advertise != "" {
		return s.cfg.Advertise
	}
	host, _, err := net.SplitHostPort(peerAddr)
	if err != nil {
		host = peerAddr
	}
	if s.udpAddr != nil && s.udpAddr.IP != nil && !s.udpAddr.IP.IsUnspecified() {
		return s.udpAddr.IP.String()
	}
	s.hostMu.Lock()
	defer s.hostMu.Unlock()
	if h, ok := s.hostCache[host]; ok {
		return h
	}
	local := "127.0.0.1"
	// A connected UDP socket sends nothing; it only asks the kernel which source address routes there.
	if c, err := net.Dial("udp", net.JoinHostPort(host, "9")); err == nil {
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
			local = a.IP.String()
		}
		c.Close()
	}
	if len(s.hostCache) > 4096 {
		clear(s.hostCache)
	}
	s.hostCache[host] = local
	return local
}

// LocalPort is our listening port (UDP and TCP share it).
func (s *Server) LocalPort() int {
	if s.udpAddr == nil {
		return 0
	}
	return s.udpAddr.Port
}

// Contact is our Contact URI as seen from peer.
func (s *Server) Contact(peer Peer) sip.Uri {
	return sip.Uri{Scheme: "sip", User: s.cfg.ID, Host: s.LocalHost(peer.Addr), Port: s.LocalPort()}
}

// NewRequest builds an out-of-dialog request from us to target at peer: Request-URI
// sip:target@peer-addr, From our ID at our domain (with a tag), To target at the peer's domain, a fresh
// Call-ID and CSeq, Via with rport, Contact, and the body (contentType "" when body is nil). target ""
// means peer.ID (a channel ID addresses one channel of an NVR). The request is sent to peer.Addr over
// peer.Transport, from our listening port.
func (s *Server) NewRequest(method sip.RequestMethod, peer Peer, target, contentType string, body []byte) (*sip.Request, error) {
	if target == "" {
		target = peer.ID
	}
	host, portStr, err := net.SplitHostPort(peer.Addr)
	if err != nil {
		return nil, fmt.Errorf("gb28181: peer address %q: %w", peer.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gb28181: peer port %q: %w", portStr, err)
	}
	tp := peer.transport()
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: target, Host: host, Port: port})

	local := s.LocalHost(peer.Addr)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: tp, Host: local, Port: s.LocalPort(), Params: sip.NewParams()}
	via.Params.Add("rport", "")
	via.Params.Add("branch", sip.GenerateBranchN(16))
	req.AppendHeader(via)

	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: s.cfg.ID, Host: s.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: peer.domain()}, Params: sip.NewParams()})
	callID := sip.CallIDHeader(uuid.NewString())
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(NextSN()%65535) + 1, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.ContactHeader{Address: s.Contact(peer)})
	req.AppendHeader(sip.NewHeader("User-Agent", s.cfg.UserAgent))
	if body != nil {
		ct := sip.ContentTypeHeader(contentType)
		req.AppendHeader(&ct)
	}
	req.SetBody(body)
	s.Route(req, peer)
	return req, nil
}

// Route points req at peer: destination, transport and, over UDP, our listening socket as source so
// the peer (and its NAT) sees the port it registered to.
func (s *Server) Route(req *sip.Request, peer Peer) {
	req.SetDestination(peer.Addr)
	req.SetTransport(peer.transport())
	if peer.transport() == "UDP" && s.udpConn != nil {
		if a, ok := s.udpConn.LocalAddr().(*net.UDPAddr); ok {
			req.Laddr = sip.Addr{IP: a.IP, Port: a.Port, Hostname: a.IP.String()}
		}
	}
}

// Do sends req (built by NewRequest or Route'd) and waits for its final response, at most
// Config.RequestTimeout (or ctx's deadline if sooner).
func (s *Server) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	res, err := s.cli.Do(ctx, req, sipgoPrebuilt)
	if err != nil {
		return nil, fmt.Errorf("gb28181: %s to %s: %w", req.Method, req.Destination(), err)
	}
	return res, nil
}

// Transaction sends req and returns its client transaction, for callers that need provisional
// responses (INVITE). The caller terminates it; ctx bounds connection setup.
func (s *Server) Transaction(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	return s.cli.TransactionRequest(ctx, req, sipgoPrebuilt)
}

// Write sends req without a transaction (ACK to a 2xx).
func (s *Server) Write(req *sip.Request) error {
	return s.cli.WriteRequest(req, sipgoPrebuilt)
}

// sipgoPrebuilt tells sipgo the request is complete: it must not add its own Via, From or Call-ID.
func sipgoPrebuilt(_ *sipgo.Client, _ *sip.Request) error { return nil }

// SendMANSCDP sends a MESSAGE carrying a MANSCDP body to target (device or channel) at peer and
// waits for the device's acknowledgement; a non-2xx answer is an error.
func (s *Server) SendMANSCDP(ctx context.Context, peer Peer, target string, body []byte) error {
	req, err := s.NewRequest(sip.MESSAGE, peer, target, ContentTypeMANSCDP, body)
	if err != nil {
		return err
	}
	res, err := s.Do(ctx, req)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return &StatusError{Method: "MESSAGE", Code: int(res.StatusCode), Reason: res.Reason}
	}
	return nil
}

// StatusError is a non-2xx final answer to a request we sent.
type StatusError struct {
	Method string
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("gb28181: %s answered %d %s", e.Method, e.Code, e.Reason)
}

// DoDigest answers a 401/407 challenge res to req with Digest credentials (username, password) and
// sends req again (new branch, next CSeq), returning the final response. Used for our REGISTER upward.
func (s *Server) DoDigest(ctx context.Context, req *sip.Request, res *sip.Response, username, password string) (*sip.Response, error) {
	hdrName, authName := "WWW-Authenticate", "Authorization"
	if res.StatusCode == sip.StatusProxyAuthRequired {
		hdrName, authName = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(hdrName)
	if h == nil {
		return nil, fmt.Errorf("gb28181: %d without %s", res.StatusCode, hdrName)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return nil, fmt.Errorf("gb28181: challenge: %w", err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: req.Method.String(), URI: req.Recipient.Addr(), Username: username, Password: password})
	if err != nil {
		return nil, fmt.Errorf("gb28181: digest: %w", err)
	}
	req.RemoveHeader("Authorization")
	req.RemoveHeader("Proxy-Authorization")
	req.AppendHeader(sip.NewHeader(authName, cred.String()))
	if cseq := req.CSeq(); cseq != nil {
		cseq.SeqNo++
	}
	if via := req.Via(); via != nil {
		via.Params.Add("branch", sip.GenerateBranchN(16))
	}
	return s.Do(ctx, req)
}
