// Command edge-agent runs on a field LAN beside the cameras.
//
//	edge-agent enroll --server URL --code CODE   store long-lived credentials
//	edge-agent run                               keep the control link, relay on demand
//	edge-agent discover [--json]                 find ONVIF cameras
//	edge-agent add --xaddr X ...                 provision a camera as a point
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/edge"
)

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: edge-agent <command> [flags]

commands:
  enroll    --server URL --code CODE: trade an enrollment code for credentials
  run       keep the control link to the centre, relay cameras on demand, serve the provisioning page
  discover  find ONVIF cameras (--json, --iface, --cidr, --user/--pass to probe them)
  add       probe a camera and register it at the centre as a point bound to this agent

run "edge-agent <command> -h" for the flags of a command`)
}

func main() {
	// Packages without a logger of their own (onvif, gortsplib) log here.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is one invocation: where its output and its log lines go.
type cli struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

// run executes one command line (without the program name) and returns
// the exit status: 0 done, 1 failed, 2 usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		usage(stderr)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := &cli{stdout: stdout, stderr: stderr, log: log}
	var err error
	switch args[0] {
	case "enroll":
		err = c.enroll(ctx, args[1:])
	case "run":
		err = c.runAgent(ctx, args[1:])
	case "discover":
		err = c.discover(ctx, args[1:])
	case "add":
		err = c.add(ctx, args[1:])
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	default:
		usage(stderr)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "edge-agent:", err)
		return 1
	}
	return 0
}

// flagSet is a command's flags, reporting to this invocation's stderr.
func (c *cli) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

func stateFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("EDGE_STATE")
	if def == "" {
		def = "./edge-state"
	}
	return fs.String("state", def, "state directory: credentials (0600) and camera book (env EDGE_STATE)")
}

// list splits a repeatable comma-separated flag value.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func discoveryFlags(fs *flag.FlagSet) *edge.DiscoveryConfig {
	d := &edge.DiscoveryConfig{}
	fs.Var((*list)(&d.Interfaces), "iface", "interface to multicast probes on (repeatable; default all)")
	fs.Var((*list)(&d.CIDRs), "cidr", "IPv4 range to sweep with unicast probes, e.g. 10.2.0.0/24 (repeatable)")
	fs.StringVar(&d.MulticastIP, "multicast-ip", "", "pin the multicast interface by address (e.g. 127.0.0.1)")
	fs.IntVar(&d.Port, "discovery-port", 0, "WS-Discovery UDP port (default 3702)")
	fs.DurationVar(&d.Timeout, "discovery-timeout", 3*time.Second, "how long to collect multicast replies")
	return d
}

// cameraNetworksFlag adds --camera-networks; the function it returns
// reads the policy (the networks of this host's interfaces by default).
func cameraNetworksFlag(fs *flag.FlagSet) func() (*cameranet.Policy, error) {
	v := fs.String("camera-networks", os.Getenv("EDGE_CAMERA_NETWORKS"),
		"comma-separated CIDRs or addresses the agent may connect to for cameras: ONVIF, snapshots, relays, health (env EDGE_CAMERA_NETWORKS; default the networks of its interfaces; loopback and link-local only when listed themselves)")
	return func() (*cameranet.Policy, error) {
		if strings.TrimSpace(*v) == "" {
			return cameranet.AgentDefault()
		}
		p, err := cameranet.Parse(*v)
		if err != nil {
			return nil, fmt.Errorf("--camera-networks: %w", err)
		}
		return p, nil
	}
}

func (c *cli) enroll(ctx context.Context, args []string) error {
	fs := c.flagSet("enroll")
	server := fs.String("server", "", "central server URL, e.g. https://vms.example:8080 (required)")
	code := fs.String("code", "", "one-time enrollment code from the admin UI (required)")
	state := stateFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *server == "" || *code == "" {
		return errors.New("enroll: --server and --code are required")
	}
	host, _ := os.Hostname()
	creds, err := edge.Enroll(ctx, nil, *server, *code, host)
	if err != nil {
		return err
	}
	if err := creds.Save(*state); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "enrolled as agent %s; credentials in %s\n", creds.AgentID, *state)
	return nil
}

func (c *cli) runAgent(ctx context.Context, args []string) error {
	fs := c.flagSet("run")
	state := stateFlag(fs)
	d := discoveryFlags(fs)
	ui := fs.String("ui", "127.0.0.1:8091", "provisioning page address (empty: none)")
	rediscover := fs.Duration("rediscover", 5*time.Minute, "how often to look for cameras again (0: only on request)")
	keepalive := fs.Duration("keepalive", agentlink.KeepaliveInterval, "how often to send on an idle control link (the centre is told it and waits by it)")
	networks := cameraNetworksFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keepalive < agentlink.MinKeepalive || *keepalive > agentlink.MaxKeepalive {
		return fmt.Errorf("--keepalive must be within %v…%v", agentlink.MinKeepalive, agentlink.MaxKeepalive)
	}
	creds, err := edge.LoadCredentials(*state)
	if err != nil {
		return err
	}
	nets, err := networks()
	if err != nil {
		return err
	}
	c.log.Info("camera networks", "networks", nets.String())
	book := edge.NewCameraBook(*state, c.log)
	book.SetDiscovery(*d)
	agent := edge.New(edge.Config{Credentials: creds, StateDir: *state, Cameras: book, CameraNetworks: nets, KeepaliveInterval: *keepalive, Logger: c.log})
	return edge.RunAll(ctx, agent, edge.RunOptions{UIAddr: *ui, RediscoverEvery: *rediscover, Logger: c.log})
}

func (c *cli) discover(ctx context.Context, args []string) error {
	fs := c.flagSet("discover")
	asJSON := fs.Bool("json", false, "print JSON")
	d := discoveryFlags(fs)
	user := fs.String("user", "", "camera username (probe each camera)")
	pass := fs.String("pass", "", "camera password (or env EDGE_CAMERA_PASSWORD)")
	networks := cameraNetworksFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pass == "" {
		*pass = os.Getenv("EDGE_CAMERA_PASSWORD")
	}
	var nets *cameranet.Policy
	if *user != "" || *pass != "" {
		// Only probing connects to the cameras found.
		var err error
		if nets, err = networks(); err != nil {
			return err
		}
	}
	dctx, cancel := context.WithTimeout(ctx, d.Timeout+2*time.Minute)
	defer cancel()
	found, err := edge.DiscoverCameras(dctx, *d, nets, *user, *pass)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(found)
	}
	for _, cam := range found {
		line := fmt.Sprintf("%-15s %s %s %s", cam.IP, cam.XAddr, cam.Manufacturer, cam.Model)
		for _, p := range cam.Profiles {
			line += fmt.Sprintf(" [%s %s %dx%d]", p.Token, p.Codec, p.Width, p.Height)
		}
		if cam.Error != "" {
			line += "  error: " + cam.Error
		}
		fmt.Fprintln(c.stdout, line)
	}
	fmt.Fprintf(c.stderr, "%d camera(s)\n", len(found))
	return nil
}

func (c *cli) add(ctx context.Context, args []string) error {
	fs := c.flagSet("add")
	state := stateFlag(fs)
	xaddr := fs.String("xaddr", "", "camera's ONVIF device service URL (required)")
	user := fs.String("user", "", "camera username")
	pass := fs.String("pass", "", "camera password (or env EDGE_CAMERA_PASSWORD)")
	var spec edge.PointSpec
	fs.StringVar(&spec.Name, "name", "", "point name (required)")
	fs.StringVar(&spec.Category, "category", "", "category code, e.g. reservoir (required)")
	fs.StringVar(&spec.Region, "region", "", "region code (required)")
	fs.StringVar(&spec.Kind, "kind", "", "hd or panoramic")
	fs.IntVar(&spec.Level, "level", 0, "sensitivity level 1-4")
	fs.StringVar(&spec.Address, "address", "", "address")
	lat := fs.Float64("lat", 0, "latitude (WGS-84)")
	lon := fs.Float64("lon", 0, "longitude (WGS-84)")
	fs.BoolVar(&spec.UseSub, "sub", true, "also relay the low-resolution profile as the sub stream")
	tech := fs.String("technician", "", "your central username; password from EDGE_TECH_PASSWORD (or set VMS_TOKEN)")
	networks := cameraNetworksFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *xaddr == "" || spec.Name == "" || spec.Category == "" || spec.Region == "" {
		return errors.New("add: --xaddr, --name, --category and --region are required")
	}
	if *pass == "" {
		*pass = os.Getenv("EDGE_CAMERA_PASSWORD")
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "lat":
			spec.Lat = lat
		case "lon":
			spec.Lon = lon
		}
	})
	creds, err := edge.LoadCredentials(*state)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 15 * time.Second}
	token := os.Getenv("VMS_TOKEN")
	if *tech != "" {
		if token, err = edge.Login(ctx, hc, creds.Server, *tech, os.Getenv("EDGE_TECH_PASSWORD")); err != nil {
			return err
		}
	}
	if token == "" {
		return errors.New("add: set VMS_TOKEN, or --technician with EDGE_TECH_PASSWORD")
	}
	nets, err := networks()
	if err != nil {
		return err
	}
	book := edge.NewCameraBook(*state, c.log)
	book.SetCameraNetworks(nets)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cam, err := book.Provision(pctx, "", *xaddr, *user, *pass)
	if err != nil {
		return fmt.Errorf("probe %s: %w", *xaddr, err)
	}
	raw, err := edge.CreatePoint(pctx, hc, creds, token, cam, spec)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, string(raw))
	return nil
}
