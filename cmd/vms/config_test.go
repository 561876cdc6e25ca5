package main

import (
	"os"
	"path/filepath"
	"reflect"
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
