package camsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Profile tokens every simulated camera offers, in GetProfiles order.
const (
	ProfileMain = "main"
	ProfileSub  = "sub"
)

var profileTokens = []string{ProfileMain, ProfileSub}

// CameraConfig describes one simulated ONVIF camera. Only Name matters for
// most tests; everything else has a working default.
type CameraConfig struct {
	// Name is announced in the onvif://www.onvif.org/name/ scope and drawn
	// on snapshots. Default "camsim".
	Name string
	// Manufacturer, Model, Serial and Firmware are what GetDeviceInformation
	// reports; Model is also the hardware scope. Serial defaults to one
	// derived from Name, and fixes the camera's WS-Discovery endpoint UUID
	// so that it survives restarts, as on a real device.
	Manufacturer, Model, Serial, Firmware string
	// Fleet, if set, is mixed with Serial into the endpoint UUID. Two
	// simulated fleets on one host (two demos, or a demo beside a test)
	// with the same serials would otherwise announce the same endpoints,
	// and each agent would take the other's cameras for its own.
	Fleet string
	// Location is the onvif://www.onvif.org/location/ scope. Default
	// "camsim".
	Location string
	// DiscoveryIP is the address whose interface joins the WS-Discovery
	// group 239.255.255.250:3702 and sends multicast: "127.0.0.1" on
	// loopback, a namespace's own address inside one. It also answers
	// unicast probes on DiscoveryIP:3702. Default "127.0.0.1".
	DiscoveryIP string
	// HTTPAddr serves SOAP and snapshots; RTSPAddr serves the streams.
	// Both default to DiscoveryIP:0 (any free port).
	HTTPAddr, RTSPAddr string
	// Username and Password, when Username is set, are required on every
	// SOAP call but GetSystemDateAndTime, on snapshots and on RTSP.
	Username, Password string
	// Main and Sub are clip names (ClipH264Main, ClipH264Sub, ClipH265Sub)
	// for the "main" and "sub" profiles. Defaults ClipH264Main and
	// ClipH264Sub.
	Main, Sub string
	// PTZ gives the camera a PTZ service and a PTZ configuration in both
	// profiles.
	PTZ bool
	// ProbeReplyDelay bounds the random delay before a ProbeMatch; WS-
	// Discovery asks devices to wait up to 500 ms, real cameras wait tens of
	// milliseconds. Zero answers at once.
	ProbeReplyDelay time.Duration
	// ClockOffset is added to the camera's clock as reported by
	// GetSystemDateAndTime, to simulate a camera whose clock is wrong.
	ClockOffset time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Camera is one running simulated ONVIF camera: WS-Discovery responder,
// SOAP device/media/PTZ services, JPEG snapshots and RTSP streams.
type Camera struct {
	cfg       CameraConfig
	clips     map[string]*Clip
	rtsp      *RTSPCamera
	httpSrv   *http.Server
	httpAddr  string // advertised host:port of the HTTP side
	rtspAddr  string // advertised host:port of the RTSP side
	endpoint  string // urn:uuid:… of WS-Discovery
	discovery *discoveryResponder
	ptz       *ptzState // nil without PTZ
	digest    *httpDigest
	log       *slog.Logger

	faultsMu  sync.Mutex // serialises SetFaults so the RTSP side follows in order
	faults    atomic.Pointer[Faults]
	snapshots atomic.Uint64 // snapshots served, drives the moving block

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// StartCamera starts a simulated camera and announces it with a WS-Discovery
// Hello. Close stops it.
func StartCamera(cfg CameraConfig) (*Camera, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Camera{cfg: cfg, clips: map[string]*Clip{}, log: cfg.Logger.With("camera", cfg.Name), closing: make(chan struct{})}
	c.faults.Store(&Faults{})
	c.endpoint = "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte("camsim:"+cfg.Fleet+cfg.Serial)).String()
	for token, name := range map[string]string{ProfileMain: cfg.Main, ProfileSub: cfg.Sub} {
		clip, err := LoadClip(name)
		if err != nil {
			return nil, fmt.Errorf("camsim %s: profile %s: %w", cfg.Name, token, err)
		}
		c.clips[token] = clip
	}
	if cfg.PTZ {
		c.ptz = newPTZState(time.Now)
	}
	var err error
	if c.digest, err = newHTTPDigest(); err != nil {
		return nil, err
	}

	c.rtsp, err = StartRTSPCamera(RTSPCameraConfig{Address: cfg.RTSPAddr, Profiles: c.clips,
		User: cfg.Username, Pass: cfg.Password, Logger: c.log})
	if err != nil {
		return nil, fmt.Errorf("camsim %s: rtsp: %w", cfg.Name, err)
	}
	if c.rtspAddr, err = c.advertised(c.rtsp.Addr()); err != nil {
		c.rtsp.Close()
		return nil, err
	}

	ln, err := net.Listen("tcp4", cfg.HTTPAddr)
	if err != nil {
		c.rtsp.Close()
		return nil, fmt.Errorf("camsim %s: http: %w", cfg.Name, err)
	}
	if c.httpAddr, err = c.advertised(ln.Addr().String()); err != nil {
		ln.Close()
		c.rtsp.Close()
		return nil, err
	}

	c.discovery, err = startDiscovery(discoveryConfig{
		IP:       cfg.DiscoveryIP,
		MaxDelay: cfg.ProbeReplyDelay,
		Endpoint: c.endpoint,
		Scopes:   c.scopes(),
		XAddrs:   c.XAddr(),
		Silent:   func() bool { return c.Faults().NoDiscovery },
		Logger:   c.log,
	})
	if err != nil {
		ln.Close()
		c.rtsp.Close()
		return nil, fmt.Errorf("camsim %s: discovery: %w", cfg.Name, err)
	}

	c.httpSrv = &http.Server{
		Handler:           c.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("camsim http", "err", err)
		}
	}()
	c.discovery.hello()
	c.log.Info("camsim camera started", "xaddr", c.XAddr(), "rtsp", c.rtspAddr)
	return c, nil
}

func (cfg *CameraConfig) setDefaults() error {
	if cfg.Name == "" {
		cfg.Name = "camsim"
	}
	if cfg.Manufacturer == "" {
		cfg.Manufacturer = "Tianyan Simulated"
	}
	if cfg.Model == "" {
		cfg.Model = "CamSim-1"
	}
	if cfg.Serial == "" {
		cfg.Serial = "CS-" + uuid.NewSHA1(uuid.NameSpaceOID, []byte(cfg.Name)).String()[:8]
	}
	if cfg.Firmware == "" {
		cfg.Firmware = "1.0.0"
	}
	if cfg.Location == "" {
		cfg.Location = "camsim"
	}
	if cfg.DiscoveryIP == "" {
		cfg.DiscoveryIP = "127.0.0.1"
	}
	ip := net.ParseIP(cfg.DiscoveryIP)
	if ip == nil || ip.To4() == nil || ip.IsUnspecified() {
		return fmt.Errorf("camsim %s: DiscoveryIP %q is not a usable IPv4 address", cfg.Name, cfg.DiscoveryIP)
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = net.JoinHostPort(cfg.DiscoveryIP, "0")
	}
	if cfg.RTSPAddr == "" {
		cfg.RTSPAddr = net.JoinHostPort(cfg.DiscoveryIP, "0")
	}
	if cfg.Main == "" {
		cfg.Main = ClipH264Main
	}
	if cfg.Sub == "" {
		cfg.Sub = ClipH264Sub
	}
	if cfg.ProbeReplyDelay < 0 {
		return fmt.Errorf("camsim %s: negative ProbeReplyDelay", cfg.Name)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return nil
}

// advertised turns a listening address into the one clients are told: a
// wildcard listener is advertised at DiscoveryIP.
func (c *Camera) advertised(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("camsim %s: listening address %q: %w", c.cfg.Name, listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = c.cfg.DiscoveryIP
	}
	return net.JoinHostPort(host, port), nil
}

// scopes are the camera's ONVIF scopes, as announced and as GetScopes
// returns them. Free text is percent-encoded: scopes are URIs, and
// WS-Discovery separates them with spaces.
func (c *Camera) scopes() []string {
	s := []string{
		"onvif://www.onvif.org/type/video_encoder",
		"onvif://www.onvif.org/Profile/Streaming",
		"onvif://www.onvif.org/name/" + url.PathEscape(c.cfg.Name),
		"onvif://www.onvif.org/hardware/" + url.PathEscape(c.cfg.Model),
		"onvif://www.onvif.org/location/" + url.PathEscape(c.cfg.Location),
	}
	if c.ptz != nil {
		s = append(s, "onvif://www.onvif.org/type/ptz")
	}
	return s
}

// Name is the camera's configured name.
func (c *Camera) Name() string { return c.cfg.Name }

// Endpoint is the camera's WS-Discovery endpoint reference (urn:uuid:…).
func (c *Camera) Endpoint() string { return c.endpoint }

// XAddr is the device service URL, http://ip:port/onvif/device_service.
func (c *Camera) XAddr() string { return c.serviceURL("device_service") }

func (c *Camera) serviceURL(name string) string {
	return "http://" + c.httpAddr + "/onvif/" + name
}

// RTSPURL is a profile's stream URI as GetStreamUri reports it, without
// credentials: rtsp://ip:port/main or /sub.
func (c *Camera) RTSPURL(profile string) string {
	return "rtsp://" + c.rtspAddr + "/" + profile
}

// SnapshotURL is a profile's snapshot URI as GetSnapshotUri reports it.
func (c *Camera) SnapshotURL(profile string) string {
	return "http://" + c.httpAddr + "/onvif/snapshot?profile=" + url.QueryEscape(profile)
}

// Clip is the clip a profile streams, nil for an unknown profile.
func (c *Camera) Clip(profile string) *Clip { return c.clips[profile] }

// SetFaults switches the camera into the given faults (the zero value heals
// it). Safe to call from any goroutine.
func (c *Camera) SetFaults(f Faults) {
	c.faultsMu.Lock()
	defer c.faultsMu.Unlock()
	old := c.faults.Swap(&f)
	c.rtsp.SetRejectCredentials(f.WrongPassword)
	c.rtsp.SetDropStream(f.DropStream)
	if *old != f {
		c.log.Info("camsim faults", "faults", f.String())
	}
}

// Faults are the faults currently switched on.
func (c *Camera) Faults() Faults { return *c.faults.Load() }

// PTZPosition is the PTZ position now (zero without PTZ).
func (c *Camera) PTZPosition() PTZVector {
	if c.ptz == nil {
		return PTZVector{}
	}
	return c.ptz.position()
}

// Close says Bye, stops every server and waits for the camera's goroutines.
func (c *Camera) Close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.discovery.close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := c.httpSrv.Shutdown(ctx); err != nil {
			c.httpSrv.Close()
		}
		cancel()
		c.wg.Wait()
		c.rtsp.Close()
		c.log.Info("camsim camera stopped")
	})
}

// OffsetAddr is base ("127.0.0.1:18080") with its port moved up by i, so
// that a fleet of cameras gets predictable ports; a base with port 0 stays
// at 0 (any free port).
func OffsetAddr(base string, i int) (string, error) {
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", base, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("address %q: bad port", base)
	}
	if p == 0 {
		return base, nil
	}
	if p+i > 65535 {
		return "", fmt.Errorf("address %q: port %d+%d is out of range", base, p, i)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+i)), nil
}
