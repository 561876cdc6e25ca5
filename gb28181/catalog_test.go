package gb28181

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181/manscdp"
	"github.com/tianyan/vms/permissions"
)

// testItem is one catalog entry a test device reports.
type testItem struct {
	ID, Name, CivilCode, ParentID, Group, Status string
	PTZType                                      int
	Lon, Lat                                     float64
}

func (it testItem) xml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<Item>\n<DeviceID>%s</DeviceID>\n<Name>%s</Name>\n<Manufacturer>Hikvision</Manufacturer>\n", it.ID, it.Name)
	if it.CivilCode != "" {
		fmt.Fprintf(&b, "<CivilCode>%s</CivilCode>\n", it.CivilCode)
	}
	if it.ParentID != "" {
		fmt.Fprintf(&b, "<ParentID>%s</ParentID>\n", it.ParentID)
	}
	if it.Group != "" {
		fmt.Fprintf(&b, "<BusinessGroupID>%s</BusinessGroupID>\n", it.Group)
	}
	if it.Status != "" {
		fmt.Fprintf(&b, "<Status>%s</Status>\n", it.Status)
	}
	if it.Lon != 0 {
		fmt.Fprintf(&b, "<Longitude>%f</Longitude>\n<Latitude>%f</Latitude>\n", it.Lon, it.Lat)
	}
	if it.PTZType != 0 {
		fmt.Fprintf(&b, "<Info>\n<PTZType>%d</PTZType>\n</Info>\n", it.PTZType)
	}
	b.WriteString("</Item>\n")
	return b.String()
}

// catalogDevice is a test device that answers DeviceInfo and Catalog queries the way NVRs do: a
// 200 to the query, then the catalog in pages of pageSize items (SumNum), GBK-encoded. Over UDP a
// page must fit one datagram (real NVRs send one or two items per MESSAGE).
type catalogDevice struct {
	*sipDevice
	mu         sync.Mutex
	items      []testItem
	pageSize   int
	subscribes int
	queries    int
	sends      sync.WaitGroup
	closed     bool // under mu: no new sends once the test ends
}

func newCatalogDevice(t *testing.T, s *Server, id, tp string, items []testItem, pageSize int) *catalogDevice {
	cd := &catalogDevice{sipDevice: newSIPDevice(t, s, id, tp), items: items, pageSize: pageSize}
	t.Cleanup(func() {
		cd.mu.Lock()
		cd.closed = true
		cd.mu.Unlock()
		cd.sends.Wait()
	})
	cd.sipDevice.mu.Lock()
	cd.onReq = cd.answer
	cd.sipDevice.mu.Unlock()
	return cd
}

func (cd *catalogDevice) setItems(items []testItem) {
	cd.mu.Lock()
	cd.items = items
	cd.mu.Unlock()
}

func (cd *catalogDevice) answer(req *sip.Request) (int, []byte) {
	if req.Method == sip.SUBSCRIBE {
		cd.mu.Lock()
		cd.subscribes++
		cd.mu.Unlock()
		return 200, nil
	}
	if req.Method != sip.MESSAGE {
		return 200, nil
	}
	m, err := manscdp.Parse(req.Body())
	if err != nil {
		return 400, nil
	}
	switch m.CmdType {
	case manscdp.CmdDeviceInfo:
		body := fmt.Sprintf(`<?xml version="1.0" encoding="GB2312"?>
<Response><CmdType>DeviceInfo</CmdType><SN>%d</SN><DeviceID>%s</DeviceID><Result>OK</Result>
<DeviceName>一号录像机</DeviceName><Manufacturer>Hikvision</Manufacturer><Model>DS-7816N</Model><Firmware>V4.1</Firmware><Channel>4</Channel></Response>`, m.SN, cd.id)
		cd.send(gbk(body))
	case "ConfigDownload":
		cd.send([]byte(fmt.Sprintf(`<?xml version="1.0" encoding="GB2312"?>
<Response><CmdType>ConfigDownload</CmdType><SN>%d</SN><DeviceID>%s</DeviceID><Result>OK</Result>
<BasicParam><Name>NVR</Name><Expiration>3600</Expiration><HeartBeatInterval>7</HeartBeatInterval><HeartBeatCount>3</HeartBeatCount></BasicParam></Response>`, m.SN, cd.id)))
	case manscdp.CmdCatalog:
		cd.mu.Lock()
		cd.queries++
		items := slices.Clone(cd.items)
		cd.mu.Unlock()
		for start := 0; start < len(items); start += cd.pageSize {
			page := items[start:min(start+cd.pageSize, len(items))]
			var b strings.Builder
			fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<Response>\n<CmdType>Catalog</CmdType>\n<SN>%d</SN>\n<DeviceID>%s</DeviceID>\n<SumNum>%d</SumNum>\n<DeviceList Num=\"%d\">\n", m.SN, cd.id, len(items), len(page))
			for _, it := range page {
				b.WriteString(it.xml())
			}
			b.WriteString("</DeviceList>\n</Response>\n")
			cd.send(gbk(b.String()))
		}
	}
	return 200, nil
}

// send delivers a MESSAGE from the device after its 200 to the query has gone out.
func (cd *catalogDevice) send(body []byte) {
	cd.mu.Lock()
	defer cd.mu.Unlock()
	if cd.closed {
		return
	}
	cd.sends.Add(1)
	go func() {
		defer cd.sends.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		cd.cli.Do(ctx, cd.request(sip.MESSAGE, ContentTypeMANSCDP, body))
	}()
}

func gbk(s string) []byte {
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}

// catalogWorld is a server syncing into a real catalog in a real bbolt.
type catalogWorld struct {
	s       *Server
	cat     *catalog.Catalog
	changed chan catalog.Point
}

func newCatalogWorld(t testing.TB, mod func(*Config)) *catalogWorld {
	t.Helper()
	db, al := openTestDB(t)
	cat, err := catalog.New(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateRegion(catalog.Region{Code: "440307", Name: "龙岗区"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateRegion(catalog.Region{Code: "440307001", Name: "平湖街道", Parent: "440307"}); err != nil {
		t.Fatal(err)
	}
	w := &catalogWorld{cat: cat, changed: make(chan catalog.Point, 1024)}
	w.s = newTestServer(t, func(c *Config) {
		c.DB, c.Audit, c.Catalog = db, al, cat
		c.CatalogPageTimeout = 2 * time.Second
		c.OnPointChanged = func(p catalog.Point) {
			select {
			case w.changed <- p:
			default:
			}
		}
		if mod != nil {
			mod(c)
		}
	})
	return w
}

func (w *catalogWorld) waitPoints(t *testing.T, device string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if d, ok := w.s.Devices().Get(device); ok && d.Channels >= n {
			return
		}
		if time.Now().After(deadline) {
			d, _ := w.s.Devices().Get(device)
			t.Fatalf("device %s has %d channels, want %d", device, d.Channels, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const (
	nvrID   = "44030700001180000001"
	groupID = "44030700002150000001"
)

func nvrItems() []testItem {
	return []testItem{
		{ID: nvrID, Name: "录像机", CivilCode: "440307"},
		{ID: groupID, Name: "业务分组"},
		{ID: "44030700001310000001", Name: "河道一号", CivilCode: "440307001001", ParentID: nvrID, Status: "ON", PTZType: 1, Lon: 114.1, Lat: 22.6},
		{ID: "44030700001310000002", Name: "实验学校门口", CivilCode: "440307002", ParentID: nvrID, Group: groupID, Status: "ON", PTZType: 3},
		{ID: "44030700001310000003", Name: "未知通道", ParentID: nvrID, Status: "OFF"},
		{ID: "44030700001320000004", Name: "坏代码", CivilCode: "44O307", ParentID: nvrID, Status: "ON", PTZType: 4},
		{ID: "44030700001310000005", Name: "外区", CivilCode: "440308001", ParentID: nvrID},
	}
}

func TestPagedGBKCatalogBecomesClassifiedPointsWithRegionsAndTags(t *testing.T) {
	for _, tp := range []string{"UDP", "TCP"} {
		t.Run(tp, func(t *testing.T) {
			w := newCatalogWorld(t, nil)
			if _, err := w.s.CreateRule(Rule{Name: "平湖河道", CivilCodePrefix: "440307001", Category: "river", Level: 2}, "admin"); err != nil {
				t.Fatal(err)
			}
			if _, err := w.s.CreateRule(Rule{Name: "学校", NamePattern: "学校", Category: "school", Level: 1, Priority: -1}, "admin"); err != nil {
				t.Fatal(err)
			}
			d := newCatalogDevice(t, w.s, nvrID, tp, nvrItems(), 2)
			if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
				t.Fatal(final.StatusCode)
			}
			w.waitPoints(t, nvrID, 5)

			get := func(id string) catalog.Point {
				t.Helper()
				p, err := w.cat.Get(id)
				if err != nil {
					t.Fatalf("point %s: %v", id, err)
				}
				return p
			}
			river := get("44030700001310000001")
			if river.Name != "河道一号" || river.Category != "river" || river.Level != 2 || river.Region != "440307001001" ||
				!river.PTZ || river.Status.State != catalog.StateOnline || river.Lon == nil || *river.Lon != 114.1 ||
				river.Main.Type != catalog.SourceGB28181 || river.Main.Device != nvrID || !river.OnDemand ||
				!slices.Contains(river.Tags, "gb:parent:"+nvrID) {
				t.Fatalf("river channel %+v", river)
			}
			if r, err := w.cat.GetRegion("440307001001"); err != nil || r.Parent != "440307001" {
				t.Fatalf("community region created from the civil code: %+v %v", r, err)
			}
			school := get("44030700001310000002")
			if school.Category != "school" || school.Level != 1 || school.Region != "440307002" || school.PTZ ||
				!slices.Contains(school.Tags, "gb:group:"+groupID) {
				t.Fatalf("school channel %+v", school)
			}
			if r, err := w.cat.GetRegion("440307002"); err != nil || r.Parent != "440307" {
				t.Fatalf("street region created from the civil code: %+v %v", r, err)
			}
			for _, id := range []string{"44030700001310000003", "44030700001320000004", "44030700001310000005"} {
				p := get(id)
				if p.Region != "440307" || p.Category != catalog.Unclassified || !slices.Contains(p.Tags, TagCheckRegion) {
					t.Fatalf("channel %s without a usable civil code: %+v", id, p)
				}
			}
			if p := get("44030700001320000004"); !p.PTZ || p.Name != "坏代码" {
				t.Fatalf("PTZType 4 channel %+v", p)
			}
			if p := get("44030700001310000003"); p.Status.State != catalog.StateOffline {
				t.Fatalf("Status OFF gave %s", p.Status.State)
			}
			if _, err := w.cat.Get(nvrID); err == nil {
				t.Fatal("the NVR itself became a point")
			}
			if _, err := w.cat.Get(groupID); err == nil {
				t.Fatal("a business group became a point")
			}
			dev, _ := w.s.Devices().Get(nvrID)
			if dev.Channels != 5 || dev.Flagged != 3 || dev.Name != "一号录像机" || dev.Model != "DS-7816N" || dev.Manufacturer != "Hikvision" {
				t.Fatalf("device %+v", dev)
			}
			chs, err := w.s.Channels(nvrID)
			if err != nil || len(chs) != 5 {
				t.Fatalf("channels %+v %v", chs, err)
			}
			for _, c := range chs {
				if c.ID == "44030700001310000003" && !slices.Equal(c.Flags, []string{FlagCivilCode, FlagUnclassified}) {
					t.Fatalf("flags of a channel without civil code: %v", c.Flags)
				}
			}
			// The hub was told about every point.
			if len(w.changed) < 5 {
				t.Fatalf("OnPointChanged called %d times", len(w.changed))
			}
		})
	}
}

func TestUnclassifiedChannelsAreForAdminsOnlyUntilARuleClassifiesThem(t *testing.T) {
	w := newCatalogWorld(t, nil)
	d := newCatalogDevice(t, w.s, nvrID, "UDP", nvrItems(), 2)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	w.waitPoints(t, nvrID, 5)
	p, _ := w.cat.Get("44030700001310000003")
	star := permissions.Grant{User: "duty", Categories: []string{"*"}, Regions: []string{"*"}, MaxLevel: 4, Actions: []permissions.Action{permissions.View}}
	duty := accounts.User{Username: "duty"}
	if permissions.Allows([]permissions.Grant{star}, duty, permissions.View, p, w.cat.RegionPath(p.Region), time.Now()) {
		t.Fatal("a * grant holder may view an unclassified channel")
	}
	if w.cat.InScope(p, permissions.ScopeOf([]permissions.Grant{star}, duty, permissions.View, time.Now())) {
		t.Fatal("an unclassified channel is in a * grant holder's scope")
	}
	// A rule classifies it: the * holder sees it.
	if _, err := w.s.CreateRule(Rule{ParentID: nvrID, Category: "public-security", Level: 3, Priority: 10}, "admin"); err != nil {
		t.Fatal(err)
	}
	p, _ = w.cat.Get("44030700001310000003")
	if p.Category != "public-security" || p.Level != 3 {
		t.Fatalf("after the rule %+v", p)
	}
	if !permissions.Allows([]permissions.Grant{star}, duty, permissions.View, p, w.cat.RegionPath(p.Region), time.Now()) {
		t.Fatal("a * grant holder may not view a classified channel")
	}
	chs, _ := w.s.Channels(nvrID)
	for _, c := range chs {
		if slices.Contains(c.Flags, FlagUnclassified) {
			t.Fatalf("channel %s still flagged unclassified", c.ID)
		}
	}
}

func TestChannelMissingFromALaterCatalogIsMarkedNotDeletedAndAdminEditsStick(t *testing.T) {
	w := newCatalogWorld(t, nil)
	d := newCatalogDevice(t, w.s, nvrID, "TCP", nvrItems(), 4)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	w.waitPoints(t, nvrID, 5)
	// An admin renames a channel and classifies another by hand.
	name := "平湖河道监控"
	if _, err := w.cat.Update("44030700001310000001", catalog.PointPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	cat, lvl := "hazard", 2
	if _, err := w.cat.Update("44030700001310000003", catalog.PointPatch{Category: &cat, Level: &lvl}); err != nil {
		t.Fatal(err)
	}
	// The device drops channel 2 and renames channel 3.
	items := nvrItems()
	items = slices.DeleteFunc(items, func(it testItem) bool { return it.ID == "44030700001310000002" })
	items[3].Name = "新名字"
	d.setItems(items)
	res, err := w.s.QueryCatalog(context.Background(), nvrID)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Gone != 1 || res.Channels != 4 {
		t.Fatalf("sync result %+v", res)
	}
	gone, err := w.cat.Get("44030700001310000002")
	if err != nil {
		t.Fatal("a channel missing from the catalog was deleted")
	}
	if gone.Status.State != catalog.StateOffline || !slices.Contains(gone.Tags, TagGone) {
		t.Fatalf("missing channel %+v", gone)
	}
	if p, _ := w.cat.Get("44030700001310000001"); p.Name != name {
		t.Fatalf("the admin's name was overwritten: %q", p.Name)
	}
	if p, _ := w.cat.Get("44030700001310000003"); p.Category != "hazard" || p.Level != 2 || p.Name != "新名字" {
		t.Fatalf("hand classification or device rename lost: %+v", p)
	}
	if dev, _ := w.s.Devices().Get(nvrID); dev.Channels != 4 {
		t.Fatalf("device counts %d channels", dev.Channels)
	}
	// It comes back: unmarked.
	d.setItems(nvrItems())
	if _, err := w.s.QueryCatalog(context.Background(), nvrID); err != nil {
		t.Fatal(err)
	}
	if p, _ := w.cat.Get("44030700001310000002"); slices.Contains(p.Tags, TagGone) || p.Status.State != catalog.StateOnline {
		t.Fatalf("returned channel %+v", p)
	}
}

func TestIncompleteCatalogMarksNothingGone(t *testing.T) {
	w := newCatalogWorld(t, func(c *Config) { c.CatalogPageTimeout = 300 * time.Millisecond })
	d := newCatalogDevice(t, w.s, nvrID, "UDP", nvrItems(), 2)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	w.waitPoints(t, nvrID, 5)
	// The device now claims more items than it sends (a page lost for good).
	d.mu.Lock()
	d.items = d.items[:4]
	d.mu.Unlock()
	d.sipDevice.mu.Lock()
	orig := d.onReq
	d.onReq = func(req *sip.Request) (int, []byte) {
		m, err := manscdp.Parse(req.Body())
		if err != nil || m.CmdType != manscdp.CmdCatalog {
			return orig(req)
		}
		body := fmt.Sprintf("<?xml version=\"1.0\"?>\n<Response><CmdType>Catalog</CmdType><SN>%d</SN><DeviceID>%s</DeviceID><SumNum>7</SumNum><DeviceList Num=\"1\">%s</DeviceList></Response>", m.SN, nvrID, nvrItems()[2].xml())
		d.send([]byte(body))
		return 200, nil
	}
	d.sipDevice.mu.Unlock()
	res, err := w.s.QueryCatalog(context.Background(), nvrID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete || res.Gone != 0 || res.Channels != 1 {
		t.Fatalf("partial sync %+v", res)
	}
	if dev, _ := w.s.Devices().Get(nvrID); dev.Channels != 5 {
		t.Fatalf("partial catalog changed the channel count to %d", dev.Channels)
	}
}

func TestCatalogNotifyUpdatesAndDeletesMarkGone(t *testing.T) {
	w := newCatalogWorld(t, nil)
	d := newCatalogDevice(t, w.s, nvrID, "UDP", nvrItems(), 1)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	w.waitPoints(t, nvrID, 5)
	// The server subscribed to catalog changes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		d.mu.Lock()
		n := d.subscribes
		d.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no catalog SUBSCRIBE")
		}
		time.Sleep(20 * time.Millisecond)
	}
	notify := `<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Catalog</CmdType><SN>77</SN><DeviceID>` + nvrID + `</DeviceID><SumNum>3</SumNum><DeviceList Num="3">
<Item><DeviceID>44030700001310000006</DeviceID><Name>新增通道</Name><CivilCode>440307001</CivilCode><Event>ADD</Event><Status>ON</Status></Item>
<Item><DeviceID>44030700001310000001</DeviceID><Event>OFF</Event><Name>河道一号</Name><CivilCode>440307001001</CivilCode></Item>
<Item><DeviceID>44030700001310000002</DeviceID><Event>DEL</Event></Item>
</DeviceList></Notify>`
	res := d.do(d.request(sip.NOTIFY, ContentTypeMANSCDP, gbk(notify), sip.NewHeader("Event", "Catalog")))
	if res.StatusCode != 200 {
		t.Fatalf("NOTIFY answered %d", res.StatusCode)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		added, errAdded := w.cat.Get("44030700001310000006")
		off, _ := w.cat.Get("44030700001310000001")
		del, errDel := w.cat.Get("44030700001310000002")
		if errAdded == nil && added.Category == "unclassified" && off.Status.State == catalog.StateOffline &&
			errDel == nil && slices.Contains(del.Tags, TagGone) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after NOTIFY: added %+v (%v), off %+v, deleted %+v (%v)", added, errAdded, off.Status, del.Tags, errDel)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeviceGoingOfflineTakesItsChannelsOffline(t *testing.T) {
	w := newCatalogWorld(t, func(c *Config) { c.KeepaliveInterval = 100 * time.Millisecond })
	d := newCatalogDevice(t, w.s, nvrID, "UDP", nvrItems(), 1)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	w.waitPoints(t, nvrID, 5)
	// The device reports a 7 s heartbeat (ConfigDownload): judge it three of those later.
	waitFor(t, "the reported interval", 10*time.Second, func() bool {
		dev, _ := w.s.Devices().Get(nvrID)
		return dev.KeepaliveInterval == 7*time.Second
	})
	dev, _ := w.s.Devices().Get(nvrID)
	w.s.expireDevices(dev.LastKeepalive.Add(22 * time.Second))
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, _ := w.cat.Get("44030700001310000001")
		if p.Status.State == catalog.StateOffline {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel of a silent device still %s", p.Status.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRulesValidateAndPersist(t *testing.T) {
	db, _ := openTestDB(t)
	rs, err := newRules(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Rule{
		{Category: "river", Level: 1},
		{CivilCodePrefix: "44x", Category: "river", Level: 1},
		{ParentID: "123", Category: "river", Level: 1},
		{NamePattern: "(", Category: "river", Level: 1},
		{NamePattern: "a", Category: catalog.Unclassified, Level: 1},
		{NamePattern: "a", Category: "nope", Level: 1},
		{NamePattern: "a", Category: "river", Level: 5},
	} {
		if _, err := rs.Create(bad, time.Now()); err == nil {
			t.Errorf("rule %+v accepted", bad)
		}
	}
	a, err := rs.Create(Rule{CivilCodePrefix: "4403", Category: "road", Level: 2, Priority: 5}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := rs.Create(Rule{NamePattern: "水库$", Category: "reservoir", Level: 1, Priority: 1}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cat, lvl, ok := rs.Classify(ChannelFacts{Name: "东湖水库", CivilCode: "440307"}); !ok || cat != "reservoir" || lvl != 1 {
		t.Fatalf("priority order: %s %d", cat, lvl)
	}
	if cat, lvl, ok := rs.Classify(ChannelFacts{Name: "路口", CivilCode: "4501"}); ok || cat != catalog.Unclassified || lvl != catalog.MaxLevel {
		t.Fatalf("unmatched: %s %d", cat, lvl)
	}
	if err := rs.Delete(b.ID); err != nil {
		t.Fatal(err)
	}
	rs2, err := newRules(db)
	if err != nil {
		t.Fatal(err)
	}
	if l := rs2.List(); len(l) != 1 || l[0].ID != a.ID {
		t.Fatalf("reloaded rules %+v", l)
	}
}

func TestAChannelIDAnotherDeviceOwnsIsFlaggedAndLeftAlone(t *testing.T) {
	w := newCatalogWorld(t, nil)
	first := newCatalogDevice(t, w.s, nvrID, "TCP", nvrItems(), 4)
	if _, final := first.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	w.waitPoints(t, nvrID, 5)
	// A second device (same default password) claims one of the first one's channels.
	const other = "44030700001180000002"
	claim := []testItem{{ID: "44030700001310000001", Name: "冒名", CivilCode: "440307"}}
	second := newCatalogDevice(t, w.s, other, "TCP", claim, 4)
	if _, final := second.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	waitFor(t, "the conflict flagged", 10*time.Second, func() bool {
		d, _ := w.s.Devices().Get(other)
		return d.Flagged == 1
	})
	p, _ := w.cat.Get("44030700001310000001")
	if p.Main.Device != nvrID || p.Name != "河道一号" {
		t.Fatalf("another device took over a point: %+v", p)
	}
	chs, _ := w.s.Channels(other)
	if len(chs) != 1 || !slices.Contains(chs[0].Flags, FlagConflict) {
		t.Fatalf("channels of the claimant %+v", chs)
	}
}

func TestADeviceReportingItsKeepaliveIntervalIsJudgedByIt(t *testing.T) {
	w := newCatalogWorld(t, nil)
	d := newCatalogDevice(t, w.s, nvrID, "UDP", nvrItems(), 2)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	waitFor(t, "the reported interval", 10*time.Second, func() bool {
		dev, _ := w.s.Devices().Get(nvrID)
		return dev.KeepaliveInterval == 7*time.Second
	})
	dev, _ := w.s.Devices().Get(nvrID)
	// The server's own interval is 1 s; the device's 7 s: three of its intervals decide.
	w.s.expireDevices(dev.LastKeepalive.Add(20 * time.Second))
	if dev, _ := w.s.Devices().Get(nvrID); !dev.Online {
		t.Fatal("offline before 3 of its own intervals")
	}
	w.s.expireDevices(dev.LastKeepalive.Add(22 * time.Second))
	if dev, _ := w.s.Devices().Get(nvrID); dev.Online {
		t.Fatal("online after 3 of its own intervals")
	}
}

func TestCatalogIsQueriedAgainPeriodicallyAndTheSubscriptionRefreshed(t *testing.T) {
	w := newCatalogWorld(t, func(c *Config) {
		c.CatalogInterval = 400 * time.Millisecond
		c.SubscribeExpiry = time.Second
	})
	d := newCatalogDevice(t, w.s, nvrID, "TCP", nvrItems(), 4)
	if _, final := d.register("secret-12345", 3600); final.StatusCode != 200 {
		t.Fatal(final.StatusCode)
	}
	w.waitPoints(t, nvrID, 5)
	waitFor(t, "periodic catalog queries and subscription refreshes", 10*time.Second, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.queries >= 3 && d.subscribes >= 2
	})
	// Refreshes stay in the subscription's dialog: one Call-ID, rising CSeq.
	var callIDs []string
	var cseqs []uint32
	for _, r := range d.requests() {
		if r.Method == sip.SUBSCRIBE {
			callIDs = append(callIDs, r.CallID().Value())
			cseqs = append(cseqs, r.CSeq().SeqNo)
			if ev := r.GetHeader("Event"); ev == nil || !strings.HasPrefix(ev.Value(), "Catalog") {
				t.Fatalf("SUBSCRIBE without Event: Catalog: %v", ev)
			}
		}
	}
	if len(callIDs) < 2 || callIDs[0] != callIDs[1] || cseqs[1] <= cseqs[0] {
		t.Fatalf("subscription refresh Call-IDs %v CSeqs %v", callIDs, cseqs)
	}
}

func TestOneCatalogCannotFloodTheRegionTree(t *testing.T) {
	w := newCatalogWorld(t, nil)
	var items []manscdp.Item
	for i := range maxNewRegionsPerSync + 50 {
		items = append(items, manscdp.Item{DeviceID: fmt.Sprintf("44030700001310%06d", i), Name: "x", CivilCode: fmt.Sprintf("440307%03d", 100+i)})
	}
	res, err := w.s.applyItems(nvrID, items, true)
	if err != nil || res.Created != len(items) {
		t.Fatalf("%+v %v", res, err)
	}
	if n := len(w.cat.ListRegions()); n > 2+maxNewRegionsPerSync {
		t.Fatalf("%d regions after one catalog", n)
	}
	p, _ := w.cat.Get(items[len(items)-1].DeviceID)
	if p.Region != "440307" || !slices.Contains(p.Tags, TagCheckRegion) {
		t.Fatalf("a channel beyond the budget: %+v", p)
	}
}
