package streaming

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// RTSP actions an Authorizer decides on.
const (
	ActionRead    = "read"
	ActionPublish = "publish"
)

// Errors an Authorizer returns.
var (
	ErrUnauthenticated = errors.New("credentials missing or wrong")
	ErrForbidden       = errors.New("not allowed")
)

// RTSPCredentials are what an RTSP client presented.
type RTSPCredentials struct {
	// Username is empty when no credentials were sent.
	Username string
	// Method is "basic" or "digest".
	Method   string
	ClientIP net.IP

	password string
	conn     *gortsplib.ServerConn
	req      *base.Request
}

// BasicPassword is the cleartext password when Basic auth was used.
func (c *RTSPCredentials) BasicPassword() (string, bool) {
	return c.password, c.Method == "basic"
}

// VerifySecret checks the credentials against a shared secret: it works for
// Digest (which never reveals the secret) and Basic alike.
func (c *RTSPCredentials) VerifySecret(secret string) bool {
	if secret == "" || c.Username == "" {
		return false
	}
	return c.conn.VerifyCredentials(c.req, c.Username, secret)
}

// Authorizer decides who may read and publish over RTSP. It is implemented
// outside this package, by the code that owns accounts and grants.
type Authorizer interface {
	// AuthenticateRTSP returns the user the credentials prove, or ErrUnauthenticated.
	AuthenticateRTSP(c *RTSPCredentials) (user string, err error)
	// AuthorizeRTSP returns nil if user may do action on point, ErrForbidden,
	// or ErrUnknownPoint.
	AuthorizeRTSP(user, action, pointID string) error
}

// CredentialNamer is an Authorizer that also names the credential a client
// presents, so the session it opens can be ended when that credential is
// revoked or changed (see RTSPSession.Credential).
type CredentialNamer interface {
	// RTSPCredential names, without revealing it, the credential c
	// presents. It is asked before AuthenticateRTSP, so a credential
	// changed in between names the old one, and the session ends.
	RTSPCredential(c *RTSPCredentials) string
}

// RTSPServerConfig configures the RTSP server.
type RTSPServerConfig struct {
	Address string
	// TLS, when set, makes the listener speak RTSPS only.
	TLS         *tls.Config
	Authorizer  Authorizer
	ReadTimeout time.Duration
	Logger      *slog.Logger
	// OnSession, when set, is told when a reader starts playing or a
	// publisher starts recording, when that session ends, and when a
	// reader is refused by Limits (for audit). It is called from RTSP
	// handlers and must not block.
	OnSession func(RTSPSessionEvent)
	// Limits, when set, caps concurrent reads per user and per client
	// address; a reader beyond a cap is answered 453 Not Enough Bandwidth.
	// Publishers are not counted.
	Limits *ViewLimits
}

// RTSPSession is a playing reader or a recording publisher.
type RTSPSession struct {
	PointID   string
	User      string
	Publisher bool
	ClientIP  net.IP
	Started   time.Time
	// Credential names what the client proved when it opened the session
	// (from CredentialNamer; "" when the Authorizer names none).
	Credential string

	sess *gortsplib.ServerSession
	end  *endReason
}

// Close ends the session (the client sees the connection close).
func (s RTSPSession) Close() { s.End(EndClosed) }

// End ends the session for reason, which the "stop" event reports; the
// first reason given wins.
func (s RTSPSession) End(reason string) {
	s.end.set(reason)
	s.sess.Close()
}

// endReason is why an RTSP session is being ended, shared by the copies of
// its RTSPSession.
type endReason struct {
	mu     sync.Mutex
	reason string
}

func (e *endReason) set(reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reason == "" {
		e.reason = reason
	}
}

func (e *endReason) get() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reason
}

// RTSPSessionEvent reports a session starting ("start"), ending ("stop"), or
// a reader refused before it started ("refused").
type RTSPSessionEvent struct {
	Kind    string
	Session RTSPSession
	// Duration is set on "stop".
	Duration time.Duration
	// Reason is set on "stop" (an End… constant or the reason given to
	// End) and on "refused" ("cap").
	Reason string
	// Limit is the cap that refused a reader ("refused").
	Limit *LimitError
}

// RTSPServer accepts publishers (ANNOUNCE/RECORD) and readers
// (DESCRIBE/SETUP/PLAY) at rtsp://host:port/{pointID}.
type RTSPServer struct {
	hub  *Hub
	cfg  RTSPServerConfig
	log  *slog.Logger
	srv  *gortsplib.Server
	addr string

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	sessions map[*gortsplib.ServerSession]RTSPSession
}

// Sessions lists the readers playing and the publishers recording now.
func (s *RTSPServer) Sessions() []RTSPSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RTSPSession, 0, len(s.sessions))
	for _, rs := range s.sessions {
		out = append(out, rs)
	}
	return out
}

func (s *RTSPServer) sessionStarted(sess *gortsplib.ServerSession, conn *gortsplib.ServerConn, path string, id identity, publisher bool) {
	rs := RTSPSession{PointID: pointFromPath(path), User: id.user, Credential: id.credential, Publisher: publisher,
		Started: time.Now(), ClientIP: clientIP(conn), sess: sess, end: &endReason{}}
	s.mu.Lock()
	s.sessions[sess] = rs
	s.mu.Unlock()
	if s.cfg.OnSession != nil {
		s.cfg.OnSession(RTSPSessionEvent{Kind: "start", Session: rs})
	}
}

func (s *RTSPServer) sessionEnded(sess *gortsplib.ServerSession) {
	s.mu.Lock()
	rs, ok := s.sessions[sess]
	delete(s.sessions, sess)
	s.mu.Unlock()
	if ok && s.cfg.OnSession != nil {
		reason := rs.end.get()
		if reason == "" {
			reason = EndDisconnected
		}
		s.cfg.OnSession(RTSPSessionEvent{Kind: "stop", Session: rs, Duration: time.Since(rs.Started), Reason: reason})
	}
}

// refused reports a reader turned away by a cap.
func (s *RTSPServer) refused(conn *gortsplib.ServerConn, path string, id identity, lim *LimitError) {
	s.log.Info("rtsp read refused: too many views", "point", pointFromPath(path), "user", id.user,
		"ip", clientIP(conn), "scope", lim.Scope, "limit", lim.Limit)
	if s.cfg.OnSession != nil {
		s.cfg.OnSession(RTSPSessionEvent{Kind: "refused", Reason: "cap", Limit: lim,
			Session: RTSPSession{PointID: pointFromPath(path), User: id.user, ClientIP: clientIP(conn), Started: time.Now()}})
	}
}

// reserveView takes a view slot for a reader, or answers 453 and reports
// the refusal.
func (s *RTSPServer) reserveView(conn *gortsplib.ServerConn, path string, id identity) (func(), *base.Response, error) {
	ip := ""
	if a := clientIP(conn); a != nil {
		ip = a.String()
	}
	release, err := s.cfg.Limits.Reserve(id.user, ip)
	if err != nil {
		var lim *LimitError
		if errors.As(err, &lim) {
			s.refused(conn, path, id, lim)
		}
		return nil, &base.Response{StatusCode: base.StatusNotEnoughBandwidth}, err
	}
	return release, nil, nil
}

func clientIP(conn *gortsplib.ServerConn) net.IP {
	if tcp, ok := conn.NetConn().RemoteAddr().(*net.TCPAddr); ok {
		return tcp.IP
	}
	return nil
}

// connState is kept per RTSP connection.
type connState struct {
	mu    sync.Mutex
	basic map[string]identity // Authorization header → proven identity (Basic only)
}

// identity is who a request proved to be, and with what.
type identity struct {
	user       string
	credential string
}

// sessionState is kept per RTSP session.
type sessionState struct {
	identity
	publisher bool
	stream    *Stream
	release   func()
	// unreserve gives a reader's view slot back.
	unreserve func()
}

// NewRTSPServer creates and starts an RTSP server on cfg.Address.
func NewRTSPServer(hub *Hub, cfg RTSPServerConfig) (*RTSPServer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	s := &RTSPServer{hub: hub, cfg: cfg, log: cfg.Logger, sessions: map[*gortsplib.ServerSession]RTSPSession{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = &gortsplib.Server{
		Handler:      s,
		RTSPAddress:  cfg.Address,
		TLSConfig:    cfg.TLS,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.ReadTimeout,
		// Queue room for ~4 s of a 4 Mbit/s stream per RTSP reader.
		WriteQueueSize: 2048,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				s.addr = ln.Addr().String()
			}
			return ln, err
		},
	}
	if cfg.TLS != nil {
		// Inside TLS, Basic is safe and lets people use their password;
		// clients that see Digest offered prefer it, and Digest can only
		// check the stream key.
		s.srv.AuthMethods = []auth.VerifyMethod{auth.VerifyMethodBasic}
	}
	if err := s.srv.Start(); err != nil {
		return nil, err
	}
	hub.setRTSPServer(s.srv)
	return s, nil
}

// Addr is the address the server listens on.
func (s *RTSPServer) Addr() string {
	return s.addr
}

// Close stops the server and ends its sessions.
func (s *RTSPServer) Close() {
	s.cancel()
	s.hub.setRTSPServer(nil)
	for _, rs := range s.Sessions() {
		rs.end.set(EndShutdown)
	}
	s.srv.Close()
}

// requestContext bounds waits inside RTSP handlers by the server's life.
func (s *RTSPServer) requestContext() context.Context { return s.ctx }

// pointFromPath maps an RTSP URL path to its hub path key: "/{point}" and
// "/{point}/trackID=0" to the main profile, "/{point}/sub[/…]" to the sub
// profile (see PathKey).
func pointFromPath(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) >= 2 && segs[1] == ProfileSub {
		return PathKey(segs[0], ProfileSub)
	}
	return segs[0]
}

func statusFor(err error) base.StatusCode {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return base.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return base.StatusForbidden
	case errors.Is(err, ErrUnknownPoint):
		return base.StatusNotFound
	case errors.Is(err, ErrStartTimeout):
		return base.StatusGatewayTimeout
	case errors.Is(err, ErrNotPublishing):
		return base.StatusServiceUnavailable
	case errors.Is(err, ErrTooManyViews):
		return base.StatusNotEnoughBandwidth
	}
	return base.StatusBadRequest
}

// check authenticates and authorizes one request.
func (s *RTSPServer) check(conn *gortsplib.ServerConn, req *base.Request, action, pointID string) (identity, error) {
	if s.cfg.Authorizer == nil {
		return identity{}, ErrForbidden
	}
	hdr := req.Header["Authorization"]
	cs, _ := conn.UserData().(*connState)
	if cs == nil {
		cs = &connState{basic: map[string]identity{}}
		conn.SetUserData(cs)
	}
	var id identity
	if len(hdr) == 1 {
		cs.mu.Lock()
		id = cs.basic[hdr[0]]
		cs.mu.Unlock()
	}
	if id.user == "" {
		creds := &RTSPCredentials{conn: conn, req: req, ClientIP: clientIP(conn)}
		var a headers.Authorization
		if len(hdr) > 0 && a.Unmarshal(hdr) == nil {
			creds.Username = a.Username
			if a.Method == headers.AuthMethodBasic {
				creds.Method, creds.password = "basic", a.BasicPass
			} else {
				creds.Method = "digest"
			}
		}
		if creds.Username == "" {
			// Makes gortsplib generate the nonce it will send with the 401.
			conn.VerifyCredentials(req, "-", "-")
			return identity{}, ErrUnauthenticated
		}
		var credential string
		if n, ok := s.cfg.Authorizer.(CredentialNamer); ok {
			credential = n.RTSPCredential(creds)
		}
		u, err := s.cfg.Authorizer.AuthenticateRTSP(creds)
		if err != nil {
			conn.VerifyCredentials(req, "-", "-")
			s.log.Info("rtsp authentication failed", "user", creds.Username, "ip", creds.ClientIP, "point", pointID)
			return identity{}, ErrUnauthenticated
		}
		id = identity{user: u, credential: credential}
		if creds.Method == "basic" {
			cs.mu.Lock()
			cs.basic[hdr[0]] = id
			cs.mu.Unlock()
		}
	}
	if err := s.cfg.Authorizer.AuthorizeRTSP(id.user, action, pointID); err != nil {
		return id, err
	}
	return id, nil
}

func failResponse(err error) (*base.Response, error) {
	code := statusFor(err)
	if code == base.StatusUnauthorized {
		return &base.Response{StatusCode: code}, liberrors.ErrServerAuth{}
	}
	return &base.Response{StatusCode: code}, err
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (s *RTSPServer) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	st, _ := ctx.Session.UserData().(*sessionState)
	if st != nil && st.unreserve != nil {
		// Before the session leaves Sessions: whoever sees it gone may
		// count on its slot being free.
		st.unreserve()
	}
	s.sessionEnded(ctx.Session)
	if st == nil {
		return
	}
	if st.publisher {
		if p, err := s.hub.path(pointFromPath(ctx.Session.SetuppedPath())); err == nil {
			p.onSourceLost(ctx.Session, ctx.Error)
		} else if st.stream != nil {
			st.stream.detach()
		}
		s.log.Info("publisher left", "user", st.user, "err", ctx.Error)
	}
	if st.release != nil {
		st.release()
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *RTSPServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	id := pointFromPath(ctx.Path)
	who, err := s.check(ctx.Conn, ctx.Request, ActionRead, id)
	if err != nil {
		res, err := failResponse(err)
		return res, nil, err
	}
	// A DESCRIBE may start a camera: it holds a view slot while it does,
	// so a reader at its cap cannot start cameras with DESCRIBEs alone.
	unreserve, res, err := s.reserveView(ctx.Conn, ctx.Path, who)
	if err != nil {
		return res, nil, err
	}
	defer unreserve()
	// Starts an on-demand source; the idle grace keeps it up until SETUP.
	stream, release, err := s.hub.Acquire(s.requestContext(), id)
	if err != nil {
		res, err := failResponse(err)
		return res, nil, err
	}
	defer release()
	rs := stream.rtspStream()
	if rs == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, errors.New("source is reconnecting")
	}
	return &base.Response{StatusCode: base.StatusOK}, rs, nil
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce.
func (s *RTSPServer) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	id := pointFromPath(ctx.Path)
	who, err := s.check(ctx.Conn, ctx.Request, ActionPublish, id)
	if err != nil {
		return failResponse(err)
	}
	p, err := s.hub.path(id)
	if err != nil {
		return failResponse(ErrUnknownPoint)
	}
	if err := p.setPublisher(ctx.Session); err != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, err
	}
	stream, err := p.onSourceReady(ctx.Session, ctx.Description)
	if err != nil {
		p.onSourceLost(ctx.Session, err)
		return &base.Response{StatusCode: base.StatusUnsupportedMediaType}, err
	}
	ctx.Session.SetUserData(&sessionState{identity: who, publisher: true, stream: stream})
	s.log.Info("publisher announced", "point", id, "user", who.user, "tracks", len(stream.Tracks))
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (s *RTSPServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	id := pointFromPath(ctx.Path)
	who, err := s.check(ctx.Conn, ctx.Request, ActionRead, id)
	if err != nil {
		res, err := failResponse(err)
		return res, nil, err
	}
	st, _ := ctx.Session.UserData().(*sessionState)
	if st == nil {
		// The reader holds its view slot, taken before the camera is
		// asked for, until its session closes.
		unreserve, res, err := s.reserveView(ctx.Conn, ctx.Path, who)
		if err != nil {
			return res, nil, err
		}
		stream, release, err := s.hub.Acquire(s.requestContext(), id)
		if err != nil {
			unreserve()
			res, err := failResponse(err)
			return res, nil, err
		}
		st = &sessionState{identity: who, stream: stream, release: release, unreserve: unreserve}
		ctx.Session.SetUserData(st)
	}
	rs := st.stream.rtspStream()
	if rs == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, errors.New("source is reconnecting")
	}
	return &base.Response{StatusCode: base.StatusOK}, rs, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (s *RTSPServer) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	if st, _ := ctx.Session.UserData().(*sessionState); st != nil {
		s.log.Info("rtsp reader started", "point", pointFromPath(ctx.Path), "user", st.user)
		s.sessionStarted(ctx.Session, ctx.Conn, ctx.Path, st.identity, false)
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord.
func (s *RTSPServer) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	st, _ := ctx.Session.UserData().(*sessionState)
	if st == nil || !st.publisher {
		return &base.Response{StatusCode: base.StatusBadRequest}, errors.New("RECORD without ANNOUNCE")
	}
	stream := st.stream
	s.sessionStarted(ctx.Session, ctx.Conn, ctx.Path, st.identity, true)
	ctx.Session.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		stream.writeRTP(m, pkt)
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}
