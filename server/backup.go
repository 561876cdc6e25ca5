package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tianyan/vms/store"
)

// BackupClient talks to a running server's admin API for `vms backup`.
type BackupClient struct {
	// BaseURL of the server, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Token is an admin session or API token.
	Token string
	// HTTP is the client to use; nil means one with a 10-minute timeout.
	HTTP *http.Client
}

// Login exchanges an admin's username and password for a session token.
func (c *BackupClient) Login(ctx context.Context, user, password string) error {
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/api/v1/auth/login", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client().Do(req)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login: %s", apiError(resp))
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	c.Token = out.Token
	return nil
}

// Backup downloads a consistent snapshot into the file out. It is written
// beside out first and checked (opens, every bucket, bbolt consistency),
// then renamed into place, so out is either a good backup or untouched.
func (c *BackupClient) Backup(ctx context.Context, out string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/api/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("backup: %s", apiError(resp))
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".tianyan-backup-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("backup: download: %w", err)
	}
	if err := checkBackup(tmp.Name()); err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return n, err
	}
	return n, nil
}

func checkBackup(path string) error {
	db, err := store.OpenFile(path)
	if err != nil {
		return fmt.Errorf("backup: downloaded file is not a usable database: %w", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		return fmt.Errorf("backup: downloaded file is damaged: %w", err)
	}
	return nil
}

func (c *BackupClient) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Minute}
}

// apiError renders an API error reply as "401 unauthenticated: log in first".
func apiError(resp *http.Response) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
		return fmt.Sprintf("%d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
	}
	return resp.Status
}
