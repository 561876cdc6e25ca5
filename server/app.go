package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/prefs"
	"github.com/tianyan/vms/store"
	"github.com/tianyan/vms/streaming"
	"github.com/tianyan/vms/web"
)

// App is a running central server.
type App struct {
	cfg Config
	log *slog.Logger

	DB       *store.DB
	Catalog  *catalog.Catalog
	Accounts *accounts.Accounts
	Audit    *audit.Log
	Prefs    *prefs.Prefs
	Hub      *streaming.Hub
	WebRTC   *streaming.WebRTC
	RTSP     *streaming.RTSPServer
	Agents   *agents.Registry
	// GB is the GB/T 28181 server (nil when --sip is "").
	GB *gb28181.Server
	// GBLive plays GB/T 28181 channels into the hub and steers them (nil
	// with GB).
	GBLive *gb28181.Live
	// CameraNetworks decides which hosts the server connects to for cameras.
	CameraNetworks *cameranet.Policy
	// GBPlatforms are the upstream GB/T 28181 platforms we register to (级联).
	GBPlatforms *gb28181.PlatformStore
	// Cascade registers to them and answers them; nil without a SIP server.
	Cascade *gb28181.Cascade
	// decider makes every access decision (kept for the cascade's wiring).
	decider *permissions.Decider

	bindings *agentBindings

	httpSrv *http.Server
	httpLn  net.Listener
	httpErr chan error

	watchStop, watchDone chan struct{}
	pruneStop, pruneDone chan struct{}
	tls                  bool

	// GeneratedAdminPassword is set when this start created user admin
	// with a generated password; print it once and forget it.
	GeneratedAdminPassword string
}

// SourceOf translates a catalog point's main source into what the hub needs.
func SourceOf(p catalog.Point) streaming.SourceConfig {
	return sourceConfig(p, p.Main)
}

// sourceConfig: a point behind an edge agent is published by the agent on
// demand (the centre cannot reach the camera's LAN); any other point is
// pulled or published as its source says.
func sourceConfig(p catalog.Point, s catalog.Source) streaming.SourceConfig {
	if p.Agent != "" {
		return streaming.SourceConfig{Type: streaming.SourcePublish, OnDemand: true}
	}
	return streaming.SourceConfig{Type: s.Type, URL: s.URL, Transport: s.Transport, OnDemand: p.OnDemand}
}

// syncPoint keeps the hub's paths for p (main, and sub when p has one) in
// step with the catalog.
func (a *App) syncPoint(p catalog.Point) {
	if old := a.bindings.set(p.ID, p.Agent); old != p.Agent && old != "" {
		a.Agents.PointsChanged(old)
	}
	if p.Agent != "" {
		a.Agents.PointsChanged(p.Agent)
	}
	a.Hub.SetPoint(p.ID, a.sourceOf(p, p.Main))
	sub := streaming.PathKey(p.ID, streaming.ProfileSub)
	if p.Sub != nil {
		a.Hub.SetPoint(sub, a.sourceOf(p, *p.Sub))
	} else {
		a.Hub.RemovePoint(sub)
	}
}

func (a *App) removePoint(id string) {
	if old := a.bindings.set(id, ""); old != "" {
		a.Agents.PointsChanged(old)
	}
	a.Hub.RemovePoint(id)
	a.Hub.RemovePoint(streaming.PathKey(id, streaming.ProfileSub))
}

// Start opens the store and starts every listener. On error everything
// already started is closed again.
func Start(cfg Config) (a *App, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	app := &App{cfg: cfg, log: cfg.Logger, httpErr: make(chan error, 1)}
	a = app
	defer func() {
		if err != nil {
			// Not a: every error return has already set it to nil.
			app.Close(context.Background())
			a = nil
		}
	}()

	if a.CameraNetworks, err = cameraNetworks(cfg); err != nil {
		return nil, err
	}
	if a.DB, err = store.Open(cfg.DataDir); err != nil {
		return nil, err
	}
	if a.Catalog, err = catalog.New(a.DB, catalog.WithSourceCheck(a.checkCameraURL)); err != nil {
		return nil, err
	}
	a.Accounts = accounts.New(a.DB, accounts.Options{Argon: cfg.Argon, SeparationOfDuties: cfg.SeparationOfDuties})
	gen, created, err := a.Accounts.EnsureAdmin(cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("create admin: %w", err)
	}
	if created {
		a.GeneratedAdminPassword = gen
	}
	if a.Audit, err = audit.New(a.DB, audit.Options{Retention: cfg.AuditRetention}); err != nil {
		return nil, err
	}
	perm, err := permissions.New(permissions.NewGrants(a.DB), a.Catalog)
	if err != nil {
		return nil, err
	}
	perm.UseDuties(a.Accounts)
	a.decider = perm

	if err := checkTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, err
	}

	var tlsCfg *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		a.tls = true
	}

	points, err := a.Catalog.List()
	if err != nil {
		return nil, err
	}
	a.bindings = newAgentBindings(a.Catalog, points)
	a.Agents = agents.New(a.DB, agents.Options{
		Binding: a.bindings.binding, PointsOf: a.bindings.pointsOf,
		OnPointHealth: a.setPointHealth, OnPointsState: a.setAgentPointsState, OnRevoke: a.cutAgentPublishes,
		KeepaliveInterval: cfg.AgentKeepalive, HealthWindow: cfg.AgentHealthWindow, Logger: a.log,
	})
	a.Hub = streaming.NewHub(streaming.HubConfig{IdleGrace: cfg.IdleGrace, StartTimeout: cfg.StartTimeout, Logger: a.log,
		Demander: hubDemander{reg: func() *agents.Registry { return a.Agents }}, OnSourceState: a.pulledSourceState,
		DialCamera: a.CameraNetworks.DialContext})
	a.WebRTC, err = streaming.NewWebRTC(streaming.WebRTCConfig{
		ListenAddr: cfg.WebRTCAddr, PublicIPs: cfg.PublicIPs, Interfaces: cfg.ICEInterfaces,
		ICEServers: iceServers(cfg), Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	// One set of caps for WHEP and RTSP reads alike.
	views := streaming.NewViewLimits(cfg.MaxViewsPerUser, cfg.MaxViewsPerIP)
	// One login throttle for every door that takes a password (HTTP login,
	// password change, RTSP) and for enrollment codes.
	throttle := accounts.NewThrottle(cfg.LoginThrottle)
	a.RTSP, err = streaming.NewRTSPServer(a.Hub, streaming.RTSPServerConfig{
		Address: cfg.RTSPAddr, TLS: tlsCfg, Logger: a.log,
		Authorizer: &rtspAuthorizer{agents: a.Agents, acc: a.Accounts, cat: a.Catalog, perm: perm,
			throttle: throttle, audit: a.Audit, log: a.log},
		OnSession: a.auditRTSP,
		Limits:    views,
	})
	if err != nil {
		return nil, fmt.Errorf("rtsp: %w", err)
	}

	// Before any pull starts: a point must not make the server read itself.
	a.CameraNetworks.AddListeners(a.RTSP.Addr(), a.webRTCAddr())
	// Before the points: GB/T 28181 channels need the live part as their source.
	if err := a.startGB(cfg); err != nil {
		return nil, err
	}
	for _, p := range points {
		a.syncPoint(p)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStreamCollector(a.Hub, a.WebRTC))
	ui := web.UIConfig{MapTileURL: cfg.MapTiles, MapTileCRS: cfg.MapTilesCRS}
	if err := ui.Validate(); err != nil {
		return nil, fmt.Errorf("map tiles: %w", err)
	}
	a.Prefs = prefs.New(a.DB)
	a.GBPlatforms = gb28181.NewPlatformStore(a.DB)
	if a.GB != nil {
		a.startCascade(a.GB, perm)
	}
	api := web.New(web.Deps{
		GBPlatforms: a.GBPlatforms, GBPlatformStatus: a.platformStatus,
		Prefs:  a.Prefs,
		UI:     ui,
		Audit:  a.Audit,
		Store:  a.DB,
		Agents: a.Agents, AgentRTSPURL: a.agentRTSPURL, PTZ: permissions.NewPTZArbiter(0), GB: a.GB, GBLive: a.GBLive,
		Catalog: a.Catalog, Accounts: a.Accounts, Permissions: perm, Hub: a.Hub, WebRTC: a.WebRTC,
		ViewLimits:     views,
		Metrics:        reg,
		PointChanged:   a.syncPoint,
		PointDeleted:   a.removePoint,
		SecureCookies:  a.tls,
		FrameAncestors: cfg.FrameAncestors,
		Throttle:       throttle,
		TrustedProxies: cfg.TrustedProxies,
		MaxImportBytes: cfg.MaxImportBytes,
		Logger:         a.log,
	})
	a.httpSrv = &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		TLSConfig:         tlsCfg,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	if a.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	a.CameraNetworks.AddListeners(a.httpLn.Addr().String())
	go func() {
		var err error
		if a.tls {
			err = a.httpSrv.ServeTLS(a.httpLn, "", "")
		} else {
			err = a.httpSrv.Serve(a.httpLn)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		a.httpErr <- err
	}()
	a.watchStop, a.watchDone = make(chan struct{}), make(chan struct{})
	go a.watchGrants(perm)
	a.pruneStop, a.pruneDone = make(chan struct{}), make(chan struct{})
	go a.pruneAudit()
	a.log.Info("tianyan vms serving", "http", a.HTTPURL(), "rtsp", a.RTSP.Addr(), "webrtc_port", a.WebRTC.Port(),
		"points", len(points), "sip", a.SIPAddr(), "data", cfg.DataDir, "camera_networks", a.CameraNetworks.String())
	return a, nil
}

func iceServers(cfg Config) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, u := range cfg.ICEServers {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		s := webrtc.ICEServer{URLs: []string{u}}
		if strings.HasPrefix(u, "turn") {
			s.Username, s.Credential = cfg.TURNUsername, cfg.TURNCredential
		}
		out = append(out, s)
	}
	return out
}

// checkTrustedProxies refuses entries that are neither an IP nor a CIDR, so
// a typo fails the start instead of silently trusting nobody.
func checkTrustedProxies(list []string) error {
	for _, p := range list {
		if net.ParseIP(p) != nil {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err != nil {
			return fmt.Errorf("trusted proxy %q: not an IP address or CIDR", p)
		}
	}
	return nil
}

// HTTPURL is the base URL of the API.
func (a *App) HTTPURL() string {
	scheme := "http"
	if a.tls {
		scheme = "https"
	}
	addr := a.httpLn.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, fmt.Sprint(addr.Port)))
}

// Wait returns when the HTTP server fails.
func (a *App) Wait() <-chan error { return a.httpErr }

// Close stops accepting, ends sessions and sources, and closes the store,
// in that order. It waits for every goroutine the app owns.
func (a *App) Close(ctx context.Context) {
	if a.Cascade != nil {
		// Its views end with BYE and it unregisters while SIP still runs.
		a.Cascade.Close()
	}
	if a.Agents != nil {
		// Links are hijacked connections Shutdown does not wait for.
		a.Agents.Close()
	}
	if a.httpSrv != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = a.httpSrv.Shutdown(sctx)
		cancel()
	}
	if a.watchStop != nil {
		close(a.watchStop)
		<-a.watchDone
		a.watchStop = nil
	}
	if a.pruneStop != nil {
		close(a.pruneStop)
		<-a.pruneDone
		a.pruneStop = nil
	}
	if a.RTSP != nil {
		a.RTSP.Close()
	}
	if a.WebRTC != nil {
		a.WebRTC.Close()
	}
	if a.Hub != nil {
		// Before the GB/T 28181 server: live calls end with a BYE.
		a.Hub.Close()
	}
	if a.GBLive != nil {
		a.GBLive.Close()
	}
	if a.GB != nil {
		a.GB.Close()
	}
	if a.DB != nil {
		if err := a.DB.Close(); err != nil {
			a.log.Error("closing store", "err", err)
		}
	}
}

// auditRTSP records RTSP reads as views (and publishes as publish
// sessions), like WHEP views, so every view is answerable afterwards.
func (a *App) auditRTSP(ev streaming.RTSPSessionEvent) {
	action := "view"
	if ev.Session.Publisher {
		action = "publish"
	}
	r := audit.Record{User: ev.Session.User, Point: ev.Session.PointID, Action: action + "." + ev.Kind,
		Detail: map[string]string{"via": "rtsp"}}
	if ev.Session.ClientIP != nil {
		r.ClientIP = ev.Session.ClientIP.String()
	}
	if ev.Kind == "stop" {
		r.DurationMs = ev.Duration.Milliseconds()
	}
	if ev.Reason != "" {
		r.Detail["reason"] = ev.Reason
	}
	if ev.Limit != nil {
		r.Detail["scope"], r.Detail["limit"] = ev.Limit.Scope, strconv.Itoa(ev.Limit.Limit)
	}
	if _, err := a.Audit.Append(r); err != nil {
		a.log.Error("audit append failed", "action", r.Action, "err", err)
	}
}
