package gb28181

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181/manscdp"
	"github.com/tianyan/vms/store"
)

// Channel flags: why a channel needs an admin.
const (
	// FlagCivilCode: its civil code was missing, malformed or outside the district, so its point sits
	// at the district's root region.
	FlagCivilCode = "civil_code"
	// FlagUnclassified: no mapping rule matched; its point is catalog.Unclassified (admins only).
	FlagUnclassified = "unclassified"
	// FlagConflict: its ID is a point of another source or device; that point was left alone.
	FlagConflict = "conflict"
	// FlagGone: missing from the device's last full catalog; its point is offline and tagged TagGone.
	FlagGone = "gone"
	// FlagInvalid: the catalog refused the point made of it (see the log).
	FlagInvalid = "invalid"
)

// Point tags written by the catalog sync; tags without the "gb:" prefix belong to admins and stay.
const (
	TagPrefix      = "gb:"
	TagGone        = "gb:gone"
	TagCheckRegion = "gb:check-region"
	tagParent      = "gb:parent:"
	tagGroup       = "gb:group:"
)

// Channel is what the server knows of one channel of a device, beyond its catalog point.
type Channel struct {
	ID              string    `json:"id"`
	Device          string    `json:"device"`
	Name            string    `json:"name"`
	CivilCode       string    `json:"civil_code,omitempty"`
	ParentID        string    `json:"parent_id,omitempty"`
	BusinessGroupID string    `json:"business_group_id,omitempty"`
	Status          string    `json:"status,omitempty"`
	Flags           []string  `json:"flags,omitempty"`
	LastSeen        time.Time `json:"last_seen"`
	// Wrote is what the sync last derived from the device for the point's admin-editable fields:
	// a field whose point value still equals it was not edited by an admin and follows the device.
	Wrote Wrote `json:"wrote"`
}

// Wrote holds device-derived point values (see Channel.Wrote).
type Wrote struct {
	Name     string `json:"name"`
	Region   string `json:"region"`
	Category string `json:"category"`
	Level    int    `json:"level"`
	Address  string `json:"address,omitempty"`
}

func (c *Channel) facts() ChannelFacts {
	return ChannelFacts{Name: c.Wrote.Name, CivilCode: c.CivilCode, ParentID: c.ParentID, BusinessGroupID: c.BusinessGroupID, Device: c.Device}
}

func (c *Channel) setFlag(flag string, on bool) {
	has := slices.Contains(c.Flags, flag)
	switch {
	case on && !has:
		c.Flags = append(c.Flags, flag)
		slices.Sort(c.Flags)
	case !on && has:
		c.Flags = slices.DeleteFunc(c.Flags, func(f string) bool { return f == flag })
	}
	if len(c.Flags) == 0 {
		c.Flags = nil
	}
}

func channelKey(device, id string) []byte { return []byte(device + "/" + id) }

// channelsOf reads the channel records of device.
func channelsOf(tx *bbolt.Tx, device string) (map[string]*Channel, error) {
	out := map[string]*Channel{}
	prefix := []byte(device + "/")
	c := tx.Bucket(store.BucketGBChannels).Cursor()
	for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Next() {
		var ch Channel
		if _, err := store.GetJSON(tx, store.BucketGBChannels, k, &ch); err != nil {
			return nil, err
		}
		out[ch.ID] = &ch
	}
	return out, nil
}

// Channels lists the channel records of device ("" = every device), by device then ID.
func (s *Server) Channels(device string) ([]Channel, error) {
	var out []Channel
	if s.cfg.DB == nil {
		return out, nil
	}
	err := s.cfg.DB.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(store.BucketGBChannels).Cursor()
		prefix := []byte(device)
		if device != "" {
			prefix = []byte(device + "/")
		}
		for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Next() {
			var ch Channel
			if _, err := store.GetJSON(tx, store.BucketGBChannels, k, &ch); err != nil {
				return err
			}
			out = append(out, ch)
		}
		return nil
	})
	return out, err
}

// IsChannel reports whether a catalog item is a video channel (a point): a 20-digit ID of type 131
// (camera) or 132 (IP camera). NVRs, civil-code nodes, business groups (215) and virtual
// organisations (216) only structure the tree.
func IsChannel(it manscdp.Item) bool {
	if !IsID(it.DeviceID) {
		return false
	}
	switch it.DeviceID[10:13] {
	case "131", "132":
		return true
	}
	return false
}

// ptzCapable: PTZType 1 dome, 4 remote-controlled box and (2022) 5 remote-controlled half-dome can
// be steered; 2 half-dome and 3 fixed box cannot.
func ptzCapable(it manscdp.Item) bool {
	if it.Info == nil {
		return false
	}
	switch it.Info.PTZType {
	case 1, 4, 5:
		return true
	}
	return false
}

// cleanText makes device text fit a catalog field: valid UTF-8, no control characters, at most n
// runes.
func cleanText(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n])
	}
	return strings.TrimSpace(s)
}

// district is the region code channels fall back to: Config.District, else the first 6 digits of
// our domain.
func (s *Server) district() string {
	if s.cfg.District != "" {
		return s.cfg.District
	}
	return s.cfg.Domain[:6]
}

// maxNewRegionsPerSync bounds the regions one catalog may create, so a device cannot flood the
// region tree with invented civil codes; beyond it channels fall back to the district, flagged.
const maxNewRegionsPerSync = 200

// maxPendingNotifies bounds the catalog notifications (of all devices) answered but not yet
// applied: each holds its parsed channels until its turn.
const maxPendingNotifies = 64

// errRegionBudget is returned when a sync has created all the regions it may.
var errRegionBudget = errors.New("gb28181: too many new regions in one catalog")

// ensureRegion creates region code (named by its code, for an admin to rename) under parent if the
// catalog lacks it. Callers hold applyMu (regionBudget).
func (s *Server) ensureRegion(code, parent string) error {
	if _, err := s.cfg.Catalog.GetRegion(code); err == nil {
		return nil
	}
	if s.regionBudget <= 0 {
		return errRegionBudget
	}
	s.regionBudget--
	_, err := s.cfg.Catalog.CreateRegion(catalog.Region{Code: code, Name: code, Parent: parent})
	if err != nil && !errors.Is(err, catalog.ErrRegionExists) {
		return err
	}
	if err == nil {
		s.log.Info("gb28181: region created from a civil code", "region", code, "parent", parent)
	}
	return nil
}

// regionFor maps a channel's civil code to a region, creating missing streets and communities under
// the district. ok is false when the code is missing, malformed or outside the district: the channel
// then sits at the district root, flagged.
func (s *Server) regionFor(civil string) (region string, ok bool) {
	root := s.district()
	if err := s.ensureRegion(root, ""); err != nil {
		s.log.Warn("gb28181: district region", "region", root, "err", err)
		return "", false
	}
	civil = strings.TrimSpace(civil)
	if civil == "" || !isDigits(civil, len(civil)) || !strings.HasPrefix(civil, root) {
		return root, false
	}
	switch len(civil) {
	case 6:
		return root, true
	case 8:
		// A GB/T 28181 grassroots unit (6 + 2 digits) of the district: no finer region of ours.
		return root, true
	case 9:
		if err := s.ensureRegion(civil, root); err != nil {
			return root, false
		}
		return civil, true
	case 12:
		street := civil[:9]
		if err := s.ensureRegion(street, root); err != nil {
			return root, false
		}
		if err := s.ensureRegion(civil, street); err != nil {
			return root, false
		}
		return civil, true
	}
	return root, false
}

// CatalogResult counts what one catalog sync did.
type CatalogResult struct {
	Channels int  `json:"channels"` // channels in the answer
	Created  int  `json:"created"`
	Updated  int  `json:"updated"`
	Gone     int  `json:"gone"`
	Flagged  int  `json:"flagged"`
	Complete bool `json:"complete"` // every page arrived (SumNum); only then are missing channels marked gone
}

// applyItems turns catalog items of device into points: full means the items are the device's
// whole catalog (channels missing from it are marked gone). Nothing is ever deleted.
func (s *Server) applyItems(device string, items []manscdp.Item, full bool) (CatalogResult, error) {
	var res CatalogResult
	res.Complete = full
	if s.cfg.Catalog == nil || s.cfg.DB == nil {
		return res, errors.New("gb28181: no catalog to sync into")
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.regionBudget = maxNewRegionsPerSync
	now := s.cfg.Now().UTC()
	var recs map[string]*Channel
	if err := s.cfg.DB.View(func(tx *bbolt.Tx) (err error) { recs, err = channelsOf(tx, device); return err }); err != nil {
		return res, err
	}
	var points []catalog.Point
	touched := map[string]*Channel{}
	seen := map[string]bool{}
	for _, it := range items {
		if !IsChannel(it) || seen[it.DeviceID] {
			continue
		}
		seen[it.DeviceID] = true
		res.Channels++
		rec := recs[it.DeviceID]
		if rec == nil {
			rec = &Channel{ID: it.DeviceID, Device: device}
		}
		touched[rec.ID] = rec
		p, created, ok := s.pointFromItem(device, it, rec, now)
		if !ok {
			continue
		}
		if created {
			res.Created++
		} else {
			res.Updated++
		}
		points = append(points, p)
	}
	if full {
		for id, rec := range recs {
			if seen[id] || slices.Contains(rec.Flags, FlagGone) {
				continue
			}
			if p, ok := s.flagGone(device, rec, touched, &res, now); ok {
				points = append(points, p)
			}
		}
	}
	stored, err := s.storePoints(device, points, touched, &res)
	if err != nil {
		return res, err
	}
	for _, p := range stored {
		if s.cfg.OnPointChanged != nil {
			s.cfg.OnPointChanged(p)
		}
	}
	s.recountChannels(device)
	return res, nil
}

// pointFromItem merges a catalog item into its point (new or stored), updating rec. ok is false when
// the point belongs to something else (the channel is flagged as a conflict).
func (s *Server) pointFromItem(device string, it manscdp.Item, rec *Channel, now time.Time) (p catalog.Point, created, ok bool) {
	rec.Name = cleanText(it.Name, 128)
	rec.CivilCode = strings.TrimSpace(it.CivilCode)
	rec.ParentID = strings.TrimSpace(it.ParentID)
	rec.BusinessGroupID = strings.TrimSpace(it.BusinessGroupID)
	if rec.BusinessGroupID == "" && it.Info != nil {
		rec.BusinessGroupID = strings.TrimSpace(it.Info.BusinessGroupID)
	}
	rec.Status = it.Status
	rec.LastSeen = now
	rec.setFlag(FlagGone, false)
	rec.setFlag(FlagInvalid, false)

	stored, err := s.cfg.Catalog.Get(it.DeviceID)
	exists := err == nil
	if exists && (stored.Main.Type != catalog.SourceGB28181 || stored.Main.Device != device) {
		rec.setFlag(FlagConflict, true)
		s.log.Warn("gb28181: channel ID belongs to another point; left alone", "channel", it.DeviceID, "device", device,
			"source", stored.Main.Type, "owner", stored.Main.Device)
		return catalog.Point{}, false, false
	}
	rec.setFlag(FlagConflict, false)

	name := rec.Name
	if name == "" {
		name = it.DeviceID
	}
	region, civilOK := s.regionFor(rec.CivilCode)
	rec.setFlag(FlagCivilCode, !civilOK)
	facts := ChannelFacts{Name: name, CivilCode: rec.CivilCode, ParentID: rec.ParentID, BusinessGroupID: rec.BusinessGroupID, Device: device}
	category, level, _ := s.rules.Classify(facts)
	address := cleanText(it.Address, 256)

	if exists {
		p = stored
	} else {
		p = catalog.Point{ID: it.DeviceID, Kind: catalog.KindHD, Status: catalog.Status{State: catalog.StateUnknown, Since: now}}
		created = true
	}
	w := rec.Wrote
	// Admin edits stick: a field follows the device only while it still holds what the sync wrote.
	if created || p.Name == w.Name {
		p.Name = name
	}
	if created || p.Region == w.Region {
		p.Region = region
	}
	if created || p.Address == w.Address {
		p.Address = address
	}
	if created || p.Category == catalog.Unclassified || (p.Category == w.Category && p.Level == w.Level) {
		p.Category, p.Level = category, level
	}
	rec.Wrote = Wrote{Name: name, Region: region, Category: category, Level: level, Address: address}
	rec.setFlag(FlagUnclassified, p.Category == catalog.Unclassified)

	if it.Longitude != 0 || it.Latitude != 0 {
		lat, lon := it.Latitude, it.Longitude
		if lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 {
			p.Lat, p.Lon = &lat, &lon
		}
	}
	p.PTZ = ptzCapable(it)
	transport := ""
	if exists {
		transport = stored.Main.Transport
	}
	p.Main = catalog.Source{Type: catalog.SourceGB28181, Device: device, Transport: transport}
	p.OnDemand = true
	var tags []string
	if rec.ParentID != "" && IsID(rec.ParentID) {
		tags = append(tags, tagParent+rec.ParentID)
	}
	if rec.BusinessGroupID != "" && IsID(rec.BusinessGroupID) {
		tags = append(tags, tagGroup+rec.BusinessGroupID)
	}
	if !civilOK {
		tags = append(tags, TagCheckRegion)
	}
	p.Tags = withGBTags(p.Tags, tags)
	switch it.Status {
	case manscdp.StatusOn:
		if p.Status.State != catalog.StateOnline {
			p.Status = catalog.Status{State: catalog.StateOnline, Since: now}
		}
	case manscdp.StatusOff:
		if p.Status.State != catalog.StateOffline {
			p.Status = catalog.Status{State: catalog.StateOffline, Since: now}
		}
	}
	return p, created, true
}

func gbTagsOf(tags []string) []string {
	var out []string
	for _, t := range tags {
		if strings.HasPrefix(t, TagPrefix) {
			out = append(out, t)
		}
	}
	return out
}

// withGBTags replaces the "gb:" tags of tags with gb, keeping admin tags (within the catalog's 16).
func withGBTags(tags, gb []string) []string {
	var out []string
	for _, t := range tags {
		if !strings.HasPrefix(t, TagPrefix) {
			out = append(out, t)
		}
	}
	slices.Sort(gb)
	gb = slices.Compact(gb)
	if room := 16 - len(gb); len(out) > room {
		out = out[:max(room, 0)]
	}
	return append(out, gb...)
}

// storePoints writes points and channel records (and an audit record when something changed) in
// one transaction. If the catalog refuses the batch, points are stored one by one and the refused
// ones flagged, so one odd channel cannot stall a device's whole catalog.
func (s *Server) storePoints(device string, points []catalog.Point, recs map[string]*Channel, res *CatalogResult) ([]catalog.Point, error) {
	writeRecs := func(tx *bbolt.Tx) error {
		for _, rec := range recs {
			if err := store.PutJSON(tx, store.BucketGBChannels, channelKey(device, rec.ID), rec); err != nil {
				return err
			}
		}
		return nil
	}
	var hook store.TxHook
	if res.Created > 0 || res.Gone > 0 {
		hook = s.cfg.Audit.Hook(audit.Record{Action: "gb.catalog", Detail: map[string]string{"device": device,
			"channels": fmt.Sprint(res.Channels), "created": fmt.Sprint(res.Created), "gone": fmt.Sprint(res.Gone)}})
	}
	all := func(tx *bbolt.Tx, _ []catalog.Point) error {
		if err := writeRecs(tx); err != nil {
			return err
		}
		return store.RunHooks(tx, []store.TxHook{hook})
	}
	if len(points) == 0 {
		err := s.cfg.DB.Update(func(tx *bbolt.Tx) error { return all(tx, nil) })
		return nil, err
	}
	stored, err := s.cfg.Catalog.PutPoints(points, all)
	if err == nil {
		return stored, nil
	}
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) {
		return nil, err
	}
	s.log.Warn("gb28181: catalog refused a batch; storing channels one by one", "device", device, "err", err)
	stored = stored[:0]
	for _, p := range points {
		one, err := s.cfg.Catalog.PutPoints([]catalog.Point{p})
		if err != nil {
			s.log.Warn("gb28181: channel refused by the catalog", "channel", p.ID, "device", device, "err", err)
			if rec := recs[p.ID]; rec != nil {
				rec.setFlag(FlagInvalid, true)
			}
			continue
		}
		stored = append(stored, one...)
	}
	return stored, s.cfg.DB.Update(func(tx *bbolt.Tx) error { return all(tx, nil) })
}

// recountChannels refreshes the device's channel and flagged counts.
func (s *Server) recountChannels(device string) {
	chs, err := s.Channels(device)
	if err != nil {
		return
	}
	n, flagged := 0, 0
	for _, c := range chs {
		if !slices.Contains(c.Flags, FlagGone) {
			n++
		}
		if len(c.Flags) > 0 {
			flagged++
		}
	}
	s.devices.Update(device, false, func(d *Device) DeviceEventKind {
		if d.Channels == n && d.Flagged == flagged {
			return 0
		}
		d.Channels, d.Flagged = n, flagged
		return DeviceUpdated
	})
}

// Reclassify applies the mapping rules again to every channel whose point still holds what the sync
// wrote (or is unclassified): after rules change. It returns how many points changed.
func (s *Server) Reclassify() (int, error) {
	if s.cfg.Catalog == nil || s.cfg.DB == nil {
		return 0, nil
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	chs, err := s.Channels("")
	if err != nil {
		return 0, err
	}
	var points []catalog.Point
	recs := map[string]*Channel{}
	for i := range chs {
		rec := &chs[i]
		p, err := s.cfg.Catalog.Get(rec.ID)
		if err != nil || p.Main.Type != catalog.SourceGB28181 || p.Main.Device != rec.Device {
			continue
		}
		category, level, _ := s.rules.Classify(rec.facts())
		w := rec.Wrote
		if p.Category != catalog.Unclassified && (p.Category != w.Category || p.Level != w.Level) {
			continue // classified by hand
		}
		rec.Wrote.Category, rec.Wrote.Level = category, level
		rec.setFlag(FlagUnclassified, category == catalog.Unclassified)
		recs[rec.Device+"/"+rec.ID] = rec
		if p.Category == category && p.Level == level {
			continue
		}
		p.Category, p.Level = category, level
		points = append(points, p)
	}
	write := func(tx *bbolt.Tx, _ []catalog.Point) error {
		for _, rec := range recs {
			if err := store.PutJSON(tx, store.BucketGBChannels, channelKey(rec.Device, rec.ID), rec); err != nil {
				return err
			}
		}
		return nil
	}
	var stored []catalog.Point
	if len(points) > 0 {
		stored, err = s.cfg.Catalog.PutPoints(points, write)
	} else {
		err = s.cfg.DB.Update(func(tx *bbolt.Tx) error { return write(tx, nil) })
	}
	if err != nil {
		return 0, err
	}
	devices := map[string]bool{}
	for _, p := range stored {
		devices[p.Main.Device] = true
		if s.cfg.OnPointChanged != nil {
			s.cfg.OnPointChanged(p)
		}
	}
	for d := range devices {
		s.recountChannels(d)
	}
	return len(stored), nil
}

// ErrCatalogBusy is returned when a catalog query for the device is already running.
var ErrCatalogBusy = errors.New("gb28181: a catalog query for this device is already running")

// catalogPages collects the pages of one Catalog answer (one SN).
type catalogPages struct {
	mu    sync.Mutex
	sum   int
	pages int
	items []manscdp.Item
	ids   map[string]bool
	got   chan struct{}
}

func (c *catalogPages) add(m manscdp.Message) {
	var sum int
	var list manscdp.DeviceList
	switch b := m.Body.(type) {
	case *manscdp.CatalogResponse:
		sum, list = b.SumNum, b.DeviceList
	case *manscdp.CatalogNotify:
		sum, list = b.SumNum, b.DeviceList
	default:
		return
	}
	c.mu.Lock()
	c.pages++
	c.sum = max(c.sum, sum)
	for _, it := range list.Items {
		if it.DeviceID == "" || c.ids[it.DeviceID] {
			continue // pages resent by a device over UDP repeat items
		}
		c.ids[it.DeviceID] = true
		c.items = append(c.items, it)
	}
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
}

func (c *catalogPages) complete() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pages > 0 && len(c.items) >= c.sum
}

// QueryCatalog asks device for its catalog, collects every page (SumNum) until complete or no page
// came for Config.CatalogPageTimeout, and syncs the channels into points. A partial answer updates
// the channels it has but marks none gone.
func (s *Server) QueryCatalog(ctx context.Context, device string) (CatalogResult, error) {
	peer, err := s.DevicePeer(device)
	if err != nil {
		return CatalogResult{}, err
	}
	s.mu.Lock()
	if s.querying[device] {
		s.mu.Unlock()
		return CatalogResult{}, ErrCatalogBusy
	}
	s.querying[device] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.querying, device)
		s.mu.Unlock()
	}()

	sn := NextSN()
	pages := &catalogPages{ids: map[string]bool{}, got: make(chan struct{}, 1)}
	cancel := s.Expect(device, "Catalog", sn, func(r *Request) {
		m, err := manscdp.Parse(r.Body())
		if err != nil {
			s.log.Warn("gb28181: unreadable catalog page", "device", device, "err", err)
			return
		}
		pages.add(m)
	})
	defer cancel()
	body, err := manscdp.Marshal(&manscdp.CatalogQuery{Header: manscdp.Header{CmdType: manscdp.CmdCatalog, SN: sn, DeviceID: device}}, s.charsetFor(device))
	if err != nil {
		return CatalogResult{}, err
	}
	if err := s.SendMANSCDP(ctx, peer, "", body); err != nil {
		return CatalogResult{}, err
	}
	idle := time.NewTimer(s.cfg.CatalogPageTimeout)
	defer idle.Stop()
	for !pages.complete() {
		select {
		case <-pages.got:
			if !idle.Stop() {
				select {
				case <-idle.C:
				default:
				}
			}
			idle.Reset(s.cfg.CatalogPageTimeout)
			continue
		case <-idle.C:
		case <-ctx.Done():
			return CatalogResult{}, ctx.Err()
		}
		break
	}
	cancel()
	pages.mu.Lock()
	items, full, sum := slices.Clone(pages.items), pages.pages > 0 && len(pages.items) >= pages.sum, pages.sum
	pages.mu.Unlock()
	if pages.pages == 0 {
		return CatalogResult{}, fmt.Errorf("gb28181: device %s sent no catalog within %v", device, s.cfg.CatalogPageTimeout)
	}
	if !full {
		s.log.Warn("gb28181: catalog incomplete", "device", device, "got", len(items), "sumnum", sum)
	}
	res, err := s.applyItems(device, items, full)
	if err == nil {
		s.mu.Lock()
		s.catalogAt[device] = s.cfg.Now()
		s.mu.Unlock()
		s.log.Info("gb28181: catalog synced", "device", device, "channels", res.Channels, "created", res.Created, "gone", res.Gone, "complete", res.Complete)
	}
	return res, err
}

// charsetFor is the charset to write to device: GB2312 unless it wrote to us in UTF-8.
func (s *Server) charsetFor(device string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if cs, ok := s.charsets[device]; ok {
		return cs
	}
	return "GB2312"
}

func (s *Server) noteCharset(device, charset string) {
	if charset == "" {
		return
	}
	cs := "GB2312"
	if charset == "UTF-8" {
		cs = "UTF-8"
	}
	s.mu.Lock()
	if s.charsets[device] != cs {
		s.charsets[device] = cs
	}
	s.mu.Unlock()
}

// onCatalog handles Catalog bodies nobody waits for: NOTIFYs of a subscription (and MESSAGE
// Notify), and late or unsolicited Responses. Their items update points; DEL marks a channel gone.
func (s *Server) onCatalog(_ context.Context, r *Request) {
	if !s.fromRegistered(r) {
		// Only the device itself, from where it registered, may change its channels.
		s.log.Debug("gb28181: catalog from an unregistered source refused", "device", r.FromID, "source", r.Source, "transport", r.Transport)
		r.Respond(404, "Not Found", nil)
		return
	}
	m, err := manscdp.Parse(r.Body())
	if err != nil {
		r.Respond(400, "Bad Request", nil)
		return
	}
	// Notifications are applied one at a time after their answer; a device sending them faster
	// than they are applied is told to come back later rather than piling them up in memory.
	select {
	case s.notifySem <- struct{}{}:
	default:
		r.Respond(503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "5"))
		return
	}
	release := func() { <-s.notifySem }
	r.Respond(200, "OK", nil)
	s.noteCharset(r.FromID, m.Charset)
	var items []manscdp.Item
	switch b := m.Body.(type) {
	case *manscdp.CatalogNotify:
		items = b.DeviceList.Items
	case *manscdp.CatalogResponse:
		items = b.DeviceList.Items
	default:
		release()
		return
	}
	var upserts, gone []manscdp.Item
	for _, it := range items {
		switch it.Event {
		case manscdp.EventDel:
			gone = append(gone, it)
		case manscdp.EventVLost, manscdp.EventDefect:
			it.Status = manscdp.StatusOff
			upserts = append(upserts, it)
		case manscdp.EventOff:
			it.Status = manscdp.StatusOff
			upserts = append(upserts, it)
		case manscdp.EventOn:
			it.Status = manscdp.StatusOn
			upserts = append(upserts, it)
		default:
			upserts = append(upserts, it)
		}
	}
	device := r.FromID
	s.Go(func(context.Context) {
		defer release()
		if len(upserts) > 0 {
			if _, err := s.applyItems(device, upserts, false); err != nil {
				s.log.Warn("gb28181: catalog notify", "device", device, "err", err)
			}
		}
		if len(gone) > 0 {
			s.markGone(device, gone)
		}
	})
}

// flagGone flags the channel rec of device gone (counted in res, recorded in touched) and returns
// its point, tagged gone and offline since now, when the catalog holds it as this device's channel.
func (s *Server) flagGone(device string, rec *Channel, touched map[string]*Channel, res *CatalogResult, now time.Time) (catalog.Point, bool) {
	rec.setFlag(FlagGone, true)
	touched[rec.ID] = rec
	res.Gone++
	p, err := s.cfg.Catalog.Get(rec.ID)
	if err != nil || p.Main.Type != catalog.SourceGB28181 || p.Main.Device != device {
		return catalog.Point{}, false
	}
	p.Tags = withGBTags(p.Tags, append(gbTagsOf(p.Tags), TagGone))
	p.Status = catalog.Status{State: catalog.StateOffline, Since: now}
	return p, true
}

// markGone marks channels a device deleted (Catalog NOTIFY DEL): offline, tagged, flagged; never
// deleted.
func (s *Server) markGone(device string, items []manscdp.Item) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	now := s.cfg.Now().UTC()
	var recs map[string]*Channel
	if err := s.cfg.DB.View(func(tx *bbolt.Tx) (err error) { recs, err = channelsOf(tx, device); return err }); err != nil {
		return
	}
	touched := map[string]*Channel{}
	var points []catalog.Point
	res := CatalogResult{}
	for _, it := range items {
		rec := recs[it.DeviceID]
		if rec == nil || slices.Contains(rec.Flags, FlagGone) {
			continue
		}
		if p, ok := s.flagGone(device, rec, touched, &res, now); ok {
			points = append(points, p)
		}
	}
	stored, err := s.storePoints(device, points, touched, &res)
	if err != nil {
		s.log.Warn("gb28181: marking channels gone", "device", device, "err", err)
		return
	}
	for _, p := range stored {
		if s.cfg.OnPointChanged != nil {
			s.cfg.OnPointChanged(p)
		}
	}
	s.recountChannels(device)
}
