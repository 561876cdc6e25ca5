package gb28181

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/streaming"
)

// CascadeAccess is what the cascade asks permissions, through the
// platform's account: which points it may list, and whether it may view
// one now. It is injected at wiring (server/ implements it with the
// Decider); the cascade decides nothing itself.
type CascadeAccess interface {
	// PointsVisibleTo returns the points account may view, in a stable
	// order; none for an unknown, disabled or non-platform account.
	PointsVisibleTo(account string) []catalog.Point
	// CanView reports whether account may view pointID now.
	CanView(account, pointID string) bool
}

// CascadeStreams hands out a point's live stream (streaming.Hub fits).
type CascadeStreams interface {
	Acquire(ctx context.Context, pointID string) (*streaming.Stream, func(), error)
}

// CascadeConfig configures a Cascade.
type CascadeConfig struct {
	Access  CascadeAccess
	Streams CascadeStreams
	// Audit records registrations upward and every view the platforms
	// open (view.start / view.stop with the platform account as actor).
	Audit *audit.Log
	// CatalogPage is how many items one Catalog answer MESSAGE carries; 0 means 4.
	CatalogPage int
	// RecheckInterval is how often live upstream views are checked against
	// the grants; 0 means 2 s, as for every other view.
	RecheckInterval time.Duration
	// MediaTimeout bounds how long a TCP-passive view waits for the
	// platform to connect; 0 means 10 s.
	MediaTimeout time.Duration
	// MaxViewsPerPlatform bounds the live streams one platform may hold
	// at once (a city video wall is large, but not unbounded); 0 means 256.
	MaxViewsPerPlatform int
	Logger              *slog.Logger
}

// Cascade registers this server upward to the configured platforms (级联)
// and answers them: their Catalog query with exactly the points their
// account may view, DeviceInfo and DeviceStatus, and INVITE with the point's
// live stream as PS over RTP. It owns one goroutine per platform link and
// one per live view, all ended by Close.
type Cascade struct {
	srv   *Server
	store *PlatformStore
	cfg   CascadeConfig
	log   *slog.Logger

	mu    sync.Mutex
	links map[string]*link // by platform ID
	views map[string]*view // by Call-ID
	kick  chan struct{}

	// unit is what the stored seconds (expiry, keepalive) are counted in:
	// a second, shortened by tests so that many intervals pass quickly.
	unit time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewCascade makes the cascade of srv over the platforms in store. It
// installs its request handlers on srv; Start begins registering.
func NewCascade(srv *Server, store *PlatformStore, cfg CascadeConfig) *Cascade {
	if cfg.CatalogPage <= 0 {
		cfg.CatalogPage = 4
	}
	if cfg.RecheckInterval <= 0 {
		cfg.RecheckInterval = 2 * time.Second
	}
	if cfg.MediaTimeout <= 0 {
		cfg.MediaTimeout = 10 * time.Second
	}
	if cfg.MaxViewsPerPlatform <= 0 {
		cfg.MaxViewsPerPlatform = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = srv.Logger()
	}
	c := &Cascade{srv: srv, store: store, cfg: cfg, log: cfg.Logger, links: map[string]*link{}, views: map[string]*view{},
		kick: make(chan struct{}, 1), unit: time.Second}
	c.ctx, c.cancel = context.WithCancel(srv.Context())
	srv.SetUpstream(c.isUpstream)
	srv.HandleUpstream(sip.MESSAGE, c.onMessage)
	srv.HandleUpstream(sip.INVITE, c.onInvite)
	srv.HandleUpstream(sip.ACK, c.onAck)
	srv.HandleUpstream(sip.BYE, c.onBye)
	srv.HandleUpstream(sip.CANCEL, func(_ context.Context, r *Request) { r.Respond(200, "OK", nil) })
	srv.HandleUpstream(sip.OPTIONS, func(_ context.Context, r *Request) { r.Respond(200, "OK", nil) })
	srv.HandleUpstream(sip.SUBSCRIBE, c.onSubscribe)
	store.OnChange(c.changed)
	return c
}

// Start registers to every enabled platform and follows the store's changes.
func (c *Cascade) Start() {
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.reconcileLoop()
	}()
	go func() {
		defer c.wg.Done()
		c.recheckLoop()
	}()
	c.changed()
}

// Close ends every view (with BYE), unregisters and waits for its goroutines.
func (c *Cascade) Close() {
	c.mu.Lock()
	// Cancelled under mu: an INVITE handler either published its view
	// (and counted itself in wg) before this, or sees the cancel and
	// refuses; none adds to wg once Wait may have begun.
	c.cancel()
	views := make([]*view, 0, len(c.views))
	for _, v := range c.views {
		views = append(views, v)
	}
	c.mu.Unlock()
	for _, v := range views {
		v.end("server_stopped", true)
	}
	c.wg.Wait()
	c.mu.Lock()
	links := c.links
	c.links = map[string]*link{}
	c.mu.Unlock()
	for _, l := range links {
		l.cancel()
		<-l.done
	}
}

// Status says how our registration to platform id stands.
func (c *Cascade) Status(id string) PlatformStatus {
	c.mu.Lock()
	l := c.links[id]
	n := 0
	for _, v := range c.views {
		if v.platform == id {
			n++
		}
	}
	c.mu.Unlock()
	if l == nil {
		return PlatformStatus{Views: n}
	}
	st := l.snapshot()
	st.Views = n
	return st
}

func (c *Cascade) now() time.Time { return c.srv.Config().Now() }

// changed asks the reconcile loop to look at the store again; never blocks.
func (c *Cascade) changed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// reconcileLoop owns c.links' lifecycle: one link per enabled platform, made
// again whenever its configuration changes.
func (c *Cascade) reconcileLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		}
		recs, err := c.store.all()
		if err != nil {
			c.log.Error("gb28181: reading upstream platforms", "err", err)
			continue
		}
		want := map[string]platformRecord{}
		for _, r := range recs {
			if r.Enabled {
				want[r.ID] = r
			}
		}
		c.mu.Lock()
		var stop []*link
		for id, l := range c.links {
			if r, ok := want[id]; !ok || !sameLinkConfig(l.cfg, r) {
				stop = append(stop, l)
				delete(c.links, id)
			}
		}
		var start []*link
		for id, r := range want {
			if _, ok := c.links[id]; !ok {
				l := newLink(c, r)
				c.links[id] = l
				start = append(start, l)
			}
		}
		c.mu.Unlock()
		for _, l := range stop {
			l.cancel()
			<-l.done
			// Its views end with it: a platform removed or re-pointed
			// must not keep streams it was given before.
			c.endViewsOf(l.cfg.ID, "platform_changed")
		}
		for _, l := range start {
			ctx, cancel := context.WithCancel(c.ctx)
			l.cancel = cancel
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				l.run(ctx)
			}()
		}
	}
}

func sameLinkConfig(a, b platformRecord) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	a.Name, b.Name = "", ""
	return a.ID == b.ID && a.Domain == b.Domain && a.Address == b.Address && a.Transport == b.Transport &&
		a.LocalID == b.LocalID && a.Expiry == b.Expiry && a.Keepalive == b.Keepalive && a.Account == b.Account &&
		a.Password == b.Password && slicesEqual(a.MediaNetworks, b.MediaNetworks)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// link returns the link of platform id, if it is enabled.
func (c *Cascade) link(id string) *link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.links[id]
}

// isUpstream tells the server which requests are the platforms'.
func (c *Cascade) isUpstream(fromID string) bool {
	return c.link(fromID) != nil
}

// platformOf returns the link r comes from, or answers 403 and returns nil:
// the From ID must name an enabled platform and the request must come
// from that platform's own address.
func (c *Cascade) platformOf(r *Request) *link {
	l := c.link(r.FromID)
	if l == nil || !l.fromPlatform(hostOf(r.Source)) {
		c.log.Warn("gb28181: request claiming an upstream platform from elsewhere refused",
			"platform", r.FromID, "source", r.Source, "method", r.SIP.Method.String())
		r.Respond(403, "Forbidden", nil)
		return nil
	}
	return l
}

// onSubscribe accepts a platform's Catalog subscription so it stops
// asking, without promising notifications: it sees changes at its next
// Catalog query (platforms query periodically).
func (c *Cascade) onSubscribe(_ context.Context, r *Request) {
	if c.platformOf(r) == nil {
		return
	}
	exp := sip.ExpiresHeader(3600)
	if h := r.SIP.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(h.Value()); err == nil && n >= 0 && n <= 86400 {
			exp = sip.ExpiresHeader(uint32(n))
		}
	}
	r.Respond(200, "OK", nil, &exp)
}

func (c *Cascade) audit(user, action, ip string, detail map[string]string) {
	c.auditRecord(audit.Record{User: user, Action: action, ClientIP: ip, Detail: detail})
}

func (c *Cascade) auditRecord(r audit.Record) {
	if c.cfg.Audit == nil {
		return
	}
	if _, err := c.cfg.Audit.Append(r); err != nil {
		c.log.Warn("gb28181: audit", "action", r.Action, "err", err)
	}
}
