// Command camsim runs simulated ONVIF cameras (package camsim) until SIGINT
// or SIGTERM: discoverable by WS-Discovery, managed over SOAP, streaming
// looped clips over RTSP. For tests by hand and the demo; never a product
// component.
//
//	camsim -n 4 -ptz -user admin -pass secret
//
// prints one line per camera: name, device service XAddr, main and sub
// stream URIs (without credentials) and the snapshot URI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tianyan/vms/camsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "camsim:", err)
		os.Exit(1)
	}
}

// run starts the cameras, prints them, and waits for ctx to end.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("camsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 4, "number of cameras")
	prefix := fs.String("name-prefix", "camsim-", "camera names are this plus 1, 2, …")
	discoveryIP := fs.String("discovery-ip", "127.0.0.1", "address whose interface carries WS-Discovery (and the default for -http-base/-rtsp-base)")
	httpBase := fs.String("http-base", "", "SOAP address of the first camera, the others on the following ports; port 0 picks free ports (default DISCOVERY-IP:0)")
	rtspBase := fs.String("rtsp-base", "", "RTSP address of the first camera, as -http-base (default DISCOVERY-IP:0)")
	user := fs.String("user", "", "username every camera requires (empty: no authentication)")
	pass := fs.String("pass", "", "password for -user")
	ptz := fs.Bool("ptz", false, "give every camera a PTZ head")
	subCodec := fs.String("sub-codec", "h264", "codec of the sub profile: h264 or h265")
	faultList := fs.String("faults", "", "faults for every camera: drop, slow=DURATION, wrongpass, nodiscovery (comma-separated)")
	probeDelay := fs.Duration("probe-delay", 50*time.Millisecond, "upper bound of the random delay before a ProbeMatch")
	location := fs.String("location", "camsim", "location scope")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *n < 1 || *n > 1000 {
		return fmt.Errorf("-n %d: want 1 to 1000", *n)
	}
	if *user == "" && *pass != "" {
		return errors.New("-pass without -user")
	}
	faults, err := camsim.ParseFaults(*faultList)
	if err != nil {
		return err
	}
	sub := map[string]string{"h264": camsim.ClipH264Sub, "h265": camsim.ClipH265Sub}[*subCodec]
	if sub == "" {
		return fmt.Errorf("-sub-codec %q: want h264 or h265", *subCodec)
	}
	if *httpBase == "" {
		*httpBase = net.JoinHostPort(*discoveryIP, "0")
	}
	if *rtspBase == "" {
		*rtspBase = net.JoinHostPort(*discoveryIP, "0")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var cams []*camsim.Camera
	defer func() {
		for _, c := range cams {
			c.Close()
		}
	}()
	for i := range *n {
		httpAddr, err := camsim.OffsetAddr(*httpBase, i)
		if err != nil {
			return fmt.Errorf("-http-base: %w", err)
		}
		rtspAddr, err := camsim.OffsetAddr(*rtspBase, i)
		if err != nil {
			return fmt.Errorf("-rtsp-base: %w", err)
		}
		cam, err := camsim.StartCamera(camsim.CameraConfig{
			Name: fmt.Sprintf("%s%d", *prefix, i+1), Location: *location,
			DiscoveryIP: *discoveryIP, HTTPAddr: httpAddr, RTSPAddr: rtspAddr,
			Username: *user, Password: *pass, Sub: sub, PTZ: *ptz,
			ProbeReplyDelay: *probeDelay, Logger: log,
		})
		if err != nil {
			return err
		}
		cams = append(cams, cam)
		cam.SetFaults(faults)
		fmt.Fprintf(stdout, "%s\txaddr=%s\tmain=%s\tsub=%s\tsnapshot=%s\n", cam.Name(), cam.XAddr(),
			cam.RTSPURL(camsim.ProfileMain), cam.RTSPURL(camsim.ProfileSub), cam.SnapshotURL(camsim.ProfileMain))
	}
	<-ctx.Done()
	log.Info("camsim stopping")
	return nil
}
