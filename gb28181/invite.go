package gb28181

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// inviteTimeout bounds an INVITE from sending to the final answer: a
// device that rings forever must not hold a viewer past the hub's start
// timeout.
const inviteTimeout = 8 * time.Second

// byeTimeout bounds the BYE that ends a call; a device that does not
// answer it has lost the call anyway.
const byeTimeout = 3 * time.Second

// errDeviceBye is how a call the device ended returns.
var errDeviceBye = errors.New("the device ended the call (BYE)")

// inviteRefusedError is a final non-2xx answer to our INVITE.
type inviteRefusedError struct {
	Code   int
	Reason string
}

func (e *inviteRefusedError) Error() string {
	return fmt.Sprintf("the device refused the INVITE: %d %s", e.Code, e.Reason)
}

// refusedTransport reports whether a refusal says the device cannot take
// the offered media transport (488 Not Acceptable Here, 415 Unsupported
// Media Type): the caller may offer TCP instead.
func refusedTransport(err error) bool {
	var r *inviteRefusedError
	return errors.As(err, &r) && (r.Code == 488 || r.Code == 415 || r.Code == 606)
}

// liveCall is one INVITE dialog we opened towards a device for a channel.
// The device may end it with a BYE (ended closes); we end it with bye.
type liveCall struct {
	callID  string
	peer    Peer
	channel string
	dialog  *sipgo.DialogClientSession
	// Answer is the device's SDP.
	answer []byte

	started time.Time

	ended   chan struct{}
	endOnce sync.Once
}

// olderThan reports whether the call was made before t.
func (c *liveCall) olderThan(t time.Time) bool { return c.started.Before(t) }

func (c *liveCall) markEnded() { c.endOnce.Do(func() { close(c.ended) }) }

// callTable finds our live calls by Call-ID when a device sends BYE.
type callTable struct {
	mu    sync.Mutex
	calls map[string]*liveCall
}

func (t *callTable) add(c *liveCall) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls == nil {
		t.calls = map[string]*liveCall{}
	}
	t.calls[c.callID] = c
}

func (t *callTable) remove(c *liveCall) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls[c.callID] == c {
		delete(t.calls, c.callID)
	}
}

func (t *callTable) get(callID string) *liveCall {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls[callID]
}

func (t *callTable) ofDevice(id string) []*liveCall {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*liveCall
	for _, c := range t.calls {
		if c.peer.ID == id {
			out = append(out, c)
		}
	}
	return out
}

func (t *callTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

// inviteRequest is what one INVITE says.
type inviteRequest struct {
	peer    Peer
	channel string
	ssrc    string // the y= of the offer, also in Subject
	sdp     []byte
}

// invite sends an INVITE for a channel to a device, waits for the final
// answer and ACKs a 2xx. The caller must end the returned call with bye
// unless the device ended it. ctx bounds the wait, as does inviteTimeout;
// either ending abandons the INVITE at once.
func (l *Live) invite(ctx context.Context, in inviteRequest) (*liveCall, error) {
	srv := l.srv
	req, err := srv.NewRequest(sip.INVITE, in.peer, in.channel, ContentTypeSDP, in.sdp)
	if err != nil {
		return nil, err
	}
	// GB/T 28181 §9.2.2: media sender ID:SSRC, receiver ID:sequence.
	req.AppendHeader(sip.NewHeader("Subject", in.channel+":"+in.ssrc+","+srv.Config().ID+":0"))
	// ACKs and BYEs go where the device's answers come from (NAT'd
	// devices put a private address in their Contact).
	dua := &sipgo.DialogUA{Client: srv.cli, ContactHDR: sip.ContactHeader{Address: srv.Contact(in.peer)}, RewriteContact: true}
	ictx, cancel := context.WithTimeout(ctx, inviteTimeout)
	defer cancel()
	d, err := dua.WriteInvite(ictx, req, sipgoPrebuilt)
	if err != nil {
		return nil, fmt.Errorf("send INVITE: %w", err)
	}
	call := &liveCall{callID: req.CallID().Value(), peer: in.peer, started: time.Now(), channel: in.channel, dialog: d, ended: make(chan struct{})}
	// Known before the answer: a device may BYE right after its 200.
	l.calls.add(call)
	// sipgo answers a cancelled wait with a CANCEL and then waits up to
	// 32 s (Timer B) for the INVITE to end; a source must stop at once
	// when the hub stops it, so the wait is cut short instead (a device
	// that answers afterwards gets no ACK and drops the call).
	wctx, wcancel := context.WithCancelCause(context.Background())
	defer wcancel(nil)
	stopWait := context.AfterFunc(ictx, func() { wcancel(sipgo.WaitAnswerForceCancelErr) })
	defer stopWait()
	if err := d.WaitAnswer(wctx, sipgo.AnswerOptions{}); err != nil {
		l.calls.remove(call)
		d.Close()
		var dr *sipgo.ErrDialogResponse
		if errors.As(err, &dr) && dr.Res != nil {
			return nil, &inviteRefusedError{Code: int(dr.Res.StatusCode), Reason: dr.Res.Reason}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ictx.Err() != nil {
			return nil, fmt.Errorf("INVITE: no answer within %v", inviteTimeout)
		}
		return nil, fmt.Errorf("INVITE: %w", err)
	}
	if err := d.Ack(ictx); err != nil {
		// Without the ACK the device drops the call: end it cleanly.
		l.bye(call)
		return nil, fmt.Errorf("ACK: %w", err)
	}
	call.answer = d.InviteResponse.Body()
	return call, nil
}

// bye ends a call we opened, unless the device already did. It waits at
// most byeTimeout for the device's answer.
func (l *Live) bye(c *liveCall) {
	defer l.calls.remove(c)
	select {
	case <-c.ended:
		c.dialog.Close()
		return
	default:
	}
	ctx, cancel := context.WithTimeout(l.srv.Context(), byeTimeout)
	defer cancel()
	// Built here rather than by sipgo so that, over UDP, it leaves from
	// our SIP port like everything else the device sees from us.
	to := c.dialog.InviteRequest.Recipient
	if ct := c.dialog.InviteResponse.Contact(); ct != nil {
		to = ct.Address
	}
	bye := sip.NewRequest(sip.BYE, *to.Clone())
	l.srv.Route(bye, c.peer)
	if err := c.dialog.WriteBye(ctx, bye); err != nil {
		l.log.Debug("gb28181: BYE not answered", "device", c.peer.ID, "channel", c.channel, "err", err)
	}
	c.markEnded()
}

// onBye answers a device's BYE: for one of our live calls the call ends
// (its source returns an error, so the hub tries again); any other call
// is unknown (481).
func (l *Live) onBye(_ context.Context, r *Request) {
	id := ""
	if h := r.SIP.CallID(); h != nil {
		id = h.Value()
	}
	c := l.calls.get(id)
	if c == nil {
		r.Respond(481, "Call/Transaction Does Not Exist", nil)
		return
	}
	r.Respond(200, "OK", nil)
	l.log.Info("gb28181: device ended the live call", "device", c.peer.ID, "channel", c.channel)
	c.markEnded()
}
