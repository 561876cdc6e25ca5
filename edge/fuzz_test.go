package edge

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/tianyan/vms/agentlink"
)

// FuzzCameraBookFile feeds the camera book arbitrary file contents (a
// damaged disk, a hand edit, a camera's strings saved earlier): loading and
// everything the agent then does with the entries must never panic, and
// what the centre is shown must never carry a password.
func FuzzCameraBookFile(f *testing.F) {
	good, _ := json.Marshal([]Camera{{ID: "cam-1", XAddr: "http://10.0.0.5/onvif/device_service", Username: "admin", Password: "pw",
		MainToken: "main", Profiles: []agentlink.Profile{{Token: "main", StreamURI: "rtsp://admin:pw@10.0.0.5/main"}, {Token: "sub", StreamURI: "%zz"}}}})
	for _, seed := range []string{string(good), "[null]", `[{"id":""}]`, `[{"id":"a"},{"id":"a"}]`, "{}", "null", "", "\x00\xff",
		`[{"id":"x","profiles":[{"token":"t","stream_uri":"rtsp://[::1"}]}]`} {
		f.Add([]byte(seed))
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, CamerasFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		book := NewCameraBook(dir, quiet)
		for _, c := range book.List() {
			full, ok := book.Get(c.ID)
			if !ok {
				t.Fatalf("listed camera %q cannot be got", c.ID)
			}
			for _, p := range full.Profiles {
				_, _ = full.StreamURL(p.Token)
			}
		}
		inv := book.Inventory()
		if _, err := json.Marshal(agentlink.Inventory{Cameras: inv}); err != nil {
			t.Fatalf("inventory does not encode: %v", err)
		}
		for _, c := range inv {
			for _, p := range c.Profiles {
				if u, err := url.Parse(p.StreamURI); err == nil && u.User != nil {
					if _, has := u.User.Password(); has {
						t.Fatalf("inventory stream URI %q carries a password", p.StreamURI)
					}
				}
			}
		}
	})
}

// FuzzLoadCredentials: a credentials file of any content loads into
// complete credentials or gives an error, never a panic.
func FuzzLoadCredentials(f *testing.F) {
	for _, seed := range []string{`{"server":"https://vms","agent_id":"a","secret":"s"}`, `{"server":1}`, "", "null", "[", `{"secret":"s"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, CredentialsFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadCredentials(dir)
		if err == nil && (c.Server == "" || c.AgentID == "" || c.Secret == "") {
			t.Fatalf("incomplete credentials accepted: %+v", c)
		}
	})
}
