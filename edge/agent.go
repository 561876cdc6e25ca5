package edge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/internal/backoff"
)

// Version of this agent, reported to the centre.
const Version = "0.3.0"

// Config configures an Agent.
type Config struct {
	Credentials Credentials
	// StateDir holds the credentials and the camera book.
	StateDir string
	// HTTPClient dials the centre (TLS settings); default has sane timeouts.
	HTTPClient *http.Client
	// Cameras is the camera book (provisioned cameras, discovery results).
	Cameras *CameraBook
	// CameraNetworks, if set, replaces the camera book's: the only hosts
	// the agent connects to for cameras (--camera-networks).
	CameraNetworks *cameranet.Policy
	// HealthInterval is how often health is reported (default agentlink.HeartbeatInterval).
	HealthInterval time.Duration
	// KeepaliveInterval is how often the agent sends on an idle link
	// (default agentlink.KeepaliveInterval); the centre is told it in Hello.
	KeepaliveInterval time.Duration
	Logger            *slog.Logger
}

// Agent is a running edge agent.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	relays   map[agentlink.RelayKey]*Relay
	bindings []agentlink.PointBinding
	send     func(typ, id string, body any) // current link; nil while offline
	online   bool
	rtspURL  string
}

// New returns an agent; Run starts it.
func New(cfg Config) *Agent {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = agentlink.HeartbeatInterval
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = agentlink.KeepaliveInterval
	}
	if cfg.Cameras == nil {
		cfg.Cameras = NewCameraBook("", nil)
	}
	if cfg.CameraNetworks != nil {
		cfg.Cameras.SetCameraNetworks(cfg.CameraNetworks)
	}
	return &Agent{cfg: cfg, log: cfg.Logger.With("agent", cfg.Credentials.AgentID), relays: map[agentlink.RelayKey]*Relay{}}
}

// Online reports whether the control link is up.
func (a *Agent) Online() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.online
}

// Relays lists the relays running now.
func (a *Agent) Relays() []agentlink.RelayState {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]agentlink.RelayState, 0, len(a.relays))
	for _, r := range a.relays {
		out = append(out, r.State())
	}
	return out
}

// Run keeps the control link up until ctx ends, reconnecting with jittered
// backoff; then it stops every relay.
func (a *Agent) Run(ctx context.Context) error {
	defer a.stopAllRelays()
	bo := backoff.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second, ResetAfter: 30 * time.Second}
	for {
		started := time.Now()
		err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var refused *refusedError
		if errors.As(err, &refused) && refused.status == http.StatusForbidden {
			// Revoked: retrying would only hammer the centre.
			return err
		}
		wait := bo.Next(time.Since(started))
		a.log.Warn("control link down, reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

type refusedError struct {
	status int
	body   string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("centre refused the agent (%d): %s", e.status, e.body)
}

func (a *Agent) linkURL() (string, error) {
	u, err := url.Parse(a.cfg.Credentials.Server)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("server URL scheme %q", u.Scheme)
	}
	u.Path = strings.TrimRight(u.Path, "/") + agentlink.ConnectPath
	return u.String(), nil
}

// linkSession is one control link as the agent's goroutines share it:
// session owns it and waits for every goroutine it spawns.
type linkSession struct {
	ctx  context.Context
	send func(typ, id string, body any) // queues a message; never blocks
	kick chan struct{}                  // asks the health loop to report now
	wg   sync.WaitGroup
}

// spawn runs fn on a goroutine the session waits for. Only the session's
// own goroutine calls it (reader and setup), so Add never races Wait.
func (s *linkSession) spawn(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// keepaliveMsg is what the agent sends when it has nothing else to say.
var keepaliveMsg, _ = agentlink.Encode(agentlink.TypeKeepalive, "", nil)

// session runs one control link: the reader in this goroutine, one writer
// that owns the socket's write side and keeps an idle link alive, and the
// health loop.
func (a *Agent) session(ctx context.Context) error {
	wsURL, err := a.linkURL()
	if err != nil {
		return err
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(a.cfg.Credentials.AgentID+":"+a.cfg.Credentials.Secret)))
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	// The dial's client must not time out the upgraded connection.
	dialClient := &http.Client{Transport: a.cfg.HTTPClient.Transport}
	conn, resp, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: dialClient})
	cancel()
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return &refusedError{status: resp.StatusCode, body: resp.Status}
		}
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(agentlink.MaxMessageBytes)

	lctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	out := make(chan []byte, 256)
	s := &linkSession{ctx: lctx, kick: make(chan struct{}, 1)}
	s.send = func(typ, id string, body any) {
		msg, err := agentlink.Encode(typ, id, body)
		if err != nil {
			a.log.Error("encode", "type", typ, "err", err)
			return
		}
		select {
		case out <- msg:
		case <-lctx.Done():
		default:
			stop(errors.New("send queue full"))
		}
	}
	s.spawn(func() { // writer
		tick := time.NewTicker(a.cfg.KeepaliveInterval)
		defer tick.Stop()
		for {
			var msg []byte
			select {
			case <-lctx.Done():
				return
			case msg = <-out:
			case <-tick.C:
				msg = keepaliveMsg
			}
			wctx, cancel := context.WithTimeout(lctx, 10*time.Second)
			err := conn.Write(wctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				stop(fmt.Errorf("write: %w", err))
				return
			}
		}
	})
	s.spawn(func() { // health reports, on the interval and when asked
		t := time.NewTicker(a.cfg.HealthInterval)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			case <-s.kick:
			}
			s.send(agentlink.TypeHealth, "", a.health(lctx))
		}
	})

	hostname, _ := os.Hostname()
	s.send(agentlink.TypeHello, "", agentlink.Hello{Protocol: agentlink.Version, Version: Version, Hostname: hostname,
		Relays: a.relayKeys(), KeepaliveMs: a.cfg.KeepaliveInterval.Milliseconds()})
	s.send(agentlink.TypeInventory, "", agentlink.Inventory{Cameras: a.cfg.Cameras.Inventory()})
	a.mu.Lock()
	a.send, a.online = s.send, true
	a.mu.Unlock()
	a.log.Info("control link up", "server", a.cfg.Credentials.Server)

	err = a.readLoop(conn, s)
	stop(err)
	s.wg.Wait()
	a.mu.Lock()
	a.send, a.online = nil, false
	a.mu.Unlock()
	_ = conn.Close(websocket.StatusNormalClosure, "bye")
	return context.Cause(lctx)
}

// readLoop reads the centre's messages until the link fails. It waits for
// the centre by the centre's keepalive interval (told in Welcome; until
// then the default), never by the agent's own.
func (a *Agent) readLoop(conn *websocket.Conn, s *linkSession) error {
	peer := agentlink.KeepaliveInterval
	for {
		wait := agentlink.ReadDeadline(peer)
		rctx, cancel := context.WithTimeout(s.ctx, wait)
		_, data, err := conn.Read(rctx)
		silent := errors.Is(rctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			if s.ctx.Err() != nil {
				return context.Cause(s.ctx)
			}
			if silent {
				return fmt.Errorf("centre silent for %v (its keepalive interval is %v)", wait, peer)
			}
			return fmt.Errorf("read: %w", err)
		}
		env, err := agentlink.Decode(data)
		if err != nil {
			return err
		}
		if env.Type == agentlink.TypeWelcome {
			if p, ok := a.welcome(env, s); ok {
				peer = p
			}
			continue
		}
		a.handle(env, s)
	}
}

// welcome takes the centre's answer to Hello and returns the centre's
// keepalive interval.
func (a *Agent) welcome(env agentlink.Envelope, s *linkSession) (time.Duration, bool) {
	var w agentlink.Welcome
	if err := env.Decode(&w); err != nil {
		a.log.Warn("bad welcome", "err", err)
		return 0, false
	}
	a.mu.Lock()
	a.rtspURL, a.bindings = w.RTSPURL, w.Points
	a.mu.Unlock()
	// Report health at once: the centre learns the cameras' state
	// without waiting a full interval.
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return agentlink.PeerInterval(w.KeepaliveMs), true
}

func (a *Agent) handle(env agentlink.Envelope, s *linkSession) {
	ctx, send := s.ctx, s.send
	switch env.Type {
	case agentlink.TypeKeepalive:
		// Reading it was the point.
	case agentlink.TypeBindings:
		var b agentlink.Bindings
		if err := env.Decode(&b); err == nil {
			a.mu.Lock()
			a.bindings = b.Points
			a.mu.Unlock()
		}
	case agentlink.TypeRelayStart:
		var rs agentlink.RelayStart
		if err := env.Decode(&rs); err != nil {
			a.log.Warn("bad relay_start", "err", err)
			return
		}
		a.startRelay(rs)
	case agentlink.TypeRelayStop:
		var rs agentlink.RelayStop
		if err := env.Decode(&rs); err == nil {
			a.stopRelay(rs.RelayKey)
		}
	case agentlink.TypePTZ:
		var req agentlink.PTZRequest
		if err := env.Decode(&req); err != nil {
			send(agentlink.TypeReply, env.ID, agentlink.Reply{Error: err.Error()})
			return
		}
		s.spawn(func() {
			rctx, cancel := context.WithTimeout(ctx, 8*time.Second)
			defer cancel()
			if err := a.cfg.Cameras.PTZ(rctx, req); err != nil {
				send(agentlink.TypeReply, env.ID, agentlink.Reply{Error: err.Error()})
				return
			}
			send(agentlink.TypeReply, env.ID, agentlink.Reply{OK: true})
		})
	case agentlink.TypeSnapshot:
		var req agentlink.SnapshotRequest
		if err := env.Decode(&req); err != nil {
			send(agentlink.TypeReply, env.ID, agentlink.Reply{Error: err.Error()})
			return
		}
		s.spawn(func() {
			rctx, cancel := context.WithTimeout(ctx, 8*time.Second)
			defer cancel()
			data, ct, err := a.cfg.Cameras.Snapshot(rctx, req.Camera)
			if err != nil {
				send(agentlink.TypeReply, env.ID, agentlink.Reply{Error: err.Error()})
				return
			}
			raw, _ := json.Marshal(agentlink.SnapshotReply{ContentType: ct, Data: data})
			send(agentlink.TypeReply, env.ID, agentlink.Reply{OK: true, Data: raw})
		})
	case agentlink.TypeRediscover:
		s.spawn(func() {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := a.cfg.Cameras.Rediscover(rctx); err != nil {
				a.log.Warn("rediscovery failed", "err", err)
			}
			send(agentlink.TypeInventory, "", agentlink.Inventory{Cameras: a.cfg.Cameras.Inventory()})
		})
	default:
		a.log.Debug("unknown message from centre", "type", env.Type)
	}
}

func (a *Agent) relayKeys() []agentlink.RelayKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]agentlink.RelayKey, 0, len(a.relays))
	for k := range a.relays {
		out = append(out, k)
	}
	return out
}

func (a *Agent) reportRelay(st agentlink.RelayState) {
	a.mu.Lock()
	send := a.send
	a.mu.Unlock()
	if send != nil {
		send(agentlink.TypeRelayState, "", st)
	}
}

// startRelay starts a relay, or keeps the running one if nothing changed.
func (a *Agent) startRelay(rs agentlink.RelayStart) {
	a.mu.Lock()
	old := a.relays[rs.RelayKey]
	if old != nil && old.cfg == rs {
		a.mu.Unlock()
		a.reportRelay(old.State())
		return
	}
	delete(a.relays, rs.RelayKey)
	a.mu.Unlock()
	if old != nil {
		old.Stop()
	}
	cameras := a.cfg.Cameras
	r := startRelay(rs, cameras.CameraNetworks().DialContext, a.log, a.reportRelay, func() {
		// Ask for a keyframe so the first viewer does not wait a GOP.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := cameras.RequestKeyframe(ctx, rs.Camera, rs.Profile); err != nil {
			a.log.Debug("keyframe request not honoured", "camera", rs.Camera, "err", err)
		}
	})
	a.mu.Lock()
	a.relays[rs.RelayKey] = r
	a.mu.Unlock()
}

func (a *Agent) stopRelay(k agentlink.RelayKey) {
	a.mu.Lock()
	r := a.relays[k]
	delete(a.relays, k)
	a.mu.Unlock()
	if r != nil {
		r.Stop()
		a.log.Info("relay stopped", "relay", k.String())
	}
}

func (a *Agent) stopAllRelays() {
	a.mu.Lock()
	rs := a.relays
	a.relays = map[agentlink.RelayKey]*Relay{}
	a.mu.Unlock()
	for _, r := range rs {
		r.Stop()
	}
}

// health checks each bound point's camera: a running relay speaks for
// itself; otherwise the camera's RTSP port must accept a connection.
func (a *Agent) health(ctx context.Context) agentlink.Health {
	a.mu.Lock()
	bindings := append([]agentlink.PointBinding(nil), a.bindings...)
	running := map[string]*Relay{}
	for k, r := range a.relays {
		if k.Profile == "main" || running[k.Point] == nil {
			running[k.Point] = r
		}
	}
	a.mu.Unlock()

	h := agentlink.Health{Points: map[string]bool{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, b := range bindings {
		if r := running[b.Point]; r != nil && r.State().State == agentlink.RelayRunning {
			pps, bps := r.Rates()
			// The probes started for earlier bindings write h too.
			mu.Lock()
			h.Points[b.Point] = true
			h.Cameras = append(h.Cameras, agentlink.CameraHealth{Camera: b.Camera, Point: b.Point, Reachable: true, FPS: pps, Bitrate: bps})
			mu.Unlock()
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(b agentlink.PointBinding) {
			defer wg.Done()
			defer func() { <-sem }()
			err := reachable(ctx, a.cfg.Cameras.CameraNetworks(), b.Source)
			ch := agentlink.CameraHealth{Camera: b.Camera, Point: b.Point, Reachable: err == nil}
			if err != nil {
				ch.LastError = err.Error()
			}
			mu.Lock()
			h.Points[b.Point] = err == nil
			h.Cameras = append(h.Cameras, ch)
			mu.Unlock()
		}(b)
	}
	wg.Wait()
	return h
}

// reachable dials the RTSP port of a camera URL, inside the camera
// networks only: an open port elsewhere never makes a point online.
func reachable(ctx context.Context, nets *cameranet.Policy, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return errors.New("bad camera URL")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "554")
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := nets.DialContext(dctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("camera unreachable: %w", err)
	}
	return c.Close()
}
