package gb28181

import (
	"context"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181/manscdp"
)

// onMessage answers the platform's queries: Catalog (exactly the points its
// account may view), DeviceInfo and DeviceStatus. The MESSAGE is
// acknowledged at once; the answers follow as MESSAGEs of our own.
func (c *Cascade) onMessage(_ context.Context, r *Request) {
	l := c.platformOf(r)
	if l == nil {
		return
	}
	if !strings.EqualFold(r.Root, string(manscdp.KindQuery)) {
		// Keepalives, notifications and controls from above change nothing here.
		r.Respond(200, "OK", nil)
		return
	}
	msg, err := manscdp.Parse(r.Body())
	if err != nil {
		c.log.Warn("gb28181: bad query from upstream platform", "platform", l.cfg.ID, "err", err)
		r.Respond(400, "Bad Request", nil)
		return
	}
	switch msg.CmdType {
	case manscdp.CmdCatalog, manscdp.CmdDeviceInfo, manscdp.CmdDeviceStatus:
	default:
		r.Respond(200, "OK", nil)
		return
	}
	r.Respond(200, "OK", nil)
	sn, target, charset := msg.SN, msg.DeviceID, msg.Charset
	// Counted under mu only while open: Close cancels under mu, then waits.
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		var err error
		switch msg.CmdType {
		case manscdp.CmdCatalog:
			err = c.answerCatalog(l, sn, target, charset)
		case manscdp.CmdDeviceInfo:
			err = c.answerDeviceInfo(l, sn, target, charset)
		case manscdp.CmdDeviceStatus:
			err = c.answerDeviceStatus(l, sn, target, charset)
		}
		if err != nil && c.ctx.Err() == nil {
			c.log.Warn("gb28181: answering upstream query", "platform", l.cfg.ID, "cmd", msg.CmdType, "err", err)
		}
	}()
}

// catalogItems are the points the platform's account may view, as GB
// catalog items: each point under us (ParentID our ID), with its region's
// civil code and its coordinates. Points whose ID is not a 20-digit GB ID
// cannot be addressed by a GB platform and are left out.
func (c *Cascade) catalogItems(l *link) []manscdp.Item {
	points := c.cfg.Access.PointsVisibleTo(l.cfg.Account)
	items := make([]manscdp.Item, 0, len(points))
	for _, p := range points {
		if !IsID(p.ID) {
			continue
		}
		items = append(items, pointItem(p, l.self))
	}
	return items
}

func pointItem(p catalog.Point, parent string) manscdp.Item {
	it := manscdp.Item{DeviceID: p.ID, Name: p.Name, Manufacturer: "Tianyan", Model: p.Kind, Owner: "Owner",
		CivilCode: p.Region, Address: p.Address, Parental: 0, ParentID: parent, RegisterWay: 1, Secrecy: 0,
		Status: manscdp.StatusOff}
	if it.CivilCode == "" {
		it.CivilCode = parent[:min(len(parent), 6)]
	}
	if p.Status.State == catalog.StateOnline {
		it.Status = manscdp.StatusOn
	}
	if p.Lat != nil && p.Lon != nil {
		it.Longitude, it.Latitude = *p.Lon, *p.Lat
	}
	ptz := manscdp.PTZTypeFixed
	if p.PTZ {
		ptz = manscdp.PTZTypeDome
	}
	it.Info = &manscdp.Info{PTZType: ptz}
	return it
}

// udpBodyMax keeps a MESSAGE over UDP inside one datagram (sipgo refuses
// more than 1500 bytes; the SIP headers take the rest).
const udpBodyMax = 1000

// answerCatalog sends the catalog in pages of at most CatalogPage items
// (fewer over UDP, where a page must fit one datagram), each carrying
// SumNum, the total.
func (c *Cascade) answerCatalog(l *link, sn int, target, charset string) error {
	items := c.catalogItems(l)
	c.log.Info("gb28181: catalog for upstream platform", "platform", l.cfg.ID, "account", l.cfg.Account, "items", len(items))
	if target == "" {
		target = l.self
	}
	page := func(chunk []manscdp.Item) ([]byte, error) {
		return manscdp.Marshal(&manscdp.CatalogResponse{
			Header: manscdp.Header{CmdType: manscdp.CmdCatalog, SN: sn, DeviceID: target}, SumNum: len(items),
			DeviceList: manscdp.DeviceList{Num: len(chunk), Items: chunk}}, charset)
	}
	limit := 1 << 20
	if l.cfg.Transport == "udp" {
		limit = udpBodyMax
	}
	start := 0
	for {
		// The largest page under both bounds, at least one item.
		n := min(c.cfg.CatalogPage, len(items)-start)
		body, err := page(items[start : start+n])
		for err == nil && n > 1 && len(body) > limit {
			n--
			body, err = page(items[start : start+n])
		}
		if err != nil {
			return err
		}
		if err := l.send(c.ctx, sip.MESSAGE, ContentTypeMANSCDP, body); err != nil {
			return err
		}
		start += n
		if start >= len(items) {
			return nil
		}
	}
}

func (c *Cascade) answerDeviceInfo(l *link, sn int, target, charset string) error {
	res := &manscdp.DeviceInfoResponse{Header: manscdp.Header{CmdType: manscdp.CmdDeviceInfo, SN: sn, DeviceID: target},
		Result: manscdp.ResultOK, Manufacturer: "Tianyan", Model: "VMS", Firmware: "1"}
	if target == "" || target == l.self {
		res.DeviceID, res.DeviceName = l.self, "Tianyan VMS"
		res.Channel = len(c.catalogItems(l))
	} else if p, ok := c.visiblePoint(l, target); ok {
		res.DeviceName = p.Name
	} else {
		res.Result = manscdp.ResultError
	}
	body, err := manscdp.Marshal(res, charset)
	if err != nil {
		return err
	}
	return l.send(c.ctx, sip.MESSAGE, ContentTypeMANSCDP, body)
}

func (c *Cascade) answerDeviceStatus(l *link, sn int, target, charset string) error {
	res := &manscdp.DeviceStatusResponse{Header: manscdp.Header{CmdType: manscdp.CmdDeviceStatus, SN: sn, DeviceID: target},
		Result: manscdp.ResultOK, Online: "ONLINE", Status: "OK", Encode: "ON", Record: "OFF",
		DeviceTime: c.now().Format("2006-01-02T15:04:05")}
	if target != "" && target != l.self {
		p, ok := c.visiblePoint(l, target)
		switch {
		case !ok:
			res.Result, res.Online, res.Status = manscdp.ResultError, "OFFLINE", "ERROR"
		case p.Status.State != catalog.StateOnline:
			res.Online, res.Reason = "OFFLINE", p.Status.State
		}
	} else {
		res.DeviceID = l.self
	}
	body, err := manscdp.Marshal(res, charset)
	if err != nil {
		return err
	}
	return l.send(c.ctx, sip.MESSAGE, ContentTypeMANSCDP, body)
}

// visiblePoint finds id among the points the platform may view.
func (c *Cascade) visiblePoint(l *link, id string) (catalog.Point, bool) {
	if !c.cfg.Access.CanView(l.cfg.Account, id) {
		return catalog.Point{}, false
	}
	for _, p := range c.cfg.Access.PointsVisibleTo(l.cfg.Account) {
		if p.ID == id {
			return p, true
		}
	}
	return catalog.Point{}, false
}
