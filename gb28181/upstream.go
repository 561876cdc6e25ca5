package gb28181

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/tianyan/vms/gb28181/manscdp"
)

// upstreamMissed is how many keepalives in a row may go unanswered before
// we count the registration lost and register again.
const upstreamMissed = 3

// Registration backoff after a failure: doubled from the first up to the cap, with jitter.
const (
	upstreamBackoffMin = time.Second
	upstreamBackoffMax = 30 * time.Second
)

// link is our registration to one upstream platform: one goroutine
// (run) owns the REGISTER and keepalive exchange; status is read by the
// admin page under mu.
type link struct {
	c    *Cascade
	cfg  platformRecord
	self string // the ID we present: cfg.LocalID or the server's

	callID  string // one Call-ID for every REGISTER of this registration (RFC 3261 §10.2)
	cseq    uint32
	fromTag string

	mu     sync.Mutex
	status PlatformStatus
	ip     net.IP // the platform's address as resolved at the last REGISTER

	cancel context.CancelFunc
	done   chan struct{}
}

func newLink(c *Cascade, rec platformRecord) *link {
	self := rec.LocalID
	if self == "" {
		self = c.srv.Config().ID
	}
	return &link{c: c, cfg: rec, self: self, callID: uuid.NewString(), fromTag: sip.GenerateTagN(12), done: make(chan struct{})}
}

// peer is where the platform's SIP server listens.
func (l *link) peer() Peer {
	return Peer{ID: l.cfg.ID, Domain: l.cfg.RealmDomain(), Addr: l.cfg.Address, Transport: l.cfg.Transport}
}

func (l *link) snapshot() PlatformStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

func (l *link) registered() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status.Registered
}

// fromPlatform reports whether a request from source host can be the
// platform's: it must come from the address its SIP server has (the From
// header alone can be forged by anyone who can reach our port).
func (l *link) fromPlatform(sourceHost string) bool {
	ip := net.ParseIP(sourceHost)
	if ip == nil {
		return false
	}
	l.mu.Lock()
	known := l.ip
	l.mu.Unlock()
	return known != nil && known.Equal(ip)
}

func (l *link) setError(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status.Registered = false
	l.status.LastError = err.Error()
	l.status.LastErrorAt = l.c.now()
}

// run registers, keeps the registration alive and registers again after
// a loss, until ctx ends; then it unregisters (best effort).
func (l *link) run(ctx context.Context) {
	defer close(l.done)
	log := l.c.log.With("platform", l.cfg.ID, "address", l.cfg.Address)
	backoff := upstreamBackoffMin
	for ctx.Err() == nil {
		expires, err := l.register(ctx, time.Duration(l.cfg.Expiry)*l.c.unit)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			l.setError(err)
			log.Warn("gb28181: register upward failed", "err", err, "retry_in", backoff)
			if !sleepCtx(ctx, jitter(backoff)) {
				break
			}
			backoff = min(backoff*2, upstreamBackoffMax)
			continue
		}
		backoff = upstreamBackoffMin
		now := l.c.now()
		l.mu.Lock()
		wasLost := !l.status.RegisteredAt.IsZero()
		l.status.Registered, l.status.RegisteredAt, l.status.LastError = true, now, ""
		l.mu.Unlock()
		log.Info("gb28181: registered upward", "expires", expires, "again", wasLost)
		l.c.audit(l.cfg.Account, "gb.upstream.register", l.cfg.Address, map[string]string{"platform": l.cfg.ID})
		if err := l.keepAlive(ctx, expires); err != nil && ctx.Err() == nil {
			l.setError(err)
			log.Warn("gb28181: upstream registration lost", "err", err)
			l.c.audit(l.cfg.Account, "gb.upstream.lost", l.cfg.Address, map[string]string{"platform": l.cfg.ID, "reason": err.Error()})
		}
	}
	l.mu.Lock()
	was := l.status.Registered
	l.status.Registered = false
	l.mu.Unlock()
	if was {
		// Unregister on our way out, bounded, on a context of its own.
		uctx, cancel := context.WithTimeout(context.Background(), l.c.srv.Config().RequestTimeout)
		_, err := l.register(uctx, 0)
		cancel()
		log.Info("gb28181: unregistered upward", "err", err)
	}
}

// keepAlive sends keepalives every interval and registers again before
// expires runs out; it returns when the registration is lost (three
// keepalives unanswered, or one refused: the platform no longer knows us).
func (l *link) keepAlive(ctx context.Context, expires time.Duration) error {
	interval := time.Duration(l.cfg.Keepalive) * l.c.unit
	// Register again at 3/4 of the lifetime, so a slow answer never lets it lapse.
	refresh := time.NewTimer(expires * 3 / 4)
	defer refresh.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	missed := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-refresh.C:
			exp, err := l.register(ctx, time.Duration(l.cfg.Expiry)*l.c.unit)
			if err != nil {
				return fmt.Errorf("re-register: %w", err)
			}
			refresh.Reset(exp * 3 / 4)
		case <-tick.C:
			err := l.keepalive(ctx)
			var se *StatusError
			switch {
			case err == nil:
				missed = 0
				l.mu.Lock()
				l.status.LastKeepalive = l.c.now()
				l.mu.Unlock()
			case errors.As(err, &se):
				return fmt.Errorf("keepalive refused: %d %s", se.Code, se.Reason)
			default:
				missed++
				l.c.log.Debug("gb28181: upstream keepalive unanswered", "platform", l.cfg.ID, "missed", missed, "err", err)
				if missed >= upstreamMissed {
					return fmt.Errorf("%d keepalives unanswered", missed)
				}
			}
		}
	}
}

// keepalive sends one keepalive MESSAGE.
func (l *link) keepalive(ctx context.Context) error {
	body, err := manscdp.Marshal(&manscdp.Keepalive{Header: manscdp.Header{CmdType: manscdp.CmdKeepalive, SN: NextSN(), DeviceID: l.self}, Status: "OK"}, "")
	if err != nil {
		return err
	}
	return l.send(ctx, sip.MESSAGE, ContentTypeMANSCDP, body)
}

// send sends a request from us (as l.self) to the platform and wants a 2xx.
func (l *link) send(ctx context.Context, method sip.RequestMethod, contentType string, body []byte) error {
	req, err := l.c.srv.NewRequest(method, l.peer(), "", contentType, body)
	if err != nil {
		return err
	}
	l.presentAs(req)
	res, err := l.c.srv.Do(ctx, req)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return &StatusError{Method: method.String(), Code: int(res.StatusCode), Reason: res.Reason}
	}
	return nil
}

// presentAs makes req come from l.self (our ID for this platform may not be
// the server's own).
func (l *link) presentAs(req *sip.Request) {
	if l.self == l.c.srv.Config().ID {
		return
	}
	if f := req.From(); f != nil {
		f.Address.User = l.self
	}
	if c := req.Contact(); c != nil {
		c.Address.User = l.self
	}
}

// register sends REGISTER asking for expires (0 unregisters), answers a
// Digest challenge with the platform's password, and returns the lifetime
// the platform granted.
func (l *link) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	p := l.peer()
	if err := l.resolve(ctx); err != nil {
		return 0, err
	}
	req, err := l.c.srv.NewRequest(sip.REGISTER, p, "", "", nil)
	if err != nil {
		return 0, err
	}
	// REGISTER's To is the address being registered: ours, in our domain.
	aor := sip.Uri{Scheme: "sip", User: l.self, Host: l.c.srv.Config().Domain}
	req.RemoveHeader("To")
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.RemoveHeader("From")
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", l.fromTag)
	req.AppendHeader(from)
	req.RemoveHeader("Call-ID")
	cid := sip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	l.cseq++
	if cs := req.CSeq(); cs != nil {
		cs.SeqNo = l.cseq
	}
	if c := req.Contact(); c != nil {
		c.Address.User = l.self
	}
	exp := sip.ExpiresHeader(uint32(expires / l.c.unit))
	req.AppendHeader(&exp)

	res, err := l.c.srv.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
		l.cseq++
		// The password goes into the Digest response only; never into logs or errors.
		res, err = l.c.srv.DoDigest(ctx, req, res, l.self, l.cfg.Password)
		if err != nil {
			return 0, err
		}
		if cs := req.CSeq(); cs != nil {
			l.cseq = cs.SeqNo
		}
	}
	if !res.IsSuccess() {
		if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusForbidden {
			return 0, fmt.Errorf("REGISTER refused: %d %s (check the password and our ID)", res.StatusCode, res.Reason)
		}
		return 0, fmt.Errorf("REGISTER answered %d %s", res.StatusCode, res.Reason)
	}
	granted := expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(h.Value()); err == nil && n > 0 {
			granted = time.Duration(n) * l.c.unit
		}
	}
	if expires > 0 && granted < 10*l.c.unit {
		granted = 10 * l.c.unit
	}
	return granted, nil
}

// resolve learns the platform's IP address, against which requests that
// claim to come from it are checked.
func (l *link) resolve(ctx context.Context) error {
	host, _, err := net.SplitHostPort(l.cfg.Address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		rctx, cancel := context.WithTimeout(ctx, l.c.srv.Config().RequestTimeout)
		defer cancel()
		ips, err := net.DefaultResolver.LookupIP(rctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return fmt.Errorf("resolve %s: %w", host, err)
		}
		ip = ips[0]
	}
	l.mu.Lock()
	l.ip = ip
	l.mu.Unlock()
	return nil
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
