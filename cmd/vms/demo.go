package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/server"
)

// demoAdminPassword is printed and listed in the README; a demo only.
const demoAdminPassword = "tianyan-demo"

// demoCameras are the simulated cameras the demo starts and registers.
var demoCameras = []struct{ id, name, clip string }{
	{"44030700001320000001", "水库大坝 Reservoir dam", camsim.ClipH264Main},
	{"44030700001320000002", "河道闸口 River sluice", camsim.ClipH264Sub},
	{"44030700001320000003", "易涝点 下穿隧道 Underpass", camsim.ClipH264Main},
	{"44030700001320000004", "危险边坡 Slope K12", camsim.ClipH264Sub},
}

func demo(args []string, log *slog.Logger) error {
	base := server.Defaults()
	base.DataDir = "./tianyan-demo-data"
	base.AdminPassword = demoAdminPassword
	cfg, _, err := loadConfig("demo", args, base)
	if err != nil {
		return err
	}
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = demoAdminPassword
	}
	cfg.Logger = log

	var cams []*camsim.RTSPCamera
	defer func() {
		for _, c := range cams {
			c.Close()
		}
	}()
	clips := map[string]*camsim.Clip{}
	for _, name := range []string{camsim.ClipH264Main, camsim.ClipH264Sub} {
		if clips[name], err = camsim.LoadClip(name); err != nil {
			return err
		}
	}
	for range demoCameras {
		cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{
			Address:  "127.0.0.1:0",
			Profiles: map[string]*camsim.Clip{"main": clips[camsim.ClipH264Main], "sub": clips[camsim.ClipH264Sub]},
			User:     "camera", Pass: "camsim-pass", Logger: log,
		})
		if err != nil {
			return err
		}
		cams = append(cams, cam)
	}

	app, err := server.Start(cfg)
	if err != nil {
		return err
	}
	defer app.Close(context.Background())
	if err := registerDemoPoints(app.HTTPURL(), cfg.AdminPassword, cams); err != nil {
		return err
	}
	fmt.Printf(`
Tianyan demo is running.
  Open   %s/   and log in as  admin / %s
  Data   %s
  %d simulated cameras; press Ctrl-C to stop.

`, app.HTTPURL(), cfg.AdminPassword, cfg.DataDir, len(cams))

	ctx, stop := signalContext()
	defer stop()
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-app.Wait():
	}
	return err
}

// registerDemoPoints creates (or re-points) the demo cameras through the
// public API, as an operator would.
func registerDemoPoints(baseURL, password string, cams []*camsim.RTSPCamera) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": password})
	res, err := hc.Post(baseURL+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("demo login as admin failed (%d); the data dir may hold another admin password", res.StatusCode)
	}
	var tok struct{ Token string }
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil {
		return err
	}
	for i, c := range demoCameras {
		point := map[string]any{
			"id": c.id, "name": c.name, "on_demand": true,
			"main": map[string]string{"type": "rtsp", "url": cams[i].URL(map[bool]string{true: "main", false: "sub"}[c.clip == camsim.ClipH264Main]), "transport": "tcp"},
		}
		b, _ := json.Marshal(point)
		req, _ := http.NewRequest(http.MethodPost, baseURL+"/api/v1/points", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode == http.StatusConflict {
			// Camera ports change on every run: update the main source.
			patch, _ := json.Marshal(map[string]any{"main": point["main"]})
			req, _ := http.NewRequest(http.MethodPatch, baseURL+"/api/v1/points/"+c.id, bytes.NewReader(patch))
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			req.Header.Set("Content-Type", "application/json")
			if res, err = hc.Do(req); err != nil {
				return err
			}
			res.Body.Close()
		}
		if res.StatusCode >= 300 {
			return fmt.Errorf("registering demo point %s: HTTP %d", c.id, res.StatusCode)
		}
	}
	return nil
}
