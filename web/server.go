package web

import (
	"embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
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
	// PointChanged and PointDeleted keep the streaming hub in step with the catalog.
	PointChanged func(catalog.Point)
	PointDeleted func(id string)
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
	// MaxImportBytes bounds a points or regions import body; 0 means 64 MiB.
	MaxImportBytes int64
	Logger         *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	d        Deps
	log      *slog.Logger
	engine   *gin.Engine
	throttle *accounts.Throttle

	assets         map[string]*uiAsset // the browser app
	metricsHandler http.Handler        // /metrics, when Deps.Metrics is set
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
	s := &Server{d: d, log: d.Logger, engine: gin.New(), throttle: d.Throttle}
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
	s.assets = assets
	if d.Metrics != nil {
		s.metricsHandler = promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{})
	}
	// Every route comes from the table in routes.go, behind its rule.
	s.registerRoutes()
	return s
}

// metrics answers GET /metrics.
func (s *Server) metrics(c *gin.Context) { s.metricsHandler.ServeHTTP(c.Writer, c.Request) }

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
