package server

import (
	"log/slog"
	"net"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/streaming"
)

// Config is everything `vms serve` can be told.
type Config struct {
	// DataDir holds the bbolt file.
	DataDir string `yaml:"data"`
	// HTTPAddr serves the API, WHEP and the UI.
	HTTPAddr string `yaml:"http"`
	// RTSPAddr accepts publishers and readers (RTSPS when TLS is set).
	RTSPAddr string `yaml:"rtsp"`
	// WebRTCAddr is the one UDP port (and ICE-TCP port) for every viewer.
	WebRTCAddr string `yaml:"webrtc"`
	// PublicIPs are advertised as ICE host candidates (NAT 1:1).
	PublicIPs []string `yaml:"public-ip"`
	// TLSCert and TLSKey switch HTTP to HTTPS and RTSP to RTSPS.
	TLSCert string `yaml:"tls-cert"`
	TLSKey  string `yaml:"tls-key"`
	// IdleGrace is how long an on-demand source runs without viewers.
	IdleGrace time.Duration `yaml:"idle-grace"`
	// StartTimeout bounds how long a viewer waits for a source to start.
	StartTimeout time.Duration `yaml:"start-timeout"`
	// ICEServers are STUN/TURN URLs for phones behind carrier NAT.
	ICEServers []string `yaml:"ice-servers"`
	// TURNUsername and TURNCredential go with turn: URLs.
	TURNUsername   string `yaml:"turn-username"`
	TURNCredential string `yaml:"turn-credential"`
	// ICEInterfaces limits ICE host candidates to these interfaces.
	ICEInterfaces []string `yaml:"ice-interfaces"`
	// AuditRetention is how long audit records are kept (0 keeps them
	// forever); older ones are pruned hourly, leaving the chain verifiable.
	AuditRetention time.Duration `yaml:"audit-retention"`
	// TrustedProxies are reverse proxies (addresses or CIDRs) whose
	// X-Forwarded-For names the client; empty trusts none.
	TrustedProxies []string `yaml:"trusted-proxies"`
	// LoginThrottle overrides the login throttle (tests only); zero fields
	// take accounts.DefaultThrottleConfig.
	LoginThrottle accounts.ThrottleConfig `yaml:"-"`
	// MaxViewsPerUser caps one user's concurrent views (WHEP sessions plus
	// RTSP reads); beyond it WHEP answers 429 and RTSP 453. 0 takes
	// streaming.DefaultMaxViewsPerUser (32).
	MaxViewsPerUser int `yaml:"max-views-per-user"`
	// MaxViewsPerIP caps the concurrent views from one client address,
	// whoever is logged in. 0 takes streaming.DefaultMaxViewsPerIP (64).
	MaxViewsPerIP int `yaml:"max-views-per-ip"`
	// MaxImportBytes overrides the 64 MiB import bound (tests only).
	MaxImportBytes int64 `yaml:"-"`
	// AgentRTSPURL is where edge agents publish (e.g. rtsps://vms.example:8554)
	// when the host they dial the API by is not right for RTSP.
	AgentRTSPURL string `yaml:"agent-rtsp-url"`
	// AgentKeepalive is how often the centre sends on an idle agent link;
	// agents wait for it by this interval (they are told it).
	AgentKeepalive time.Duration `yaml:"agent-keepalive"`
	// AgentHealthWindow is how long an agent may be out of touch before its
	// points are agent_offline; until then they are stale.
	AgentHealthWindow time.Duration `yaml:"agent-health-window"`
	// FrameAncestors are origins allowed to embed the web app in a frame
	// (CSP frame-ancestors); empty forbids framing.
	FrameAncestors []string `yaml:"frame-ancestors"`
	// CameraNetworks are the CIDRs (or single addresses) the server may
	// connect to for cameras; empty means cameranet.CentreDefaults.
	// Loopback and link-local are refused unless listed themselves.
	CameraNetworks []string `yaml:"camera-networks"`
	// CameraResolver resolves camera host names (tests only; nil: the system's).
	CameraResolver *net.Resolver `yaml:"-"`
	// MapTiles is a slippy-map tile URL template ({z}/{x}/{y}) on the
	// private network for the web map; empty draws a coordinate grid.
	MapTiles string `yaml:"map-tiles"`
	// MapTilesCRS is "wgs84" (default) or "gcj02" for Chinese basemaps.
	MapTilesCRS string `yaml:"map-tiles-crs"`
	// SIPAddr listens for GB/T 28181 SIP on UDP and TCP (devices and lower
	// platforms register here); "" turns GB/T 28181 off.
	SIPAddr string `yaml:"sip"`
	// SIPID is our 20-digit SIP server ID; SIPDomain our 10-digit SIP domain
	// (the Digest realm).
	SIPID     string `yaml:"sip-id"`
	SIPDomain string `yaml:"sip-domain"`
	// SIPPassword is the default device password (devices may have their
	// own, set through the API); empty lets only devices with their own in.
	SIPPassword string `yaml:"sip-password"`
	// SIPHost is the address put in Via, Contact and SDP for devices; empty
	// uses the local address on the route to each device.
	SIPHost string `yaml:"sip-host"`
	// SIPKeepalive is the keepalive interval assumed for devices that do not
	// report theirs; 3 missed intervals take a device offline.
	SIPKeepalive time.Duration `yaml:"sip-keepalive"`
	// SIPCatalogInterval is how often devices are asked for their catalog again.
	SIPCatalogInterval time.Duration `yaml:"sip-catalog-interval"`
	// SIPDistrict is the region code GB channels without a usable civil code
	// fall back to; empty means the first 6 digits of SIPDomain.
	SIPDistrict string `yaml:"sip-district"`
	// AdminPassword is used when the first start creates user admin.
	AdminPassword string `yaml:"-"`
	// SeparationOfDuties refuses one account holding two of the duty roles
	// sysadmin, secadmin and auditor (三员分立); the bootstrap admin keeps a
	// duty only until someone else holds it.
	SeparationOfDuties bool `yaml:"separation-of-duties"`
	// Argon overrides password hashing cost (tests only).
	Argon  accounts.Argon2Params `yaml:"-"`
	Logger *slog.Logger          `yaml:"-"`
}

// Defaults returns the configuration a bare `vms serve` runs with.
func Defaults() Config {
	return Config{
		DataDir:           "./data",
		HTTPAddr:          ":8080",
		RTSPAddr:          ":8554",
		WebRTCAddr:        ":8189",
		IdleGrace:         15 * time.Second,
		StartTimeout:      10 * time.Second,
		AgentKeepalive:    agentlink.KeepaliveInterval,
		AgentHealthWindow: agents.DefaultHealthWindow,
		// Two years: longer than the six months China's Cybersecurity Law
		// asks network logs to be kept.
		AuditRetention:  2 * 365 * 24 * time.Hour,
		MaxViewsPerUser: streaming.DefaultMaxViewsPerUser,
		MaxViewsPerIP:   streaming.DefaultMaxViewsPerIP,
		// GB/T 28181: a district centre server (type 200) in domain 4403070000.
		SIPAddr:            ":5060",
		SIPID:              "44030700002000000001",
		SIPDomain:          "4403070000",
		SIPKeepalive:       gb28181.DefaultKeepaliveInterval,
		SIPCatalogInterval: gb28181.DefaultCatalogInterval,
	}
}
