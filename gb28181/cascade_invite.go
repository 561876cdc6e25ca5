package gb28181

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/gb28181/gbsdp"
	"github.com/tianyan/vms/gb28181/media"
	"github.com/tianyan/vms/streaming"
)

// ackTimeout is how long a view waits for the platform's ACK before it gives up.
const ackTimeout = 10 * time.Second

// view is one live stream a platform plays from us: opened by its INVITE,
// started by its ACK, ended by its BYE, by ours (the stream ended, the
// grant went, the platform was removed) or by Close.
type view struct {
	c        *Cascade
	platform string
	account  string
	point    string
	callID   string
	peerIP   string
	started  time.Time

	invite *sip.Request  // the platform's INVITE
	ok     *sip.Response // our 200 OK (its To tag is ours)
	link   *link

	transport gbsdp.Transport // ours
	dest      string          // where RTP goes (UDP, TCP active)
	ssrc      uint32
	// sender carries the stream: opened before the answer for UDP (our
	// port) and TCP passive (the port the platform connects to), after
	// the ACK for TCP active (we dial).
	sockMu sync.Mutex
	sender *media.Sender

	stream  *streaming.Stream
	release func()

	acked  chan struct{}
	ackOne sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// onInvite answers the platform's INVITE for a point: 403 unless its
// account may view it, else 200 with our SDP once the point's stream is
// live; the media flows after the ACK.
func (c *Cascade) onInvite(ctx context.Context, r *Request) {
	l := c.platformOf(r)
	if l == nil {
		return
	}
	// Trying at once: the stream may take a moment to start, and a UDP
	// INVITE would otherwise be sent again.
	_ = r.Tx.Respond(sip.NewResponseFromRequest(r.SIP, 100, "Trying", nil))
	pointID := r.SIP.Recipient.User
	ip := hostOf(r.Source)
	refuse := func(code int, reason, why string) {
		c.auditRecord(audit.Record{User: l.cfg.Account, Action: "view.refused", Point: pointID, ClientIP: ip,
			Detail: map[string]string{"via": "gb28181", "platform": l.cfg.ID, "reason": why}})
		r.Respond(code, reason, nil)
	}
	if !c.cfg.Access.CanView(l.cfg.Account, pointID) {
		c.log.Info("gb28181: upstream INVITE refused: no grant", "platform", l.cfg.ID, "account", l.cfg.Account, "point", pointID)
		refuse(403, "Forbidden", "no_grant")
		return
	}
	plan, code, why := l.planMedia(r.Body())
	if code != 0 {
		if why == "media_address_refused" {
			c.log.Warn("gb28181: upstream INVITE names a media address outside the platform's", "platform", l.cfg.ID)
		}
		reason := map[int]string{400: "Bad Request", 403: "Forbidden", 488: "Not Acceptable Here"}[code]
		if why == "" {
			r.Respond(code, reason, nil)
		} else {
			refuse(code, reason, why)
		}
		return
	}
	offer := plan.offer
	v := &view{c: c, platform: l.cfg.ID, account: l.cfg.Account, point: pointID, peerIP: ip, invite: r.SIP, link: l,
		transport: plan.transport, dest: plan.dest, ssrc: plan.ssrc, acked: make(chan struct{})}
	if cid := r.SIP.CallID(); cid != nil {
		v.callID = cid.Value()
	}

	c.mu.Lock()
	_, again := c.views[v.callID]
	held := 0
	for _, o := range c.views {
		if o.platform == l.cfg.ID {
			held++
		}
	}
	c.mu.Unlock()
	switch {
	case again:
		// A re-INVITE of a running view: its stream is already flowing.
		r.Respond(488, "Not Acceptable Here", nil)
		return
	case held >= c.cfg.MaxViewsPerPlatform:
		c.log.Warn("gb28181: upstream platform at its view cap", "platform", l.cfg.ID, "views", held)
		refuse(486, "Busy Here", "cap")
		return
	}

	sctx, cancel := context.WithTimeout(ctx, c.cfg.MediaTimeout)
	stream, release, err := c.cfg.Streams.Acquire(sctx, pointID)
	cancel()
	if err != nil {
		c.log.Info("gb28181: upstream INVITE: stream not available", "platform", l.cfg.ID, "point", pointID, "err", err)
		refuse(480, "Temporarily Unavailable", "stream_unavailable")
		return
	}
	v.stream, v.release = stream, release
	if _, err := videoTrack(stream); err != nil {
		release()
		refuse(488, "Not Acceptable Here", "codec")
		return
	}

	local := c.srv.LocalHost(r.Source)
	port := 9 // discard: we dial (TCP active) and receive nothing
	if v.transport != gbsdp.TCPActive {
		snd, err := v.newSender(ctx, local)
		if err != nil {
			release()
			c.log.Warn("gb28181: upstream media socket", "platform", l.cfg.ID, "err", err)
			r.Respond(500, "Server Internal Error", nil)
			return
		}
		v.sender = snd
		port = snd.Port()
	}
	answer, err := gbsdp.NewAnswer(offer, gbsdp.Answer{ID: pointID, IP: local, Port: port, SSRC: offer.SSRC})
	if err != nil {
		v.closeSockets()
		release()
		r.Respond(488, "Not Acceptable Here", nil)
		return
	}
	res := sip.NewResponseFromRequest(r.SIP, 200, "OK", answer.Marshal())
	if to := res.To(); to != nil && to.Params != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", sip.GenerateTagN(10))
	}
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: pointID, Host: local, Port: c.srv.LocalPort()}})
	ct := sip.ContentTypeHeader(ContentTypeSDP)
	res.AppendHeader(&ct)
	v.ok = res
	v.ctx, v.cancel = context.WithCancel(c.ctx)

	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		v.closeSockets()
		release()
		r.Respond(503, "Service Unavailable", nil)
		return
	}
	// started is set before the view is published: Close may end it
	// (and read started) from another goroutine at any moment after.
	v.started = c.now()
	c.views[v.callID] = v
	// Counted under mu while open, so Close (which cancels under mu
	// before it waits) waits for the rest of this handler and the view's
	// run: no audit record or goroutine outlives it.
	c.wg.Add(1)
	c.mu.Unlock()
	if err := r.RespondResponse(res); err != nil {
		v.end("answer_failed", false)
		c.wg.Done()
		return
	}
	c.log.Info("gb28181: upstream view started", "platform", l.cfg.ID, "account", l.cfg.Account, "point", pointID,
		"transport", string(v.transport), "dest", v.dest)
	c.auditRecord(audit.Record{User: l.cfg.Account, Action: "view.start", Point: pointID, ClientIP: ip,
		Detail: map[string]string{"via": "gb28181", "platform": l.cfg.ID, "transport": string(v.transport)}})
	go func() {
		defer c.wg.Done()
		v.run()
	}()
}

// mediaPlan is what a platform's offer asks of us, once checked.
type mediaPlan struct {
	offer     *gbsdp.Session
	transport gbsdp.Transport // ours: the offer's role reversed
	dest      string          // where RTP goes (UDP, TCP active); "" for TCP passive
	ssrc      uint32
}

// planMedia reads the SDP offer of the platform's INVITE. A refusal is a
// SIP status code and, when it should be audited, its reason.
func (l *link) planMedia(body []byte) (plan mediaPlan, code int, why string) {
	offer, err := gbsdp.Parse(body)
	if err != nil {
		return plan, 400, ""
	}
	if offer.Name != "" && offer.Name != gbsdp.NamePlay {
		// Playback and download need recordings, which the centre does not keep.
		return plan, 488, "unsupported_session"
	}
	m := offer.Video()
	if m == nil {
		return plan, 488, ""
	}
	if _, ok := m.Format(gbsdp.PTPS); !ok && !hasPS(m) {
		return plan, 488, "no_ps"
	}
	plan.offer, plan.transport = offer, m.Transport().Peer()
	if ssrc, err := offer.SSRCValue(); err == nil {
		plan.ssrc = ssrc
	}
	if plan.transport == gbsdp.TCPPassive {
		return plan, 0, ""
	}
	// We send (UDP) or dial (TCP): only to the platform or its media networks.
	host := offer.MediaAddr(m)
	addr, err := netip.ParseAddr(host)
	if err != nil || !l.mediaAllowed(addr) {
		return plan, 403, "media_address_refused"
	}
	if m.Port < 1 || m.Port > 65535 {
		return plan, 488, ""
	}
	plan.dest = net.JoinHostPort(addr.Unmap().String(), strconv.Itoa(m.Port))
	return plan, 0, ""
}

func hasPS(m *gbsdp.Media) bool {
	for _, f := range m.Formats {
		if f.Name == "PS" || f.Name == "MP2P" {
			return true
		}
	}
	return false
}

// mediaAllowed reports whether we may send a platform's media to a: its own
// SIP address, or inside its configured media networks. An INVITE could
// otherwise point our streams at any host (a flood reflector).
func (l *link) mediaAllowed(a netip.Addr) bool {
	a = a.Unmap()
	l.mu.Lock()
	known := l.ip
	l.mu.Unlock()
	if known != nil {
		if k, ok := netip.AddrFromSlice(known); ok && k.Unmap() == a {
			return true
		}
	}
	for _, n := range l.cfg.MediaNetworks {
		if p, err := netip.ParsePrefix(n); err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}

func videoTrack(s *streaming.Stream) (int, error) {
	for i, t := range s.Tracks {
		if t.Kind == streaming.KindVideo && (t.Codec == streaming.CodecH264 || t.Codec == streaming.CodecH265) {
			return i, nil
		}
	}
	return 0, errors.New("no H.264 or H.265 video")
}

// onAck starts the media of the view the ACK confirms.
func (c *Cascade) onAck(_ context.Context, r *Request) {
	if v := c.viewOf(r); v != nil {
		v.ackOne.Do(func() { close(v.acked) })
	}
}

// onBye ends the view.
func (c *Cascade) onBye(_ context.Context, r *Request) {
	v := c.viewOf(r)
	if v == nil {
		r.Respond(481, "Call/Transaction Does Not Exist", nil)
		return
	}
	r.Respond(200, "OK", nil)
	v.end("bye", false)
}

func (c *Cascade) viewOf(r *Request) *view {
	cid := r.SIP.CallID()
	if cid == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.views[cid.Value()]
	if v != nil && v.platform != r.FromID {
		return nil
	}
	return v
}

// run waits for the ACK, connects the media and sends the stream until the view ends.
func (v *view) run() {
	reason, bye := v.stream_()
	v.end(reason, bye)
}

func (v *view) stream_() (reason string, bye bool) {
	select {
	case <-v.acked:
	case <-v.ctx.Done():
		return "", false
	case <-time.After(ackTimeout):
		return "no_ack", true
	}
	frames, err := newStreamFrames(v.stream)
	if err != nil {
		return "codec", true
	}
	send, err := v.connect()
	if err != nil {
		v.c.log.Warn("gb28181: upstream media connection failed", "platform", v.platform, "point", v.point, "err", err)
		return "media_failed", true
	}
	reader, snap := v.stream.AddReader(512)
	defer reader.Close()
	frames.joined(snap)
	write := func(u *streaming.Unit) error {
		f, ok, err := frames.frame(u)
		if err != nil || !ok {
			return nil // a unit the decoder cannot use is skipped, not fatal
		}
		return send.WriteFrame(f)
	}
	for _, u := range snap {
		if err := write(u); err != nil {
			return "media_failed", true
		}
	}
	for {
		select {
		case <-v.ctx.Done():
			return "", false
		case <-reader.Done():
			return "stream_ended", true
		case u := <-reader.C():
			if err := write(u); err != nil {
				v.c.log.Info("gb28181: upstream media write failed", "platform", v.platform, "point", v.point, "err", err)
				return "media_failed", true
			}
		}
	}
}

// newSender opens the media sender the SDP agreed on; local is our
// address towards the platform.
func (v *view) newSender(ctx context.Context, local string) (*media.Sender, error) {
	tr := map[gbsdp.Transport]media.Transport{gbsdp.UDP: media.UDP, gbsdp.TCPActive: media.TCPActive, gbsdp.TCPPassive: media.TCPPassive}[v.transport]
	bind := ""
	if v.transport == gbsdp.TCPPassive {
		bind = local
	}
	cfg := media.SenderConfig{Transport: tr, Remote: v.dest, LocalBind: bind, SSRC: v.ssrc,
		ConnectTimeout: v.c.cfg.MediaTimeout, Logger: v.c.log}
	if sf, err := newStreamFrames(v.stream); err == nil {
		cfg.Video, cfg.Audio = sf.types()
	}
	return media.NewSender(ctx, cfg)
}

// connect returns the sender, dialling the platform first for TCP active.
func (v *view) connect() (*media.Sender, error) {
	v.sockMu.Lock()
	snd := v.sender
	v.sockMu.Unlock()
	if snd != nil {
		return snd, nil
	}
	snd, err := v.newSender(v.ctx, "")
	if err != nil {
		return nil, err
	}
	v.sockMu.Lock()
	defer v.sockMu.Unlock()
	if v.ctx.Err() != nil {
		snd.Close()
		return nil, v.ctx.Err()
	}
	v.sender = snd
	return snd, nil
}

func (v *view) closeSockets() {
	v.sockMu.Lock()
	defer v.sockMu.Unlock()
	if v.sender != nil {
		v.sender.Close()
	}
}

// end ends the view once: BYE to the platform when we end it, the stream
// released, the view audited as a viewer's would be.
func (v *view) end(reason string, bye bool) {
	v.once.Do(func() {
		if v.cancel != nil {
			v.cancel()
		}
		c := v.c
		c.mu.Lock()
		delete(c.views, v.callID)
		c.mu.Unlock()
		v.closeSockets()
		if v.release != nil {
			v.release()
		}
		if reason == "" {
			reason = "bye"
		}
		if bye {
			if err := v.sendBye(); err != nil {
				c.log.Info("gb28181: BYE to upstream platform", "platform", v.platform, "err", err)
			}
		}
		c.log.Info("gb28181: upstream view ended", "platform", v.platform, "point", v.point, "reason", reason)
		r := audit.Record{User: v.account, Action: "view.stop", Point: v.point, ClientIP: v.peerIP,
			Detail: map[string]string{"via": "gb28181", "platform": v.platform, "reason": reason}}
		if !v.started.IsZero() {
			r.DurationMs = c.now().Sub(v.started).Milliseconds()
		}
		c.auditRecord(r)
	})
}

// sendBye ends the dialog from our side: From is our end (the 200's To
// with our tag), To theirs (the INVITE's From), the INVITE's Call-ID.
func (v *view) sendBye() error {
	if v.ok == nil || v.invite == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), v.c.srv.Config().RequestTimeout)
	defer cancel()
	peer := v.link.peer()
	req, err := v.c.srv.NewRequest(sip.BYE, peer, "", "", nil)
	if err != nil {
		return err
	}
	if ct := v.invite.Contact(); ct != nil {
		req.Recipient = ct.Address
	}
	req.RemoveHeader("From")
	req.RemoveHeader("To")
	req.RemoveHeader("Call-ID")
	if to := v.ok.To(); to != nil {
		req.AppendHeader(&sip.FromHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params.Clone()})
	}
	if from := v.invite.From(); from != nil {
		req.AppendHeader(&sip.ToHeader{DisplayName: from.DisplayName, Address: from.Address, Params: from.Params.Clone()})
	}
	cid := sip.CallIDHeader(v.callID)
	req.AppendHeader(&cid)
	v.c.srv.Route(req, peer)
	res, err := v.c.srv.Do(ctx, req)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return &StatusError{Method: "BYE", Code: int(res.StatusCode), Reason: res.Reason}
	}
	return nil
}

// endViewsOf ends every view of platform id (it was removed or changed).
func (c *Cascade) endViewsOf(id, reason string) {
	c.mu.Lock()
	var vs []*view
	for _, v := range c.views {
		if v.platform == id {
			vs = append(vs, v)
		}
	}
	c.mu.Unlock()
	for _, v := range vs {
		v.end(reason, true)
	}
}

// recheckLoop ends, every RecheckInterval, the views whose platform
// account may no longer view their point (grant withdrawn, account
// disabled or deleted, point gone), as for every other viewer.
func (c *Cascade) recheckLoop() {
	every(c.ctx, c.cfg.RecheckInterval, func() {
		c.mu.Lock()
		vs := make([]*view, 0, len(c.views))
		for _, v := range c.views {
			vs = append(vs, v)
		}
		c.mu.Unlock()
		for _, v := range vs {
			if !c.cfg.Access.CanView(v.account, v.point) {
				v.end("access_revoked", true)
			}
		}
	})
}
