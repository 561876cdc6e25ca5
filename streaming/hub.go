package streaming

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
)

// Errors returned by Hub.Acquire.
var (
	ErrUnknownPoint  = errors.New("unknown point")
	ErrNotPublishing = errors.New("no one is publishing this point")
	ErrStartTimeout  = errors.New("the source did not start in time")
	ErrHubClosed     = errors.New("streaming hub is shutting down")
)

// Source types.
const (
	SourceRTSP    = "rtsp"
	SourcePublish = "publish"
)

// SourceConfig tells the hub where a point's media comes from.
type SourceConfig struct {
	// Type is SourceRTSP (the server pulls URL) or SourcePublish (someone pushes).
	Type string
	// URL of the camera for SourceRTSP; it may carry credentials and is never logged.
	URL string
	// Transport is "tcp" (default) or "udp".
	Transport string
	// OnDemand pulls only while someone reads.
	OnDemand bool
}

// Demander is told when a published point has readers waiting for a
// publisher, and when it has been idle for the grace period, so that an
// edge relay can be started and stopped. Demand reports whether someone was
// asked to publish (false: nobody can, readers get ErrNotPublishing); it
// must be cheap and idempotent, as every waiting reader calls it.
type Demander interface {
	Demand(pointID string) bool
	Undemand(pointID string)
}

// HubConfig configures a Hub.
type HubConfig struct {
	// IdleGrace is how long an on-demand source runs without readers (default 15 s).
	IdleGrace time.Duration
	// StartTimeout bounds how long readers wait for a source to start (default 10 s).
	StartTimeout time.Duration
	// SourceReadTimeout detects a dead camera connection (default 5 s).
	SourceReadTimeout time.Duration
	// Demander, if set, starts relays for published points on demand.
	Demander Demander
	// OnSourceState, if set, is told when a camera the hub pulls itself
	// connects (up) or fails (down), with the path key. It is called
	// outside the hub's locks, from the puller's goroutine.
	OnSourceState func(key string, up bool)
	// DialCamera, if set, opens every connection to a camera the hub pulls
	// (the server passes its camera-network guard); nil dials directly.
	DialCamera func(ctx context.Context, network, address string) (net.Conn, error)
	Logger     *slog.Logger
}

// Hub owns every point's path: one upstream per point, shared by all readers.
type Hub struct {
	cfg HubConfig
	log *slog.Logger

	mu     sync.Mutex
	paths  map[string]*path
	closed bool
	rtsp   *gortsplib.Server // for RTSP re-serve streams; nil until the RTSP server starts
	wg     sync.WaitGroup
}

// NewHub creates an empty hub.
func NewHub(cfg HubConfig) *Hub {
	if cfg.IdleGrace <= 0 {
		cfg.IdleGrace = 15 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.SourceReadTimeout <= 0 {
		cfg.SourceReadTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Hub{cfg: cfg, log: cfg.Logger, paths: map[string]*path{}}
}

// StartTimeout is how long readers wait for a source.
func (h *Hub) StartTimeout() time.Duration { return h.cfg.StartTimeout }

func (h *Hub) setRTSPServer(s *gortsplib.Server) {
	h.mu.Lock()
	h.rtsp = s
	h.mu.Unlock()
}

func (h *Hub) newRTSPStream(desc *description.Session) *gortsplib.ServerStream {
	h.mu.Lock()
	srv := h.rtsp
	h.mu.Unlock()
	if srv == nil {
		return nil
	}
	st := &gortsplib.ServerStream{Server: srv, Desc: desc}
	if err := st.Initialize(); err != nil {
		h.log.Warn("cannot re-serve over RTSP", "err", err)
		return nil
	}
	return st
}

// SetPoint adds a point or changes its source. A changed source ends the
// current stream and its readers.
func (h *Hub) SetPoint(id string, cfg SourceConfig) {
	if cfg.Transport == "" {
		cfg.Transport = "tcp"
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	p, ok := h.paths[id]
	if !ok {
		p = &path{hub: h, id: id, cfg: cfg, readyCh: make(chan struct{})}
		h.paths[id] = p
		h.mu.Unlock()
		p.applyConfig()
		return
	}
	h.mu.Unlock()
	p.reconfigure(cfg)
}

// RemovePoint stops a point's source and ends its readers.
func (h *Hub) RemovePoint(id string) {
	h.mu.Lock()
	p := h.paths[id]
	delete(h.paths, id)
	h.mu.Unlock()
	if p != nil {
		p.shutdown()
	}
}

func (h *Hub) path(id string) (*path, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	p, ok := h.paths[id]
	if !ok {
		return nil, ErrUnknownPoint
	}
	return p, nil
}

// Acquire returns the point's live stream, starting its source if needed,
// and a release function the caller must call exactly once. Concurrent
// callers share one start. It waits at most until ctx ends or the hub's
// start timeout passes, then fails with ErrStartTimeout.
func (h *Hub) Acquire(ctx context.Context, id string) (*Stream, func(), error) {
	p, err := h.path(id)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.StartTimeout)
	defer cancel()
	return p.acquire(ctx)
}

// Stats reports a point's stream health.
func (h *Hub) Stats(id string) (Stats, error) {
	p, err := h.path(id)
	if err != nil {
		return Stats{}, err
	}
	return p.statsSnapshot(), nil
}

// AllStats reports every point that has a running stream or readers.
func (h *Hub) AllStats() []Stats {
	h.mu.Lock()
	ps := make([]*path, 0, len(h.paths))
	for _, p := range h.paths {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	out := make([]Stats, 0, len(ps))
	for _, p := range ps {
		st := p.statsSnapshot()
		if st.State != StateIdle {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b Stats) int {
		if a.PointID < b.PointID {
			return -1
		}
		if a.PointID > b.PointID {
			return 1
		}
		return 0
	})
	return out
}

// Close stops every source and ends every stream; it waits for source
// goroutines to exit.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	ps := h.paths
	h.paths = map[string]*path{}
	h.mu.Unlock()
	for _, p := range ps {
		p.shutdown()
	}
	h.wg.Wait()
}

// Path states, as reported in Stats.
const (
	StateIdle     = "idle"
	StateStarting = "starting"
	StateLive     = "live"
	StateWaiting  = "waiting_source" // readers present, source lost; retrying
)

// path holds one point's state. Its fields are guarded by mu; the source
// goroutine reports into it through onSourceReady and onSourceLost.
type path struct {
	hub *Hub
	id  string

	mu        sync.Mutex
	cfg       SourceConfig
	readers   int
	stream    *Stream
	readyCh   chan struct{} // closed once stream is set
	puller    *puller
	publisher *gortsplib.ServerSession
	demanded  bool
	idleTimer *time.Timer
	lastErr   string
	skipped   []string
	closed    bool
}

func (p *path) applyConfig() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.Type == SourceRTSP && !p.cfg.OnDemand {
		p.startPullLocked()
	}
}

func (p *path) reconfigure(cfg SourceConfig) {
	p.mu.Lock()
	if p.cfg == cfg {
		p.mu.Unlock()
		return
	}
	p.cfg = cfg
	p.stopSourceLocked()
	p.endStreamLocked()
	if cfg.Type == SourceRTSP && (!cfg.OnDemand || p.readers > 0) {
		p.startPullLocked()
	}
	p.mu.Unlock()
}

func (p *path) shutdown() {
	p.mu.Lock()
	p.closed = true
	p.stopSourceLocked()
	p.endStreamLocked()
	if p.idleTimer != nil {
		p.idleTimer.Stop()
	}
	p.mu.Unlock()
}

func (p *path) acquire(ctx context.Context) (*Stream, func(), error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, ErrUnknownPoint
	}
	p.readers++
	if p.idleTimer != nil {
		p.idleTimer.Stop()
		p.idleTimer = nil
	}
	var once sync.Once
	release := func() { once.Do(p.release) }
	needDemand := false
	if p.stream == nil {
		switch p.cfg.Type {
		case SourceRTSP:
			if p.puller == nil {
				p.startPullLocked()
			}
		case SourcePublish:
			if p.publisher == nil {
				d := p.hub.cfg.Demander
				if d == nil {
					p.mu.Unlock()
					release()
					return nil, nil, ErrNotPublishing
				}
				needDemand = true
			}
		}
	}
	ch := p.readyCh
	if needDemand {
		p.demanded = true
	}
	p.mu.Unlock()
	// Every reader waiting for a publisher asks again, outside the lock: a
	// request lost with a dropped agent link is retried by the next viewer.
	// A Demander that has nobody to ask says so, and the reader is told at
	// once that nobody publishes.
	if needDemand && !p.hub.cfg.Demander.Demand(p.id) {
		release()
		return nil, nil, ErrNotPublishing
	}

	select {
	case <-ch:
	case <-ctx.Done():
		release()
		return nil, nil, ErrStartTimeout
	}
	p.mu.Lock()
	s := p.stream
	p.mu.Unlock()
	if s == nil {
		release()
		return nil, nil, ErrStartTimeout
	}
	return s, release, nil
}

func (p *path) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.readers--
	if p.readers > 0 || p.closed {
		return
	}
	if p.cfg.Type == SourceRTSP && !p.cfg.OnDemand {
		return
	}
	if p.idleTimer != nil {
		p.idleTimer.Stop()
	}
	p.idleTimer = time.AfterFunc(p.hub.cfg.IdleGrace, p.idle)
}

// idle stops an on-demand source that has had no reader for the grace period.
func (p *path) idle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readers > 0 || p.closed {
		return
	}
	p.idleTimer = nil
	if p.cfg.Type == SourceRTSP && !p.cfg.OnDemand {
		return
	}
	p.hub.log.Info("source idle, stopping", "point", p.id)
	p.stopSourceLocked()
	p.endStreamLocked()
	if p.demanded && p.hub.cfg.Demander != nil {
		p.demanded = false
		d := p.hub.cfg.Demander
		p.hub.wg.Add(1)
		go func() {
			defer p.hub.wg.Done()
			d.Undemand(p.id)
		}()
	}
}

func (p *path) startPullLocked() {
	pl := &puller{path: p, cfg: p.cfg, stop: make(chan struct{}), done: make(chan struct{})}
	p.puller = pl
	p.hub.wg.Add(1)
	go func() {
		defer p.hub.wg.Done()
		pl.run()
	}()
}

func (p *path) stopSourceLocked() {
	if p.puller != nil {
		p.puller.close()
		p.puller = nil
	}
	if p.publisher != nil {
		p.publisher.Close()
		p.publisher = nil
	}
}

func (p *path) endStreamLocked() {
	if p.stream != nil {
		p.stream.close()
		p.stream = nil
		p.readyCh = make(chan struct{})
	}
}

// onSourceReady is called by a source once it knows its media.
func (p *path) onSourceReady(owner any, desc *description.Session) (*Stream, error) {
	tracks, skipped := tracksFromDescription(desc)
	if len(tracks) == 0 {
		return nil, fmt.Errorf("no playable track: %v", skipped)
	}
	rtspStream := p.hub.newRTSPStream(desc)
	notify := false
	defer func() {
		// After the unlock below (defers run last in, first out).
		if notify {
			p.hub.cfg.OnSourceState(p.id, true)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ownsSource(owner) {
		if rtspStream != nil {
			rtspStream.Close()
		}
		return nil, errors.New("source replaced")
	}
	for _, s := range skipped {
		p.hub.log.Info("track skipped", "point", p.id, "reason", s)
	}
	p.skipped, p.lastErr = skipped, ""
	if p.stream != nil && !p.stream.compatible(tracks) {
		p.hub.log.Info("source changed codecs; ending readers", "point", p.id)
		p.endStreamLocked()
	}
	if p.stream == nil {
		p.stream = newStream(p.id, tracks, p.hub.log)
		close(p.readyCh)
	}
	p.stream.attach(tracks, rtspStream)
	_, pulled := owner.(*puller)
	notify = pulled && p.hub.cfg.OnSourceState != nil
	return p.stream, nil
}

// onSourceLost is called by a source whose connection ended.
func (p *path) onSourceLost(owner any, err error) {
	notify := false
	defer func() {
		if notify {
			p.hub.cfg.OnSourceState(p.id, false)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.lastErr = err.Error()
	}
	if !p.ownsSource(owner) {
		return
	}
	// A pulled camera that failed (not one stopped on purpose) is down.
	_, pulled := owner.(*puller)
	notify = pulled && err != nil && !p.closed && p.hub.cfg.OnSourceState != nil
	if owner == any(p.publisher) {
		p.publisher = nil
	}
	if p.stream != nil {
		p.stream.detach()
	}
}

func (p *path) ownsSource(owner any) bool {
	if pl, ok := owner.(*puller); ok {
		return p.puller == pl
	}
	if ss, ok := owner.(*gortsplib.ServerSession); ok {
		return p.publisher == ss
	}
	return false
}

// setPublisher makes ss the point's publisher, replacing a stale one.
func (p *path) setPublisher(ss *gortsplib.ServerSession) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrUnknownPoint
	}
	if p.cfg.Type != SourcePublish {
		return errors.New("this point pulls from a camera and does not accept publishers")
	}
	if old := p.publisher; old != nil && old != ss {
		p.hub.log.Info("publisher replaced", "point", p.id)
		old.Close()
	}
	p.publisher = ss
	if p.readers == 0 && p.idleTimer == nil && p.cfg.OnDemand && p.demanded {
		p.idleTimer = time.AfterFunc(p.hub.cfg.IdleGrace, p.idle)
	}
	return nil
}

func (p *path) statsSnapshot() Stats {
	p.mu.Lock()
	st := Stats{PointID: p.id, SourceError: p.lastErr, SkippedTracks: p.skipped, Readers: p.readers}
	s := p.stream
	switch {
	case s == nil && (p.puller != nil || p.demanded):
		st.State = StateStarting
	case s == nil:
		st.State = StateIdle
	}
	p.mu.Unlock()
	if s != nil {
		s.fillStats(&st)
		st.State = StateLive
		if st.SourceOnlineSecs == 0 {
			st.State = StateWaiting
		}
	}
	return st
}
