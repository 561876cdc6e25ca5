package gbsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/gb28181/gbsdp"
)

// session is one INVITE dialog: a channel streaming to the server.
type session struct {
	callID    string
	channel   *Channel
	transport gbsdp.Transport // this device's side
	remote    string          // where RTP goes (UDP, our TCP dial)
	ssrc      uint32
	sender    frameSender // nil for TCPActive until the ACK
	acked     chan struct{}
	ackOnce   sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
	frames    atomic.Int64
	started   time.Time
	// kick is signalled by IFameCmd; it is watched from the INVITE on, so
	// a command sent right after the 200 (before the stream runs) counts.
	kick    <-chan struct{}
	unwatch func()
}

// SessionInfo describes a live media session, for tests.
type SessionInfo struct {
	CallID    string
	ChannelID string
	// Transport is the device's side: "udp", "tcp-active" (the device
	// dials) or "tcp-passive" (the device listens).
	Transport string
	Remote    string
	SSRC      uint32
	Frames    int64
}

// Sessions lists the device's media sessions.
func (d *Device) Sessions() []SessionInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]SessionInfo, 0, len(d.sessions))
	for _, s := range d.sessions {
		out = append(out, SessionInfo{CallID: s.callID, ChannelID: s.channel.ID, Transport: string(s.transport),
			Remote: s.remote, SSRC: s.ssrc, Frames: s.frames.Load()})
	}
	return out
}

// ackTimeout is how long an answered INVITE waits for its ACK before the
// device gives the session up (RFC 3261 Timer H).
const ackTimeout = 32 * time.Second

func (d *Device) handleInvite(ctx context.Context, conn *sipConn, req *sip.Request, src net.Addr) {
	callID := req.CallID().Value()
	d.mu.Lock()
	_, dup := d.sessions[callID]
	d.mu.Unlock()
	if dup {
		conn.reply(req, src, 491, "Request Pending") // re-INVITE: not supported
		return
	}
	ch := d.target(req.Recipient.User)
	if ch == nil {
		d.stats.refused.Add(1)
		conn.reply(req, src, 404, "Not Found")
		return
	}
	offer, err := gbsdp.Parse(req.Body())
	if err != nil || offer.Video() == nil {
		d.stats.refused.Add(1)
		conn.reply(req, src, 488, "Not Acceptable Here")
		return
	}
	v := offer.Video()
	if d.cfg.Faults.TCPOnly && !v.TCP() {
		d.stats.refused.Add(1)
		conn.reply(req, src, 488, "Not Acceptable Here")
		return
	}
	mine := v.Transport().Peer()
	y := offer.SSRC
	if d.cfg.Faults.IgnoreSSRC || y == "" {
		y = fmt.Sprintf("0%09d", rand.IntN(1_000_000_000))
	}
	ssrc, err := gbsdp.ParseSSRC(y)
	if err != nil {
		d.stats.refused.Add(1)
		conn.reply(req, src, 488, "Not Acceptable Here")
		return
	}
	s := &session{callID: callID, channel: ch, transport: mine, ssrc: ssrc, acked: make(chan struct{}),
		done: make(chan struct{}), started: time.Now()}
	s.remote = net.JoinHostPort(offer.MediaAddr(v), strconv.Itoa(v.Port))
	port := 9 // RFC 4145: an active TCP side has no port to offer
	if mine != gbsdp.TCPActive {
		s.sender, err = newFrameSender(ctx, d.senderConfig(s))
		if err != nil {
			d.log.Warn("gbsim: media setup failed", "err", err)
			d.stats.refused.Add(1)
			conn.reply(req, src, 500, "Server Internal Error")
			return
		}
		port = s.sender.Port()
	}
	ansIP := d.cfg.LocalIP
	if d.cfg.Faults.NATAddress != "" {
		ansIP = conn.viaHost
	}
	answer, err := gbsdp.NewAnswer(offer, gbsdp.Answer{ID: ch.ID, IP: ansIP, Port: port, SSRC: y, F: "v/2/4///a///"})
	if err != nil {
		if s.sender != nil {
			s.sender.Close()
		}
		conn.reply(req, src, 488, "Not Acceptable Here")
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", answer.Marshal())
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Contact", "<sip:"+ch.ID+"@"+net.JoinHostPort(conn.viaHost, strconv.Itoa(conn.viaPort))+">"))

	sctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.kick, s.unwatch = ch.watchKeyframes()
	d.mu.Lock()
	d.sessions[callID] = s
	d.mu.Unlock()
	d.stats.invites.Add(1)
	conn.respond(req, src, res)

	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(s.done)
		defer d.forget(s)
		defer s.unwatch()
		// The 200 is retransmitted over UDP until the ACK (RFC 3261
		// §13.3.1.4); the stream starts at the ACK, as devices do.
		if !d.awaitAck(sctx, conn, s, []byte(res.String()), src) {
			if s.sender != nil {
				s.sender.Close()
			}
			return
		}
		d.stream(sctx, s)
	}()
}

func (d *Device) awaitAck(ctx context.Context, conn *sipConn, s *session, res []byte, src net.Addr) bool {
	deadline := time.NewTimer(ackTimeout)
	defer deadline.Stop()
	interval := sipT1
	retx := time.NewTimer(interval)
	defer retx.Stop()
	for {
		select {
		case <-s.acked:
			return true
		case <-ctx.Done():
			return false
		case <-deadline.C:
			d.log.Warn("gbsim: no ACK for INVITE", "call", s.callID)
			return false
		case <-retx.C:
			if conn.udp != nil {
				conn.write(res, src)
				interval = min(interval*2, sipT2)
				retx.Reset(interval)
			}
		}
	}
}

func (d *Device) forget(s *session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sessions[s.callID] == s {
		delete(d.sessions, s.callID)
	}
}

func (d *Device) handleAck(req *sip.Request) {
	d.mu.Lock()
	s := d.sessions[req.CallID().Value()]
	d.mu.Unlock()
	if s != nil {
		s.ackOnce.Do(func() { close(s.acked) })
	}
}

func (d *Device) handleBye(conn *sipConn, req *sip.Request, src net.Addr) {
	d.mu.Lock()
	s := d.sessions[req.CallID().Value()]
	d.mu.Unlock()
	if s == nil {
		conn.reply(req, src, 481, "Call/Transaction Does Not Exist")
		return
	}
	s.cancel()
	<-s.done
	conn.reply(req, src, 200, "OK")
}

// stopSessions ends every media session (device stop or reboot) without
// BYE, and waits for their streams.
func (d *Device) stopSessions() {
	d.mu.Lock()
	all := make([]*session, 0, len(d.sessions))
	for _, s := range d.sessions {
		all = append(all, s)
	}
	d.mu.Unlock()
	for _, s := range all {
		s.cancel()
		<-s.done
	}
}
