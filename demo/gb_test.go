package demo

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/whepclient"
)

// gbDevice is the part of /api/v1/gb/devices the tests read.
type gbDevice struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Transport string `json:"transport"`
	Online    bool   `json:"online"`
	Channels  int    `json:"channels"`
	Flagged   int    `json:"flagged"`
}

func gbDevices(t *testing.T, c *client) []gbDevice {
	t.Helper()
	var list struct{ Items []gbDevice }
	if err := c.do(http.MethodGet, "/api/v1/gb/devices", nil, &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// gbVisible lists the NVR's channels c sees in the point list, by ID.
func gbVisible(t *testing.T, c *client) []string {
	t.Helper()
	var page struct{ Items []catalog.Point }
	if err := c.do(http.MethodGet, "/api/v1/points?limit=100&q="+url.QueryEscape("雪亮工程"), nil, &page); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range page.Items {
		if p.Main.Type == catalog.SourceGB28181 {
			ids = append(ids, p.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestDemoGBNVRChannelsAreClassifiedPointsUnderTheDemoGrants: the demo's
// simulated 雪亮工程 NVR registers over real SIP with its own password, its
// (GB2312, one-per-MESSAGE) catalog becomes points in 南头's communities,
// classified by the rules the demo's admin wrote; every demo account sees
// exactly the channels its grants cover, the unmatched one stays with the
// admin (待分类) until classified by hand.
func TestDemoGBNVRChannelsAreClassifiedPointsUnderTheDemoGrants(t *testing.T) {
	d := startDemoWith(t, Options{SkipCatalog: true})
	if d.NVR == nil || !d.NVR.Registered() {
		t.Fatal("the demo's NVR is not registered after Start")
	}
	admin := loginAs(t, d, "admin")
	devs := gbDevices(t, admin)
	if len(devs) != 1 {
		t.Fatalf("国标设备 lists %d devices, want the NVR: %+v", len(devs), devs)
	}
	if dev := devs[0]; dev.ID != GBNVRID || dev.Name != GBNVRName || !dev.Online || dev.Channels != len(gbChannels) || dev.Flagged != 1 || dev.Transport != "UDP" {
		t.Fatalf("NVR on the 国标设备 page: %+v", dev)
	}

	var unclassified gbChannel
	for _, c := range gbChannels {
		var p catalog.Point
		if err := admin.do(http.MethodGet, "/api/v1/points/"+c.id, nil, &p); err != nil {
			t.Fatalf("channel %s (%s) is no point: %v", c.id, c.name, err)
		}
		wantCat, wantLevel := c.category, c.level
		if wantCat == "" {
			wantCat, wantLevel, unclassified = catalog.Unclassified, catalog.MaxLevel, c
		}
		if p.Name != c.name || p.Category != wantCat || p.Level != wantLevel || p.Region != CommunityCode(0, c.community) ||
			p.Main.Type != catalog.SourceGB28181 || p.Main.Device != GBNVRID || p.PTZ != c.ptz ||
			p.Lat == nil || p.Lon == nil || *p.Lat != c.lat || *p.Lon != c.lon || p.Status.State != catalog.StateOnline {
			t.Errorf("channel %s: point %+v", c.name, p)
		}
	}
	if unclassified.id == "" {
		t.Fatal("the demo has no unclassified channel")
	}
	// The admin's list of channels to check holds exactly the unclassified one.
	var flagged struct{ Items []gb28181.Channel }
	if err := admin.do(http.MethodGet, "/api/v1/gb/channels?flagged=1", nil, &flagged); err != nil {
		t.Fatal(err)
	}
	if len(flagged.Items) != 1 || flagged.Items[0].ID != unclassified.id || !slices.Contains(flagged.Items[0].Flags, gb28181.FlagUnclassified) {
		t.Fatalf("channels to check: %+v", flagged.Items)
	}

	// Each account sees exactly what an independent reading of its grant
	// says (README's table), in the list and by ID.
	sees := map[string]func(c gbChannel) bool{
		"admin":  func(gbChannel) bool { return true },
		"leader": func(c gbChannel) bool { return c.category != "" && c.level <= 3 },
		"water": func(c gbChannel) bool {
			return slices.Contains([]string{"reservoir", "river", "waterlogging"}, c.category) && c.level <= 3
		},
		"street": func(c gbChannel) bool { return c.category != "" && c.level <= 2 }, // all in 南头
		"tech":   func(c gbChannel) bool { return c.category != "" },
		"nobody": func(gbChannel) bool { return false },
	}
	// A user without any grant, made as an admin would.
	if err := admin.do(http.MethodPost, "/api/v1/users", map[string]any{"username": "nobody", "password": "nobody-demo-1", "display_name": "无授权"}, nil); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for user, ok := range sees {
		var c *client
		if user == "nobody" {
			c = &client{base: d.App.HTTPURL(), hc: admin.hc}
			if err := c.login("nobody", "nobody-demo-1"); err != nil {
				t.Fatal(err)
			}
		} else {
			c = loginAs(t, d, user)
		}
		var want []string
		for _, ch := range gbChannels {
			visible := ok(ch)
			err := c.do(http.MethodGet, "/api/v1/points/"+ch.id, nil, nil)
			switch {
			case visible && err != nil:
				t.Errorf("%s cannot GET %s (%s): %v", user, ch.name, ch.category, err)
			case !visible && !isStatus(err, http.StatusNotFound):
				t.Errorf("%s GET of %s (%s, level %d): %v, want 404", user, ch.name, ch.category, ch.level, err)
			}
			if visible {
				want = append(want, ch.id)
			}
		}
		slices.Sort(want)
		if got := gbVisible(t, c); !slices.Equal(got, want) {
			t.Errorf("%s's list holds GB channels %v, want %v", user, got, want)
		}
		counts[user] = len(want)
	}
	// The grants must tell the accounts apart, or the demo shows nothing.
	if !(counts["admin"] > counts["leader"] && counts["leader"] > counts["street"] && counts["street"] > counts["water"] && counts["water"] > 0) {
		t.Errorf("GB channels per account do not differ as the demo means: %v", counts)
	}
	t.Logf("GB channels visible: %v", counts)

	// 待分类: the admin classifies the channel by hand; the street officer
	// then sees it, and after the next catalog sync the classification
	// stands and nothing is left to check.
	if err := admin.do(http.MethodPatch, "/api/v1/points/"+unclassified.id, map[string]any{"category": "community", "level": 2}, nil); err != nil {
		t.Fatalf("classify: %v", err)
	}
	street := loginAs(t, d, "street")
	if err := street.do(http.MethodGet, "/api/v1/points/"+unclassified.id, nil, nil); err != nil {
		t.Fatalf("street officer after classification: %v", err)
	}
	if err := admin.do(http.MethodPost, "/api/v1/gb/devices/"+GBNVRID+"/catalog", nil, nil); err != nil {
		t.Fatalf("catalog query: %v", err)
	}
	var p catalog.Point
	if err := admin.do(http.MethodGet, "/api/v1/points/"+unclassified.id, nil, &p); err != nil || p.Category != "community" {
		t.Fatalf("after a catalog sync the hand classification is %q (%v)", p.Category, err)
	}
	if err := admin.do(http.MethodGet, "/api/v1/gb/channels?flagged=1", nil, &flagged); err != nil {
		t.Fatal(err)
	}
	if len(flagged.Items) != 0 {
		t.Fatalf("channels to check after classification: %+v", flagged.Items)
	}
}

// TestDemoGBChannelPlaysOverWHEPAndItsDomeMoves: out of the box, the street
// officer plays a GB channel of their street over WHEP (INVITE to the
// simulated NVR, PS over RTP, the hub) and gets a decoded keyframe; the
// dome channel turns for the leader (ptz grant) through DeviceControl
// PTZCmd and not for the street officer (view only); the unclassified
// channel plays for nobody but the admin.
func TestDemoGBChannelPlaysOverWHEPAndItsDomeMoves(t *testing.T) {
	d := startDemoWith(t, Options{SkipCatalog: true})
	road, dome, unclassified := gbChannels[0], gbChannels[2], gbChannels[4]
	if road.category != "road" || !dome.ptz || unclassified.category != "" {
		t.Fatal("the demo's GB channels changed; adjust this test")
	}
	street, leader := loginAs(t, d, "street"), loginAs(t, d, "leader")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := whepclient.ConnectHTTP(ctx, d.App.HTTPURL()+"/api/v1/points/"+road.id+"/whep", street.token,
		whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatalf("street officer plays %s: %v", road.name, err)
	}
	defer c.Close()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatalf("%v (viewer stats %+v)", err, c.Stats())
	}
	t.Logf("WHEP POST → decoded keyframe on a GB channel: %v", time.Since(start).Round(time.Millisecond))
	if s := d.NVR.Sessions(); len(s) != 1 || s[0].ChannelID != road.id {
		t.Fatalf("NVR sessions %+v, want one call for %s", s, road.id)
	}

	_, err = whepclient.ConnectHTTP(ctx, d.App.HTTPURL()+"/api/v1/points/"+unclassified.id+"/whep", leader.token,
		whepclient.Options{Interfaces: []string{"lo"}})
	if he := (*whepclient.HTTPError)(nil); !errors.As(err, &he) || he.Status != http.StatusNotFound {
		t.Fatalf("leader WHEP on the unclassified channel: %v, want 404", err)
	}

	ch := d.NVR.Channel(dome.id)
	ptz := "/api/v1/points/" + dome.id + "/ptz"
	if err := street.do(http.MethodPost, ptz, map[string]any{"op": "move", "pan": 1, "timeout_ms": 300}, nil); !isStatus(err, http.StatusForbidden) {
		t.Fatalf("street officer PTZ (view only): %v, want 403", err)
	}
	if n := ch.PTZ().Commands; n != 0 {
		t.Fatalf("a refused PTZ reached the dome: %d commands", n)
	}
	before := ch.PTZ().Position
	if err := leader.do(http.MethodPost, ptz, map[string]any{"op": "move", "pan": 1, "timeout_ms": 500}, nil); err != nil {
		t.Fatalf("leader PTZ: %v", err)
	}
	waitFor(t, 5*time.Second, "the dome to stop after its timed move", func() bool {
		p := ch.PTZ()
		return p.Commands >= 2 && !p.Moving
	})
	if after := ch.PTZ().Position; after.Pan-before.Pan < 10 || after.Tilt != before.Tilt {
		t.Fatalf("the dome went from %+v to %+v, want a pan right", before, after)
	}
}

// TestDemoRestartBringsTheSameNVRBackOnline: a second start on the same
// data dir finds the NVR it recorded (no second device, the rules written
// once, an admin's change to them kept) and waits for this run's catalog
// sync, so the channels are online again, not left offline from the stop.
func TestDemoRestartBringsTheSameNVRBackOnline(t *testing.T) {
	dir := t.TempDir()
	first := startDemoIn(t, dir, Options{SkipCatalog: true})
	admin := loginAs(t, first, "admin")
	var rules struct{ Items []gb28181.Rule }
	if err := admin.do(http.MethodGet, "/api/v1/gb/rules", nil, &rules); err != nil {
		t.Fatal(err)
	}
	if len(rules.Items) != len(gbRules) {
		t.Fatalf("%d mapping rules, want %d", len(rules.Items), len(gbRules))
	}
	// The admin drops the 广场 rule: the restart must not bring it back.
	var square gb28181.Rule
	for _, r := range rules.Items {
		if r.NamePattern == "广场" {
			square = r
		}
	}
	if err := admin.do(http.MethodDelete, "/api/v1/gb/rules/"+square.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	first.Close()

	second := startDemoIn(t, dir, Options{SkipCatalog: true})
	admin = loginAs(t, second, "admin")
	if err := admin.do(http.MethodGet, "/api/v1/gb/rules", nil, &rules); err != nil {
		t.Fatal(err)
	}
	if len(rules.Items) != len(gbRules)-1 {
		t.Fatalf("after a restart: %d mapping rules, want the admin's %d", len(rules.Items), len(gbRules)-1)
	}
	if devs := gbDevices(t, admin); len(devs) != 1 || devs[0].ID != GBNVRID || !devs[0].Online || devs[0].Channels != len(gbChannels) {
		t.Fatalf("国标设备 after a restart: %+v", devs)
	}
	for _, c := range gbChannels {
		var p catalog.Point
		if err := admin.do(http.MethodGet, "/api/v1/points/"+c.id, nil, &p); err != nil || p.Status.State != catalog.StateOnline {
			t.Errorf("channel %s after a restart: %s (%v)", c.name, p.Status.State, err)
		}
	}
}
