package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tianyan/vms/agentlink"
)

// link is one agent's live control connection. Serve owns it: its reader
// runs in Serve's goroutine and its writer in one goroutine Serve waits for.
// The writer also sends a keepalive every keepalive, so an idle link stays
// up; the reader waits for the agent by the agent's own interval.
type link struct {
	agent     string
	conn      *websocket.Conn
	send      chan []byte
	ctx       context.Context
	stop      context.CancelCauseFunc
	keepalive time.Duration // how often the writer sends on an idle link

	// peer is the agent's keepalive interval (from Hello); the reader
	// alone reads and writes it.
	peer time.Duration

	rtspURL atomic.Value // string: where this agent publishes
	nextID  atomic.Uint64
	mu      sync.Mutex
	pending map[string]chan agentlink.Reply
}

func (l *link) close(reason string) {
	l.stop(errors.New(reason))
}

// enqueue queues a message; a link whose queue is full is too slow and is cut.
func (l *link) enqueue(msg []byte) error {
	select {
	case l.send <- msg:
		return nil
	case <-l.ctx.Done():
		return ErrOffline
	default:
		l.close("send queue full")
		return ErrOffline
	}
}

// Serve runs an authenticated agent's control link until it drops, the
// agent is revoked or ctx ends. rtspURL is the base the agent publishes to.
// A second link of the same agent replaces the first.
func (r *Registry) Serve(ctx context.Context, conn *websocket.Conn, a Agent, rtspURL string) error {
	conn.SetReadLimit(agentlink.MaxMessageBytes)
	lctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	l := &link{agent: a.ID, conn: conn, send: make(chan []byte, 256), ctx: lctx, stop: stop, pending: map[string]chan agentlink.Reply{},
		keepalive: r.opts.KeepaliveInterval, peer: agentlink.KeepaliveInterval}
	l.rtspURL.Store(rtspURL)

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
		return ErrOffline
	}
	r.serving.Add(1)
	defer r.serving.Done()
	old := r.links[a.ID]
	r.links[a.ID] = l
	r.cameBackLocked(a.ID)
	r.mu.Unlock()
	if old != nil {
		old.close("replaced by a new link")
	}
	r.log.Info("agent connected", "agent", a.ID, "name", a.Name)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.writeLoop()
	}()
	err := r.readLoop(l, rtspURL)
	stop(err)
	wg.Wait()
	_ = conn.Close(websocket.StatusNormalClosure, "bye")

	r.mu.Lock()
	if r.links[a.ID] == l {
		delete(r.links, a.ID)
	}
	replaced := r.links[a.ID] != nil
	for _, rl := range r.wanted {
		if rl.agent == a.ID && !replaced {
			rl.state = agentlink.RelayState{RelayKey: rl.state.RelayKey, State: agentlink.RelayStopped, Error: "agent offline"}
		}
	}
	r.mu.Unlock()
	if !replaced {
		r.touch(a.ID, func(rec *record) {})
		r.wentAway(a.ID)
	}
	cause := context.Cause(lctx)
	r.log.Info("agent disconnected", "agent", a.ID, "reason", cause)
	return cause
}

// keepaliveMsg is what a side sends when it has nothing else to say.
var keepaliveMsg, _ = agentlink.Encode(agentlink.TypeKeepalive, "", nil)

func (l *link) writeLoop() {
	tick := time.NewTicker(l.keepalive)
	defer tick.Stop()
	for {
		var msg []byte
		select {
		case <-l.ctx.Done():
			return
		case msg = <-l.send:
		case <-tick.C:
			msg = keepaliveMsg
		}
		wctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
		err := l.conn.Write(wctx, websocket.MessageText, msg)
		cancel()
		if err != nil {
			l.stop(fmt.Errorf("write: %w", err))
			return
		}
	}
}

func (r *Registry) readLoop(l *link, rtspURL string) error {
	helloSeen := false
	for {
		// A few of the agent's own keepalive intervals in silence, and the
		// agent is gone.
		wait := agentlink.ReadDeadline(l.peer)
		rctx, cancel := context.WithTimeout(l.ctx, wait)
		typ, data, err := l.conn.Read(rctx)
		silent := errors.Is(rctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			if l.ctx.Err() != nil {
				return context.Cause(l.ctx)
			}
			if silent {
				return fmt.Errorf("agent silent for %v (its keepalive interval is %v)", wait, l.peer)
			}
			return fmt.Errorf("read: %w", err)
		}
		if typ != websocket.MessageText {
			return errors.New("binary message on the control link")
		}
		env, err := agentlink.Decode(data)
		if err != nil {
			return err
		}
		if !helloSeen && env.Type != agentlink.TypeHello {
			return fmt.Errorf("first message was %q, want hello", env.Type)
		}
		if err := r.handle(l, env, rtspURL); err != nil {
			return err
		}
		helloSeen = true
	}
}

func (r *Registry) handle(l *link, env agentlink.Envelope, rtspURL string) error {
	switch env.Type {
	case agentlink.TypeHello:
		var h agentlink.Hello
		if err := env.Decode(&h); err != nil {
			return err
		}
		if h.Protocol != agentlink.Version {
			return fmt.Errorf("agent speaks protocol %d, centre %d", h.Protocol, agentlink.Version)
		}
		l.peer = agentlink.PeerInterval(h.KeepaliveMs)
		r.touch(l.agent, func(rec *record) {
			rec.Version = clip(h.Version, 64)
			if h.Hostname != "" {
				rec.Hostname = clip(h.Hostname, 255)
			}
		})
		msg, _ := agentlink.Encode(agentlink.TypeWelcome, "", agentlink.Welcome{AgentID: l.agent, RTSPURL: rtspURL, Points: r.bindingsOf(l.agent),
			KeepaliveMs: l.keepalive.Milliseconds()})
		if err := l.enqueue(msg); err != nil {
			return err
		}
		// Resume every relay someone is still watching; the ones the agent
		// still runs but nobody wants any more are stopped.
		r.mu.Lock()
		var resume []agentlink.RelayKey
		for k, rl := range r.wanted {
			if rl.agent == l.agent {
				resume = append(resume, k)
			}
		}
		r.mu.Unlock()
		for _, k := range resume {
			r.startRelay(k)
		}
		for _, k := range h.Relays {
			if !containsKey(resume, k) {
				msg, _ := agentlink.Encode(agentlink.TypeRelayStop, "", agentlink.RelayStop{RelayKey: k})
				_ = l.enqueue(msg)
			}
		}
	case agentlink.TypeInventory:
		var inv agentlink.Inventory
		if err := env.Decode(&inv); err != nil {
			return err
		}
		if len(inv.Cameras) > 4096 {
			return errors.New("inventory of more than 4096 cameras")
		}
		r.touch(l.agent, func(rec *record) { rec.Cameras = inv.Cameras })
	case agentlink.TypeHealth:
		var h agentlink.Health
		if err := env.Decode(&h); err != nil {
			return err
		}
		r.touch(l.agent, func(rec *record) {})
		r.reportHealth(l.agent, h.Points)
	case agentlink.TypeRelayState:
		var st agentlink.RelayState
		if err := env.Decode(&st); err != nil {
			return err
		}
		r.mu.Lock()
		if rl := r.wanted[st.RelayKey]; rl != nil && rl.agent == l.agent {
			rl.state = st
		}
		r.mu.Unlock()
		if st.Error != "" {
			r.log.Info("relay state", "agent", l.agent, "relay", st.String(), "state", st.State, "err", st.Error)
		}
	case agentlink.TypeKeepalive:
		// Reading it was the point.
	case agentlink.TypeReply:
		var rep agentlink.Reply
		if err := env.Decode(&rep); err != nil {
			return err
		}
		l.mu.Lock()
		ch := l.pending[env.ID]
		delete(l.pending, env.ID)
		l.mu.Unlock()
		if ch != nil {
			ch <- rep
		}
	default:
		// Newer agents may send more; ignoring keeps old centres working.
		r.log.Debug("unknown message from agent", "agent", l.agent, "type", env.Type)
	}
	return nil
}

func containsKey(ks []agentlink.RelayKey, k agentlink.RelayKey) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// touch records that the agent was heard from, and applies fn.
func (r *Registry) touch(id string, fn func(*record)) {
	err := r.update(id, func(rec *record) error {
		t := r.opts.Now().UTC()
		rec.LastSeen = &t
		fn(rec)
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		r.log.Warn("agent record update failed", "agent", id, "err", err)
	}
}

func (r *Registry) bindingsOf(agentID string) []agentlink.PointBinding {
	var out []agentlink.PointBinding
	for _, id := range r.opts.PointsOf(agentID) {
		if b, ok := r.opts.Binding(id); ok && b.Agent == agentID {
			out = append(out, agentlink.PointBinding{Point: id, Camera: b.Camera, Source: b.Main})
		}
	}
	return out
}

// PointsChanged tells an agent's live link its current point bindings
// (after a point is created, re-bound or deleted).
func (r *Registry) PointsChanged(agentID string) {
	r.mu.Lock()
	l := r.links[agentID]
	r.mu.Unlock()
	if l == nil {
		return
	}
	msg, _ := agentlink.Encode(agentlink.TypeBindings, "", agentlink.Bindings{Points: r.bindingsOf(agentID)})
	_ = l.enqueue(msg)
}

// Demand asks the bound agent to start relaying a point's profile and
// reports whether it could ask (false: the point has no agent, or its
// agent is not connected). It is idempotent: asking again resends the start
// (the agent keeps a relay it already runs), which also recovers a start
// lost with a dropped link.
func (r *Registry) Demand(pointID, profile string) bool {
	b, ok := r.opts.Binding(pointID)
	if !ok {
		return false
	}
	if profile == "sub" && b.Sub == "" {
		return false
	}
	k := agentlink.RelayKey{Point: pointID, Profile: profile}
	r.mu.Lock()
	rl := r.wanted[k]
	if rl == nil || rl.agent != b.Agent {
		rl = &relay{agent: b.Agent, password: randomString(20), state: agentlink.RelayState{RelayKey: k, State: agentlink.RelayStarting}}
		r.wanted[k] = rl
	}
	_, online := r.links[b.Agent]
	r.mu.Unlock()
	if !online {
		return false
	}
	r.startRelay(k)
	return true
}

// Undemand stops a relay nobody watches any more.
func (r *Registry) Undemand(pointID, profile string) {
	k := agentlink.RelayKey{Point: pointID, Profile: profile}
	r.mu.Lock()
	rl := r.wanted[k]
	delete(r.wanted, k)
	var l *link
	if rl != nil {
		l = r.links[rl.agent]
	}
	r.mu.Unlock()
	if l != nil {
		msg, _ := agentlink.Encode(agentlink.TypeRelayStop, "", agentlink.RelayStop{RelayKey: k})
		_ = l.enqueue(msg)
	}
}

func (r *Registry) startRelay(k agentlink.RelayKey) {
	b, ok := r.opts.Binding(k.Point)
	if !ok {
		return
	}
	src := b.Main
	if k.Profile == "sub" {
		src = b.Sub
	}
	r.mu.Lock()
	rl := r.wanted[k]
	l := r.links[b.Agent]
	r.mu.Unlock()
	if rl == nil || l == nil || src == "" {
		return
	}
	path := k.Point
	if k.Profile == "sub" {
		path += "/sub"
	}
	msg, _ := agentlink.Encode(agentlink.TypeRelayStart, "", agentlink.RelayStart{
		RelayKey: k, Camera: b.Camera, Source: src,
		PublishURL: strings.TrimRight(l.rtspBase(), "/") + "/" + path,
		User:       PublishUser(b.Agent), Password: rl.password,
	})
	_ = l.enqueue(msg)
}

// rtspBase is where this link's agent publishes (told in Welcome).
func (l *link) rtspBase() string { return l.rtspURL.Load().(string) }

// PublishUser is the RTSP username an agent publishes with; "+" cannot
// appear in user names, so it never collides with an account.
func PublishUser(agentID string) string { return "agent+" + agentID }

// AgentOfUser returns the agent ID of an RTSP publish username.
func AgentOfUser(user string) (string, bool) { return strings.CutPrefix(user, "agent+") }

// VerifyPublish checks an agent's RTSP publish credentials: verify is
// asked for each one-time secret the agent currently holds (Digest never
// reveals which). The agent must be connected and not revoked.
func (r *Registry) VerifyPublish(agentID string, verify func(secret string) bool) bool {
	r.mu.Lock()
	_, online := r.links[agentID]
	var secrets []string
	for _, rl := range r.wanted {
		if rl.agent == agentID && rl.password != "" {
			secrets = append(secrets, rl.password)
		}
	}
	r.mu.Unlock()
	if !online {
		return false
	}
	for _, s := range secrets {
		if verify(s) {
			return true
		}
	}
	return false
}

// MayPublish reports whether agentID may publish pointID: the point is
// bound to it and the agent is not revoked. (A publish outlives a short
// control-link outage; new publishes also need VerifyPublish.)
func (r *Registry) MayPublish(agentID, pointID string) bool {
	b, ok := r.opts.Binding(pointID)
	if !ok || b.Agent != agentID {
		return false
	}
	return r.Exists(agentID)
}

// request sends a request to an agent and waits for its reply.
func (r *Registry) request(ctx context.Context, agentID, typ string, body any) (agentlink.Reply, error) {
	r.mu.Lock()
	l := r.links[agentID]
	r.mu.Unlock()
	if l == nil {
		return agentlink.Reply{}, ErrOffline
	}
	id := strconv.FormatUint(l.nextID.Add(1), 10)
	ch := make(chan agentlink.Reply, 1)
	l.mu.Lock()
	l.pending[id] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.pending, id)
		l.mu.Unlock()
	}()
	msg, err := agentlink.Encode(typ, id, body)
	if err != nil {
		return agentlink.Reply{}, err
	}
	if err := l.enqueue(msg); err != nil {
		return agentlink.Reply{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	select {
	case rep := <-ch:
		if !rep.OK {
			return rep, fmt.Errorf("agent: %s", rep.Error)
		}
		return rep, nil
	case <-l.ctx.Done():
		return agentlink.Reply{}, ErrOffline
	case <-ctx.Done():
		return agentlink.Reply{}, ErrAgentTimeout
	}
}

// PTZ steers a camera through its agent.
func (r *Registry) PTZ(ctx context.Context, agentID string, req agentlink.PTZRequest) error {
	if err := req.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	_, err := r.request(ctx, agentID, agentlink.TypePTZ, req)
	return err
}

// Snapshot fetches a JPEG from a camera through its agent.
func (r *Registry) Snapshot(ctx context.Context, agentID, camera string) (agentlink.SnapshotReply, error) {
	rep, err := r.request(ctx, agentID, agentlink.TypeSnapshot, agentlink.SnapshotRequest{Camera: camera})
	if err != nil {
		return agentlink.SnapshotReply{}, err
	}
	var out agentlink.SnapshotReply
	if err := json.Unmarshal(rep.Data, &out); err != nil {
		return out, fmt.Errorf("agent sent a malformed snapshot: %w", err)
	}
	return out, nil
}

// Rediscover asks an agent to search its LAN again.
func (r *Registry) Rediscover(agentID string) error {
	r.mu.Lock()
	l := r.links[agentID]
	r.mu.Unlock()
	if l == nil {
		return ErrOffline
	}
	msg, _ := agentlink.Encode(agentlink.TypeRediscover, "", nil)
	return l.enqueue(msg)
}

// Close cuts every link (server shutdown) and waits for the Serve calls.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	r.stopAbsencesLocked()
	links := make([]*link, 0, len(r.links))
	for _, l := range r.links {
		links = append(links, l)
	}
	r.mu.Unlock()
	for _, l := range links {
		l.close("server shutting down")
	}
	r.serving.Wait()
	// An absence that ran out just before Close may still be telling its
	// points; let it finish before the caller closes what it tells.
	r.pointsMu.Lock()
	defer r.pointsMu.Unlock()
}
