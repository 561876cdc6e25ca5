package edge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/internal/backoff"
)

const (
	relayBackoffMin = 500 * time.Millisecond
	relayBackoffMax = 10 * time.Second
	relayTimeout    = 5 * time.Second
)

// Relay pulls one camera stream and publishes it unchanged to the centre
// (RTSP over TCP both ways, no transcoding). It retries with jittered
// backoff until stopped. One goroutine runs it; Stop ends it.
type Relay struct {
	cfg agentlink.RelayStart
	// dialCamera connects to the camera (inside the camera networks only);
	// the centre is dialled directly.
	dialCamera dialFunc
	log        *slog.Logger
	// onState is told each state change; beforePlay asks the camera for a
	// keyframe (ONVIF SetSynchronizationPoint) just before PLAY.
	onState    func(agentlink.RelayState)
	beforePlay func()

	stop chan struct{}
	done chan struct{}

	packets, bytes atomic.Uint64
	mu             sync.Mutex
	state          agentlink.RelayState
	lastRate       rateSample
}

type rateSample struct {
	at             time.Time
	packets, bytes uint64
}

// errStopped ends a session that Stop interrupted.
var errStopped = errors.New("relay stopped")

func startRelay(cfg agentlink.RelayStart, dialCamera dialFunc, log *slog.Logger, onState func(agentlink.RelayState), beforePlay func()) *Relay {
	r := &Relay{cfg: cfg, dialCamera: dialCamera, log: log.With("relay", cfg.String(), "camera", redact(cfg.Source)), onState: onState, beforePlay: beforePlay,
		stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// Stop ends the relay and waits for it.
func (r *Relay) Stop() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// State is the relay's last reported state.
func (r *Relay) State() agentlink.RelayState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func (r *Relay) setState(state string, err error) {
	st := agentlink.RelayState{RelayKey: r.cfg.RelayKey, State: state}
	if err != nil {
		st.Error = err.Error()
	}
	r.mu.Lock()
	changed := r.state != st
	r.state = st
	r.mu.Unlock()
	if changed && r.onState != nil {
		r.onState(st)
	}
}

func (r *Relay) run() {
	defer close(r.done)
	bo := backoff.Backoff{Min: relayBackoffMin, Max: relayBackoffMax, ResetAfter: 10 * time.Second}
	for {
		r.setState(agentlink.RelayStarting, nil)
		started := time.Now()
		err := r.session()
		select {
		case <-r.stop:
			r.setState(agentlink.RelayStopped, nil)
			return
		default:
		}
		wait := bo.Next(time.Since(started))
		r.log.Warn("relay interrupted, retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
		r.setState(agentlink.RelayRetrying, err)
		select {
		case <-r.stop:
			r.setState(agentlink.RelayStopped, nil)
			return
		case <-time.After(wait):
		}
	}
}

// session runs one camera → centre connection pair until either fails.
func (r *Relay) session() error {
	srcURL, err := base.ParseURL(r.cfg.Source)
	if err != nil {
		return fmt.Errorf("bad camera URL: %w", err)
	}
	tcp := gortsplib.TransportTCP
	src := &gortsplib.Client{Scheme: srcURL.Scheme, Host: srcURL.Host, Transport: &tcp,
		ReadTimeout: relayTimeout, WriteTimeout: relayTimeout, DialContext: r.dialCamera}
	if err := src.Start2(); err != nil {
		return fmt.Errorf("camera: %w", err)
	}
	defer src.Close()
	desc, _, err := src.Describe(srcURL)
	if err != nil {
		return fmt.Errorf("camera: %w", err)
	}
	if err := src.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return fmt.Errorf("camera: %w", err)
	}

	// The centre gets its own copy of the media list: each client keeps
	// per-media state.
	out := &description.Session{Title: desc.Title}
	mapping := map[*description.Media]*description.Media{}
	for _, m := range desc.Medias {
		cp := &description.Media{Type: m.Type, ID: m.ID, Formats: m.Formats}
		out.Medias = append(out.Medias, cp)
		mapping[m] = cp
	}
	pubURL, err := publishURL(r.cfg)
	if err != nil {
		return err
	}
	dst := &gortsplib.Client{Transport: &tcp, ReadTimeout: relayTimeout, WriteTimeout: relayTimeout}
	if err := dst.StartRecording(pubURL, out); err != nil {
		return fmt.Errorf("centre: %w", err)
	}
	defer dst.Close()

	var writeErr atomic.Pointer[error]
	src.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		r.packets.Add(1)
		r.bytes.Add(uint64(len(pkt.Payload)))
		if err := dst.WritePacketRTP(mapping[m], pkt); err != nil && writeErr.Load() == nil {
			writeErr.Store(&err)
		}
	})
	if r.beforePlay != nil {
		r.beforePlay()
	}
	if _, err := src.Play(nil); err != nil {
		return fmt.Errorf("camera: %w", err)
	}
	r.setState(agentlink.RelayRunning, nil)
	r.log.Info("relay running")

	errs := make(chan error, 2)
	go func() { errs <- fmt.Errorf("camera: %w", src.Wait()) }()
	go func() { errs <- fmt.Errorf("centre: %w", dst.Wait()) }()
	select {
	case <-r.stop:
		src.Close()
		dst.Close()
		<-errs
		<-errs
		return errStopped
	case err := <-errs:
		src.Close()
		dst.Close()
		<-errs
		if p := writeErr.Load(); p != nil {
			return fmt.Errorf("centre: %w", *p)
		}
		return err
	}
}

// Rates returns the packet and bit rate since the last call.
func (r *Relay) Rates() (pps float64, bps int) {
	now := time.Now()
	p, b := r.packets.Load(), r.bytes.Load()
	r.mu.Lock()
	last := r.lastRate
	r.lastRate = rateSample{at: now, packets: p, bytes: b}
	r.mu.Unlock()
	if last.at.IsZero() {
		return 0, 0
	}
	d := now.Sub(last.at).Seconds()
	if d <= 0 {
		return 0, 0
	}
	return float64(p-last.packets) / d, int(float64(b-last.bytes) * 8 / d)
}

// publishURL puts the one-time publish credentials into the URL, escaped.
func publishURL(cfg agentlink.RelayStart) (string, error) {
	u, err := url.Parse(cfg.PublishURL)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") {
		return "", fmt.Errorf("bad publish URL from the centre")
	}
	u.User = url.UserPassword(cfg.User, cfg.Password)
	return u.String(), nil
}

// redact drops the password from a URL for logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable url)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}
