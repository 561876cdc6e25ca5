package web

import (
	"embed"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/prefs"
	"github.com/tianyan/vms/store"
	"github.com/tianyan/vms/streaming"
)

//go:embed ui
var uiFiles embed.FS

// maxJSONBody bounds JSON request bodies.
const maxJSONBody = 1 << 20

// Deps are the domain services the API drives.
type Deps struct {
	Catalog     *catalog.Catalog
	Accounts    *accounts.Accounts
	Permissions *permissions.Decider
	Hub         *streaming.Hub
	WebRTC      *streaming.WebRTC
	// ViewLimits caps concurrent views per user and per client address
	// (shared with the RTSP server); WHEP beyond a cap is 429. Nil caps
	// nothing.
	ViewLimits *streaming.ViewLimits
	// Metrics is served at /metrics (admins only).
	Metrics *prometheus.Registry
	// Audit receives logins, views and every change.
	Audit *audit.Log
	// Store is snapshotted by GET /api/v1/backup.
	Store *store.DB
	// Agents are the edge agents (enrollment, control links, camera
	// actions); nil serves no agent routes.
	Agents *agents.Registry
	// AgentRTSPURL tells an agent where to publish, from its connect request.
	AgentRTSPURL func(r *http.Request) string
	// PTZ arbitrates between users steering the same camera.
	PTZ *permissions.PTZArbiter
	// GBLive steers the channels of GB/T 28181 devices (PTZ and presets
	// through DeviceControl); nil leaves GB points without PTZ.
	GBLive *gb28181.Live
	// PointChanged and PointDeleted keep the streaming hub in step with the catalog.
	PointChanged func(catalog.Point)
	PointDeleted func(id string)
	// GB is the GB/T 28181 server (devices registering to us, their channels, mapping rules); nil
	// serves no /api/v1/gb routes.
	GB *gb28181.Server
	// Prefs keeps users' saved wall layouts and favourites.
	Prefs *prefs.Prefs
	// UI is what the browser app is told about this deployment (map tiles).
	UI UIConfig
	// FrameAncestors are the origins allowed to frame the web app (the
	// IOC's dashboards); empty forbids framing (frame-ancestors 'none').
	FrameAncestors []string
	// SecureCookies marks the session cookie Secure (set when serving TLS).
	SecureCookies bool
	// Throttle slows and then locks repeated failed logins per user and per
	// client address. It is shared with the other doors that take a
	// password (RTSP), so a guess counts the same whichever door it knocks
	// on; nil makes one from LoginThrottle.
	Throttle *accounts.Throttle
	// LoginThrottle configures the throttle made when Throttle is nil; zero
	// fields take accounts.DefaultThrottleConfig.
	LoginThrottle accounts.ThrottleConfig
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For is believed. Empty trusts none: the client address is
	// the TCP peer, so nobody can pick the address the login throttle and
	// the audit log see by sending a header.
	TrustedProxies []string
	// GBPlatforms are the upstream GB/T 28181 platforms we register to
	// (级联); nil serves no /api/v1/gb/platforms routes.
	GBPlatforms *gb28181.PlatformStore
	// GBPlatformStatus says how our registration to a platform stands;
	// nil shows every platform unregistered.
	GBPlatformStatus func(id string) gb28181.PlatformStatus
	// MaxImportBytes bounds a points or regions import body; 0 means 64 MiB.
	MaxImportBytes int64
	Logger         *slog.Logger
}

// Server is the HTTP API: the route table's routes, each behind its guard,
// answered by one handler type per resource. Each handler takes only the
// narrow interfaces it calls; New wires them from Deps.
type Server struct {
	d      Deps
	log    *slog.Logger
	engine *gin.Engine

	// What the guard asks: who holds a token, what they may do, which
	// point a path names.
	tokens    tokenResolver
	decide    guardDecider
	findPoint pointLookup

	// The resources.
	auth      *authHandler
	self      *selfHandler
	users     *userHandler
	grants    *grantHandler
	access    *accessHandler
	points    *pointHandler
	streams   *streamHandler
	regions   *regionHandler
	imports   *importHandler
	audit     *auditHandler
	agents    *agentHandler
	agentPage *agentPageHandler
	gbDevices *gbDeviceHandler
	gbLive    *gbLiveHandler
	prefs     *prefsHandler
	meta      *metaHandler
	ops       *opsHandler
	ui        *uiHandler
	platforms *platformHandler
}

// tokenResolver finds the user a session token or API token belongs to.
type tokenResolver interface {
	Resolve(token string) (accounts.User, error)
}

// New builds the routes.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	gin.SetMode(gin.ReleaseMode)
	if d.MaxImportBytes <= 0 {
		d.MaxImportBytes = defaultMaxImportBytes
	}
	if d.Throttle == nil {
		d.Throttle = accounts.NewThrottle(d.LoginThrottle)
	}
	s := &Server{d: d, log: d.Logger, engine: gin.New()}
	e := s.engine
	// gin trusts every proxy unless told otherwise, which would let any
	// client choose its own address with X-Forwarded-For.
	if err := e.SetTrustedProxies(d.TrustedProxies); err != nil {
		s.log.Error("bad trusted proxies; trusting none", "err", err)
		_ = e.SetTrustedProxies(nil)
	}
	e.Use(gin.Recovery(), s.accessLog(),
		securityHeaders(contentSecurityPolicy(d.UI, d.FrameAncestors), len(d.FrameAncestors) > 0),
		requireDocumentedBody(apiOps), compressLists())
	e.HandleMethodNotAllowed = true
	e.NoRoute(func(c *gin.Context) { fail(c, http.StatusNotFound, "not_found", "no such endpoint") })
	e.NoMethod(func(c *gin.Context) { fail(c, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed") })

	assets, err := embeddedUI()
	if err != nil {
		panic("web: reading embedded ui: " + err.Error()) // a build-time fact, not a runtime condition
	}
	s.wire(assets)
	// Every route comes from the table in routes.go, behind its rule.
	s.registerRoutes()
	return s
}

// wire makes each resource's handler from s.d, handing it only what it
// calls. A dependency Deps leaves nil reaches a handler as a nil
// interface (never a nil pointer inside one), so "absent" reads the same.
func (s *Server) wire(assets map[string]*uiAsset) {
	d, log := s.d, s.log
	trail := auditTrail{to: present[auditAppender](d.Audit), log: log}
	decider := d.Permissions
	creds := credentials{sessions: present[sessionStore](d.Accounts), trail: trail, log: log}

	s.tokens = present[tokenResolver](d.Accounts)
	s.decide = present[guardDecider](decider)
	s.findPoint = present[pointLookup](d.Catalog)

	s.auth = &authHandler{accounts: present[loginAccounts](d.Accounts), throttle: d.Throttle, trail: trail, log: log,
		agents: present[agentAuthenticator](d.Agents), secureCookies: d.SecureCookies}
	s.self = &selfHandler{accounts: present[selfAccounts](d.Accounts), decide: present[systemDecider](decider), creds: creds, throttle: d.Throttle, trail: trail, log: log, secureCookies: d.SecureCookies}
	s.users = &userHandler{users: present[userStore](d.Accounts), creds: creds, grants: present[grantRemover](decider),
		decide: present[systemDecider](decider), trail: trail, log: log}
	s.grants = &grantHandler{grants: present[grantStore](decider), trail: trail, log: log}
	s.access = &accessHandler{points: present[accessPoints](d.Catalog), users: present[accessUsers](d.Accounts), decide: present[accessDecider](decider), log: log}
	s.points = &pointHandler{points: present[pointStore](d.Catalog), decide: present[pointDecider](decider), agents: present[agentChecker](d.Agents),
		trail: trail, log: log, changed: d.PointChanged, deleted: d.PointDeleted}
	s.streams = &streamHandler{hub: present[streamHub](d.Hub), rtc: present[webRTCSessions](d.WebRTC),
		// A nil *ViewLimits caps nothing, so it is handed on as it is.
		limits: d.ViewLimits, decide: present[systemDecider](decider), agents: present[agentPresence](d.Agents), trail: trail, log: log}
	s.regions = &regionHandler{regions: present[regionStore](d.Catalog), trail: trail, log: log}
	s.imports = &importHandler{catalog: present[transferStore](d.Catalog), decide: present[transferDecider](decider), trail: trail, log: log,
		maxBytes: d.MaxImportBytes, changed: d.PointChanged}
	s.audit = &auditHandler{records: present[auditReader](d.Audit), decide: present[auditScoper](decider), points: present[scopedPoints](d.Catalog), log: log}
	s.agents = &agentHandler{agents: present[agentRegistry](d.Agents), regions: present[regionLookup](d.Catalog), cameras: present[cameraRelay](d.Agents), leases: present[ptzLeases](d.PTZ),
		decide: present[ptzDecider](decider), gb: present[gbPTZ](d.GBLive), throttle: d.Throttle, trail: trail, log: log, rtspURL: d.AgentRTSPURL}
	s.agentPage = &agentPageHandler{agents: present[pageAgents](d.Agents), tokens: present[tokenResolver](d.Accounts), points: present[pointLookup](d.Catalog),
		decide: present[pageDecider](decider), log: log}
	s.gbDevices = &gbDeviceHandler{gb: present[gbDeviceAdmin](d.GB), trail: trail, log: log}
	s.gbLive = &gbLiveHandler{live: present[gbQueries](d.GBLive), log: log}
	s.prefs = &prefsHandler{prefs: present[prefsStore](d.Prefs), points: present[pointLookup](d.Catalog), decide: present[viewDecider](decider)}
	s.meta = &metaHandler{ui: d.UI, ice: present[iceSource](d.WebRTC)}
	s.ops = &opsHandler{store: present[backupSource](d.Store), trail: trail, log: log}
	if d.Metrics != nil {
		s.ops.metrics = promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{})
	}
	s.ui = &uiHandler{assets: assets}
	s.platforms = &platformHandler{platforms: present[platformStore](d.GBPlatforms), accounts: present[platformAccounts](d.Accounts),
		status: d.GBPlatformStatus, trail: trail, log: log}
}

// resources are the handlers at picks a route's handler from.
func (s *Server) resources() []any {
	return []any{s.auth, s.self, s.users, s.grants, s.access, s.points, s.streams, s.regions,
		s.imports, s.audit, s.agents, s.agentPage, s.gbDevices, s.gbLive, s.prefs, s.meta, s.ops, s.ui, s.platforms}
}

// present is v, or I's nil when v holds a nil pointer: a nil pointer
// inside an interface is not a nil interface, and handlers test optional
// parts with == nil. Passing the part as I makes the compiler check that
// it has every method I names.
func present[I any](v I) I {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		var none I
		return none
	}
	return v
}

// Routes lists every registered route (the OpenAPI test compares them).
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }

// Handler is the HTTP handler to serve.
func (s *Server) Handler() http.Handler { return s.engine }

func (s *Server) accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		// Paths only: queries and bodies may carry secrets.
		s.log.Debug("http", "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", c.Writer.Status(), "ms", time.Since(start).Milliseconds(), "ip", c.ClientIP())
	}
}
