package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tianyan/vms/agentlink"
)

// Credentials are what enrollment gives an agent, kept in a 0600 file.
type Credentials struct {
	Server  string `json:"server"`
	AgentID string `json:"agent_id"`
	Secret  string `json:"secret"`
}

// CredentialsFile is the file name inside the agent's state directory.
const CredentialsFile = "agent-credentials.json"

// Enroll trades a one-time code for credentials at server.
func Enroll(ctx context.Context, hc *http.Client, server, code, hostname string) (Credentials, error) {
	server = strings.TrimRight(server, "/")
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Credentials{}, fmt.Errorf("server must be an http(s) URL, got %q", server)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	body, _ := json.Marshal(agentlink.EnrollRequest{Code: code, Hostname: hostname})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+agentlink.EnrollPath, bytes.NewReader(body))
	if err != nil {
		return Credentials{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Credentials{}, fmt.Errorf("enroll: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return Credentials{}, fmt.Errorf("enroll: %w", centreError(resp.StatusCode, raw))
	}
	var out agentlink.EnrollResponse
	if err := json.Unmarshal(raw, &out); err != nil || out.AgentID == "" || out.Secret == "" {
		return Credentials{}, errors.New("enroll: malformed answer from the server")
	}
	return Credentials{Server: server, AgentID: out.AgentID, Secret: out.Secret}, nil
}

// Save writes the credentials to dir/CredentialsFile with mode 0600,
// atomically.
func (c Credentials) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, CredentialsFile), raw)
}

// LoadCredentials reads dir/CredentialsFile, refusing a file others can read.
func LoadCredentials(dir string) (Credentials, error) {
	path := filepath.Join(dir, CredentialsFile)
	st, err := os.Stat(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("no credentials (run edge-agent enroll first): %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return Credentials{}, fmt.Errorf("%s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	if err := json.Unmarshal(raw, &c); err != nil || c.Server == "" || c.AgentID == "" || c.Secret == "" {
		return Credentials{}, fmt.Errorf("%s is not a credentials file", path)
	}
	return c, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
