package streaming

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// SourceExternal is a source running in this process (a GB/T 28181
	// device's PS over RTP): SourceConfig.External, run like a camera pull.
	SourceExternal = "external"
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
	// External is the source for SourceExternal. Configurations compare it
	// by identity, so it must be a pointer (or another comparable value):
	// SetPoint with the same External changes nothing.
	External ExternalSource
}

// Demander is told when a published point has readers waiting for a
// publisher, and when it has been idle for the grace period, so that an
// edge relay can be started and stopped. Demand reports whether someone was
// asked to publish (false: nobody can, readers get ErrNotPublishing); it
// must be cheap and idempotent, as every waiting reader calls it (from the
// reader's goroutine). Only a point whose Demand returned true is ever
// undemanded, and only its publisher is stopped when idle: a publisher
// nobody asked for keeps publishing with no reader. Undemand is called from
// the path's own goroutine, so it must not block or call back into the Hub.
type Demander interface {
	Demand(pointID string) bool
	Undemand(pointID string)
}

// HubConfig configures a Hub.
type HubConfig struct {
	// IdleGrace is how long an on-demand source (a pulled camera, or a relay
	// the Demander started) runs without readers (default 15 s).
	IdleGrace time.Duration
	// StartTimeout bounds how long readers wait for a source to start (default 10 s).
	StartTimeout time.Duration
	// SourceReadTimeout detects a dead camera connection (default 5 s).
	SourceReadTimeout time.Duration
	// Demander, if set, starts relays for published points on demand.
	Demander Demander
	// OnSourceState, if set, is told when a camera the hub pulls itself
	// (or an external source) connects (up) or fails (down), with the path
	// key. It is called from
	// the puller's goroutine after the path has taken the news, never
	// from the path's own; Close waits for pullers, so it must not call
	// Close.
	OnSourceState func(key string, up bool)
	// DialCamera, if set, opens every connection to a camera the hub pulls
	// (the server passes its camera-network guard); nil dials directly.
	DialCamera func(ctx context.Context, network, address string) (net.Conn, error)
	Logger     *slog.Logger
}

// Hub keeps the directory of paths, one per point profile, each sharing
// one upstream among all its readers. The Hub's lock guards only that
// directory; a path's state belongs to the path's own goroutine (see
// path.go), which the Hub starts in SetPoint and stops in RemovePoint and
// Close.
type Hub struct {
	cfg  HubConfig
	log  *slog.Logger
	rtsp atomic.Pointer[gortsplib.Server] // for RTSP re-serve streams; nil until the RTSP server starts

	mu     sync.Mutex
	paths  map[string]*path
	seq    uint64 // orders SetPoint calls, so a path applies the latest config last
	closed bool
	// wg counts path goroutines. Add is called only under mu while !closed,
	// and Close sets closed under mu before Wait: no Add can race the Wait.
	wg sync.WaitGroup
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

func (h *Hub) setRTSPServer(s *gortsplib.Server) { h.rtsp.Store(s) }

func (h *Hub) newRTSPStream(desc *description.Session) *gortsplib.ServerStream {
	srv := h.rtsp.Load()
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
	h.seq++
	p, ok := h.paths[id]
	if !ok {
		p = newPath(h, id, cfg, h.seq)
		h.paths[id] = p
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			p.run()
		}()
		h.mu.Unlock()
		return
	}
	seq := h.seq
	h.mu.Unlock()
	// Outside the lock: the path may be busy. If a RemovePoint or Close
	// wins the race, the path is gone and the change with it; either way
	// the path's goroutine, not this call, owns whatever it starts.
	p.setConfig(cfg, seq)
}

// RemovePoint stops a point's source and ends its readers. It does not
// wait: the path's goroutine stops the source at once (Close waits for it),
// so a caller holding its own locks cannot deadlock with a source's
// OnSourceState callback.
func (h *Hub) RemovePoint(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.paths[id]; p != nil {
		delete(h.paths, id)
		p.terminate(false)
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
	return p.acquire(ctx)
}

// Stats reports a point's stream health.
func (h *Hub) Stats(id string) (Stats, error) {
	p, err := h.path(id)
	if err != nil {
		return Stats{}, err
	}
	return p.stats()
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
		st, err := p.stats()
		if err == nil && st.State != StateIdle {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b Stats) int { return strings.Compare(a.PointID, b.PointID) })
	return out
}

// Close stops every source and ends every stream; it returns once every
// path's goroutine, and every puller those started, has exited.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for _, p := range h.paths {
		p.terminate(true)
	}
	h.paths = map[string]*path{}
	h.mu.Unlock()
	h.wg.Wait()
}

// Path states, as reported in Stats.
const (
	StateIdle     = "idle"
	StateStarting = "starting"
	StateLive     = "live"
	StateWaiting  = "waiting_source" // readers present, source lost; retrying
)
