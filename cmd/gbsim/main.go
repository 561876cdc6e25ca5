// Command gbsim runs simulated GB/T 28181 devices or NVRs (package gbsim)
// against a SIP server until SIGINT or SIGTERM: they register with Digest,
// keep alive, answer catalog queries in pages (optionally GB2312), obey
// PTZ and keyframe commands and answer INVITE with PS over RTP from the
// committed clips. For tests by hand, benchmarks and the demo; never a
// product component.
//
//	gbsim -server 127.0.0.1:5060 -server-id 34020000002000000001 -password secret \
//	      -devices 1000 -total-channels 13635 -nvr -page-size 1
//
// prints one line per device (up to 20) and then the registered count every
// -report interval.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gbsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "gbsim:", err)
		os.Exit(1)
	}
}

// run starts the fleet, prints it, reports until ctx ends, then stops it
// (each device unregisters).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gbsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "127.0.0.1:5060", "SIP server host:port")
	serverID := fs.String("server-id", "34020000002000000001", "SIP server's 20-digit ID")
	domain := fs.String("domain", "", "SIP domain, 10 digits (default: first 10 digits of -server-id)")
	password := fs.String("password", "", "device password (Digest)")
	transport := fs.String("transport", "udp", "SIP transport: udp or tcp")
	localIP := fs.String("local-ip", "127.0.0.1", "local address the devices bind")
	devices := fs.Int("devices", 1, "number of devices")
	channels := fs.Int("channels", 1, "channels per device")
	total := fs.Int("total-channels", 0, "total channels spread over the devices (overrides -channels)")
	first := fs.Int("first-index", 1, "index of the first device (device IDs end in it, 7 digits)")
	nvr := fs.Bool("nvr", false, "devices are NVRs (type 118, channels carry ParentID)")
	platform := fs.Bool("platform", false, "devices are lower platforms (type 200: catalog with civil-code nodes, a business group and a virtual organisation)")
	pageSize := fs.Int("page-size", 1, "catalog items per MESSAGE (Hikvision 1, Dahua about 5)")
	gbk := fs.Bool("gbk", false, "write MANSCDP bodies in GB2312")
	quirkList := fs.String("quirks", "", "firmware quirks in MANSCDP: flatinfo, statuswords, lowercase, junk, 2022 (comma-separated)")
	manufacturer := fs.String("manufacturer", "Hikvision", "manufacturer reported in DeviceInfo and Catalog")
	keepalive := fs.Duration("keepalive", time.Minute, "keepalive interval")
	expires := fs.Duration("expires", time.Hour, "registration expiry asked for")
	spread := fs.Duration("start-spread", 0, "start devices at random times within this")
	clip := fs.String("clip", camsim.ClipH264Sub, "clip streamed on INVITE: "+camsim.ClipH264Sub+", "+camsim.ClipH264Main+" or "+camsim.ClipH265Sub)
	audio := fs.Bool("audio", false, "add G.711 A-law audio (silence) to the stream")
	dropKeepalives := fs.Bool("drop-keepalives", false, "fault: send no keepalives")
	wrongPassword := fs.Bool("wrong-password", false, "fault: answer the Digest challenge with a wrong password")
	tcpOnly := fs.Bool("tcp-only", false, "fault: refuse UDP media offers with 488")
	ignoreSSRC := fs.Bool("ignore-ssrc", false, "fault: send RTP with an own SSRC, not the offer's y=")
	natAddr := fs.String("nat-address", "", "fault: advertise this host:port in Via/Contact instead of the real address (behind NAT)")
	report := fs.Duration("report", 10*time.Second, "interval of the status line")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	tmpl := gbsim.DeviceConfig{
		Server: *server, ServerID: *serverID, Domain: *domain, Password: *password, Transport: *transport,
		LocalIP: *localIP, Expires: *expires, KeepaliveInterval: *keepalive, NVR: *nvr, Platform: *platform, PageSize: *pageSize,
		GBK: *gbk, Manufacturer: *manufacturer, Clip: *clip, Audio: *audio, Logger: log,
		Faults: gbsim.Faults{DropKeepalives: *dropKeepalives, WrongPassword: *wrongPassword, TCPOnly: *tcpOnly,
			IgnoreSSRC: *ignoreSSRC, NATAddress: *natAddr},
	}
	quirks, err := gbsim.ParseQuirks(*quirkList)
	if err != nil {
		return err
	}
	tmpl.Quirks = quirks
	if _, err := camsim.LoadClip(*clip); err != nil {
		return err
	}
	fleet, err := gbsim.NewFleet(gbsim.FleetConfig{Template: tmpl, Devices: *devices, ChannelsPerDevice: *channels,
		TotalChannels: *total, FirstIndex: *first, StartSpread: *spread})
	if err != nil {
		return err
	}
	for i, d := range fleet.Devices {
		if i == 20 {
			fmt.Fprintf(stdout, "… and %d more\n", len(fleet.Devices)-20)
			break
		}
		chs := d.Channels()
		fmt.Fprintf(stdout, "%s  %d channels  first %s\n", d.ID(), len(chs), chs[0].ID)
	}
	fleet.Start(ctx)
	t := time.NewTicker(*report)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fleet.Stop()
			return nil
		case <-t.C:
			st := fleet.Stats()
			fmt.Fprintf(stdout, "registered %d/%d  keepalives %d  catalog pages %d  invites %d  refused %d  auth failures %d\n",
				fleet.Registered(), len(fleet.Devices), st.Keepalives, st.CatalogPages, st.Invites, st.Refused, st.AuthFailures)
		}
	}
}
