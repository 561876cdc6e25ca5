// Package gb28181 speaks GB/T 28181 signalling (SIP) for Tianyan: devices and lower platforms register
// to the Server, send keepalives and catalogs, and are asked for live media; upper platforms receive
// our own registration and catalog (the cascade).
//
// The package owns the SIP listener (UDP and TCP on one address), the dispatch of incoming requests,
// the registry of devices and the addresses their REGISTER came from (answers and later requests go
// back to that source address and transport, so NAT'd devices work), and helpers to send requests to
// a device with a timeout. Parts that build on it (live media, the cascade) plug in through Handle,
// HandleUpstream, HandleCmd, SetUpstream and Expect without editing the core.
//
// It must never decide grants itself: which points an upper platform may list or view is asked
// through an interface injected at wiring (the permissions package decides). It never imports web.
package gb28181

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/store"
)

// Defaults applied by New for zero Config fields.
const (
	DefaultKeepaliveInterval = 60 * time.Second
	DefaultCatalogInterval   = time.Hour
	DefaultRequestTimeout    = 5 * time.Second
	DefaultMaxBody           = 256 << 10
	DefaultRegisterExpiry    = 3600 * time.Second
	// MissedKeepalives is how many keepalive intervals may pass silently before a device is offline.
	MissedKeepalives = 3
)

// Config configures a Server. ID and Domain are required; zero durations take the defaults above.
type Config struct {
	// ID is our 20-digit SIP server ID (GB/T 28181 编码).
	ID string
	// Domain is our 10-digit SIP domain (usually the first 10 digits of ID).
	Domain string
	// Listen is the host:port listened on for both UDP and TCP; port 0 picks a free port.
	Listen string
	// Advertise is the host put into Via and Contact; "" uses the local address that routes to the peer.
	Advertise string
	// Password is the default device password (devices without their own).
	Password string
	// Realm is the Digest realm; "" means Domain.
	Realm string
	// KeepaliveInterval is the interval assumed for devices that do not report their own.
	KeepaliveInterval time.Duration
	// CatalogInterval is how often registered devices are asked for their catalog again.
	CatalogInterval time.Duration
	// RegisterExpiry caps the Expires a device may ask for (and is used when it asks for none).
	RegisterExpiry time.Duration
	// RequestTimeout bounds every request we send.
	RequestTimeout time.Duration
	// MaxBody bounds SIP message bodies (MANSCDP XML, SDP); larger requests are refused with 413.
	// sipgo's parser refuses whole messages over 64 KiB before that (over TCP it closes the
	// connection).
	MaxBody int
	// MaxTCPConns bounds concurrent TCP connections from devices; more are closed on accept.
	MaxTCPConns int
	// MaxUDPPeers bounds how many UDP source addresses the SIP stack remembers (see
	// restartableConn); 0 means DefaultMaxUDPPeers.
	MaxUDPPeers int
	// TCPIdleTimeout closes a device's TCP connection that sent nothing for this long; writes to a
	// TCP peer that stopped reading fail after RequestTimeout.
	TCPIdleTimeout time.Duration
	// UserAgent is the User-Agent header value.
	UserAgent string
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests may substitute it.
	Now func() time.Time

	// CatalogPageTimeout is how long a paged Catalog answer may pause between pages before the
	// pages so far are taken as a partial answer.
	CatalogPageTimeout time.Duration
	// CatalogConcurrency bounds how many devices are asked for their catalog at once.
	CatalogConcurrency int
	// SubscribeExpiry is the lifetime of our Catalog subscriptions (refreshed at 4/5); 0 means the
	// default and a negative value subscribes to nothing.
	SubscribeExpiry time.Duration

	// Catalog receives the devices' channels as points; nil syncs no catalogs.
	Catalog *catalog.Catalog
	// District is the region code channels without a usable civil code fall back to (created if
	// missing); "" means the first 6 digits of Domain.
	District string
	// OnPointChanged is told every point the catalog sync stored (the server wires its hub paths).
	OnPointChanged func(catalog.Point)

	// DB keeps devices and mapping rules; nil keeps them in memory only (tests of the SIP core).
	DB *store.DB
	// Audit records registrations, refusals and admin changes; nil records nothing.
	Audit *audit.Log
	// Throttle slows down and locks out devices guessing passwords (accounts.Throttle fits);
	// nil means no throttling.
	Throttle Throttle
}

// Throttle is the failed-attempt limiter the server consults before checking a REGISTER's
// credentials: user is "gb:" + device ID + "@" + source address (a lock never reaches the
// device at its own address), ip the source address.
type Throttle interface {
	Check(user, ip string, now time.Time) (wait time.Duration, locked bool)
	Failure(user, ip string, now time.Time) (locked bool)
	Success(user, ip string)
}

func (c *Config) validate() error {
	if !IsID(c.ID) {
		return fmt.Errorf("gb28181: server ID %q is not 20 digits", c.ID)
	}
	if !isDigits(c.Domain, 10) {
		return fmt.Errorf("gb28181: domain %q is not 10 digits", c.Domain)
	}
	if c.Realm == "" {
		c.Realm = c.Domain
	}
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.CatalogInterval <= 0 {
		c.CatalogInterval = DefaultCatalogInterval
	}
	if c.RegisterExpiry <= 0 {
		c.RegisterExpiry = DefaultRegisterExpiry
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = DefaultMaxTCPConns
	}
	if c.MaxUDPPeers <= 0 {
		c.MaxUDPPeers = DefaultMaxUDPPeers
	}
	if c.TCPIdleTimeout <= 0 {
		// Never shorter than the silence that takes a device offline: a quiet but online
		// device keeps its connection.
		c.TCPIdleTimeout = max(DefaultTCPIdleTimeout, (MissedKeepalives+1)*c.KeepaliveInterval)
	}
	if c.CatalogPageTimeout <= 0 {
		c.CatalogPageTimeout = 10 * time.Second
	}
	if c.CatalogConcurrency <= 0 {
		c.CatalogConcurrency = 16
	}
	if c.SubscribeExpiry == 0 {
		c.SubscribeExpiry = time.Hour
	}
	if c.District != "" && !isDigits(c.District, 6) {
		return fmt.Errorf("gb28181: district %q is not a 6-digit region code", c.District)
	}
	if c.UserAgent == "" {
		c.UserAgent = "Tianyan VMS"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// IsID reports whether s is a 20-digit GB/T 28181 ID.
func IsID(s string) bool { return isDigits(s, 20) }

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Handler handles one incoming request. It must answer it (r.Respond) before returning; for INVITE
// that means after the final response.
type Handler func(ctx context.Context, r *Request)

// Server is the GB/T 28181 SIP endpoint: one per process.
type Server struct {
	cfg Config
	log *slog.Logger

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	cli *sipgo.Client

	devices *Registry

	mu         sync.RWMutex
	handlers   map[sip.RequestMethod]Handler // device side
	upstream   map[sip.RequestMethod]Handler // from upper platforms
	cmds       map[string]Handler            // MESSAGE/NOTIFY bodies by CmdType, device side
	isUpstream func(fromID string) bool
	waiters    map[waitKey]map[*waiter]struct{}

	nonceKey []byte // HMAC key of stateless Digest nonces

	rules        *Rules
	applyMu      sync.Mutex // one catalog sync writes at a time
	regionBudget int        // regions the running sync may still create (under applyMu)
	catalogSem   chan struct{}
	notifySem    chan struct{}        // catalog notifications waiting to be applied (bounded backlog)
	querying     map[string]bool      // devices with a catalog query running (under mu)
	catalogAt    map[string]time.Time // last catalog sync per device (under mu)
	charsets     map[string]string    // charset to write to each device (under mu)
	subs         map[string]*subscription

	hostMu    sync.Mutex
	hostCache map[string]string // peer IP -> our local IP towards it

	started  bool
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	udpConn  net.PacketConn
	tcpLn    net.Listener
	udpAddr  *net.UDPAddr
	tcpAddr  *net.TCPAddr
	closeErr error
	closed   sync.Once
}

// New creates a Server; it does not listen until Start.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.ID),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog.New(redactHandler{cfg.Logger.Handler()}).With("sip", "transport"))),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(cfg.Logger.With("sip", "transaction"))))
	if err != nil {
		return nil, fmt.Errorf("gb28181: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(cfg.Logger.With("sip", "server")))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("gb28181: sip server: %w", err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(cfg.Logger.With("sip", "client")))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("gb28181: sip client: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		ua:        ua,
		srv:       srv,
		cli:       cli,
		devices:   newRegistry(),
		handlers:  map[sip.RequestMethod]Handler{},
		upstream:  map[sip.RequestMethod]Handler{},
		cmds:      map[string]Handler{},
		waiters:   map[waitKey]map[*waiter]struct{}{},
		hostCache: map[string]string{},
		querying:  map[string]bool{},
		catalogAt: map[string]time.Time{},
		charsets:  map[string]string{},
		subs:      map[string]*subscription{},
	}
	s.catalogSem = make(chan struct{}, cfg.CatalogConcurrency)
	s.notifySem = make(chan struct{}, maxPendingNotifies)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, m := range []sip.RequestMethod{sip.REGISTER, sip.MESSAGE, sip.NOTIFY, sip.SUBSCRIBE,
		sip.INVITE, sip.ACK, sip.BYE, sip.INFO, sip.CANCEL, sip.OPTIONS} {
		srv.OnRequest(m, s.dispatch)
	}
	srv.OnNoRoute(s.dispatch)
	s.registerHandlers()
	s.catalogHandlers()
	if s.rules, err = newRules(cfg.DB); err != nil {
		ua.Close()
		return nil, fmt.Errorf("gb28181: loading rules: %w", err)
	}
	if err := s.loadDevices(); err != nil {
		ua.Close()
		return nil, fmt.Errorf("gb28181: loading devices: %w", err)
	}
	return s, nil
}

// Config returns the effective configuration (defaults applied).
func (s *Server) Config() Config { return s.cfg }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Rules returns the channel → category mapping rules.
func (s *Server) Rules() *Rules { return s.rules }

// Devices returns the registry of devices that registered to us.
func (s *Server) Devices() *Registry { return s.devices }

// Start listens on cfg.Listen for UDP and TCP and serves until Close or ctx ends.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("gb28181: already started")
	}
	s.started = true
	s.mu.Unlock()

	udpAddr, err := net.ResolveUDPAddr("udp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gb28181: listen address %q: %w", s.cfg.Listen, err)
	}
	var udp *net.UDPConn
	var tcp *net.TCPListener
	// TCP takes the port UDP got, so port 0 yields one port for both; when that port is taken for
	// TCP, an ephemeral choice is made again.
	for attempt := 0; ; attempt++ {
		if udp, err = net.ListenUDP("udp", udpAddr); err != nil {
			return fmt.Errorf("gb28181: listen udp: %w", err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err = net.ListenTCP("tcp", &net.TCPAddr{IP: udpAddr.IP, Port: port, Zone: udpAddr.Zone})
		if err == nil {
			break
		}
		udp.Close()
		if udpAddr.Port != 0 || attempt == 20 {
			return fmt.Errorf("gb28181: listen tcp: %w", err)
		}
	}
	s.udpAddr = udp.LocalAddr().(*net.UDPAddr)
	s.tcpAddr = tcp.Addr().(*net.TCPAddr)
	s.udpConn, s.tcpLn = udp, tcp
	guarded := newGuardListener(tcp, s.cfg.MaxTCPConns, s.cfg.TCPIdleTimeout, s.cfg.RequestTimeout, s.ctx.Done(), func(remote net.Addr) {
		s.log.Warn("gb28181: too many TCP connections; closing a new one", "source", remote.String(), "max", s.cfg.MaxTCPConns)
	})

	s.wg.Add(2)
	rudp := &restartableConn{PacketConn: udp}
	go func() {
		defer s.wg.Done()
		s.serveUDP(rudp)
	}()
	go func() {
		defer s.wg.Done()
		if err := s.srv.ServeTCP(guarded); err != nil && !errors.Is(err, net.ErrClosed) && s.ctx.Err() == nil {
			s.log.Warn("gb28181: tcp serve ended", "err", err)
		}
	}()
	// Requests we send over UDP leave from the listening socket; it must be in sipgo's pool first.
	if err := waitUDPListener(s.ua.TransportLayer(), s.udpAddr.String()); err != nil {
		s.Close()
		return err
	}
	// The caller's ctx ends the server as Close does.
	s.Go(func(sctx context.Context) {
		select {
		case <-ctx.Done():
			go s.Close()
		case <-sctx.Done():
		}
	})
	s.Go(func(ctx context.Context) { s.watchUDPPeers(ctx, rudp) })
	s.Go(s.watchDevices)
	s.Go(s.catalogLoop)
	s.log.Info("gb28181: listening", "udp", s.udpAddr.String(), "tcp", s.tcpAddr.String(), "id", s.cfg.ID, "domain", s.cfg.Domain)
	return nil
}

// UDPAddr is the bound UDP address (nil before Start).
func (s *Server) UDPAddr() *net.UDPAddr { return s.udpAddr }

// TCPAddr is the bound TCP address (nil before Start).
func (s *Server) TCPAddr() *net.TCPAddr { return s.tcpAddr }

// Go runs f in a goroutine owned by the server: ctx ends on Close, and Close waits for f to return.
func (s *Server) Go(f func(ctx context.Context)) {
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

// every calls f every d until ctx is done, on the caller's goroutine.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f()
	}
}

// Context is the server's lifetime: it ends on Close.
func (s *Server) Context() context.Context { return s.ctx }

// Close stops listening, ends every goroutine the server owns and waits for them.
func (s *Server) Close() error {
	s.closed.Do(func() {
		s.mu.Lock()
		s.cancel()
		s.mu.Unlock()
		if s.udpConn != nil {
			s.udpConn.Close()
		}
		if s.tcpLn != nil {
			s.tcpLn.Close()
		}
		s.closeErr = s.ua.Close()
		s.wg.Wait()
	})
	return s.closeErr
}

// Handle registers h for requests of method from devices and lower platforms (not from upstream
// platforms). MESSAGE and NOTIFY are dispatched by CmdType first (HandleCmd); Handle for them is the
// fallback. A later registration for the same method replaces the earlier one.
func (s *Server) Handle(method sip.RequestMethod, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[method] = h
}

// HandleUpstream registers h for requests of method that come from an upstream platform (as decided
// by the function given to SetUpstream).
func (s *Server) HandleUpstream(method sip.RequestMethod, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.upstream[method] = h
}

// HandleCmd registers h for MESSAGE and NOTIFY requests from devices whose MANSCDP body carries
// CmdType cmdType (case-insensitive), e.g. "Keepalive", "Catalog", "DeviceInfo", "MediaStatus".
func (s *Server) HandleCmd(cmdType string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds[strings.ToLower(cmdType)] = h
}

// SetUpstream installs the test that tells requests from upstream platforms (by the From user ID)
// from device requests. nil means no upstream platforms.
func (s *Server) SetUpstream(isUpstream func(fromID string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.isUpstream = isUpstream
}

// waitUDPListener waits until sipgo's UDP transport serves the socket bound to addr, so requests
// routed from it (Route) find it.
func waitUDPListener(tl *sip.TransportLayer, addr string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		if c, err := tl.GetConnection("udp", addr); err == nil && c != nil {
			c.TryClose()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gb28181: udp listener %s not served", addr)
		}
		time.Sleep(time.Millisecond)
	}
}
