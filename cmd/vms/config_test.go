package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/server"
)

func TestConfigPrecedenceIsFlagThenEnvThenFileThenDefault(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vms.yaml")
	yaml := "data: /from/file\nhttp: :1111\nrtsp: :2222\npublic-ip: [10.0.0.1, 10.0.0.2]\nidle-grace: 30s\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VMS_RTSP", ":3333")
	t.Setenv("VMS_WEBRTC", ":4444")
	cfg, _, err := loadConfig("serve", []string{"--config", file, "--webrtc", ":5555"}, server.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/from/file" || cfg.HTTPAddr != ":1111" {
		t.Fatalf("file values lost: %+v", cfg)
	}
	if cfg.RTSPAddr != ":3333" {
		t.Fatalf("env should beat file: rtsp %q", cfg.RTSPAddr)
	}
	if cfg.WebRTCAddr != ":5555" {
		t.Fatalf("flag should beat env: webrtc %q", cfg.WebRTCAddr)
	}
	if !reflect.DeepEqual(cfg.PublicIPs, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Fatalf("public ips %v", cfg.PublicIPs)
	}
	if cfg.IdleGrace != 30*time.Second || cfg.StartTimeout != 10*time.Second {
		t.Fatalf("durations %v %v", cfg.IdleGrace, cfg.StartTimeout)
	}
}

func TestConfigRejectsUnknownKeysAndBadValues(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vms.yaml")
	if err := os.WriteFile(file, []byte("htp: :1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadConfig("serve", []string{"--config", file}, server.Defaults()); err == nil {
		t.Fatal("unknown YAML key accepted")
	}
	if _, _, err := loadConfig("serve", []string{"--idle-grace", "soon"}, server.Defaults()); err == nil {
		t.Fatal("bad duration accepted")
	}
	// An agent clamps the interval it is told to a minute at most: a longer
	// one would make every idle link drop.
	for _, v := range []string{"10ms", "2m", "soon"} {
		if _, _, err := loadConfig("serve", []string{"--agent-keepalive", v}, server.Defaults()); err == nil {
			t.Errorf("--agent-keepalive %s accepted", v)
		}
	}
	cfg, _, err := loadConfig("serve", []string{"--agent-keepalive", "2s", "--agent-health-window", "90s"}, server.Defaults())
	if err != nil || cfg.AgentKeepalive != 2*time.Second || cfg.AgentHealthWindow != 90*time.Second {
		t.Errorf("agent link settings: %v %v %v", cfg.AgentKeepalive, cfg.AgentHealthWindow, err)
	}
	if err := os.WriteFile(file, []byte("data: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadConfig("serve", []string{"--config", file}, server.Defaults()); err == nil {
		t.Fatal("malformed YAML accepted")
	}
}

func TestFrameAncestorsTakeOnlyOrigins(t *testing.T) {
	for _, ok := range []string{"https://ioc.example", "http://10.1.2.3:8080", "'self'", "https://*.ioc.example"} {
		if err := checkFrameAncestor(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"*", "https://ioc.example; script-src *", "javascript:x", "https://a/b", "ioc.example", "'unsafe-inline'"} {
		if err := checkFrameAncestor(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSeparationOfDutiesIsABooleanFlagEnvAndKey(t *testing.T) {
	for _, args := range [][]string{{"--separation-of-duties"}, {"--separation-of-duties=true"}} {
		cfg, _, err := loadConfig("serve", args, server.Defaults())
		if err != nil || !cfg.SeparationOfDuties {
			t.Errorf("%v: on = %v, err %v", args, cfg.SeparationOfDuties, err)
		}
	}
	cfg, _, err := loadConfig("serve", nil, server.Defaults())
	if err != nil || cfg.SeparationOfDuties {
		t.Errorf("default: on = %v, err %v", cfg.SeparationOfDuties, err)
	}
	t.Setenv("VMS_SEPARATION_OF_DUTIES", "true")
	if cfg, _, _ := loadConfig("serve", nil, server.Defaults()); !cfg.SeparationOfDuties {
		t.Error("env VMS_SEPARATION_OF_DUTIES=true ignored")
	}
	if _, _, err := loadConfig("serve", []string{"--separation-of-duties=maybe"}, server.Defaults()); err == nil {
		t.Error("--separation-of-duties=maybe accepted")
	}
}

func TestViewCapsComeFromFlagsEnvOrFileAndMustBePositive(t *testing.T) {
	cfg, _, err := loadConfig("serve", nil, server.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxViewsPerUser != 32 || cfg.MaxViewsPerIP != 64 {
		t.Fatalf("default caps %d per user, %d per IP; want 32 and 64", cfg.MaxViewsPerUser, cfg.MaxViewsPerIP)
	}
	file := filepath.Join(t.TempDir(), "vms.yaml")
	if err := os.WriteFile(file, []byte("max-views-per-ip: 200\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VMS_MAX_VIEWS_PER_USER", "48")
	cfg, _, err = loadConfig("serve", []string{"--config", file}, server.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxViewsPerUser != 48 || cfg.MaxViewsPerIP != 200 {
		t.Fatalf("caps %d per user, %d per IP; want 48 (env) and 200 (file)", cfg.MaxViewsPerUser, cfg.MaxViewsPerIP)
	}
	cfg, _, err = loadConfig("serve", []string{"--max-views-per-user", "4"}, server.Defaults())
	if err != nil || cfg.MaxViewsPerUser != 4 {
		t.Fatalf("--max-views-per-user 4: %d, %v", cfg.MaxViewsPerUser, err)
	}
	for _, bad := range []string{"0", "-1", "many"} {
		if _, _, err := loadConfig("serve", []string{"--max-views-per-ip", bad}, server.Defaults()); err == nil {
			t.Errorf("--max-views-per-ip %s accepted", bad)
		}
	}
}

func TestCameraNetworksComeFromFlagEnvOrFileAndBadOnesFailTheStart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vms.yaml")
	if err := os.WriteFile(file, []byte("camera-networks: [10.2.0.0/16, 192.168.1.64]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadConfig("serve", []string{"--config", file}, server.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.CameraNetworks, []string{"10.2.0.0/16", "192.168.1.64"}) {
		t.Fatalf("from YAML: %v", cfg.CameraNetworks)
	}
	t.Setenv("VMS_CAMERA_NETWORKS", "172.16.0.0/12")
	cfg, _, err = loadConfig("serve", []string{"--config", file, "--camera-networks", "10.0.0.0/8, 127.0.0.0/8"}, server.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.CameraNetworks, []string{"10.0.0.0/8", "127.0.0.0/8"}) {
		t.Fatalf("the flag should win: %v", cfg.CameraNetworks)
	}
	for _, bad := range []string{"10.0.0.0/33", "cameras", ","} {
		_, _, err := loadConfig("serve", []string{"--camera-networks", bad}, server.Defaults())
		if err == nil || !strings.Contains(err.Error(), "--camera-networks") {
			t.Errorf("--camera-networks %q: %v, want an error naming the flag", bad, err)
		}
	}
	if got := server.Defaults().CameraNetworks; got != nil {
		t.Fatalf("the default is the private ranges, left to the server: %v", got)
	}
}

func TestSIPSettingsComeFromFlagEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vms.yaml")
	if err := os.WriteFile(file, []byte("sip: 0.0.0.0:15060\nsip-keepalive: 30s\nsip-domain: \"3402000000\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VMS_SIP_PASSWORD", "from-env")
	cfg, _, err := loadConfig("serve", []string{"--config", file, "--sip-id", "34020000002000000001", "--sip-catalog-interval", "10m"}, server.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SIPAddr != "0.0.0.0:15060" || cfg.SIPKeepalive != 30*time.Second || cfg.SIPDomain != "3402000000" ||
		cfg.SIPPassword != "from-env" || cfg.SIPID != "34020000002000000001" || cfg.SIPCatalogInterval != 10*time.Minute {
		t.Fatalf("sip settings %+v", cfg)
	}
	if d := server.Defaults(); d.SIPAddr != ":5060" || len(d.SIPID) != 20 || len(d.SIPDomain) != 10 {
		t.Fatalf("defaults %q %q %q", d.SIPAddr, d.SIPID, d.SIPDomain)
	}
	for _, bad := range [][]string{{"--sip-id", "123"}, {"--sip-domain", "44030700001"}, {"--sip-keepalive", "0s"}} {
		if _, _, err := loadConfig("serve", bad, server.Defaults()); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if cfg, _, err := loadConfig("serve", []string{"--sip", ""}, server.Defaults()); err != nil || cfg.SIPAddr != "" {
		t.Fatalf("--sip \"\" should turn GB/T 28181 off: %q %v", cfg.SIPAddr, err)
	}
}
