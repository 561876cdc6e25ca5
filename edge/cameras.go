package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/onvif"
)

// CamerasFile holds the camera book (with camera credentials: mode 0600).
const CamerasFile = "cameras.json"

// maxBookBytes bounds the camera book file: thousands of cameras fit.
const maxBookBytes = 32 << 20

// Camera is a camera the agent knows: found by discovery, and once a
// technician entered its credentials, probed and provisioned.
type Camera struct {
	ID           string              `json:"id"`
	XAddr        string              `json:"xaddr"`
	IP           string              `json:"ip,omitempty"`
	Name         string              `json:"name,omitempty"`
	Manufacturer string              `json:"manufacturer,omitempty"`
	Model        string              `json:"model,omitempty"`
	Username     string              `json:"username,omitempty"`
	Password     string              `json:"password,omitempty"`
	Profiles     []agentlink.Profile `json:"profiles,omitempty"`
	MainToken    string              `json:"main_token,omitempty"`
	SubToken     string              `json:"sub_token,omitempty"`
	PTZToken     string              `json:"ptz_token,omitempty"`
	SnapshotURI  string              `json:"snapshot_uri,omitempty"`
	PTZ          bool                `json:"ptz,omitempty"`
	Presets      []onvif.Preset      `json:"presets,omitempty"`
	Error        string              `json:"error,omitempty"`
	Seen         time.Time           `json:"seen"`
}

// CameraID derives a stable ID from the device's endpoint reference (or
// its address): the same camera keeps its ID across rediscoveries.
func CameraID(endpointRef, xaddr string) string {
	key := endpointRef
	if key == "" {
		key = xaddr
	}
	h := sha256.Sum256([]byte(key))
	return "cam-" + hex.EncodeToString(h[:6])
}

// DiscoveryConfig says where the agent looks for cameras.
type DiscoveryConfig struct {
	Interfaces  []string
	MulticastIP string
	CIDRs       []string
	Port        int
	Timeout     time.Duration
}

// clone is a copy of c that shares nothing with it: the book hands out and
// takes in copies only, so no caller can change a record under its lock.
func (c Camera) clone() Camera {
	c.Profiles = slices.Clone(c.Profiles)
	c.Presets = slices.Clone(c.Presets)
	return c
}

// CameraBook is the agent's list of cameras, kept in a file.
//
// The book owns its records: they are values behind its lock, replaced
// whole and never changed in place, and every method hands out copies.
// A discovery merging into the book while a technician provisions a camera
// therefore cannot race on a record (it once did: Provision kept a pointer
// to the record it returned while Rediscover wrote through the same one).
type CameraBook struct {
	path string
	disc DiscoveryConfig
	log  *slog.Logger

	mu      sync.Mutex
	cameras map[string]Camera

	nets cameraNets
}

// NewCameraBook loads dir/CamerasFile (dir "" keeps it in memory only).
func NewCameraBook(dir string, log *slog.Logger) *CameraBook {
	if log == nil {
		log = slog.Default()
	}
	b := &CameraBook{log: log, cameras: map[string]Camera{}}
	if dir != "" {
		b.path = filepath.Join(dir, CamerasFile)
		b.load()
	}
	return b
}

// load reads the book's file. The file may be damaged or hand-edited:
// anything unusable is skipped with a warning, never trusted as is.
func (b *CameraBook) load() {
	f, err := os.Open(b.path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			b.log.Warn("camera book unreadable; starting empty", "path", b.path, "err", err)
		}
		return
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		// The next save rewrites it 0600.
		b.log.Warn("camera book holds camera passwords but others can read it", "path", b.path, "mode", st.Mode().Perm())
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxBookBytes+1))
	if err == nil && len(raw) > maxBookBytes {
		err = fmt.Errorf("larger than %d bytes", maxBookBytes)
	}
	var list []*Camera
	if err == nil {
		err = json.Unmarshal(raw, &list)
	}
	if err != nil {
		b.log.Warn("camera book unreadable; starting empty", "path", b.path, "err", err)
		return
	}
	for _, c := range list {
		if c == nil || c.ID == "" {
			b.log.Warn("camera book entry without an id skipped", "path", b.path)
			continue
		}
		b.cameras[c.ID] = *c
	}
}

// SetDiscovery sets where Rediscover looks.
func (b *CameraBook) SetDiscovery(d DiscoveryConfig) {
	b.mu.Lock()
	b.disc = d
	b.mu.Unlock()
}

func (b *CameraBook) saveLocked() {
	if b.path == "" {
		return
	}
	list := make([]Camera, 0, len(b.cameras))
	for _, c := range b.cameras {
		list = append(list, c)
	}
	slices.SortFunc(list, func(x, y Camera) int { return strings.Compare(x.ID, y.ID) })
	raw, err := json.MarshalIndent(list, "", "  ")
	if err == nil {
		err = writeFileAtomic(b.path, raw)
	}
	if err != nil {
		b.log.Error("camera book not saved", "err", err)
	}
}

// List returns the cameras without their passwords, by IP.
func (b *CameraBook) List() []Camera {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Camera, 0, len(b.cameras))
	for _, c := range b.cameras {
		cp := c.clone()
		if cp.Password != "" {
			cp.Password = "***"
		}
		out = append(out, cp)
	}
	slices.SortFunc(out, func(x, y Camera) int { return strings.Compare(x.IP+x.XAddr, y.IP+y.XAddr) })
	return out
}

// Get returns one camera (with its credentials).
func (b *CameraBook) Get(id string) (Camera, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.cameras[id]
	if !ok {
		return Camera{}, false
	}
	return c.clone(), true
}

// Inventory is the book as the centre sees it (no credentials).
func (b *CameraBook) Inventory() []agentlink.Camera {
	list := b.List()
	out := make([]agentlink.Camera, 0, len(list))
	for _, c := range list {
		ps := make([]agentlink.Profile, len(c.Profiles))
		for i, p := range c.Profiles {
			p.StreamURI = redact(p.StreamURI)
			ps[i] = p
		}
		out = append(out, agentlink.Camera{ID: c.ID, XAddr: c.XAddr, IP: c.IP, Manufacturer: c.Manufacturer,
			Model: c.Model, Profiles: ps, PTZ: c.PTZ, Error: c.Error})
	}
	return out
}

// Rediscover runs WS-Discovery (multicast, and the configured sweeps) and
// merges what answered into the book.
func (b *CameraBook) Rediscover(ctx context.Context) error {
	b.mu.Lock()
	d := b.disc
	b.mu.Unlock()
	found, err := onvif.Discover(ctx, onvif.DiscoverOptions{Interfaces: d.Interfaces, MulticastIP: d.MulticastIP,
		CIDRs: d.CIDRs, Port: d.Port, Timeout: d.Timeout, Logger: b.log})
	if err != nil && len(found) == 0 {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now().UTC()
	for _, f := range found {
		if len(f.XAddrs) == 0 {
			continue
		}
		id := CameraID(f.EndpointRef, f.XAddrs[0])
		c, ok := b.cameras[id]
		if !ok {
			c = Camera{ID: id}
		}
		c.XAddr, c.IP, c.Seen = f.XAddrs[0], f.IP, now
		if c.Name == "" {
			c.Name = f.Name
		}
		if c.Model == "" {
			c.Model = f.Hardware
		}
		b.cameras[id] = c
	}
	b.saveLocked()
	return err
}

// Provision probes a camera with credentials and keeps what it learnt:
// profiles (main and sub by resolution), snapshot URI, PTZ. A camera that
// refuses or lies gives an error for it alone.
func (b *CameraBook) Provision(ctx context.Context, id, xaddr, user, pass string) (Camera, error) {
	if id == "" {
		id = CameraID("", xaddr)
	}
	if err := b.checkXAddr(ctx, xaddr); err != nil {
		return Camera{}, err
	}
	c, err := b.onvifClient(xaddr, user, pass)
	if err != nil {
		return Camera{}, err
	}
	dev, err := c.Probe(ctx)
	if err != nil && ctx.Err() != nil {
		// Cut short by the caller: that says nothing about the camera.
		return Camera{}, err
	}
	if err != nil {
		b.mu.Lock()
		if cam, ok := b.cameras[id]; ok {
			cam.Error = err.Error()
			b.cameras[id] = cam
		}
		b.mu.Unlock()
		return Camera{}, err
	}
	if err := ctx.Err(); err != nil {
		// The probe tolerates a vendor's missing answers, so one cut short
		// looks like a camera without streams; keep nothing half-learnt.
		return Camera{}, err
	}
	main, sub := dev.MainSub()
	if main == nil {
		return Camera{}, errors.New("the camera has no media profile with a stream")
	}
	cam := Camera{ID: id, XAddr: xaddr, IP: dev.IP, Manufacturer: dev.Manufacturer, Model: dev.Model,
		Username: user, Password: pass, MainToken: main.Token, SnapshotURI: dev.SnapshotURI, PTZ: dev.PTZ,
		Presets: dev.Presets, Seen: time.Now().UTC()}
	if sub != nil {
		cam.SubToken = sub.Token
	}
	for _, p := range dev.Profiles {
		cam.Profiles = append(cam.Profiles, agentlink.Profile{Token: p.Token, Name: p.Name, Codec: p.Codec,
			Width: p.Width, Height: p.Height, StreamURI: p.StreamURI})
		if p.PTZ && cam.PTZToken == "" {
			cam.PTZToken = p.Token
		}
	}
	b.mu.Lock()
	if old, ok := b.cameras[id]; ok && cam.Name == "" {
		cam.Name = old.Name
	}
	b.cameras[id] = cam.clone()
	b.saveLocked()
	b.mu.Unlock()
	return cam, nil
}

// StreamURL is a profile's RTSP URL with the camera's credentials in it,
// for the relay.
func (c Camera) StreamURL(token string) (string, error) {
	for _, p := range c.Profiles {
		if p.Token == token && p.StreamURI != "" {
			u, err := url.Parse(p.StreamURI)
			if err != nil {
				return "", err
			}
			if c.Username != "" {
				u.User = url.UserPassword(c.Username, c.Password)
			}
			return u.String(), nil
		}
	}
	return "", fmt.Errorf("camera %s has no stream for profile %q", c.ID, token)
}

func (b *CameraBook) client(id string) (*onvif.Client, Camera, error) {
	cam, ok := b.Get(id)
	if !ok {
		return nil, Camera{}, fmt.Errorf("camera %q unknown to this agent", id)
	}
	c, err := b.onvifClient(cam.XAddr, cam.Username, cam.Password)
	return c, cam, err
}

// RequestKeyframe asks the camera to start a new GOP on a profile
// ("main" or "sub").
func (b *CameraBook) RequestKeyframe(ctx context.Context, id, profile string) error {
	c, cam, err := b.client(id)
	if err != nil {
		return err
	}
	token := cam.MainToken
	if profile == "sub" && cam.SubToken != "" {
		token = cam.SubToken
	}
	return c.SetSynchronizationPoint(ctx, token)
}

// PTZ steers a camera.
func (b *CameraBook) PTZ(ctx context.Context, req agentlink.PTZRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	c, cam, err := b.client(req.Camera)
	if err != nil {
		return err
	}
	if !cam.PTZ {
		return errors.New("this camera has no PTZ")
	}
	token := req.Profile
	if token == "" {
		token = cmp(cam.PTZToken, cam.MainToken)
	}
	switch req.Op {
	case agentlink.PTZMove:
		timeout := time.Duration(req.TimeoutMs) * time.Millisecond
		if timeout == 0 {
			timeout = time.Second
		}
		return c.ContinuousMove(ctx, token, req.Pan, req.Tilt, req.Zoom, timeout)
	case agentlink.PTZStop:
		return c.Stop(ctx, token)
	default:
		return c.GotoPreset(ctx, token, req.Preset)
	}
}

// Snapshot fetches a JPEG from a camera.
func (b *CameraBook) Snapshot(ctx context.Context, id string) ([]byte, string, error) {
	c, cam, err := b.client(id)
	if err != nil {
		return nil, "", err
	}
	uri := cam.SnapshotURI
	if uri == "" {
		if uri, err = c.SnapshotURI(ctx, cam.MainToken); err != nil {
			return nil, "", err
		}
	}
	return c.Snapshot(ctx, uri)
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
