package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/tianyan/vms/demo"
	"github.com/tianyan/vms/server"
)

// demoAgentUI is where the demo's edge agent serves its provisioning page.
const demoAgentUI = "127.0.0.1:8091"

// demoSIPPassword is the demo's default GB/T 28181 device password.
const demoSIPPassword = "tianyan-demo"

func demoCmd(args []string, log *slog.Logger) error {
	base := server.Defaults()
	base.DataDir = "./tianyan-demo-data"
	// GB/T 28181 on an ephemeral loopback port unless told (--sip :5060 to connect a real NVR).
	base.SIPAddr = "127.0.0.1:0"
	base.SIPPassword = demoSIPPassword
	cfg, _, err := loadConfig("demo", args, base)
	if err != nil {
		return err
	}
	cfg.AdminPassword = demo.Accounts[0].Password
	cfg.Logger = log
	ui := os.Getenv("VMS_DEMO_AGENT_UI")
	if ui == "" {
		ui = demoAgentUI
	}
	ctx, stop := signalContext()
	defer stop()
	fmt.Println("Starting the Tianyan demo: 16 simulated ONVIF cameras, an edge agent, a GB/T 28181 NVR, a 13,635-point district …")
	d, err := demo.Start(ctx, cfg, demo.Options{AgentUI: ui, Logger: log})
	if err != nil {
		return err
	}
	defer d.Close()

	var b strings.Builder
	fmt.Fprintf(&b, "\nTianyan demo is running.\n\n  Open  %s/   (phone: same URL; wall: %s/#/wall)\n\n", d.App.HTTPURL(), d.App.HTTPURL())
	fmt.Fprintf(&b, "  %-8s %-14s %-24s %s\n", "user", "password", "who", "sees")
	for _, a := range demo.Accounts {
		fmt.Fprintf(&b, "  %-8s %-14s %-24s %s\n", a.Username, a.Password, a.Role, a.Sees)
	}
	fmt.Fprintf(&b, "\n  Edge agent provisioning page: %s/  (log in as tech)\n", d.AgentUIURL)
	fmt.Fprintf(&b, "  %d live simulated cameras (4 panoramic with PTZ) relayed on demand through the edge agent;\n", len(d.Cameras))
	fmt.Fprintf(&b, "  the other district points have no camera and show as offline (tagged 无实况).\n")
	fmt.Fprintf(&b, "  Camera networks: centre %s; edge agent %s (the simulated cameras, listed explicitly).\n",
		d.App.CameraNetworks, demo.SimulatedCameraNetworks)
	if sip := d.App.SIPAddr(); sip != "" {
		pw := "as set by --sip-password"
		if cfg.SIPPassword == demoSIPPassword {
			pw = demoSIPPassword // the demo's own, printed like the accounts'
		}
		fmt.Fprintf(&b, "  GB/T 28181: devices register to %s (UDP/TCP), server ID %s, domain %s, password %s.\n",
			sip, cfg.SIPID, cfg.SIPDomain, pw)
		if d.NVR != nil {
			fmt.Fprintf(&b, "  Simulated NVR %s (%s) registered over SIP: %d channels in 南头街道, classified by\n",
				demo.GBNVRName, demo.GBNVRID, len(d.NVR.Channels()))
			fmt.Fprintf(&b, "  mapping rules but one (待分类, admin only); see 管理 → 国标设备, search 雪亮工程 or the map.\n")
		}
	}
	fmt.Fprintf(&b, "  Data in %s.  Press Ctrl-C to stop.\n\n", cfg.DataDir)
	fmt.Print(b.String())

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-d.App.Wait():
	}
	return err
}
