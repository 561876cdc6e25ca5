package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

const (
	gbTestPassword = "gb-device-pass"
	gbNVR          = "44030700001180000009"
)

// gbTestDevice is an NVR made of a real sipgo stack on loopback UDP: it registers with Digest and
// answers Catalog queries with its channels, one per MESSAGE (as NVRs do over UDP).
type gbTestDevice struct {
	t        *testing.T
	id       string
	server   string
	ua       *sipgo.UserAgent
	cli      *sipgo.Client
	udp      *net.UDPConn
	callID   string
	channels []string // "ID|Name|CivilCode"
	sends    sync.WaitGroup
	mu       sync.Mutex
	closed   bool // under mu: no new sends once the test ends
}

func newGBTestDevice(t *testing.T, server, id string, channels []string) *gbTestDevice {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(id), sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	if err != nil {
		t.Fatal(err)
	}
	d := &gbTestDevice{t: t, id: id, server: server, ua: ua, callID: uuid.NewString(), channels: channels}
	srv, _ := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	d.cli, _ = sipgo.NewClient(ua, sipgo.WithClientLogger(quiet))
	answer := func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		body := string(req.Body())
		if req.Method == sip.MESSAGE && strings.Contains(body, "<CmdType>Catalog</CmdType>") {
			sn := between(body, "<SN>", "</SN>")
			for _, ch := range d.channels {
				f := strings.Split(ch, "|")
				d.send(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Response><CmdType>Catalog</CmdType><SN>%s</SN><DeviceID>%s</DeviceID><SumNum>%d</SumNum><DeviceList Num="1">
<Item><DeviceID>%s</DeviceID><Name>%s</Name><CivilCode>%s</CivilCode><ParentID>%s</ParentID><Status>ON</Status></Item>
</DeviceList></Response>`, sn, d.id, len(d.channels), f[0], f[1], f[2], d.id))
			}
		}
	}
	for _, m := range []sip.RequestMethod{sip.MESSAGE, sip.SUBSCRIBE, sip.INVITE, sip.BYE} {
		srv.OnRequest(m, answer)
	}
	d.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUDP(d.udp)
	t.Cleanup(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		d.sends.Wait()
		d.udp.Close()
		ua.Close()
	})
	// Requests leave from the listening socket once sipgo serves it.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if c, err := ua.TransportLayer().GetConnection("udp", d.udp.LocalAddr().String()); err == nil {
			c.TryClose()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("device socket not served")
		}
		time.Sleep(time.Millisecond)
	}
	return d
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

func (d *gbTestDevice) request(method sip.RequestMethod, body string) *sip.Request {
	host, portStr, _ := net.SplitHostPort(d.server)
	port, _ := strconv.Atoi(portStr)
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: "44030700002000000001", Host: host, Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: d.id[:10]}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: d.id[:10]}, Params: sip.NewParams()})
	cid := sip.CallIDHeader(uuid.NewString())
	if method == sip.REGISTER {
		cid = sip.CallIDHeader(d.callID)
		exp := sip.ExpiresHeader(3600)
		req.AppendHeader(&exp)
	}
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	port = d.udp.LocalAddr().(*net.UDPAddr).Port
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: "127.0.0.1", Port: port}})
	if body != "" {
		ct := sip.ContentTypeHeader("Application/MANSCDP+xml")
		req.AppendHeader(&ct)
	}
	req.SetBody([]byte(body))
	req.SetTransport("UDP")
	req.SetDestination(d.server)
	req.Laddr = sip.Addr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	return req
}

func (d *gbTestDevice) register(password string) int {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := d.request(sip.REGISTER, "")
	res, err := d.cli.Do(ctx, req)
	if err != nil {
		d.t.Fatal(err)
	}
	if res.StatusCode == 401 {
		if res, err = d.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: d.id, Password: password}); err != nil {
			d.t.Fatal(err)
		}
	}
	return int(res.StatusCode)
}

func (d *gbTestDevice) send(body string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.sends.Add(1)
	go func() {
		defer d.sends.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		d.cli.Do(ctx, d.request(sip.MESSAGE, body))
	}()
}

func startGBApp(t *testing.T) *testApp {
	cfg := testConfig(t)
	cfg.SIPAddr, cfg.SIPID, cfg.SIPDomain, cfg.SIPPassword = "127.0.0.1:0", "44030700002000000001", "4403070000", gbTestPassword
	cfg.SIPKeepalive = time.Minute
	return startAppWith(t, cfg)
}

type gbDeviceJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Transport string `json:"transport"`
	Address   string `json:"address"`
	Online    bool   `json:"online"`
	Channels  int    `json:"channels"`
	Flagged   int    `json:"flagged"`
	Expires   int    `json:"expires"`
}

func (a *testApp) gbDevices() []gbDeviceJSON {
	a.t.Helper()
	res := a.admin(http.MethodGet, "/api/v1/gb/devices", nil)
	if res.Status != http.StatusOK {
		a.t.Fatalf("gb devices: %s", res)
	}
	var out struct{ Items []gbDeviceJSON }
	decodeInto(a.t, res, &out)
	return out.Items
}

func TestGBDeviceRegistersOverSIPAndItsChannelsBecomeGrantedPoints(t *testing.T) {
	a := startGBApp(t)
	a.importRegionsFixture()
	if res := a.admin(http.MethodPost, "/api/v1/gb/rules", map[string]any{"civil_code_prefix": "440307001", "category": "river", "level": 1}); res.Status != http.StatusCreated {
		t.Fatalf("rule: %s", res)
	}
	d := newGBTestDevice(t, a.SIPAddr(), gbNVR, []string{
		"44030700001310000091|河道监控|440307001",
		"44030700001310000092|未分类通道|",
	})
	if code := d.register("wrong"); code != http.StatusForbidden {
		t.Fatalf("wrong password answered %d", code)
	}
	if code := d.register(gbTestPassword); code != http.StatusOK {
		t.Fatalf("register answered %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	var dev gbDeviceJSON
	for {
		if list := a.gbDevices(); len(list) == 1 {
			dev = list[0]
			if dev.Channels == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("devices %+v", a.gbDevices())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dev.ID != gbNVR || !dev.Online || dev.Transport != "UDP" || dev.Address != d.udp.LocalAddr().String() || dev.Flagged != 1 || dev.Expires != 3600 {
		t.Fatalf("device %+v", dev)
	}
	if recs := a.audited("gb.register_fail"); len(recs) != 1 {
		t.Fatalf("wrong password audited %d times", len(recs))
	}

	// The hub serves the channel like any point; the catalog holds it as a GB channel.
	res := a.admin(http.MethodGet, "/api/v1/points/44030700001310000091", nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"device":"`+gbNVR+`"`) || !strings.Contains(string(res.Body), `"category":"river"`) {
		t.Fatalf("GB point: %s", res)
	}
	if _, err := a.Hub.Stats("44030700001310000091"); err != nil {
		t.Fatal("the hub has no path for the GB point")
	}

	// Grants apply as to every point: a grant-less user gets 404; a * holder sees the classified
	// channel but not the unclassified one.
	a.createUser("nogrant", "nogrant-pass-1")
	a.createUser("star", "star-pass-12")
	a.grant(map[string]any{"user": "star", "categories": []string{"*"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}})
	nog, star := a.loginAs("nogrant", "nogrant-pass-1"), a.loginAs("star", "star-pass-12")
	for _, id := range []string{"44030700001310000091", "44030700001310000092"} {
		if res := a.do(http.MethodGet, "/api/v1/points/"+id, nog, "", nil); res.Status != http.StatusNotFound {
			t.Fatalf("grant-less user on GB point %s: %s", id, res)
		}
	}
	if res := a.do(http.MethodGet, "/api/v1/points/44030700001310000091", star, "", nil); res.Status != http.StatusOK {
		t.Fatalf("* holder on a classified GB point: %s", res)
	}
	if res := a.do(http.MethodGet, "/api/v1/points/44030700001310000092", star, "", nil); res.Status != http.StatusNotFound {
		t.Fatalf("* holder on an unclassified GB point: %s", res)
	}
	res = a.do(http.MethodGet, "/api/v1/points?q=44030700001310000092", star, "", nil)
	if res.Status != http.StatusOK || strings.Contains(string(res.Body), "44030700001310000092") {
		t.Fatalf("* holder's list shows the unclassified channel: %s", res)
	}
	if res := a.do(http.MethodPost, "/api/v1/grants", a.token, "", map[string]any{"user": "star", "categories": []string{"unclassified"},
		"regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}}); res.Status != http.StatusUnprocessableEntity && res.Status != http.StatusBadRequest {
		t.Fatalf("a grant naming unclassified: %s", res)
	}

	// Flagged channels for the admin page; a device password set through the API (write-only).
	res = a.admin(http.MethodGet, "/api/v1/gb/channels?flagged=1", nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), "44030700001310000092") || strings.Contains(string(res.Body), "44030700001310000091") {
		t.Fatalf("flagged channels: %s", res)
	}
	res = a.admin(http.MethodPatch, "/api/v1/gb/devices/"+gbNVR, map[string]any{"password": "own-device-pass", "stream_transport": "tcp"})
	if res.Status != http.StatusOK || strings.Contains(string(res.Body), "own-device-pass") {
		t.Fatalf("patch device: %s", res)
	}
	if code := d.register(gbTestPassword); code != http.StatusForbidden {
		t.Fatalf("default password after the device got its own: %d", code)
	}
	if code := d.register("own-device-pass"); code != http.StatusOK {
		t.Fatalf("own password: %d", code)
	}
	if recs := a.audited("gb.device.update"); len(recs) != 1 || recs[0].Detail["password"] != "changed" {
		t.Fatalf("device update audit %+v", recs)
	}
	// Re-query over the API.
	res = a.admin(http.MethodPost, "/api/v1/gb/devices/"+gbNVR+"/catalog", nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"channels":2`) {
		t.Fatalf("catalog re-query: %s", res)
	}
	// A non-admin without agents.manage cannot list devices.
	if res := a.do(http.MethodGet, "/api/v1/gb/devices", star, "", nil); res.Status != http.StatusForbidden {
		t.Fatalf("devices for a viewer: %s", res)
	}
	if !slices.Contains([]int{http.StatusNoContent}, a.admin(http.MethodDelete, "/api/v1/gb/devices/"+gbNVR, nil).Status) {
		t.Fatal("delete device")
	}
	if res := a.admin(http.MethodGet, "/api/v1/points/44030700001310000091", nil); res.Status != http.StatusOK {
		t.Fatalf("deleting the device deleted its points: %s", res)
	}
}

// TestAdminGBPageListsDevicesClassifiesChannelsAndSetsAPassword is the administrator's side in a
// real browser: the 国标设备 page lists the registered NVR with its address and channel counts and
// the channel that needs classifying; a mapping rule typed into the form classifies it (it leaves
// the list); the device gets its own password through the edit form.
func TestAdminGBPageListsDevicesClassifiesChannelsAndSetsAPassword(t *testing.T) {
	a := startGBApp(t)
	a.importRegionsFixture()
	d := newGBTestDevice(t, a.SIPAddr(), gbNVR, []string{
		"44030700001310000081|东湖水库大坝|440307001",
		"44030700001310000082|路口|440307002",
	})
	if code := d.register(gbTestPassword); code != http.StatusOK {
		t.Fatalf("register answered %d", code)
	}
	b := newUIBrowser(t, adminWidth, adminHeight, false)
	b.do("open the GB page", 15*time.Second, chromedp.Navigate(a.HTTPURL()+"/#/admin/gb"))
	b.login("admin", adminPassword)
	b.openAdmin("gb", "")
	b.waitJS("the device listed with its channels", `(() => {
		const row = document.querySelector('#gb-devices tr[data-device="`+gbNVR+`"]');
		return row && row.dataset.online === "true" && row.textContent.includes("`+d.udp.LocalAddr().String()+`") && row.children[7].textContent === "2";
	})()`, 20*time.Second)
	b.waitJS("both channels flagged unclassified", `document.querySelectorAll('#gb-flagged tr[data-channel] [data-flag="unclassified"]').length === 2`, 10*time.Second)

	b.typeIn("#gb-rule-pattern", "水库")
	b.do("pick reservoir", 5*time.Second, chromedp.SetValue(chromedp.CSS("#gb-rule-category"), "reservoir"))
	b.click("create the rule", `#gb-rule-form button[type="submit"]`)
	b.waitJS("the rule listed", `document.querySelectorAll('#gb-rules tr[data-rule]').length === 1`, 10*time.Second)
	b.waitJS("the reservoir channel classified", `!document.querySelector('#gb-flagged tr[data-channel="44030700001310000081"]') && !!document.querySelector('#gb-flagged tr[data-channel="44030700001310000082"]')`, 10*time.Second)
	b.screenshot("admin-gb")
	if p, err := a.Catalog.Get("44030700001310000081"); err != nil || p.Category != "reservoir" {
		t.Fatalf("classified point %+v %v", p, err)
	}

	b.click("edit the device", `#gb-devices tr[data-device="`+gbNVR+`"] .act-edit`)
	b.typeIn("#gb-edit-pass", "page-set-pass")
	b.click("save", `#gb-edit-form button[type="submit"]`)
	b.waitJS("saved", `document.querySelector('#gb-msg').dataset.kind === "ok" && !document.querySelector('#gb-edit-form')`, 10*time.Second)
	if code := d.register("page-set-pass"); code != http.StatusOK {
		t.Fatalf("the password set on the page: %d", code)
	}
}
