package streaming

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
)

// errSourceReplaced answers a source that reports to a path which no
// longer counts on it (stopped, or replaced by a newer one).
var errSourceReplaced = errors.New("source replaced")

// path is one point profile's state, owned by the goroutine running run:
// everyone else (readers, the Hub, pullers, the RTSP server's publisher
// hooks) sends it a request and waits for the answer. The source, the
// stream, the readers and the idle and start timers are fields of that one
// goroutine, so no lock guards them and no callback crosses one, and a
// timer can only act on the state it was armed for.
type path struct {
	hub *Hub
	id  string

	// Requests in.
	chConfig    chan configReq
	chAcquire   chan *acquireReq
	chDemanded  chan demandedReq
	chLeave     chan *acquireReq
	chPublisher chan publisherReq
	chReady     chan sourceReadyReq
	chLost      chan sourceLostReq
	chStatus    chan chan pathStatus

	// stop is closed by the Hub (under its lock, once) to end the path;
	// hubClosing, written before, tells whether the whole hub is closing.
	stop       chan struct{}
	hubClosing bool
	// gone is closed when run takes no more requests, so that nobody
	// waits on a path that has ended; done once everything run started
	// (pullers included) has exited.
	gone chan struct{}
	done chan struct{}

	// Everything below is touched only by run.
	cfg     SourceConfig
	cfgSeq  uint64
	readers int           // Acquires answered with the stream and not yet released
	holds   []*acquireReq // Acquires waiting for the stream, oldest first
	stream  *Stream
	puller  *puller
	// pullers counts every puller started, including stopped ones still
	// closing their camera connection; run waits for them before done.
	pullers   sync.WaitGroup
	publisher *gortsplib.ServerSession
	// demanded: the Demander was asked for a publisher and said yes. Only
	// then may idle stop the publisher (someone can ask it back).
	demanded   bool
	idleTimer  *time.Timer
	idleAt     time.Time // zero while the idle timer is not armed
	startTimer *time.Timer
	startAt    time.Time // zero while the start timer is not armed
	lastErr    string
	skipped    []string
}

type configReq struct {
	cfg SourceConfig
	seq uint64
}

// acquireReq is one reader's Acquire, from its arrival to its release.
type acquireReq struct {
	// res is buffered for the at most two answers (a demand, then the
	// stream or an error), so the path never waits for a reader.
	res chan acquireRes
	// Touched only by run.
	deadline time.Time
	granted  bool // answered with the stream and counted in readers
	left     bool
}

type acquireRes struct {
	stream *Stream
	err    error
	// demand asks the reader to call the Demander and report with a
	// demandedReq; the final answer follows.
	demand bool
}

type demandedReq struct {
	req *acquireReq
	ok  bool
}

type publisherReq struct {
	ss  *gortsplib.ServerSession
	res chan error
}

type sourceReadyReq struct {
	owner   any // *puller or *gortsplib.ServerSession
	tracks  []*Track
	skipped []string
	rtsp    *gortsplib.ServerStream
	res     chan sourceReadyRes
}

type sourceReadyRes struct {
	stream *Stream
	err    error
	notify bool // tell HubConfig.OnSourceState (outside the path)
}

type sourceLostReq struct {
	owner any
	err   error
	res   chan bool // notify OnSourceState
}

// pathStatus is a path's own part of its Stats, and its stream for the rest.
type pathStatus struct {
	stats     Stats
	stream    *Stream
	publisher bool
}

func newPath(h *Hub, id string, cfg SourceConfig, seq uint64) *path {
	return &path{
		hub:         h,
		id:          id,
		cfg:         cfg,
		cfgSeq:      seq,
		chConfig:    make(chan configReq),
		chAcquire:   make(chan *acquireReq),
		chDemanded:  make(chan demandedReq),
		chLeave:     make(chan *acquireReq),
		chPublisher: make(chan publisherReq),
		chReady:     make(chan sourceReadyReq),
		chLost:      make(chan sourceLostReq),
		chStatus:    make(chan chan pathStatus),
		stop:        make(chan struct{}),
		gone:        make(chan struct{}),
		done:        make(chan struct{}),
	}
}

// terminate ends the path; the Hub calls it once, under its lock.
func (p *path) terminate(hubClosing bool) {
	p.hubClosing = hubClosing
	close(p.stop)
}

// goneErr is what a request to an ended path gets.
func (p *path) goneErr() error {
	if p.hubClosing {
		return ErrHubClosed
	}
	return ErrUnknownPoint
}

// send hands v to the path's goroutine; false if the path has ended or
// cancel (a puller's stop, or nil) closed first.
func send[T any](p *path, ch chan T, v T, cancel <-chan struct{}) bool {
	select {
	case ch <- v:
		return true
	case <-p.gone:
		return false
	case <-cancel:
		return false
	}
}

// cancelOf is the channel that ends a source's interest in its path.
func cancelOf(owner any) <-chan struct{} {
	if pl, ok := owner.(*puller); ok {
		return pl.stop
	}
	return nil
}

// stoppedTimer is a timer that is not armed.
func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (p *path) run() {
	defer close(p.done)
	p.idleTimer, p.startTimer = stoppedTimer(), stoppedTimer()
	if pulled(p.cfg.Type) && !p.cfg.OnDemand {
		p.startPuller()
	}
	p.loop()

	p.idleTimer.Stop()
	p.startTimer.Stop()
	p.stopSource()
	p.endStream()
	close(p.gone)
	for _, req := range p.holds {
		req.res <- acquireRes{err: p.goneErr()}
	}
	p.holds = nil
	// A relay asked for a removed point is not wanted any more; on
	// shutdown the whole centre goes, relays with it.
	if p.demanded && !p.hubClosing {
		p.undemand()
	}
	p.pullers.Wait()
}

func (p *path) loop() {
	for {
		select {
		case req := <-p.chConfig:
			p.doConfig(req)
		case req := <-p.chAcquire:
			p.doAcquire(req)
		case req := <-p.chDemanded:
			p.doDemanded(req)
		case req := <-p.chLeave:
			p.doLeave(req)
		case req := <-p.chPublisher:
			p.doPublisher(req)
		case req := <-p.chReady:
			p.doSourceReady(req)
		case req := <-p.chLost:
			p.doSourceLost(req)
		case res := <-p.chStatus:
			res <- p.snapshot()
		case <-p.idleTimer.C:
			p.doIdle()
		case <-p.startTimer.C:
			p.doStartTimeout()
		case <-p.stop:
			return
		}
		p.scheduleTimers()
	}
}

// Requests, from other goroutines.

func (p *path) setConfig(cfg SourceConfig, seq uint64) {
	send(p, p.chConfig, configReq{cfg: cfg, seq: seq}, nil)
}

func (p *path) acquire(ctx context.Context) (*Stream, func(), error) {
	req := &acquireReq{res: make(chan acquireRes, 2)}
	select {
	case p.chAcquire <- req:
	case <-p.gone:
		return nil, nil, p.goneErr()
	case <-ctx.Done():
		return nil, nil, ErrStartTimeout
	}
	for {
		select {
		case res := <-req.res:
			if res.demand {
				// Outside the path: the Demander belongs to someone else.
				// Every waiting reader asks again, so a request lost with
				// a dropped agent link is retried by the next viewer.
				ok := p.hub.cfg.Demander.Demand(p.id)
				send(p, p.chDemanded, demandedReq{req: req, ok: ok}, nil)
				continue
			}
			if res.err != nil {
				return nil, nil, res.err
			}
			var once sync.Once
			return res.stream, func() { once.Do(func() { p.leave(req) }) }, nil
		case <-ctx.Done():
			p.leave(req)
			return nil, nil, ErrStartTimeout
		case <-p.gone:
			return nil, nil, p.goneErr()
		}
	}
}

// leave withdraws a reader, waiting or answered.
func (p *path) leave(req *acquireReq) { send(p, p.chLeave, req, nil) }

// setPublisher makes ss the point's publisher, replacing a stale one.
func (p *path) setPublisher(ss *gortsplib.ServerSession) error {
	req := publisherReq{ss: ss, res: make(chan error, 1)}
	if !send(p, p.chPublisher, req, nil) {
		return ErrUnknownPoint
	}
	return <-req.res
}

// onSourceReady is called by a source once it knows its media.
func (p *path) onSourceReady(owner any, desc *description.Session) (*Stream, error) {
	tracks, skipped := tracksFromDescription(desc)
	if len(tracks) == 0 {
		return nil, fmt.Errorf("no playable track: %v", skipped)
	}
	// Built here, not in the path: it is the caller's work.
	rtspStream := p.hub.newRTSPStream(desc)
	req := sourceReadyReq{owner: owner, tracks: tracks, skipped: skipped, rtsp: rtspStream, res: make(chan sourceReadyRes, 1)}
	if !send(p, p.chReady, req, cancelOf(owner)) {
		if rtspStream != nil {
			rtspStream.Close()
		}
		return nil, errSourceReplaced
	}
	res := <-req.res
	if res.notify {
		p.hub.cfg.OnSourceState(p.id, true)
	}
	return res.stream, res.err
}

// onSourceLost is called by a source whose connection ended.
func (p *path) onSourceLost(owner any, err error) {
	req := sourceLostReq{owner: owner, err: err, res: make(chan bool, 1)}
	if !send(p, p.chLost, req, cancelOf(owner)) {
		return
	}
	if <-req.res {
		p.hub.cfg.OnSourceState(p.id, false)
	}
}

// status asks the path for its state.
func (p *path) status() (pathStatus, error) {
	res := make(chan pathStatus, 1)
	if !send(p, p.chStatus, res, nil) {
		return pathStatus{}, p.goneErr()
	}
	return <-res, nil
}

func (p *path) stats() (Stats, error) {
	ps, err := p.status()
	if err != nil {
		return Stats{}, err
	}
	st := ps.stats
	if ps.stream != nil {
		// The stream has its own lock; read it outside the path.
		ps.stream.fillStats(&st)
		st.State = StateLive
		if st.SourceOnlineSecs == 0 {
			st.State = StateWaiting
		}
	}
	return st, nil
}

// Handlers, on the path's goroutine.

func (p *path) doConfig(req configReq) {
	if req.seq <= p.cfgSeq {
		// An older SetPoint that reached the path after a newer one.
		return
	}
	p.cfgSeq = req.seq
	if sameConfig(req.cfg, p.cfg) {
		return
	}
	p.cfg = req.cfg
	p.stopSource()
	p.endStream()
	if p.demanded && p.cfg.Type != SourcePublish {
		p.undemand()
	}
	if pulled(p.cfg.Type) && (!p.cfg.OnDemand || p.readers+len(p.holds) > 0) {
		p.startPuller()
	}
}

func (p *path) doAcquire(req *acquireReq) {
	req.deadline = time.Now().Add(p.hub.cfg.StartTimeout)
	if p.stream != nil {
		p.grant(req)
		return
	}
	switch p.cfg.Type {
	case SourceRTSP, SourceExternal:
		if p.puller == nil {
			p.startPuller()
		}
	case SourcePublish:
		if p.publisher == nil {
			if p.hub.cfg.Demander == nil {
				req.res <- acquireRes{err: ErrNotPublishing}
				return
			}
			req.res <- acquireRes{demand: true}
		}
	}
	p.holds = append(p.holds, req)
}

func (p *path) doDemanded(d demandedReq) {
	if d.ok {
		// Asked, even if this reader has gone since: the relay is ours to
		// stop once idle.
		p.demanded = true
		return
	}
	if p.unhold(d.req) {
		d.req.res <- acquireRes{err: ErrNotPublishing}
	}
}

func (p *path) doLeave(req *acquireReq) {
	if p.unhold(req) {
		return
	}
	if req.granted && !req.left {
		req.left = true
		p.readers--
	}
}

func (p *path) doPublisher(req publisherReq) {
	if p.cfg.Type != SourcePublish {
		req.res <- errors.New("this point pulls from a camera and does not accept publishers")
		return
	}
	if old := p.publisher; old != nil && old != req.ss {
		p.hub.log.Info("publisher replaced", "point", p.id)
		old.Close()
	}
	p.publisher = req.ss
	req.res <- nil
}

func (p *path) doSourceReady(req sourceReadyReq) {
	if !p.owns(req.owner) {
		if req.rtsp != nil {
			req.rtsp.Close()
		}
		req.res <- sourceReadyRes{err: errSourceReplaced}
		return
	}
	for _, s := range req.skipped {
		p.hub.log.Info("track skipped", "point", p.id, "reason", s)
	}
	p.skipped, p.lastErr = req.skipped, ""
	if p.stream != nil && !p.stream.compatible(req.tracks) {
		p.hub.log.Info("source changed codecs; ending readers", "point", p.id)
		p.endStream()
	}
	if p.stream == nil {
		p.stream = newStream(p.id, req.tracks, p.hub.log)
	}
	p.stream.attach(req.tracks, req.rtsp)
	for _, h := range p.holds {
		p.grant(h)
	}
	p.holds = nil
	_, pulled := req.owner.(*puller)
	req.res <- sourceReadyRes{stream: p.stream, notify: pulled && p.hub.cfg.OnSourceState != nil}
}

func (p *path) doSourceLost(req sourceLostReq) {
	if !p.owns(req.owner) {
		req.res <- false
		return
	}
	if req.err != nil {
		p.lastErr = req.err.Error()
	}
	if ss, ok := req.owner.(*gortsplib.ServerSession); ok && ss == p.publisher {
		p.publisher = nil
	}
	if p.stream != nil {
		p.stream.detach()
	}
	// A pulled camera that failed (not one stopped on purpose) is down.
	_, pulled := req.owner.(*puller)
	req.res <- pulled && req.err != nil && p.hub.cfg.OnSourceState != nil
}

// doIdle runs when the idle timer fires: nobody has read for the grace.
func (p *path) doIdle() {
	if p.idleAt.IsZero() {
		return // disarmed after it fired
	}
	if wait := time.Until(p.idleAt); wait > 0 {
		p.idleTimer.Reset(wait)
		return
	}
	p.idleAt = time.Time{}
	if !p.idleWanted() {
		return
	}
	switch p.cfg.Type {
	case SourceRTSP, SourceExternal:
		p.hub.log.Info("source idle, stopping", "point", p.id)
		p.stopSource()
		p.endStream()
	case SourcePublish:
		if p.demanded {
			p.hub.log.Info("relay idle, stopping", "point", p.id)
			p.stopSource()
			p.endStream()
			p.undemand()
			return
		}
		// Only the stream of a publisher that has left: nobody to stop.
		p.endStream()
	}
}

// doStartTimeout answers the readers that have waited StartTimeout.
func (p *path) doStartTimeout() {
	now := time.Now()
	n := 0
	for _, req := range p.holds {
		if req.deadline.After(now) {
			break
		}
		req.res <- acquireRes{err: ErrStartTimeout}
		n++
	}
	p.holds = p.holds[n:]
	p.startAt = time.Time{}
}

// scheduleTimers arms or disarms the idle and start timers for the state
// the last request left. Only run touches them, so a timer never outlives
// the state it was armed for.
func (p *path) scheduleTimers() {
	switch want := p.idleWanted(); {
	case want && p.idleAt.IsZero():
		p.idleAt = time.Now().Add(p.hub.cfg.IdleGrace)
		p.idleTimer.Reset(p.hub.cfg.IdleGrace)
	case !want && !p.idleAt.IsZero():
		p.idleTimer.Stop()
		p.idleAt = time.Time{}
	}
	// Holds arrive in order with the same timeout: the oldest ends first.
	switch {
	case len(p.holds) == 0 && !p.startAt.IsZero():
		p.startTimer.Stop()
		p.startAt = time.Time{}
	case len(p.holds) > 0 && !p.startAt.Equal(p.holds[0].deadline):
		p.startAt = p.holds[0].deadline
		p.startTimer.Reset(time.Until(p.startAt))
	}
}

// idleWanted reports whether, with no reader left, something should stop
// after the grace: an on-demand camera pull, a relay the Demander started,
// or the empty stream of a publisher that has left. A publisher that
// nobody demanded is never stopped: nobody could ask it back.
func (p *path) idleWanted() bool {
	if p.readers > 0 || len(p.holds) > 0 {
		return false
	}
	switch p.cfg.Type {
	case SourceRTSP, SourceExternal:
		return p.cfg.OnDemand && (p.puller != nil || p.stream != nil)
	case SourcePublish:
		return p.demanded || (p.publisher == nil && p.stream != nil)
	}
	return false
}

func (p *path) grant(req *acquireReq) {
	req.granted = true
	p.readers++
	req.res <- acquireRes{stream: p.stream}
}

// unhold removes req from the waiting readers, reporting whether it was one.
func (p *path) unhold(req *acquireReq) bool {
	for i, h := range p.holds {
		if h == req {
			p.holds = append(p.holds[:i:i], p.holds[i+1:]...)
			return true
		}
	}
	return false
}

func (p *path) startPuller() {
	pl := &puller{path: p, cfg: p.cfg, stop: make(chan struct{}), done: make(chan struct{})}
	pl.ctx, pl.cancel = context.WithCancel(context.Background())
	p.puller = pl
	p.pullers.Add(1)
	go func() {
		defer p.pullers.Done()
		pl.run()
	}()
}

func (p *path) stopSource() {
	if p.puller != nil {
		p.puller.close()
		p.puller = nil
	}
	if p.publisher != nil {
		p.publisher.Close()
		p.publisher = nil
	}
}

func (p *path) endStream() {
	if p.stream != nil {
		p.stream.close()
		p.stream = nil
	}
}

func (p *path) undemand() {
	p.demanded = false
	if d := p.hub.cfg.Demander; d != nil {
		d.Undemand(p.id)
	}
}

func (p *path) owns(owner any) bool {
	switch o := owner.(type) {
	case *puller:
		return o == p.puller
	case *gortsplib.ServerSession:
		return o == p.publisher
	}
	return false
}

func (p *path) snapshot() pathStatus {
	st := Stats{PointID: p.id, SourceError: p.lastErr, SkippedTracks: p.skipped, Readers: p.readers + len(p.holds)}
	switch {
	case p.stream == nil && (p.puller != nil || p.demanded || len(p.holds) > 0):
		st.State = StateStarting
	case p.stream == nil:
		st.State = StateIdle
	}
	return pathStatus{stats: st, stream: p.stream, publisher: p.publisher != nil}
}
