package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tianyan/vms/gbsim"
	"github.com/tianyan/vms/server"
)

// The demo's GB/T 28181 side: one simulated 雪亮工程 NVR of 南头街道 that
// registers to the demo's own SIP listener, as a real NVR configured on its
// 平台接入 page would. Its IDs are fixed, not derived per data dir like the
// ONVIF fleet: an NVR is found by registering to one server's SIP port
// (ephemeral in the demo), never by multicast, so two demos on one host
// cannot mistake each other's NVR; and fixed IDs keep the NVR, its channels
// (points) and the mapping rules aimed at it the same across restarts.
//
// The IDs use network digit 8 (社会资源接入网, GB/T 28181 appendix D) so
// they can never collide with the seeded district catalog (network 0).
const (
	// GBNVRID is the NVR's GB/T 28181 device ID (type 118).
	GBNVRID = "44030700001188000001"
	// GBNVRName is the name the demo gives it on the 国标设备 page.
	GBNVRName = "南头街道雪亮工程 NVR"
	// gbNVRPassword is its own Digest password, set through the API as an
	// admin does for a device that must not use the default one.
	gbNVRPassword = "nvr-demo"
)

// gbChannel is one NVR channel and what the mapping rules make of it.
type gbChannel struct {
	id, name  string
	community int // of 南头街道 (street 0)
	lat, lon  float64
	ptz       bool
	// category and level the demo's rules give it; "" = no rule matches
	// (unclassified: admins only).
	category string
	level    int
}

// gbChannels are the NVR's channels: each demo account sees a different
// subset (street: levels ≤ 2 of 南头; leader: levels ≤ 3; water: the
// waterlogging point; the unclassified one: admin only, until classified).
var gbChannels = []gbChannel{
	{gbChannelID(1), "雪亮工程 南头关路口", 1, 22.5391, 113.8862, false, "road", 1},
	{gbChannelID(2), "雪亮工程 南头古城广场", 3, 22.5436, 113.8874, false, "crowd", 3},
	{gbChannelID(3), "雪亮工程 中山公园高点", 6, 22.5468, 113.8891, true, "public-security", 2},
	{gbChannelID(4), "雪亮工程 前海路积水点", 4, 22.5352, 113.8903, false, "waterlogging", 2},
	{gbChannelID(5), "雪亮工程 南头古城东门", 3, 22.5445, 113.8886, false, "", 0},
}

// gbChannelID is channel n's ID: the NVR's centre code, type 132 (IP
// camera), network 8.
func gbChannelID(n int) string { return fmt.Sprintf("44030700001328%06d", n) }

// gbRules are the mapping rules the demo's admin writes before the NVR
// first registers: by device, by name pattern, by civil code — the three
// kinds of condition. 南头古城东门 matches none and lands in 待分类.
var gbRules = []map[string]any{
	{"name": "雪亮 NVR 路口 → 道路交通 1级", "parent_id": GBNVRID, "name_pattern": "路口", "category": "road", "level": 1, "priority": 10},
	{"name": "广场 → 人员密集场所 3级", "name_pattern": "广场", "category": "crowd", "level": 3, "priority": 20},
	{"name": "高点 → 治安防控 2级", "name_pattern": "高点", "category": "public-security", "level": 2, "priority": 30},
	{"name": "南头街道 积水/易涝 → 易涝点 2级", "civil_code_prefix": StreetCode(0), "name_pattern": "积水|易涝", "category": "waterlogging", "level": 2, "priority": 40},
}

// startGB records the NVR and the mapping rules through the API on the
// first run, then starts the simulated NVR; it registers and sends its
// catalog while the rest of the demo comes up (waitGB waits for it).
// Nothing happens when the app runs without SIP.
func (d *Demo) startGB(api *client, cfg server.Config) error {
	sipAddr := d.App.SIPAddr()
	if sipAddr == "" {
		return nil
	}
	err := api.do(http.MethodPost, "/api/v1/gb/devices", map[string]any{"id": GBNVRID, "name": GBNVRName, "password": gbNVRPassword}, nil)
	switch {
	case isStatus(err, http.StatusConflict):
		// An earlier run recorded it and wrote the rules; an admin may
		// have changed both since.
	case err != nil:
		return fmt.Errorf("demo GB device: %w", err)
	default:
		for _, r := range gbRules {
			if err := api.do(http.MethodPost, "/api/v1/gb/rules", r, nil); err != nil {
				return fmt.Errorf("demo GB mapping rule %s: %w", r["name"], err)
			}
		}
	}
	// The listener may be a wildcard (--sip :5060): the NVR dials loopback.
	if host, port, err := net.SplitHostPort(sipAddr); err == nil {
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			sipAddr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	chans := make([]gbsim.ChannelConfig, len(gbChannels))
	for i, c := range gbChannels {
		chans[i] = gbsim.ChannelConfig{ID: c.id, Name: c.name, CivilCode: CommunityCode(0, c.community),
			ParentID: GBNVRID, Latitude: c.lat, Longitude: c.lon, PTZType: 3}
		if c.ptz {
			chans[i].PTZType = 1
		}
	}
	nvr, err := gbsim.NewDevice(gbsim.DeviceConfig{
		ID: GBNVRID, Name: GBNVRName, Manufacturer: "Hikvision", Model: "DS-7816N-K2",
		Server: sipAddr, ServerID: cfg.SIPID, Domain: cfg.SIPDomain, Password: gbNVRPassword, Transport: "udp",
		RetryInterval: 2 * time.Second, RequestTimeout: 5 * time.Second,
		Channels: chans, NVR: true, PageSize: 1, GBK: true,
		Logger: quiet(d.log),
	})
	if err != nil {
		return err
	}
	d.gbStarted = time.Now()
	nvr.Start(context.Background())
	d.NVR = nvr
	return nil
}

// waitGB waits until the NVR is online and has sent its catalog in this
// run (on a restart the channels exist already, offline since the NVR
// unregistered: they are ready when this run's sync has seen them).
func (d *Demo) waitGB(ctx context.Context, api *client) error {
	if d.NVR == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		var list struct {
			Items []struct {
				LastSeen time.Time `json:"last_seen"`
			}
		}
		if err := api.do(http.MethodGet, "/api/v1/gb/channels?device="+GBNVRID, nil, &list); err != nil {
			return err
		}
		synced := 0
		for _, ch := range list.Items {
			if !ch.LastSeen.Before(d.gbStarted) {
				synced++
			}
		}
		if synced >= len(gbChannels) && d.NVR.Registered() {
			d.log.Info("demo GB/T 28181 NVR registered and its catalog synced", "device", GBNVRID,
				"channels", synced, "since_start", time.Since(d.gbStarted).Round(time.Millisecond))
			return nil
		}
		last = fmt.Sprintf("registered %v, %d of %d channels synced", d.NVR.Registered(), synced, len(gbChannels))
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo GB NVR %s did not register and sync its catalog (%s): %w", GBNVRID, last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
