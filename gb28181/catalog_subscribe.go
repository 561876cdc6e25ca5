package gb28181

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181/manscdp"
)

// subscription is our Catalog subscription at one device: refreshed in the same dialog (Call-ID,
// From tag, rising CSeq) before it expires.
type subscription struct {
	callID  string
	fromTag string
	cseq    uint32
	expires time.Time
	failed  bool // the device refused: rely on periodic queries only
}

// catalogHandlers installs catalog handling: NOTIFYs and unsolicited answers, the sync of devices
// that register, and what a device going offline means for its points.
func (s *Server) catalogHandlers() {
	s.HandleCmd("Catalog", s.onCatalog)
	s.devices.OnChange(func(ev DeviceEvent) {
		switch ev.Kind {
		case DeviceRegistered:
			id := ev.Device.ID
			s.mu.Lock()
			delete(s.subs, id)            // a restarted device forgot our subscription
			s.catalogAt[id] = s.cfg.Now() // claimed: the periodic loop must not start another
			s.mu.Unlock()
			s.Go(func(ctx context.Context) { s.syncDevice(ctx, id) })
		case DeviceOffline, DeviceUnregistered:
			id := ev.Device.ID
			s.mu.Lock()
			delete(s.subs, id)
			s.mu.Unlock()
			s.Go(func(context.Context) { s.channelsOffline(id) })
		}
	})
}

// syncDevice asks a device that just registered who it is and what channels it has, then
// subscribes to its catalog changes. The semaphore bounds how many devices are asked at once (a
// thousand registering together must not flood the box).
func (s *Server) syncDevice(ctx context.Context, id string) {
	select {
	case s.catalogSem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.catalogSem }()
	// Many devices never answer ConfigDownload: waiting out its timeout must not delay the
	// catalog (the device's channels) by RequestTimeout. It runs beside the rest of the sync.
	interval := make(chan struct{})
	go func() {
		defer close(interval)
		s.queryKeepaliveInterval(ctx, id)
	}()
	defer func() { <-interval }()
	s.queryDeviceInfo(ctx, id)
	if s.cfg.Catalog == nil {
		return
	}
	if _, err := s.QueryCatalog(ctx, id); err != nil && !errors.Is(err, ErrCatalogBusy) && ctx.Err() == nil {
		s.log.Warn("gb28181: catalog query", "device", id, "err", err)
		// Try again at the next periodic round rather than waiting a whole interval.
		s.mu.Lock()
		s.catalogAt[id] = s.cfg.Now().Add(-s.cfg.CatalogInterval + s.cfg.CatalogPageTimeout*3)
		s.mu.Unlock()
	}
	s.subscribe(ctx, id)
}

// queryDeviceInfo fills name, manufacturer, model and firmware from DeviceInfo (best effort).
func (s *Server) queryDeviceInfo(ctx context.Context, id string) {
	peer, err := s.DevicePeer(id)
	if err != nil {
		return
	}
	sn := NextSN()
	got := make(chan *manscdp.DeviceInfoResponse, 1)
	cancel := s.Expect(id, "DeviceInfo", sn, func(r *Request) {
		m, err := manscdp.Parse(r.Body())
		if err != nil {
			return
		}
		s.noteCharset(id, m.Charset)
		if b, ok := m.Body.(*manscdp.DeviceInfoResponse); ok {
			select {
			case got <- b:
			default:
			}
		}
	})
	defer cancel()
	body, err := manscdp.Marshal(&manscdp.DeviceInfoQuery{Header: manscdp.Header{CmdType: manscdp.CmdDeviceInfo, SN: sn, DeviceID: id}}, s.charsetFor(id))
	if err != nil {
		return
	}
	if err := s.SendMANSCDP(ctx, peer, "", body); err != nil {
		s.log.Debug("gb28181: device info query", "device", id, "err", err)
		return
	}
	t := time.NewTimer(s.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case info := <-got:
		named := s.nameSetByAdmin(id)
		s.devices.Update(id, false, func(d *Device) DeviceEventKind {
			if !named && info.DeviceName != "" {
				d.Name = cleanText(info.DeviceName, 128)
			}
			d.Manufacturer = cleanText(info.Manufacturer, 64)
			d.Model = cleanText(info.Model, 64)
			d.Firmware = cleanText(info.Firmware, 64)
			return DeviceUpdated
		})
		if err := s.saveDevice(id); err != nil {
			s.log.Warn("gb28181: saving device", "device", id, "err", err)
		}
	case <-t.C:
		s.log.Debug("gb28181: no device info", "device", id)
	case <-ctx.Done():
	}
}

// subscribe sends (or refreshes) our Catalog SUBSCRIBE to a device. Devices that refuse are left
// to the periodic queries.
func (s *Server) subscribe(ctx context.Context, id string) {
	if s.cfg.SubscribeExpiry <= 0 {
		return
	}
	peer, err := s.DevicePeer(id)
	if err != nil {
		return
	}
	sn := NextSN()
	body, err := manscdp.Marshal(&manscdp.CatalogQuery{Header: manscdp.Header{CmdType: manscdp.CmdCatalog, SN: sn, DeviceID: id}}, s.charsetFor(id))
	if err != nil {
		return
	}
	req, err := s.NewRequest(sip.SUBSCRIBE, peer, "", ContentTypeMANSCDP, body)
	if err != nil {
		return
	}
	s.mu.Lock()
	var prev subscription
	if sub := s.subs[id]; sub != nil && !sub.failed {
		sub.cseq++
		prev = *sub
	}
	s.mu.Unlock()
	if prev.callID != "" {
		// Refresh within the subscription's dialog.
		req.ReplaceHeader(callIDHeader(prev.callID))
		req.From().Params.Add("tag", prev.fromTag)
		req.CSeq().SeqNo = prev.cseq
	}
	req.AppendHeader(sip.NewHeader("Event", "Catalog;id="+strconv.Itoa(sn)))
	exp := sip.ExpiresHeader(uint32(s.cfg.SubscribeExpiry / time.Second))
	req.AppendHeader(&exp)
	res, err := s.Do(ctx, req)
	now := s.cfg.Now()
	if err != nil || !res.IsSuccess() {
		code := 0
		if res != nil {
			code = int(res.StatusCode)
		}
		s.log.Debug("gb28181: catalog subscription refused", "device", id, "code", code, "err", err)
		s.mu.Lock()
		// Retry after a while: the device may have been busy.
		s.subs[id] = &subscription{failed: true, expires: now.Add(s.cfg.SubscribeExpiry)}
		s.mu.Unlock()
		return
	}
	granted := s.cfg.SubscribeExpiry
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(h.Value()); err == nil && n > 0 {
			granted = time.Duration(n) * time.Second
		}
	}
	fromTag, _ := req.From().Params.Get("tag")
	s.mu.Lock()
	s.subs[id] = &subscription{callID: req.CallID().Value(), fromTag: fromTag, cseq: req.CSeq().SeqNo, expires: now.Add(granted)}
	s.mu.Unlock()
}

func callIDHeader(v string) *sip.CallIDHeader {
	h := sip.CallIDHeader(v)
	return &h
}

// catalogLoop re-queries catalogs every CatalogInterval and refreshes subscriptions before they
// expire (at four fifths of their life).
func (s *Server) catalogLoop(ctx context.Context) {
	tick := min(max(s.cfg.CatalogInterval/10, 50*time.Millisecond), 10*time.Second)
	every(ctx, tick, func() {
		now := s.cfg.Now()
		for _, d := range s.devices.List() {
			if !d.Online {
				continue
			}
			id := d.ID
			s.mu.Lock()
			last, synced := s.catalogAt[id]
			busy := s.querying[id]
			sub := s.subs[id]
			s.mu.Unlock()
			if !synced && !busy {
				// Online without a registration seen by this process (it kept its registration
				// across our restart and came back with a keepalive): sync it as if it registered.
				s.mu.Lock()
				s.catalogAt[id] = now
				s.mu.Unlock()
				s.Go(func(ctx context.Context) { s.syncDevice(ctx, id) })
				continue
			}
			if !busy && now.Sub(last) >= s.cfg.CatalogInterval {
				s.mu.Lock()
				s.catalogAt[id] = now // claimed: the next tick must not start another
				s.mu.Unlock()
				s.Go(func(ctx context.Context) {
					select {
					case s.catalogSem <- struct{}{}:
					case <-ctx.Done():
						return
					}
					defer func() { <-s.catalogSem }()
					if _, err := s.QueryCatalog(ctx, id); err != nil && !errors.Is(err, ErrCatalogBusy) && ctx.Err() == nil {
						s.log.Warn("gb28181: periodic catalog query", "device", id, "err", err)
					}
				})
			}
			if sub != nil && s.cfg.SubscribeExpiry > 0 {
				life := s.cfg.SubscribeExpiry
				if now.After(sub.expires.Add(-life / 5)) {
					s.mu.Lock()
					sub.expires = now.Add(life) // claimed until the refresh answers
					s.mu.Unlock()
					s.Go(func(ctx context.Context) { s.subscribe(ctx, id) })
				}
			}
		}
	})
}

// channelsOffline marks the points of a device that went away offline (its channels cannot be
// reached through it).
func (s *Server) channelsOffline(device string) {
	if s.cfg.Catalog == nil {
		return
	}
	chs, err := s.Channels(device)
	if err != nil {
		return
	}
	ids := make([]string, 0, len(chs))
	for _, c := range chs {
		if !slices.Contains(c.Flags, FlagConflict) { // a conflicting ID is another source's point
			ids = append(ids, c.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	if _, err := s.cfg.Catalog.SetStatuses(ids, catalog.StateOffline, s.cfg.Now()); err != nil {
		s.log.Warn("gb28181: channels offline", "device", device, "err", err)
	}
}
