package gbsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/tianyan/vms/gb28181/manscdp"
)

const contentTypeMANSCDP = "Application/MANSCDP+xml"

// Stats counts what a device did, for tests and benchmarks.
type Stats struct {
	Registrations  int64 // successful REGISTERs (first and refresh)
	AuthFailures   int64 // REGISTERs refused after the Digest answer
	Keepalives     int64 // keepalives answered 2xx
	CatalogQueries int64
	CatalogPages   int64 // catalog MESSAGEs answered 2xx
	Invites        int64 // INVITEs answered 200
	Refused        int64 // INVITEs refused (488, 404, …)
}

// Device is one simulated GB/T 28181 device (an IP camera or an NVR).
type Device struct {
	cfg      DeviceConfig
	log      *slog.Logger
	channels []*Channel
	byID     map[string]*Channel

	mu       sync.Mutex
	conn     *sipConn
	sessions map[string]*session // by Call-ID
	sub      *subscription

	registered atomic.Bool
	sn         atomic.Int64
	stats      struct {
		registrations, authFailures, keepalives, catalogQueries, catalogPages, invites, refused atomic.Int64
	}

	restart chan time.Duration
	cancel  context.CancelFunc
	done    chan struct{}
	wg      sync.WaitGroup // request handlers' follow-up work and streams

	// Owned by the run goroutine.
	regCallID string
	regTag    string
	regCSeq   uint32
	chal      *digest.Challenge
	nc        int
}

// NewDevice checks cfg and builds a stopped device.
func NewDevice(cfg DeviceConfig) (*Device, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, log: cfg.Logger.With("gbdevice", cfg.ID), byID: map[string]*Channel{},
		sessions: map[string]*session{}, restart: make(chan time.Duration, 1)}
	for _, c := range cfg.Channels {
		ch := newChannel(c)
		d.channels = append(d.channels, ch)
		d.byID[c.ID] = ch
	}
	return d, nil
}

// ID is the device's GB ID.
func (d *Device) ID() string { return d.cfg.ID }

// Channels lists the device's channels in catalog order.
func (d *Device) Channels() []*Channel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Channel(nil), d.channels...)
}

// Channel returns a channel by ID, or nil.
func (d *Device) Channel(id string) *Channel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byID[id]
}

// target is the channel a request names: a channel ID, or the device ID of
// a one-channel camera.
func (d *Device) target(id string) *Channel {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch := d.byID[id]; ch != nil {
		return ch
	}
	if id == d.cfg.ID && len(d.channels) == 1 {
		return d.channels[0]
	}
	return nil
}

// AddChannel adds a channel to the catalog (from the next catalog answer
// on; send NotifyCatalog with EventAdd to tell the server at once).
func (d *Device) AddChannel(c ChannelConfig) *Channel {
	ch := newChannel(c)
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.byID[c.ID]; old != nil {
		return old
	}
	d.channels = append(d.channels, ch)
	d.byID[c.ID] = ch
	return ch
}

// RemoveChannel takes a channel out of the catalog, as when a camera is
// unplugged from an NVR; its live sessions go on until BYE.
func (d *Device) RemoveChannel(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byID[id] == nil {
		return false
	}
	delete(d.byID, id)
	for i, ch := range d.channels {
		if ch.ID == id {
			d.channels = append(d.channels[:i:i], d.channels[i+1:]...)
			break
		}
	}
	return true
}

// SetChannelStatus reports a channel ON or OFF in later catalog answers.
func (d *Device) SetChannelStatus(id string, on bool) bool {
	ch := d.Channel(id)
	if ch == nil {
		return false
	}
	ch.mu.Lock()
	ch.Off = !on
	ch.mu.Unlock()
	return true
}

// Registered reports whether the device holds a registration now.
func (d *Device) Registered() bool { return d.registered.Load() }

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	s := &d.stats
	return Stats{Registrations: s.registrations.Load(), AuthFailures: s.authFailures.Load(),
		Keepalives: s.keepalives.Load(), CatalogQueries: s.catalogQueries.Load(),
		CatalogPages: s.catalogPages.Load(), Invites: s.invites.Load(), Refused: s.refused.Load()}
}

// Start runs the device until Stop: it connects, registers, keeps alive
// and answers the server; failures are retried every RetryInterval.
func (d *Device) Start(ctx context.Context) {
	ctx, d.cancel = context.WithCancel(ctx)
	d.done = make(chan struct{})
	go d.run(ctx)
}

// Stop unregisters (Expires: 0), ends media sessions and waits for every
// goroutine of the device.
func (d *Device) Stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
}

// Restart makes the device reboot: it drops its streams and its
// registration silently (no BYE, no unregister, as a power cycle does),
// stays away for downtime and registers again with a new Call-ID.
func (d *Device) Restart(downtime time.Duration) {
	select {
	case d.restart <- downtime:
	default:
	}
}

// WaitRegistered waits until the device is registered or ctx ends.
func (d *Device) WaitRegistered(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !d.Registered() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("gbsim: %s not registered: %w", d.cfg.ID, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// run owns the device's lifecycle: one life (boot) after another until ctx
// ends, waiting RetryInterval after a failure or the downtime of a reboot.
func (d *Device) run(ctx context.Context) {
	defer close(d.done)
	defer d.wg.Wait()
	for {
		wait := d.cfg.RetryInterval
		err := d.life(ctx)
		var rs restartErr
		switch {
		case ctx.Err() != nil:
			return
		case errors.As(err, &rs):
			wait = rs.downtime
		case err != nil:
			d.log.Debug("gbsim: device session ended", "err", err)
		}
		// A reboot asked for while away just starts the wait over.
		timer := time.NewTimer(wait)
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case dt := <-d.restart:
				timer.Reset(dt)
			case <-timer.C:
				break wait
			}
		}
	}
}

type restartErr struct{ downtime time.Duration }

func (e restartErr) Error() string { return "restart" }

func (d *Device) currentConn() *sipConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn
}

// life is one boot of the device: connect, register, keep alive, until
// the context ends, the device restarts or the server is lost.
func (d *Device) life(ctx context.Context) error {
	conn, err := dialSIP(ctx, d.cfg.Transport, d.cfg.LocalIP, d.cfg.Server, d.log)
	if err != nil {
		return err
	}
	if nat := d.cfg.Faults.NATAddress; nat != "" {
		host, port, err := net.SplitHostPort(nat)
		if err != nil {
			conn.close()
			return fmt.Errorf("gbsim: NATAddress: %w", err)
		}
		conn.viaHost = host
		conn.viaPort, _ = strconv.Atoi(port)
	}
	lifeCtx, endLife := context.WithCancel(ctx)
	d.mu.Lock()
	d.conn = conn
	d.mu.Unlock()
	conn.start(func(req *sip.Request, src net.Addr) { d.handle(lifeCtx, conn, req, src) })
	defer func() {
		d.registered.Store(false)
		endLife()
		d.stopSessions()
		conn.close()
		d.mu.Lock()
		d.conn, d.sub = nil, nil
		d.mu.Unlock()
	}()

	d.regCallID, d.regTag, d.regCSeq, d.chal, d.nc = randHex(12)+"@gbsim", randHex(6), 0, nil, 0
	granted, err := d.register(ctx, conn, int(d.cfg.Expires/time.Second))
	if err != nil {
		return err
	}
	d.registered.Store(true)
	keepalive := time.NewTicker(d.cfg.KeepaliveInterval)
	defer keepalive.Stop()
	refresh := time.NewTimer(granted * 4 / 5)
	defer refresh.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			// Unregister on a fresh, short context: ours is gone.
			uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			d.register(uctx, conn, 0)
			cancel()
			return ctx.Err()
		case dt := <-d.restart:
			d.log.Info("gbsim: device rebooting", "downtime", dt)
			return restartErr{dt}
		case <-conn.Done():
			return errConnClosed
		case <-keepalive.C:
			if d.cfg.Faults.DropKeepalives {
				continue
			}
			if err := d.sendKeepalive(ctx, conn); err != nil {
				failures++
				d.log.Debug("gbsim: keepalive failed", "err", err, "failures", failures)
				if failures >= d.cfg.KeepaliveFailures {
					return fmt.Errorf("keepalive: %w", err)
				}
				continue
			}
			failures = 0
		case <-refresh.C:
			g, err := d.register(ctx, conn, int(d.cfg.Expires/time.Second))
			if err != nil {
				return fmt.Errorf("re-register: %w", err)
			}
			refresh.Reset(g * 4 / 5)
		}
	}
}

func (d *Device) addrOfRecord(id string) string { return "<sip:" + id + "@" + d.cfg.Domain + ">" }

func (d *Device) contact(conn *sipConn) string {
	return "<sip:" + d.cfg.ID + "@" + net.JoinHostPort(conn.viaHost, strconv.Itoa(conn.viaPort)) + ">"
}

func (d *Device) password() string {
	if d.cfg.Faults.WrongPassword {
		return d.cfg.Password + "-wrong"
	}
	return d.cfg.Password
}

// register sends REGISTER with expires seconds (0 unregisters). Like many
// devices it answers the last challenge again on refresh (nc+1) and only
// takes a new one when refused.
func (d *Device) register(ctx context.Context, conn *sipConn, expires int) (time.Duration, error) {
	uri := "sip:" + d.cfg.ServerID + "@" + d.cfg.Domain
	build := func() (*outRequest, error) {
		d.regCSeq++
		r := &outRequest{method: "REGISTER", uri: uri, from: d.addrOfRecord(d.cfg.ID) + ";tag=" + d.regTag,
			to: d.addrOfRecord(d.cfg.ID), callID: d.regCallID, cseq: d.regCSeq, contact: d.contact(conn), expires: expires}
		if d.chal != nil {
			d.nc++
			cred, err := digest.Digest(d.chal, digest.Options{Method: "REGISTER", URI: uri,
				Username: d.cfg.ID, Password: d.password(), Count: d.nc})
			if err != nil {
				return nil, err
			}
			r.auth = cred.String()
		}
		return r, nil
	}
	for attempt := 0; attempt < 2; attempt++ {
		r, err := build()
		if err != nil {
			return 0, err
		}
		tctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
		res, err := conn.do(tctx, r)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("REGISTER: %w", err)
		}
		switch {
		case res.StatusCode == 401 || res.StatusCode == 407:
			hdr := res.GetHeader("WWW-Authenticate")
			if hdr == nil {
				hdr = res.GetHeader("Proxy-Authenticate")
			}
			if hdr == nil {
				return 0, errors.New("REGISTER: 401 without a challenge")
			}
			if r.auth != "" && attempt == 1 {
				d.stats.authFailures.Add(1)
				return 0, errors.New("REGISTER: credentials refused")
			}
			chal, err := digest.ParseChallenge(hdr.Value())
			if err != nil {
				return 0, fmt.Errorf("REGISTER: %w", err)
			}
			d.chal, d.nc = chal, 0
			continue
		case res.StatusCode >= 200 && res.StatusCode < 300:
			if expires == 0 {
				return 0, nil
			}
			d.stats.registrations.Add(1)
			granted := time.Duration(expires) * time.Second
			if h := res.GetHeader("Expires"); h != nil {
				if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && v > 0 {
					granted = time.Duration(v) * time.Second
				}
			}
			return granted, nil
		default:
			if r.auth != "" {
				d.stats.authFailures.Add(1)
			}
			return 0, fmt.Errorf("REGISTER: %d %s", res.StatusCode, res.Reason)
		}
	}
	d.stats.authFailures.Add(1)
	return 0, errors.New("REGISTER: credentials refused")
}

func (d *Device) charset() string {
	if d.cfg.GBK {
		return manscdp.CharsetGB2312
	}
	return manscdp.CharsetUTF8
}

// sendMANSCDP sends a MANSCDP body to the server in a MESSAGE and waits
// for a 2xx.
func (d *Device) sendMANSCDP(ctx context.Context, conn *sipConn, v any) error {
	body, err := d.encode(v)
	if err != nil {
		return err
	}
	r := &outRequest{method: "MESSAGE", uri: "sip:" + d.cfg.ServerID + "@" + d.cfg.Domain,
		from: d.addrOfRecord(d.cfg.ID) + ";tag=" + randHex(6), to: d.addrOfRecord(d.cfg.ServerID),
		callID: randHex(12) + "@gbsim", cseq: 20, expires: -1, contentType: contentTypeMANSCDP, body: body}
	return d.send(ctx, conn, r)
}

// send sends r and waits, at most RequestTimeout, for a final answer; one that is not 2xx is an
// error.
func (d *Device) send(ctx context.Context, conn *sipConn, r *outRequest) error {
	tctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	res, err := conn.do(tctx, r)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s: %d %s", r.method, res.StatusCode, res.Reason)
	}
	return nil
}

func (d *Device) nextSN() int { return int(d.sn.Add(1)) }

func (d *Device) sendKeepalive(ctx context.Context, conn *sipConn) error {
	err := d.sendMANSCDP(ctx, conn, &manscdp.Keepalive{
		Header: manscdp.Header{SN: d.nextSN(), DeviceID: d.cfg.ID}, Status: "OK"})
	if err == nil {
		d.stats.keepalives.Add(1)
	}
	return err
}

// handle answers one request from the server.
func (d *Device) handle(ctx context.Context, conn *sipConn, req *sip.Request, src net.Addr) {
	switch req.Method {
	case sip.MESSAGE:
		d.handleMessage(ctx, conn, req, src)
	case sip.INVITE:
		d.handleInvite(ctx, conn, req, src)
	case sip.ACK:
		d.handleAck(req)
	case sip.BYE:
		d.handleBye(conn, req, src)
	case sip.CANCEL:
		conn.reply(req, src, 200, "OK")
	case sip.SUBSCRIBE:
		d.handleSubscribe(conn, req, src)
	case sip.OPTIONS:
		conn.reply(req, src, 200, "OK")
	default:
		conn.reply(req, src, 405, "Method Not Allowed")
	}
}

func (d *Device) handleMessage(ctx context.Context, conn *sipConn, req *sip.Request, src net.Addr) {
	msg, err := manscdp.Parse(req.Body())
	if err != nil {
		conn.reply(req, src, 400, "Bad Request")
		return
	}
	// GB answers the MESSAGE at once and sends the answer as new
	// MESSAGEs of its own.
	conn.reply(req, src, 200, "OK")
	sn := msg.SN
	switch q := msg.Body.(type) {
	case *manscdp.CatalogQuery:
		d.stats.catalogQueries.Add(1)
		d.answerCatalog(ctx, conn, sn)
	case *manscdp.DeviceInfoQuery:
		d.sendMANSCDP(ctx, conn, &manscdp.DeviceInfoResponse{Header: manscdp.Header{SN: sn, DeviceID: d.cfg.ID},
			DeviceName: d.cfg.Name, Result: manscdp.ResultOK, Manufacturer: d.cfg.Manufacturer,
			Model: d.cfg.Model, Firmware: d.cfg.Firmware, Channel: len(d.Channels())})
	case *manscdp.DeviceStatusQuery:
		d.sendMANSCDP(ctx, conn, &manscdp.DeviceStatusResponse{Header: manscdp.Header{SN: sn, DeviceID: q.DeviceID},
			Result: manscdp.ResultOK, Online: "ONLINE", Status: "OK", Encode: "ON", Record: "OFF",
			DeviceTime: time.Now().Format("2006-01-02T15:04:05")})
	case *manscdp.PresetQuery:
		r := &manscdp.PresetQueryResponse{Header: manscdp.Header{SN: sn, DeviceID: q.DeviceID}}
		if ch := d.Channel(q.DeviceID); ch != nil {
			for _, p := range ch.Presets() {
				r.PresetList.Items = append(r.PresetList.Items, manscdp.Preset{PresetID: int(p), PresetName: "预置点" + strconv.Itoa(int(p))})
			}
		}
		r.PresetList.Num = len(r.PresetList.Items)
		d.sendMANSCDP(ctx, conn, r)
	case *manscdp.DeviceControl:
		d.control(q)
	}
}

// control obeys DeviceControl. Like most devices, it sends no MANSCDP
// answer for PTZ or keyframe commands: the MESSAGE's 200 is all.
func (d *Device) control(c *manscdp.DeviceControl) {
	target := d.target(c.DeviceID)
	switch {
	case c.PTZCmd != "":
		p, err := manscdp.DecodePTZ(c.PTZCmd)
		if err != nil || target == nil {
			d.log.Debug("gbsim: PTZCmd ignored", "target", c.DeviceID, "err", err)
			return
		}
		target.applyPTZ(p)
	case c.IFameCmd != "":
		if target == nil {
			for _, ch := range d.Channels() {
				ch.requestKeyframe()
			}
			return
		}
		target.requestKeyframe()
	case strings.EqualFold(c.TeleBoot, manscdp.TeleBootBoot):
		d.Restart(d.cfg.RebootTime)
	}
}

// answerCatalog sends the catalog in pages of PageSize items, each in its
// own MESSAGE carrying the total in SumNum.
func (d *Device) answerCatalog(ctx context.Context, conn *sipConn, sn int) {
	items := d.catalogItems()
	total := len(items)
	for start := 0; start < total || start == 0; start += d.cfg.PageSize {
		end := min(start+d.cfg.PageSize, total)
		page := &manscdp.CatalogResponse{Header: manscdp.Header{SN: sn, DeviceID: d.cfg.ID}, SumNum: total}
		page.DeviceList.Items = items[start:end]
		page.DeviceList.Num = len(page.DeviceList.Items)
		if err := d.sendMANSCDP(ctx, conn, page); err != nil {
			d.log.Debug("gbsim: catalog page not delivered", "err", err)
			return
		}
		d.stats.catalogPages.Add(1)
		if total == 0 {
			return
		}
	}
}

// BusinessGroupID and VirtualOrgID are the IDs of a Platform device's
// business group and virtual organisation (domain, type 215/216, serial 1).
func (d *Device) BusinessGroupID() string { return d.cfg.Domain + "2150000001" }

// VirtualOrgID: see BusinessGroupID.
func (d *Device) VirtualOrgID() string { return d.cfg.Domain + "2160000001" }

// catalogItems lists what the catalog answers: the channels, and for a
// Platform first its civil-code nodes, business group and organisation.
func (d *Device) catalogItems() []manscdp.Item {
	var out []manscdp.Item
	bg, vo := d.BusinessGroupID(), d.VirtualOrgID()
	channels := d.Channels()
	if d.cfg.Platform {
		seen := map[string]bool{}
		for _, ch := range channels {
			if cc := ch.CivilCode; cc != "" && !seen[cc] {
				seen[cc] = true
				out = append(out, manscdp.Item{DeviceID: cc, Name: "行政区划" + cc})
			}
		}
		out = append(out,
			manscdp.Item{DeviceID: bg, Name: "业务分组"},
			manscdp.Item{DeviceID: vo, Name: "虚拟组织", ParentID: bg, BusinessGroupID: bg})
	}
	for _, ch := range channels {
		it := ch.item(&d.cfg)
		if d.cfg.Platform {
			it.ParentID, it.BusinessGroupID = vo, bg
		}
		out = append(out, it)
	}
	return out
}

// subscription is a catalog SUBSCRIBE dialog the server opened.
type subscription struct {
	callID, fromHdr, toHdr string // as the device sends NOTIFY: From = our To
	cseq                   uint32
	remoteURI              string
}

func (d *Device) handleSubscribe(conn *sipConn, req *sip.Request, src net.Addr) {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	exp := "3600"
	if h := req.GetHeader("Expires"); h != nil {
		exp = strings.TrimSpace(h.Value())
	}
	res.AppendHeader(sip.NewHeader("Expires", exp))
	res.AppendHeader(sip.NewHeader("Contact", d.contact(conn)))
	sub := &subscription{callID: req.CallID().Value(), cseq: 1}
	sub.fromHdr = res.To().Value()
	sub.toHdr = req.From().Value()
	sub.remoteURI = "sip:" + d.cfg.ServerID + "@" + d.cfg.Domain
	if c := req.Contact(); c != nil {
		sub.remoteURI = c.Address.String()
	}
	// Hold the dialog before answering: the server may act on the 200 at once.
	d.mu.Lock()
	if exp == "0" {
		d.sub = nil
	} else {
		d.sub = sub
	}
	d.mu.Unlock()
	conn.respond(req, src, res)
}

// NotifyCatalog reports catalog changes for channel IDs with event
// (manscdp.EventAdd, EventDel, EventOn, EventOff, …): as a NOTIFY in the
// server's catalog subscription when it opened one, else as a MESSAGE with
// a Notify body, as devices without subscription support do.
func (d *Device) NotifyCatalog(ctx context.Context, event string, ids ...string) error {
	conn := d.currentConn()
	if conn == nil {
		return errors.New("gbsim: device not connected")
	}
	n := &manscdp.CatalogNotify{Header: manscdp.Header{SN: d.nextSN(), DeviceID: d.cfg.ID}, SumNum: len(ids)}
	for _, id := range ids {
		it := manscdp.Item{DeviceID: id, Event: event}
		if ch := d.Channel(id); ch != nil {
			it = ch.item(&d.cfg)
			it.Event = event
		}
		n.DeviceList.Items = append(n.DeviceList.Items, it)
	}
	n.DeviceList.Num = len(ids)
	d.mu.Lock()
	sub := d.sub
	var cseq uint32
	if sub != nil {
		sub.cseq++
		cseq = sub.cseq
	}
	d.mu.Unlock()
	if sub == nil {
		return d.sendMANSCDP(ctx, conn, n)
	}
	body, err := d.encode(n)
	if err != nil {
		return err
	}
	r := &outRequest{method: "NOTIFY", uri: sub.remoteURI, from: sub.fromHdr, to: sub.toHdr, callID: sub.callID,
		cseq: cseq, contact: d.contact(conn), expires: -1, contentType: contentTypeMANSCDP, body: body,
		extra: []string{"Event: Catalog", "Subscription-State: active"}}
	return d.send(ctx, conn, r)
}

// jitter returns a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}
