package gbsim

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/gb28181/manscdp"
)

func baseConfig(s *testServer, transport, id string) DeviceConfig {
	return DeviceConfig{ID: id, Server: s.addr(transport), ServerID: testServerID, Domain: testDomain,
		Password: testPassword, Transport: transport, KeepaliveInterval: 150 * time.Millisecond,
		RetryInterval: 200 * time.Millisecond, RequestTimeout: 3 * time.Second}
}

func TestDeviceRegistersWithDigestKeepsAliveAndUnregisters(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			s := newTestServer(t)
			id := "34020000001320000001"
			d, err := NewDevice(baseConfig(s, tr, id))
			if err != nil {
				t.Fatal(err)
			}
			d.cfg.Logger = discard()
			d.log = discard()
			d.Start(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := d.WaitRegistered(ctx); err != nil {
				t.Fatal(err)
			}
			r, ok := s.reg(id)
			if !ok || !strings.EqualFold(r.transport, tr) {
				t.Fatalf("server registry %+v %v", r, ok)
			}
			// The server saw the REGISTER from the device's own socket.
			if !strings.Contains(r.contact, strings.Split(r.src, ":")[1]) {
				t.Fatalf("contact %s does not name source %s", r.contact, r.src)
			}
			for i := 0; i < 2; i++ {
				m, err := s.next(ctx, func(m manscdp.Message) bool { return m.CmdType == manscdp.CmdKeepalive })
				if err != nil {
					t.Fatal(err)
				}
				if m.DeviceID != id || m.Body.(*manscdp.Keepalive).Status != "OK" {
					t.Fatalf("keepalive %+v", m)
				}
			}
			d.Stop()
			s.mu.Lock()
			un := s.unregister[id]
			s.mu.Unlock()
			if un != 1 {
				t.Fatalf("unregisters = %d, want 1", un)
			}
			if _, ok := s.reg(id); ok {
				t.Fatal("still registered after Stop")
			}
		})
	}
}

func TestDeviceWithWrongPasswordIsRefusedAndKeepsTrying(t *testing.T) {
	s := newTestServer(t)
	cfg := baseConfig(s, "udp", "34020000001320000002")
	cfg.Faults.WrongPassword = true
	d := startDevice(t, cfg)
	waitFor(t, "two refused attempts", 10*time.Second, func() bool { return d.Stats().AuthFailures >= 2 })
	if d.Registered() {
		t.Fatal("registered with a wrong password")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused < 2 || s.registers != 0 {
		t.Fatalf("server refused %d registered %d", s.refused, s.registers)
	}
}

func TestDeviceRefreshesRegistrationBeforeExpiry(t *testing.T) {
	s := newTestServer(t)
	cfg := baseConfig(s, "udp", "34020000001320000003")
	cfg.Expires = 1 * time.Second // refreshed at 0.8 s, reusing the challenge (nc=2)
	d := startDevice(t, cfg)
	waitFor(t, "three registrations", 10*time.Second, func() bool { return d.Stats().Registrations >= 3 })
	if !d.Registered() {
		t.Fatal("lost registration while refreshing")
	}
}

func TestCatalogIsPagedInGB2312AndReassembles(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001180000001"
	cfg := baseConfig(s, "udp", id)
	cfg.NVR, cfg.NumChannels, cfg.PageSize, cfg.GBK = true, 7, 3, true
	d := startDevice(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.sendMANSCDP(ctx, id, &manscdp.CatalogQuery{Header: manscdp.Header{SN: 42, DeviceID: id}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]manscdp.Item{}
	var sizes []int
	for len(got) < 7 {
		m, err := s.next(ctx, func(m manscdp.Message) bool { return m.CmdType == manscdp.CmdCatalog && m.SN == 42 })
		if err != nil {
			t.Fatalf("after %d items: %v", len(got), err)
		}
		if m.Charset != manscdp.CharsetGB2312 {
			t.Fatalf("charset %s", m.Charset)
		}
		page := m.Body.(*manscdp.CatalogResponse)
		if page.SumNum != 7 || page.DeviceList.Num != len(page.DeviceList.Items) {
			t.Fatalf("page SumNum %d Num %d items %d", page.SumNum, page.DeviceList.Num, len(page.DeviceList.Items))
		}
		sizes = append(sizes, page.DeviceList.Num)
		for _, it := range page.DeviceList.Items {
			got[it.DeviceID] = it
		}
	}
	if fmt.Sprint(sizes) != "[3 3 1]" {
		t.Fatalf("page sizes %v", sizes)
	}
	for _, ch := range d.Channels() {
		it, ok := got[ch.ID]
		if !ok {
			t.Fatalf("channel %s missing", ch.ID)
		}
		if it.ParentID != id || it.Name != ch.Name || !strings.HasPrefix(it.Name, "通道") || it.CivilCode == "" ||
			it.Status != manscdp.StatusOn || it.Longitude == 0 || it.Info == nil || it.Info.PTZType == 0 {
			t.Fatalf("item %+v", it)
		}
	}
	// The device counts a page when its 200 arrives, just after the
	// platform has read it.
	waitFor(t, "three pages counted", 5*time.Second, func() bool { return d.Stats().CatalogPages == 3 })
}

func TestPTZCmdMovesTheChannelAndPresetsReturnToIt(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000004"
	cfg := baseConfig(s, "tcp", id)
	d := startDevice(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	ch := d.Channels()[0]
	ctl := func(p manscdp.PTZ) {
		t.Helper()
		err := s.sendMANSCDP(ctx, id, &manscdp.DeviceControl{Header: manscdp.Header{SN: 1, DeviceID: ch.ID},
			PTZCmd: manscdp.EncodePTZ(p)})
		if err != nil {
			t.Fatal(err)
		}
	}
	ctl(manscdp.PTZ{Op: manscdp.PTZPresetSet, Address: 1, Preset: 5})
	waitFor(t, "preset stored", 5*time.Second, func() bool { return len(ch.Presets()) == 1 })
	ctl(manscdp.PTZ{Address: 1, Pan: 1, Tilt: 1, PanSpeed: 255, TiltSpeed: 128})
	waitFor(t, "moving", 5*time.Second, func() bool { return ch.PTZ().Moving })
	time.Sleep(100 * time.Millisecond)
	ctl(manscdp.PTZ{Address: 1})
	waitFor(t, "stopped", 5*time.Second, func() bool { return !ch.PTZ().Moving })
	st := ch.PTZ()
	if st.Pan <= 0 || st.Tilt <= 0 || st.Commands != 3 {
		t.Fatalf("after right-up: %+v", st)
	}
	// A corrupted command is ignored, as devices do.
	bad := manscdp.EncodePTZ(manscdp.PTZ{Address: 1, Pan: -1, PanSpeed: 9})
	bad = bad[:14] + "00"
	if err := s.sendMANSCDP(ctx, id, &manscdp.DeviceControl{Header: manscdp.Header{SN: 2, DeviceID: ch.ID}, PTZCmd: bad}); err != nil {
		t.Fatal(err)
	}
	ctl(manscdp.PTZ{Op: manscdp.PTZPresetGoto, Address: 1, Preset: 5})
	waitFor(t, "back at preset", 5*time.Second, func() bool { st := ch.PTZ(); return st.Pan == 0 && st.Tilt == 0 && st.Commands == 4 })

	if err := s.sendMANSCDP(ctx, id, &manscdp.PresetQuery{Header: manscdp.Header{SN: 9, DeviceID: ch.ID}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.next(ctx, func(m manscdp.Message) bool { return m.CmdType == manscdp.CmdPresetQuery && m.SN == 9 })
	if err != nil {
		t.Fatal(err)
	}
	if pl := m.Body.(*manscdp.PresetQueryResponse).PresetList; pl.Num != 1 || pl.Items[0].PresetID != 5 {
		t.Fatalf("presets %+v", pl)
	}
}

func TestDeviceInfoAndStatusQueries(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001180000002"
	cfg := baseConfig(s, "udp", id)
	cfg.NVR, cfg.NumChannels, cfg.Manufacturer = true, 4, "Dahua"
	d := startDevice(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.sendMANSCDP(ctx, id, &manscdp.DeviceInfoQuery{Header: manscdp.Header{SN: 3, DeviceID: id}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.next(ctx, func(m manscdp.Message) bool { return m.CmdType == manscdp.CmdDeviceInfo })
	if err != nil {
		t.Fatal(err)
	}
	if info := m.Body.(*manscdp.DeviceInfoResponse); info.Manufacturer != "Dahua" || info.Channel != 4 || info.Result != manscdp.ResultOK {
		t.Fatalf("%+v", info)
	}
	if err := s.sendMANSCDP(ctx, id, &manscdp.DeviceStatusQuery{Header: manscdp.Header{SN: 4, DeviceID: id}}); err != nil {
		t.Fatal(err)
	}
	m, err = s.next(ctx, func(m manscdp.Message) bool { return m.CmdType == manscdp.CmdDeviceStatus })
	if err != nil {
		t.Fatal(err)
	}
	if st := m.Body.(*manscdp.DeviceStatusResponse); st.Online != "ONLINE" || st.Status != "OK" {
		t.Fatalf("%+v", st)
	}
}

func TestNATDeviceAdvertisesPrivateContactAndIsReachedAtSource(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000005"
	cfg := baseConfig(s, "udp", id)
	cfg.Faults.NATAddress = "127.0.0.254:5060"
	d := startDevice(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := s.reg(id)
	if !strings.Contains(r.contact, "127.0.0.254:5060") || strings.HasPrefix(r.src, "127.0.0.254") {
		t.Fatalf("contact %s src %s", r.contact, r.src)
	}
	// Queried at its source address, it answers.
	if err := s.sendMANSCDP(ctx, id, &manscdp.DeviceInfoQuery{Header: manscdp.Header{SN: 5, DeviceID: id}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.next(ctx, func(m manscdp.Message) bool { return m.CmdType == manscdp.CmdDeviceInfo }); err != nil {
		t.Fatal(err)
	}
}

func TestDroppedKeepalivesLeaveRegistrationAlone(t *testing.T) {
	s := newTestServer(t)
	quiet := baseConfig(s, "udp", "34020000001320000006")
	quiet.Faults.DropKeepalives = true
	q := startDevice(t, quiet)
	loud := startDevice(t, baseConfig(s, "udp", "34020000001320000007"))
	waitFor(t, "keepalives from the healthy device", 10*time.Second, func() bool { return loud.Stats().Keepalives >= 3 })
	if !q.Registered() || q.Stats().Keepalives != 0 {
		t.Fatalf("quiet device: registered %v stats %+v", q.Registered(), q.Stats())
	}
}

func TestDeviceReRegistersAfterKeepalivesAreRefused(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000008"
	d := startDevice(t, baseConfig(s, "udp", id))
	waitFor(t, "registered", 10*time.Second, d.Registered)
	// The platform forgets the device (restart, expiry): its keepalives
	// get 403 and after three it registers again.
	s.mu.Lock()
	delete(s.devices, id)
	s.mu.Unlock()
	waitFor(t, "registered again", 10*time.Second, func() bool { _, ok := s.reg(id); return ok && d.Stats().Registrations >= 2 })
}

func TestRestartIsSilentThenRegistersAgain(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000009"
	d := startDevice(t, baseConfig(s, "tcp", id))
	waitFor(t, "registered", 10*time.Second, d.Registered)
	first, _ := s.reg(id)
	d.Restart(300 * time.Millisecond)
	waitFor(t, "back", 10*time.Second, func() bool { return d.Stats().Registrations >= 2 && d.Registered() })
	second, _ := s.reg(id)
	s.mu.Lock()
	un := s.unregister[id]
	s.mu.Unlock()
	if un != 0 {
		t.Fatal("a reboot unregistered")
	}
	if first.src == second.src {
		t.Fatalf("same TCP source %s after reboot", first.src)
	}
}

func TestCatalogChangesGoInTheSubscriptionOrAsMessages(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001180000010"
	cfg := baseConfig(s, "udp", id)
	cfg.NVR, cfg.NumChannels = true, 3
	d := startDevice(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	ch := d.Channels()[2]
	// Without a subscription: a MESSAGE with a Notify body.
	if err := d.NotifyCatalog(ctx, manscdp.EventOff, ch.ID); err != nil {
		t.Fatal(err)
	}
	m, err := s.next(ctx, func(m manscdp.Message) bool { return m.Kind == manscdp.KindNotify && m.CmdType == manscdp.CmdCatalog })
	if err != nil {
		t.Fatal(err)
	}
	if it := m.Body.(*manscdp.CatalogNotify).DeviceList.Items; len(it) != 1 || it[0].DeviceID != ch.ID || it[0].Event != manscdp.EventOff {
		t.Fatalf("items %+v", it)
	}
	// With one: a NOTIFY in the dialog.
	body, _ := manscdp.Marshal(&manscdp.CatalogQuery{Header: manscdp.Header{SN: 7, DeviceID: id}}, "")
	_, res, err := s.request(ctx, id, id, sip.SUBSCRIBE, contentTypeMANSCDP, body,
		sip.NewHeader("Event", "Catalog"), sip.NewHeader("Expires", "3600"))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %v %v", res, err)
	}
	if err := d.NotifyCatalog(ctx, manscdp.EventDel, ch.ID); err != nil {
		t.Fatal(err)
	}
	m, err = s.next(ctx, func(m manscdp.Message) bool { return m.Kind == manscdp.KindNotify && m.CmdType == manscdp.CmdCatalog })
	if err != nil {
		t.Fatal(err)
	}
	if it := m.Body.(*manscdp.CatalogNotify).DeviceList.Items; len(it) != 1 || it[0].Event != manscdp.EventDel {
		t.Fatalf("items %+v", it)
	}
	s.mu.Lock()
	notifies := s.notifies
	s.mu.Unlock()
	if notifies != 1 {
		t.Fatalf("NOTIFY requests %d, want 1", notifies)
	}
}

func TestMalformedRequestsDoNotHurtTheDevice(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000020"
	d := startDevice(t, baseConfig(s, "udp", id))
	waitFor(t, "registered", 10*time.Second, d.Registered)
	r, _ := s.reg(id)
	conn, err := net.Dial("udp", r.src)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, raw := range []string{
		"INVITE sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n", // no Via, Call-ID, …
		"MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: 1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 5\r\n\r\n<Quer",
		"INVITE sip:" + d.Channels()[0].ID + "@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: 2\r\nCSeq: 1 INVITE\r\nContent-Length: 7\r\n\r\nv=0\r\nm=",
		"garbage\r\n\r\n",
	} {
		conn.Write([]byte(raw))
	}
	// Still alive and answering.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.sendMANSCDP(ctx, id, &manscdp.DeviceInfoQuery{Header: manscdp.Header{SN: 8, DeviceID: id}}); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Refused != 1 {
		t.Fatalf("stats %+v: the SDP-less INVITE should be refused", st)
	}
}

func TestPlatformCatalogCarriesRegionsBusinessGroupAndOrganisation(t *testing.T) {
	s := newTestServer(t)
	id := "34020000002000000009"
	cfg := baseConfig(s, "tcp", id)
	cfg.Platform, cfg.NumChannels, cfg.PageSize = true, 6, 4
	d := startDevice(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.sendMANSCDP(ctx, id, &manscdp.CatalogQuery{Header: manscdp.Header{SN: 3, DeviceID: id}}); err != nil {
		t.Fatal(err)
	}
	// 4 civil codes + business group + organisation + 6 channels.
	var items []manscdp.Item
	for len(items) < 12 {
		m, err := s.next(ctx, func(m manscdp.Message) bool { return m.CmdType == manscdp.CmdCatalog && m.SN == 3 })
		if err != nil {
			t.Fatalf("after %d items: %v", len(items), err)
		}
		r := m.Body.(*manscdp.CatalogResponse)
		if r.SumNum != 12 {
			t.Fatalf("SumNum %d", r.SumNum)
		}
		items = append(items, r.DeviceList.Items...)
	}
	regions := 0
	for _, it := range items {
		switch {
		case len(it.DeviceID) == 6:
			regions++
		case it.DeviceID == d.VirtualOrgID():
			if it.ParentID != d.BusinessGroupID() {
				t.Fatalf("organisation %+v", it)
			}
		case d.Channel(it.DeviceID) != nil:
			if it.ParentID != d.VirtualOrgID() || it.BusinessGroupID != d.BusinessGroupID() {
				t.Fatalf("channel %+v", it)
			}
		case it.DeviceID != d.BusinessGroupID():
			t.Fatalf("unexpected item %+v", it)
		}
	}
	if regions != 4 {
		t.Fatalf("%d civil-code nodes", regions)
	}
}

func TestQuirkyFirmwareCatalogStillMeansTheSame(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001180000011"
	cfg := baseConfig(s, "udp", id)
	cfg.NVR, cfg.NumChannels, cfg.PageSize, cfg.GBK = true, 3, 3, true
	q, err := ParseQuirks("flatinfo,statuswords,lowercase,junk,2022")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Quirks = q
	cfg.Channels = GenerateChannels(id, 0, 3, true)
	cfg.Channels[1].Off = true
	d := startDevice(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	// The raw body really is bent.
	body, err := d.encode(&manscdp.CatalogResponse{Header: manscdp.Header{SN: 1, DeviceID: id}, SumNum: 3,
		DeviceList: manscdp.DeviceList{Num: 3, Items: d.catalogItems()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`encoding="GB2312"`, "<ptztype>", "<status>ONLINE</status>", "<status>OFFLINE</status>", "<mac>", "\x00\x00"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "<info>") {
		t.Fatal("Info not flattened")
	}
	if err := s.sendMANSCDP(ctx, id, &manscdp.CatalogQuery{Header: manscdp.Header{SN: 4, DeviceID: id}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.next(ctx, func(m manscdp.Message) bool { return m.CmdType == manscdp.CmdCatalog && m.SN == 4 })
	if err != nil {
		t.Fatal(err)
	}
	items := m.Body.(*manscdp.CatalogResponse).DeviceList.Items
	if len(items) != 3 {
		t.Fatalf("%d items", len(items))
	}
	for i, it := range items {
		want := manscdp.StatusOn
		if i == 1 {
			want = manscdp.StatusOff
		}
		if it.Status != want || it.Info == nil || it.Info.PTZType != cfg.Channels[i].PTZType ||
			it.Info.MAC == "" || it.Info.RecordSaveDays != 30 || !strings.HasPrefix(it.Name, "通道") {
			t.Fatalf("item %d: %+v %+v", i, it, it.Info)
		}
	}
}

func TestChannelsComeAndGoBetweenCatalogAnswers(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001180000012"
	cfg := baseConfig(s, "udp", id)
	cfg.NVR, cfg.NumChannels, cfg.PageSize = true, 3, 10
	d := startDevice(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	chs := d.Channels()
	added := GenerateChannels(id, 50, 1, true)[0]
	if !d.RemoveChannel(chs[1].ID) || d.RemoveChannel(chs[1].ID) || !d.SetChannelStatus(chs[0].ID, false) {
		t.Fatal("channel changes refused")
	}
	d.AddChannel(added)
	if err := s.sendMANSCDP(ctx, id, &manscdp.CatalogQuery{Header: manscdp.Header{SN: 6, DeviceID: id}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.next(ctx, func(m manscdp.Message) bool { return m.CmdType == manscdp.CmdCatalog && m.SN == 6 })
	if err != nil {
		t.Fatal(err)
	}
	r := m.Body.(*manscdp.CatalogResponse)
	got := map[string]string{}
	for _, it := range r.DeviceList.Items {
		got[it.DeviceID] = it.Status
	}
	want := map[string]string{chs[0].ID: manscdp.StatusOff, chs[2].ID: manscdp.StatusOn, added.ID: manscdp.StatusOn}
	if r.SumNum != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("SumNum %d items %v, want %v", r.SumNum, got, want)
	}
	if _, code := s.invite(t, id, chs[1].ID, "udp", "0200000001"); code != 404 {
		t.Fatalf("INVITE for a removed channel answered %d", code)
	}
}
