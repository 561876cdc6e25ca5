package edge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tianyan/vms/agentlink"
)

// The page's questions to the centre. The agent holds no grants: whatever
// the page shows or does for a technician, the centre decided with the
// technician's own token, on a request the agent signs with its own
// credentials so the centre knows which agent asks.

// maxSnapshotBytes bounds a snapshot fetched through the centre.
const maxSnapshotBytes = 8 << 20

func agentBasic(creds Credentials) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(creds.AgentID+":"+creds.Secret))
}

func centreURL(creds Credentials, path string) string {
	return strings.TrimRight(creds.Server, "/") + path
}

// LoginFor logs a technician in at the centre on behalf of the browser at
// clientAddr and returns their token. The agent's credentials go with it,
// so the centre believes the address and throttles and audits the attempt
// under it rather than under the agent's own address: one technician's
// bad passwords do not lock out every other technician on this agent.
func LoginFor(ctx context.Context, hc *http.Client, creds Credentials, user, password, clientAddr string) (string, error) {
	raw, _ := json.Marshal(map[string]string{"username": user, "password": password})
	hdr := http.Header{}
	hdr.Set("Authorization", agentBasic(creds))
	hdr.Set(agentlink.ClientAddressHeader, clientAddr)
	out, err := centreCallWith(ctx, hc, http.MethodPost, centreURL(creds, "/api/v1/auth/login"), hdr, raw)
	if err != nil {
		return "", err
	}
	return loginToken(out)
}

// FetchPageAccess asks the centre what the technician whose token this is
// may do on this agent's page.
func FetchPageAccess(ctx context.Context, hc *http.Client, creds Credentials, token string) (agentlink.PageAccess, error) {
	hdr := http.Header{}
	hdr.Set("Authorization", agentBasic(creds))
	hdr.Set(agentlink.UserTokenHeader, token)
	raw, err := centreCallWith(ctx, hc, http.MethodGet, centreURL(creds, agentlink.PageAccessPath), hdr, nil)
	if err != nil {
		return agentlink.PageAccess{}, err
	}
	var pa agentlink.PageAccess
	if err := json.Unmarshal(raw, &pa); err != nil {
		return agentlink.PageAccess{}, fmt.Errorf("malformed page access answer from the centre: %w", err)
	}
	return pa, nil
}

// logoutAtCentre ends a technician's central session (best effort: the
// page's own session is gone either way).
func logoutAtCentre(ctx context.Context, hc *http.Client, creds Credentials, token string) error {
	_, err := centreCall(ctx, hc, http.MethodPost, centreURL(creds, "/api/v1/auth/logout"), token, nil)
	return err
}

// pointSnapshot fetches a bound camera's snapshot through the centre's own
// door for it (GET /api/v1/points/{id}/snapshot.jpg with the technician's
// token): the centre decides on its snapshot grant and audits the view.
func pointSnapshot(ctx context.Context, hc *http.Client, creds Credentials, token, point string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, centreURL(creds, "/api/v1/points/"+url.PathEscape(point)+"/snapshot.jpg"), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("centre unreachable: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSnapshotBytes+1))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", centreError(resp.StatusCode, raw)
	}
	if len(raw) > maxSnapshotBytes {
		return nil, "", errors.New("the snapshot is too large")
	}
	return raw, resp.Header.Get("Content-Type"), nil
}
