package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/server"
)

// settings binds each configuration key to a flag, an env var VMS_<KEY>
// and a YAML key. Precedence: flag > env > YAML file > default.
type setting struct {
	key   string // also the flag name and YAML key
	usage string
	set   func(cfg *server.Config, v string) error
}

func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func duration(dst *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return fmt.Errorf("must be positive")
		}
		*dst = d
		return nil
	}
}

func positive(dst *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive whole number, got %q", v)
		}
		*dst = n
		return nil
	}
}

var settings = []setting{
	{"data", "data directory (bbolt file inside)", func(c *server.Config, v string) error { c.DataDir = v; return nil }},
	{"http", "HTTP listen address (API, WHEP, UI)", func(c *server.Config, v string) error { c.HTTPAddr = v; return nil }},
	{"rtsp", "RTSP listen address (publish and read)", func(c *server.Config, v string) error { c.RTSPAddr = v; return nil }},
	{"webrtc", "WebRTC ICE address: one UDP port, ICE-TCP on the same number", func(c *server.Config, v string) error { c.WebRTCAddr = v; return nil }},
	{"public-ip", "comma-separated IPs advertised as ICE host candidates (NAT 1:1)", func(c *server.Config, v string) error { c.PublicIPs = list(v); return nil }},
	{"tls-cert", "TLS certificate file (HTTPS and RTSPS)", func(c *server.Config, v string) error { c.TLSCert = v; return nil }},
	{"tls-key", "TLS key file", func(c *server.Config, v string) error { c.TLSKey = v; return nil }},
	{"idle-grace", "how long an on-demand source runs without viewers", func(c *server.Config, v string) error { return duration(&c.IdleGrace)(v) }},
	{"start-timeout", "how long a viewer waits for a source to start", func(c *server.Config, v string) error { return duration(&c.StartTimeout)(v) }},
	{"audit-retention", "how long audit records are kept, e.g. 17520h (0 keeps them forever)", func(c *server.Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration like 17520h, got %q", v)
		}
		c.AuditRetention = d
		return nil
	}},
	{"agent-keepalive", "how often the centre sends on an idle edge-agent link (agents are told it)", func(c *server.Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < agentlink.MinKeepalive || d > agentlink.MaxKeepalive {
			return fmt.Errorf("want a duration within %v…%v, got %q", agentlink.MinKeepalive, agentlink.MaxKeepalive, v)
		}
		c.AgentKeepalive = d
		return nil
	}},
	{"agent-health-window", "how long an edge agent may be out of touch before its points are agent_offline (stale until then)", func(c *server.Config, v string) error { return duration(&c.AgentHealthWindow)(v) }},
	{"agent-rtsp-url", "RTSP base URL edge agents publish to (default: the host they connect by, RTSP port)", func(c *server.Config, v string) error { c.AgentRTSPURL = v; return nil }},
	{"ice-servers", "comma-separated STUN/TURN URLs", func(c *server.Config, v string) error { c.ICEServers = list(v); return nil }},
	{"turn-username", "TURN username", func(c *server.Config, v string) error { c.TURNUsername = v; return nil }},
	{"turn-credential", "TURN credential", func(c *server.Config, v string) error { c.TURNCredential = v; return nil }},
	{"trusted-proxies", "comma-separated reverse proxy IPs or CIDRs whose X-Forwarded-For is believed (default none)", func(c *server.Config, v string) error { c.TrustedProxies = list(v); return nil }},
	{"frame-ancestors", "comma-separated origins allowed to frame the web app, e.g. https://ioc.example (default: none)", func(c *server.Config, v string) error {
		for _, o := range list(v) {
			if err := checkFrameAncestor(o); err != nil {
				return err
			}
		}
		c.FrameAncestors = list(v)
		return nil
	}},
	{"separation-of-duties", "true: one account holds at most one of sysadmin, secadmin, auditor; the bootstrap admin hands each duty over (三员分立)", func(c *server.Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		c.SeparationOfDuties = b
		return nil
	}},
	{"camera-networks", "comma-separated CIDRs or addresses the server may connect to for cameras (default " + strings.Join(cameranet.CentreDefaults(), ",") + "; loopback and link-local only when listed themselves)", func(c *server.Config, v string) error {
		items := list(v)
		if _, err := cameranet.ParseList(items); err != nil {
			return err
		}
		c.CameraNetworks = items
		return nil
	}},
	{"map-tiles", "map tile URL template {z}/{x}/{y} on the private network (default: a coordinate grid)", func(c *server.Config, v string) error { c.MapTiles = v; return nil }},
	{"map-tiles-crs", "coordinate system of the map tiles: wgs84 or gcj02", func(c *server.Config, v string) error { c.MapTilesCRS = v; return nil }},
	{"ice-interfaces", "comma-separated interfaces for ICE host candidates (default all)", func(c *server.Config, v string) error { c.ICEInterfaces = list(v); return nil }},
	{"sip", "GB/T 28181 SIP listen address, UDP and TCP (\"\" turns GB/T 28181 off)", func(c *server.Config, v string) error { c.SIPAddr = v; return nil }},
	{"sip-id", "our 20-digit GB/T 28181 SIP server ID (SIP服务器编号)", func(c *server.Config, v string) error {
		if !gb28181.IsID(v) {
			return fmt.Errorf("want 20 digits, got %q", v)
		}
		c.SIPID = v
		return nil
	}},
	{"sip-domain", "our 10-digit GB/T 28181 SIP domain (SIP服务器域), also the Digest realm", func(c *server.Config, v string) error {
		if len(v) != 10 || strings.Trim(v, "0123456789") != "" {
			return fmt.Errorf("want 10 digits, got %q", v)
		}
		c.SIPDomain = v
		return nil
	}},
	{"sip-password", "default GB/T 28181 device password (devices may have their own, set in the API)", func(c *server.Config, v string) error { c.SIPPassword = v; return nil }},
	{"sip-host", "address devices reach us at, put in Via, Contact and SDP (default: the local address on the route to each device)", func(c *server.Config, v string) error { c.SIPHost = v; return nil }},
	{"sip-keepalive", "GB/T 28181 keepalive interval assumed for devices (3 missed take a device offline)", func(c *server.Config, v string) error { return duration(&c.SIPKeepalive)(v) }},
	{"sip-catalog-interval", "how often GB/T 28181 devices are asked for their catalog again", func(c *server.Config, v string) error { return duration(&c.SIPCatalogInterval)(v) }},
	{"sip-district", "region code GB/T 28181 channels without a usable civil code fall back to (default: first 6 digits of --sip-domain)", func(c *server.Config, v string) error { c.SIPDistrict = v; return nil }},
	{"max-views-per-user", "concurrent views (WHEP + RTSP reads) one user may hold; beyond it WHEP is 429, RTSP 453 (default 32)", func(c *server.Config, v string) error { return positive(&c.MaxViewsPerUser)(v) }},
	{"max-views-per-ip", "concurrent views (WHEP + RTSP reads) from one client address (default 64)", func(c *server.Config, v string) error { return positive(&c.MaxViewsPerIP)(v) }},
}

// boolSettings are the settings that, as flags, may stand alone
// (--separation-of-duties means =true).
var boolSettings = map[string]bool{"separation-of-duties": true}

// boolText is a flag holding a setting's text that the flag package
// treats as boolean, so the bare flag sets "true".
type boolText struct{ v *string }

func (b boolText) String() string {
	if b.v == nil {
		return ""
	}
	return *b.v
}
func (b boolText) Set(s string) error { *b.v = s; return nil }
func (b boolText) IsBoolFlag() bool   { return true }

func envName(key string) string { return "VMS_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_")) }

// loadConfig parses args for a command that serves.
func loadConfig(name string, args []string, base server.Config) (server.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	configFile := fs.String("config", os.Getenv("VMS_CONFIG"), "optional YAML config file (keys as the flag names)")
	values := map[string]*string{}
	for _, s := range settings {
		if boolSettings[s.key] {
			v := new(string)
			fs.Var(boolText{v}, s.key, s.usage+" (env "+envName(s.key)+")")
			values[s.key] = v
			continue
		}
		values[s.key] = fs.String(s.key, "", s.usage+" (env "+envName(s.key)+")")
	}
	if err := fs.Parse(args); err != nil {
		return base, fs, err
	}
	cfg := base
	if *configFile != "" {
		raw, err := os.ReadFile(*configFile)
		if err != nil {
			return cfg, fs, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return cfg, fs, fmt.Errorf("%s: %w", *configFile, err)
		}
		for k, v := range m {
			s, ok := find(k)
			if !ok {
				return cfg, fs, fmt.Errorf("%s: unknown key %q", *configFile, k)
			}
			str := fmt.Sprint(v)
			if items, ok := v.([]any); ok {
				parts := make([]string, len(items))
				for i, it := range items {
					parts[i] = fmt.Sprint(it)
				}
				str = strings.Join(parts, ",")
			}
			if err := s.set(&cfg, str); err != nil {
				return cfg, fs, fmt.Errorf("%s: %s: %w", *configFile, k, err)
			}
		}
	}
	for _, s := range settings {
		if v, ok := os.LookupEnv(envName(s.key)); ok {
			if err := s.set(&cfg, v); err != nil {
				return cfg, fs, fmt.Errorf("%s: %w", envName(s.key), err)
			}
		}
	}
	var ferr error
	fs.Visit(func(f *flag.Flag) {
		if s, ok := find(f.Name); ok && ferr == nil {
			if err := s.set(&cfg, *values[s.key]); err != nil {
				ferr = fmt.Errorf("--%s: %w", s.key, err)
			}
		}
	})
	cfg.AdminPassword = os.Getenv("VMS_ADMIN_PASSWORD")
	return cfg, fs, ferr
}

func find(key string) (setting, bool) {
	for _, s := range settings {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// checkFrameAncestor accepts a CSP source for frame-ancestors: 'self' or an
// origin scheme://host[:port] (a host may start with *.), nothing that
// could end the directive or add another.
func checkFrameAncestor(o string) error {
	if o == "'self'" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" && u.Path != "/" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(o, "; ,'\"") {
		return fmt.Errorf("frame ancestor %q: want an origin like https://ioc.example or 'self'", o)
	}
	return nil
}
