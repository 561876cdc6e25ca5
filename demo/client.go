package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/tianyan/vms/edge"
)

// client calls the central API as one logged-in user.
type client struct {
	base, token string
	hc          *http.Client
}

func (c *client) login(user, pass string) error {
	tok, err := edge.Login(context.Background(), c.hc, c.base, user, pass)
	if err != nil {
		return fmt.Errorf("demo login as %s: %w", user, err)
	}
	c.token = tok
	return nil
}

// apiError is a non-2xx answer.
type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

func (c *client) send(method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if res.StatusCode >= 300 {
		return &apiError{status: res.StatusCode, body: strings.TrimSpace(string(raw))}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (c *client) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, _ := json.Marshal(in)
		body = bytes.NewReader(raw)
	}
	ct := ""
	if in != nil {
		ct = "application/json"
	}
	return c.send(method, path, ct, body, out)
}

func (c *client) upload(path, contentType string, data []byte) error {
	return c.send(http.MethodPost, path, contentType, bytes.NewReader(data), nil)
}

func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == status
}

func seedRegions(api *client) error {
	var regions struct{ Items []json.RawMessage }
	if err := api.do(http.MethodGet, "/api/v1/regions", nil, &regions); err != nil {
		return err
	}
	if len(regions.Items) > 0 {
		return nil
	}
	return api.upload("/api/v1/regions/import", "text/csv", RegionsCSV())
}

// seedAccounts creates the demo users and their grants once.
func seedAccounts(api *client) error {
	if err := api.do(http.MethodPost, "/api/v1/roles", map[string]string{"name": "water-bureau", "description": "水务局"}, nil); err != nil && !isStatus(err, http.StatusConflict) {
		return err
	}
	grants := map[string][]map[string]any{
		"leader": {{"user": "leader", "categories": []string{"*"}, "regions": []string{"*"}, "max_level": 3,
			"actions": []string{"view", "ptz", "snapshot"}, "ptz_priority": 10}},
		"water": {{"role": "water-bureau", "categories": []string{"reservoir", "river", "waterlogging"}, "regions": []string{"*"},
			"max_level": 3, "actions": []string{"view", "snapshot", "ptz"}, "ptz_priority": 5}},
		"street": {{"user": "street", "categories": []string{"*"}, "regions": []string{StreetCode(0)}, "max_level": 2,
			"actions": []string{"view"}}},
		"tech": {{"user": "tech", "categories": []string{"*"}, "regions": []string{"*"}, "max_level": 4,
			"actions": []string{"provision", "view", "snapshot"}}},
	}
	for _, a := range Accounts[1:] {
		u := map[string]any{"username": a.Username, "password": a.Password, "display_name": a.Role}
		if a.Username == "water" {
			u["roles"] = []string{"water-bureau"}
		}
		err := api.do(http.MethodPost, "/api/v1/users", u, nil)
		if isStatus(err, http.StatusConflict) {
			continue // an earlier run made it, with its grants
		}
		if err != nil {
			return fmt.Errorf("demo user %s: %w", a.Username, err)
		}
		for _, g := range grants[a.Username] {
			if err := api.do(http.MethodPost, "/api/v1/grants", g, nil); err != nil {
				return fmt.Errorf("demo grant for %s: %w", a.Username, err)
			}
		}
	}
	return nil
}

// agentCredentials enrolls the demo's edge agent once and keeps its
// credentials in dir, as `edge-agent enroll` does.
func agentCredentials(ctx context.Context, api *client, dir string) (edge.Credentials, error) {
	if c, err := edge.LoadCredentials(dir); err == nil && c.Server == api.base {
		var a struct{ Revoked bool }
		if err := api.do(http.MethodGet, "/api/v1/agents/"+c.AgentID, nil, &a); err == nil && !a.Revoked {
			return c, nil
		}
	}
	var created struct {
		Code string `json:"enrollment_code"`
	}
	if err := api.do(http.MethodPost, "/api/v1/agents", map[string]string{"name": "演示边缘代理 demo edge agent", "region": DistrictCode}, &created); err != nil {
		return edge.Credentials{}, err
	}
	host, _ := os.Hostname()
	c, err := edge.Enroll(ctx, api.hc, api.base, created.Code, host)
	if err != nil {
		return edge.Credentials{}, err
	}
	return c, c.Save(dir)
}
