package gb28181

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Device is a device or lower platform that registered to us, as the registry knows it now.
type Device struct {
	// ID is the device's 20-digit ID (the From user of its REGISTER).
	ID string `json:"id"`
	// Name, Manufacturer, Model and Firmware come from DeviceInfo or an admin (Name).
	Name         string `json:"name,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	Firmware     string `json:"firmware,omitempty"`
	// Transport is the signalling transport of its REGISTER: "UDP" or "TCP".
	Transport string `json:"transport"`
	// Addr is the source host:port of its REGISTER (after NAT); requests to it go there.
	Addr string `json:"address"`
	// Contact is the Contact URI it declared (informational: behind NAT it is often private).
	Contact string `json:"contact,omitempty"`
	// RegisteredAt is when its current registration was accepted; Expires is its lifetime.
	RegisteredAt time.Time     `json:"registered_at"`
	Expires      time.Duration `json:"expires"`
	// LastKeepalive is when the last keepalive (or registration) arrived.
	LastKeepalive time.Time `json:"last_keepalive"`
	// KeepaliveInterval is the interval the device reported; 0 means the configured one applies.
	KeepaliveInterval time.Duration `json:"keepalive_interval,omitempty"`
	// Online is true between an accepted registration and 3 missed keepalives, expiry or unregister.
	Online bool `json:"online"`
	// StreamTransport is how its media is asked for: "udp" or "tcp" (TCP passive on our side).
	StreamTransport string `json:"stream_transport"`
	// Version is the GB/T 28181 edition it speaks ("2011", "2016", "2022"), when known.
	Version string `json:"version,omitempty"`
	// Channels and Flagged count its channels and those needing an admin (civil code, category).
	Channels int `json:"channels"`
	Flagged  int `json:"flagged"`

	callID string // Call-ID of its registration: a new one means the device restarted
}

// Peer is where to reach the device.
func (d Device) Peer() Peer {
	return Peer{ID: d.ID, Addr: d.Addr, Transport: d.Transport}
}

// keepaliveDeadline is when the device goes offline if nothing more arrives.
func (d Device) keepaliveDeadline(def time.Duration) time.Time {
	iv := d.KeepaliveInterval
	if iv <= 0 {
		iv = def
	}
	last := d.LastKeepalive
	if d.RegisteredAt.After(last) {
		last = d.RegisteredAt
	}
	return last.Add(MissedKeepalives * iv)
}

// DeviceEventKind says what happened to a device.
type DeviceEventKind int

// Device events, delivered to Registry.OnChange listeners.
const (
	// DeviceRegistered: a registration was accepted (first time, after a restart, or a refresh that
	// changed its address).
	DeviceRegistered DeviceEventKind = iota + 1
	// DeviceOnline: a device that was offline sent a keepalive again.
	DeviceOnline
	// DeviceOffline: 3 keepalive intervals passed in silence, or its registration expired.
	DeviceOffline
	// DeviceUnregistered: it unregistered (Expires: 0) or an admin removed it.
	DeviceUnregistered
	// DeviceUpdated: details changed (name, info, channel counts, stream transport).
	DeviceUpdated
)

func (k DeviceEventKind) String() string {
	switch k {
	case DeviceRegistered:
		return "registered"
	case DeviceOnline:
		return "online"
	case DeviceOffline:
		return "offline"
	case DeviceUnregistered:
		return "unregistered"
	case DeviceUpdated:
		return "updated"
	}
	return "unknown"
}

// DeviceEvent is one change of a device.
type DeviceEvent struct {
	Kind   DeviceEventKind
	Device Device
}

// Registry holds the devices known to the server. Its methods are safe for concurrent use; listeners
// run after the change, outside the lock, on the goroutine that made it.
type Registry struct {
	mu        sync.RWMutex
	devices   map[string]*Device
	listeners []func(DeviceEvent)
}

func newRegistry() *Registry {
	return &Registry{devices: map[string]*Device{}}
}

// OnChange adds a listener for device events (live uses DeviceRegistered/DeviceOnline to resume
// viewers; the store persists). Listeners must be quick.
func (g *Registry) OnChange(f func(DeviceEvent)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.listeners = append(g.listeners, f)
}

// Get returns a copy of device id.
func (g *Registry) Get(id string) (Device, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	d, ok := g.devices[id]
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// List returns copies of all devices, by ID.
func (g *Registry) List() []Device {
	g.mu.RLock()
	out := make([]Device, 0, len(g.devices))
	for _, d := range g.devices {
		out = append(out, *d)
	}
	g.mu.RUnlock()
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Len is the number of known devices.
func (g *Registry) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.devices)
}

// Online is the number of online devices.
func (g *Registry) Online() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := 0
	for _, d := range g.devices {
		if d.Online {
			n++
		}
	}
	return n
}

// Update changes device id with f (creating it if create is true) and emits the event f returns
// (0 = none). It reports whether the device exists afterwards.
func (g *Registry) Update(id string, create bool, f func(d *Device) DeviceEventKind) bool {
	g.mu.Lock()
	d, ok := g.devices[id]
	if !ok {
		if !create {
			g.mu.Unlock()
			return false
		}
		d = &Device{ID: id, StreamTransport: "udp"}
		g.devices[id] = d
	}
	kind := f(d)
	snap := *d
	ls := g.listeners
	g.mu.Unlock()
	if kind != 0 {
		for _, l := range ls {
			l(DeviceEvent{Kind: kind, Device: snap})
		}
	}
	return true
}

// Remove forgets device id and emits DeviceUnregistered.
func (g *Registry) Remove(id string) bool {
	g.mu.Lock()
	d, ok := g.devices[id]
	if ok {
		delete(g.devices, id)
	}
	ls := g.listeners
	g.mu.Unlock()
	if ok {
		snap := *d
		snap.Online = false
		for _, l := range ls {
			l(DeviceEvent{Kind: DeviceUnregistered, Device: snap})
		}
	}
	return ok
}

// put loads a device (from the store at startup) without emitting events.
func (g *Registry) put(d Device) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := d
	g.devices[d.ID] = &c
}

// watchDevices marks devices offline after MissedKeepalives silent intervals or when their
// registration expires. It is the only place that turns devices offline by time.
func (s *Server) watchDevices(ctx context.Context) {
	tick := s.cfg.KeepaliveInterval / 4
	tick = min(max(tick, 20*time.Millisecond), 5*time.Second)
	every(ctx, tick, func() { s.expireDevices(s.cfg.Now()) })
}

func (s *Server) expireDevices(now time.Time) {
	var stale []string
	for _, d := range s.devices.List() {
		if !d.Online {
			continue
		}
		// Reported intervals shorter than our tick cannot be honoured finer than the tick; that only
		// makes offline later, never earlier.
		expired := d.Expires > 0 && now.After(d.RegisteredAt.Add(d.Expires))
		if expired || now.After(d.keepaliveDeadline(s.cfg.KeepaliveInterval)) {
			stale = append(stale, d.ID)
		}
	}
	for _, id := range stale {
		s.devices.Update(id, false, func(d *Device) DeviceEventKind {
			if !d.Online {
				return 0
			}
			expired := d.Expires > 0 && now.After(d.RegisteredAt.Add(d.Expires))
			if !expired && !now.After(d.keepaliveDeadline(s.cfg.KeepaliveInterval)) {
				return 0 // a keepalive arrived meanwhile
			}
			d.Online = false
			s.log.Info("gb28181: device offline", "device", d.ID, "expired", expired, "last_keepalive", d.LastKeepalive)
			return DeviceOffline
		})
	}
}
