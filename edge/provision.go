package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"

	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/onvif"
)

// Discovered is one camera as `edge-agent discover --json` prints it.
// Every key is always present (empty when unknown) and Profiles is never
// null, so that scripts can rely on the shape.
type Discovered struct {
	XAddr        string              `json:"xaddr"`
	IP           string              `json:"ip"`
	Manufacturer string              `json:"manufacturer"`
	Model        string              `json:"model"`
	Profiles     []DiscoveredProfile `json:"profiles"`
	SnapshotURI  string              `json:"snapshot_uri"`
	PTZ          bool                `json:"ptz"`
	Error        string              `json:"error"`
}

// DiscoveredProfile is one media profile of a Discovered camera. Its
// stream URI is the camera's, less any password the camera put into it:
// discovery output gets pasted into tickets.
type DiscoveredProfile struct {
	Token     string `json:"token"`
	Name      string `json:"name"`
	Codec     string `json:"codec"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	StreamURI string `json:"stream_uri"`
}

// DiscoverCameras finds cameras and, with credentials, probes each one
// (at most 8 at a time) inside nets (nil: cameranet.AgentDefault); a
// camera outside gets the refusal as its error. A camera that fails
// carries its own error; the others are unaffected.
func DiscoverCameras(ctx context.Context, d DiscoveryConfig, nets *cameranet.Policy, user, pass string) ([]Discovered, error) {
	found, err := onvif.Discover(ctx, onvif.DiscoverOptions{Interfaces: d.Interfaces, MulticastIP: d.MulticastIP,
		CIDRs: d.CIDRs, Port: d.Port, Timeout: d.Timeout})
	if err != nil && len(found) == 0 {
		return nil, err
	}
	out := make([]Discovered, 0, len(found))
	for _, f := range found {
		x := ""
		if len(f.XAddrs) > 0 {
			x = f.XAddrs[0]
		}
		out = append(out, Discovered{XAddr: x, IP: f.IP, Model: f.Hardware, Profiles: []DiscoveredProfile{}})
	}
	if user == "" && pass == "" {
		return out, nil
	}
	book := NewCameraBook("", nil)
	if nets != nil {
		book.SetCameraNetworks(nets)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range out {
		if out[i].XAddr == "" {
			out[i].Error = "the camera announced no service address"
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(d *Discovered) {
			defer wg.Done()
			defer func() { <-sem }()
			probeInto(ctx, book, d, user, pass)
		}(&out[i])
	}
	wg.Wait()
	return out, nil
}

func probeInto(ctx context.Context, book *CameraBook, d *Discovered, user, pass string) {
	if err := book.checkXAddr(ctx, d.XAddr); err != nil {
		d.Error = err.Error()
		return
	}
	c, err := book.onvifClient(d.XAddr, user, pass)
	if err != nil {
		d.Error = err.Error()
		return
	}
	dev, err := c.Probe(ctx)
	if err != nil {
		d.Error = err.Error()
		return
	}
	d.Manufacturer, d.Model, d.SnapshotURI, d.PTZ = dev.Manufacturer, dev.Model, dev.SnapshotURI, dev.PTZ
	for _, p := range dev.Profiles {
		d.Profiles = append(d.Profiles, DiscoveredProfile{Token: p.Token, Name: p.Name, Codec: p.Codec,
			Width: p.Width, Height: p.Height, StreamURI: redact(p.StreamURI)})
	}
}

// PointSpec is what a technician fills in for a new point.
type PointSpec struct {
	// ID is optional: the centre generates a GB/T 28181 ID when empty.
	ID       string   `json:"id,omitempty"`
	Name     string   `json:"name"`
	Category string   `json:"category"`
	Region   string   `json:"region"`
	Kind     string   `json:"kind,omitempty"`
	Level    int      `json:"level,omitempty"`
	Lat      *float64 `json:"lat,omitempty"`
	Lon      *float64 `json:"lon,omitempty"`
	Address  string   `json:"address,omitempty"`
	// UseSub relays the camera's lowest-resolution profile as the sub stream.
	UseSub bool `json:"use_sub"`
}

// CentreError is an error answer from the central API.
type CentreError struct {
	Status  int
	Code    string
	Message string
	Field   string
	// RetryAfter is the centre's Retry-After on a 429 or 503, if any.
	RetryAfter string
}

func (e *CentreError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("centre answered %d %s (%s): %s", e.Status, e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("centre answered %d %s: %s", e.Status, e.Code, e.Message)
}

// CreatePoint registers a provisioned camera as a point at the centre,
// bound to this agent, with the technician's token: the centre checks the
// technician's provision grant for the category, region and level.
func CreatePoint(ctx context.Context, hc *http.Client, creds Credentials, token string, cam Camera, spec PointSpec) (json.RawMessage, error) {
	if cam.MainToken == "" {
		return nil, errors.New("the camera has not been probed with its credentials yet")
	}
	mainURL, err := cam.StreamURL(cam.MainToken)
	if err != nil {
		return nil, err
	}
	body := map[string]any{
		"name": spec.Name, "category": spec.Category, "region": spec.Region, "kind": spec.Kind,
		"lat": spec.Lat, "lon": spec.Lon, "address": spec.Address, "ptz": cam.PTZ,
		"agent": creds.AgentID, "camera": cam.ID,
		"main": map[string]string{"type": "rtsp", "url": mainURL},
	}
	if spec.Level > 0 {
		body["level"] = spec.Level
	}
	if spec.ID != "" {
		body["id"] = spec.ID
	}
	if spec.Kind == "" {
		delete(body, "kind")
	}
	if spec.UseSub && cam.SubToken != "" {
		subURL, err := cam.StreamURL(cam.SubToken)
		if err != nil {
			return nil, err
		}
		body["sub"] = map[string]string{"type": "rtsp", "url": subURL}
	}
	raw, _ := json.Marshal(body)
	return centreCall(ctx, hc, http.MethodPost, creds.Server+"/api/v1/points", token, raw)
}

// centreCall does one JSON call to the central API.
func centreCall(ctx context.Context, hc *http.Client, method, url, token string, body []byte) (json.RawMessage, error) {
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	return centreCallWith(ctx, hc, method, url, hdr, body)
}

// centreCallWith is centreCall with the request's headers given.
func centreCallWith(ctx context.Context, hc *http.Client, method, url string, hdr http.Header, body []byte) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	maps.Copy(req.Header, hdr)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("centre unreachable: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		ce := centreError(resp.StatusCode, raw)
		ce.RetryAfter = resp.Header.Get("Retry-After")
		return nil, ce
	}
	return raw, nil
}

// maxErrorText bounds how much of a non-JSON error body (a proxy's HTML
// page, say) goes into an error message.
const maxErrorText = 200

// centreError reads the centre's {"error":{code,message,field}} answer;
// any other body is quoted, shortened.
func centreError(status int, raw []byte) *CentreError {
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
		return &CentreError{Status: status, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field}
	}
	msg := strings.ToValidUTF8(strings.TrimSpace(string(raw)), "?")
	if len(msg) > maxErrorText {
		msg = strings.ToValidUTF8(msg[:maxErrorText], "") + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &CentreError{Status: status, Code: "error", Message: msg}
}

// Login logs a technician in at the centre and returns their token.
func Login(ctx context.Context, hc *http.Client, server, user, password string) (string, error) {
	raw, _ := json.Marshal(map[string]string{"username": user, "password": password})
	out, err := centreCall(ctx, hc, http.MethodPost, strings.TrimRight(server, "/")+"/api/v1/auth/login", "", raw)
	if err != nil {
		return "", err
	}
	return loginToken(out)
}

// loginToken is the session token in the centre's answer to a login.
func loginToken(answer []byte) (string, error) {
	var res struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(answer, &res); err != nil || res.Token == "" {
		return "", errors.New("malformed login answer from the centre")
	}
	return res.Token, nil
}
