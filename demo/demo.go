// Package demo runs Tianyan's self-contained demonstration: the central
// server, simulated ONVIF cameras, an edge agent that discovers them, the
// cameras provisioned through the technician's API, a simulated GB/T 28181
// NVR registering over SIP with its channels classified by mapping rules, a
// full-size district catalog, and demo accounts whose grants visibly differ.
//
// It drives the system only through its public APIs (HTTP, SIP, the agent's
// provisioning calls), like an operator would, except for marking the
// seeded catalog's camera-less points offline in bulk. It is never used by
// `vms serve`.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/edge"
	"github.com/tianyan/vms/gbsim"
	"github.com/tianyan/vms/server"
)

// Account is a demo login.
type Account struct {
	Username, Password, Role, Sees string
}

// Accounts are the demo logins, printed at start and listed in the README.
var Accounts = []Account{
	{"admin", "tianyan-demo", "管理员 admin", "everything"},
	{"leader", "leader-demo", "区领导 leader", "all categories, level ≤ 3, PTZ priority 10"},
	{"water", "water-demo", "水务局 water bureau", "reservoirs, rivers, waterlogging points; all streets"},
	{"street", "street-demo", "南头街道 street office", "street 440307001 only, all categories, level ≤ 2"},
	{"tech", "tech-demo", "技术员 technician", "provision cameras anywhere (through the edge agent)"},
}

// liveCamera is one simulated camera and the point it becomes.
type liveCamera struct {
	id, name, category, region string
	level                      int
	panoramic                  bool
}

// liveCameras are the 16 simulated cameras: every demo account sees some.
var liveCameras = []liveCamera{
	{pointID(false, 1), "南头水库大坝", "reservoir", CommunityCode(0, 0), 2, false},
	{pointID(false, 2), "西丽水库溢洪道", "reservoir", CommunityCode(7, 2), 3, false},
	{pointID(false, 3), "大沙河闸口", "river", CommunityCode(2, 1), 1, false},
	{pointID(false, 4), "南头河道监测", "river", CommunityCode(0, 3), 2, false},
	{pointID(false, 5), "南头下穿隧道易涝点", "waterlogging", CommunityCode(0, 5), 1, false},
	{pointID(false, 6), "科苑路积水点", "waterlogging", CommunityCode(10, 0), 1, false},
	{pointID(false, 7), "K12 危险边坡", "slope", CommunityCode(5, 4), 3, false},
	{pointID(false, 8), "塘朗山地灾点", "geohazard", CommunityCode(7, 6), 2, false},
	{pointID(false, 9), "南头中学门口", "school", CommunityCode(0, 2), 2, false},
	{pointID(false, 10), "深南大道路口", "road", CommunityCode(1, 1), 1, false},
	{pointID(false, 11), "沙河隧道入口", "bridge-tunnel", CommunityCode(2, 7), 2, false},
	{pointID(false, 12), "海岸城广场", "crowd", CommunityCode(1, 8), 1, false},
	{pointID(true, 1), "南头高点全景", "public-security", CommunityCode(0, 9), 2, true},
	{pointID(true, 2), "塘朗山森林防火瞭望", "forest-fire", CommunityCode(7, 0), 1, true},
	{pointID(true, 3), "蛇口港高点", "transit", CommunityCode(3, 3), 3, true},
	{pointID(true, 4), "前海片区高点", "major-project", CommunityCode(8, 1), 4, true},
}

// SimulatedCameraNetworks is where the demo's simulated cameras listen.
// The agent's camera networks list exactly this: loopback is never
// reached unless listed, and the demo's centre, which shares loopback,
// stays out of reach as one of its own listeners.
const SimulatedCameraNetworks = "127.0.0.1/32"

// Options configure a demo run.
type Options struct {
	// AgentUI is where the agent's provisioning page listens.
	AgentUI string
	// AgentUIListener, if set, serves the page (tests: a port known before
	// the demo starts, which nothing else can take meanwhile).
	AgentUIListener net.Listener
	// SkipCatalog leaves out the 13,635-point district seed (tests).
	SkipCatalog bool
	Logger      *slog.Logger
}

// Demo is a running demonstration.
type Demo struct {
	App   *server.App
	Agent *edge.Agent
	// Book is the agent's camera book (what it discovered and provisioned).
	Book    *edge.CameraBook
	Cameras []*camsim.Camera
	// NVR is the simulated GB/T 28181 NVR registered to the demo's SIP
	// listener (nil when SIP is off).
	NVR *gbsim.Device
	// AgentUIURL is the provisioning page.
	AgentUIURL string

	log       *slog.Logger
	gbStarted time.Time
	cancel    context.CancelFunc
	done      chan error
	closeOnce sync.Once
}

// Start brings the whole demo up. Close stops it.
func Start(ctx context.Context, cfg server.Config, o Options) (d *Demo, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	d = &Demo{log: o.Logger}
	defer func() {
		if err != nil {
			d.Close()
			d = nil
		}
	}()
	// Cameras first: they announce themselves (WS-Discovery Hello) and the
	// agent finds them on loopback. Their endpoints are this data dir's
	// own, so a second demo (or a test) on the same host is another fleet.
	fleet, err := demoFleet(cfg.DataDir)
	if err != nil {
		return d, err
	}
	for i, lc := range liveCameras {
		cc := camsim.CameraConfig{Name: lc.name, Manufacturer: "Tianyan Sim", Model: "SIM-HD-2M",
			Serial: fmt.Sprintf("TYDEMO%04d", i+1), DiscoveryIP: "127.0.0.1", Username: "admin", Password: "camera-demo",
			Fleet: fleet, ProbeReplyDelay: 20 * time.Millisecond, Logger: quiet(o.Logger)}
		if lc.panoramic {
			cc.Model, cc.PTZ = "SIM-PTZ-MAST", true
		}
		cam, err := camsim.StartCamera(cc)
		if err != nil {
			return d, fmt.Errorf("demo camera %d: %w", i+1, err)
		}
		d.Cameras = append(d.Cameras, cam)
	}
	if d.App, err = server.Start(cfg); err != nil {
		return d, err
	}
	api := &client{base: d.App.HTTPURL(), hc: &http.Client{Timeout: 60 * time.Second}}
	if err := api.login("admin", Accounts[0].Password); err != nil {
		return d, fmt.Errorf("%w (the data dir %s may hold another admin password; use a fresh --data)", err, cfg.DataDir)
	}
	if err := seedRegions(api); err != nil {
		return d, err
	}
	if err := seedAccounts(api); err != nil {
		return d, err
	}
	// After the regions (its civil codes name them), before the agent: it
	// registers and syncs its catalog while the cameras are provisioned.
	if err := d.startGB(api, cfg); err != nil {
		return d, err
	}
	creds, err := agentCredentials(ctx, api, filepath.Join(cfg.DataDir, "edge-state"))
	if err != nil {
		return d, err
	}
	book := edge.NewCameraBook(filepath.Join(cfg.DataDir, "edge-state"), quiet(o.Logger))
	book.SetDiscovery(edge.DiscoveryConfig{MulticastIP: "127.0.0.1", Timeout: 1500 * time.Millisecond})
	d.Book = book
	agentNets, err := cameranet.Parse(SimulatedCameraNetworks)
	if err != nil {
		return d, err
	}
	// Centre and agent share this host: the centre's ports are no camera.
	agentNets.AddListeners(d.App.RTSP.Addr(), strings.TrimPrefix(strings.TrimPrefix(d.App.HTTPURL(), "http://"), "https://"))
	d.Agent = edge.New(edge.Config{Credentials: creds, Cameras: book, CameraNetworks: agentNets, Logger: o.Logger})
	actx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan error, 1)
	ui := o.AgentUI
	go func() {
		d.done <- edge.RunAll(actx, d.Agent, edge.RunOptions{UIAddr: ui, UIListener: o.AgentUIListener, RediscoverEvery: 5 * time.Minute, Logger: o.Logger})
	}()
	if o.AgentUIListener != nil {
		d.AgentUIURL = "http://" + o.AgentUIListener.Addr().String()
	} else if ui != "" {
		d.AgentUIURL = "http://" + ui
	}
	if err := d.provision(ctx, api, creds, book); err != nil {
		return d, err
	}
	if !o.SkipCatalog {
		if err := d.seedCatalog(api); err != nil {
			return d, err
		}
	}
	if err := d.waitGB(ctx, api); err != nil {
		return d, err
	}
	return d, nil
}

// quiet keeps the simulators' chatter out of the demo's terminal: warnings
// and errors only.
func quiet(*slog.Logger) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// provision finds the simulated cameras through the agent and registers
// each as a point, with the technician's login, as the provisioning page
// does. On later runs the points exist: their (new) stream URLs are updated.
func (d *Demo) provision(ctx context.Context, api *client, creds edge.Credentials, book *edge.CameraBook) error {
	tech := &client{base: api.base, hc: api.hc}
	if err := tech.login("tech", "tech-demo"); err != nil {
		return err
	}
	for i, cam := range d.Cameras {
		lc := liveCameras[i]
		id := edge.CameraID(cam.Endpoint(), cam.XAddr())
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		rec, err := book.Provision(pctx, id, cam.XAddr(), "admin", "camera-demo")
		cancel()
		if err != nil {
			return fmt.Errorf("provision %s: %w", lc.name, err)
		}
		kind := "hd"
		if lc.panoramic {
			kind = "panoramic"
		}
		lat, lon := 22.47+0.13*float64(i%4)/4+0.01, 113.88+0.14*float64(i/4)/4+0.01
		spec := edge.PointSpec{ID: lc.id, Name: lc.name, Category: lc.category, Region: lc.region, Kind: kind,
			Level: lc.level, Lat: &lat, Lon: &lon, UseSub: true}
		pctx, cancel = context.WithTimeout(ctx, 20*time.Second)
		_, err = edge.CreatePoint(pctx, tech.hc, creds, tech.token, rec, spec)
		cancel()
		var ce *edge.CentreError
		if errors.As(err, &ce) && ce.Status == http.StatusConflict {
			// A previous run's point: the camera's ports are new.
			mainURL, _ := rec.StreamURL(rec.MainToken)
			subURL, _ := rec.StreamURL(rec.SubToken)
			err = api.do(http.MethodPatch, "/api/v1/points/"+lc.id, map[string]any{
				"camera": rec.ID, "agent": creds.AgentID,
				"main": map[string]string{"type": "rtsp", "url": mainURL},
				"sub":  map[string]string{"type": "rtsp", "url": subURL}}, nil)
		}
		if err != nil {
			return fmt.Errorf("register %s: %w", lc.name, err)
		}
	}
	return nil
}

// seedCatalog imports the rest of the district (13,635 points in all) on
// the first run, and marks those camera-less points offline.
func (d *Demo) seedCatalog(api *client) error {
	var facets struct{ Total int }
	if err := api.do(http.MethodGet, "/api/v1/points/facets", nil, &facets); err != nil {
		return err
	}
	skip := map[string]bool{}
	for _, lc := range liveCameras {
		skip[lc.id] = true
	}
	data, ids := CatalogCSV(2019, skip)
	if facets.Total < HDPoints+PanoramicPoints {
		start := time.Now()
		if err := api.upload("/api/v1/points/import", "text/csv", data); err != nil {
			return fmt.Errorf("seed catalog: %w", err)
		}
		d.log.Info("district catalog seeded", "points", len(ids), "took", time.Since(start).Round(time.Millisecond))
	}
	// No camera answers for these: say so rather than leave them "unknown".
	_, err := d.App.Catalog.SetStatuses(ids, catalog.StateOffline, time.Time{})
	return err
}

// Close stops the agent, the server and the cameras, and waits for them.
// Calling it again does nothing.
func (d *Demo) Close() { d.closeOnce.Do(d.close) }

func (d *Demo) close() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
	}
	if d.NVR != nil {
		// Before the server goes: the NVR unregisters, as one switched off.
		d.NVR.Stop()
	}
	if d.App != nil {
		d.App.Close(context.Background())
	}
	for _, c := range d.Cameras {
		c.Close()
	}
}

// demoFleet is the random name of this data dir's simulated cameras, made
// on first start and kept, so that the cameras (and the points bound to
// them) stay the same across restarts of one demo but differ between two.
func demoFleet(dataDir string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("demo data dir: %w", err)
	}
	file := filepath.Join(dataDir, "demo-fleet")
	if b, err := os.ReadFile(file); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	if err := os.WriteFile(file, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo data dir: %w", err)
	}
	return id, nil
}
