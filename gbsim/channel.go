package gbsim

import (
	"sync"
	"time"

	"github.com/tianyan/vms/gb28181/manscdp"
)

// Channel is one simulated camera channel of a device. Its configuration
// is fixed but for Off (see Device.SetChannelStatus).
type Channel struct {
	ChannelConfig

	mu         sync.Mutex
	pos        Position
	vel        Position // units per second while moving
	since      time.Time
	last       manscdp.PTZ
	commands   int
	presets    map[uint8]Position
	keyframeRq int
	kick       []chan struct{} // sessions waiting for a keyframe request
}

// Position is a simulated PTZ position: Pan in degrees (wraps at 360),
// Tilt in degrees (-90..90), Zoom as a magnification (1..30).
type Position struct {
	Pan, Tilt, Zoom float64
}

// PTZState is what a test can read back about a channel's PTZ.
type PTZState struct {
	Position
	Moving bool
	// Last is the last PTZ command obeyed; Commands counts them.
	Last     manscdp.PTZ
	Commands int
}

func newChannel(cfg ChannelConfig) *Channel {
	return &Channel{ChannelConfig: cfg, pos: Position{Zoom: 1}, presets: map[uint8]Position{}}
}

// Degrees per second at full speed (255) for pan/tilt, magnification per
// second at full zoom speed (15); lower speeds scale linearly.
const (
	panTiltFull = 120.0
	zoomFull    = 6.0
)

// settle folds motion since the last command into pos; c.mu held.
func (c *Channel) settle(now time.Time) {
	if c.since.IsZero() {
		c.since = now
		return
	}
	dt := now.Sub(c.since).Seconds()
	c.since = now
	if c.vel == (Position{}) || dt <= 0 {
		return
	}
	c.pos.Pan += c.vel.Pan * dt
	for c.pos.Pan >= 360 {
		c.pos.Pan -= 360
	}
	for c.pos.Pan < 0 {
		c.pos.Pan += 360
	}
	c.pos.Tilt = clamp(c.pos.Tilt+c.vel.Tilt*dt, -90, 90)
	c.pos.Zoom = clamp(c.pos.Zoom+c.vel.Zoom*dt, 1, 30)
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(hi, v)) }

// applyPTZ obeys one decoded PTZCmd.
func (c *Channel) applyPTZ(p manscdp.PTZ) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.settle(now)
	c.last = p
	c.commands++
	switch p.Op {
	case manscdp.PTZMove:
		// A speed of 0 with a direction still moves, slowly: devices
		// treat it as their minimum.
		sp := func(dir int8, speed uint8, full, steps float64) float64 {
			return float64(dir) * full * max(float64(speed), 1) / steps
		}
		c.vel = Position{
			Pan:  sp(p.Pan, p.PanSpeed, panTiltFull, 255),
			Tilt: sp(p.Tilt, p.TiltSpeed, panTiltFull, 255),
			Zoom: sp(p.Zoom, p.ZoomSpeed, zoomFull, 15),
		}
	case manscdp.PTZFocusIris:
		// Focus and iris have no position to keep; the command is
		// recorded in last.
		c.vel = Position{}
	case manscdp.PTZPresetSet:
		c.vel = Position{}
		c.presets[p.Preset] = c.pos
	case manscdp.PTZPresetGoto:
		c.vel = Position{}
		if pos, ok := c.presets[p.Preset]; ok {
			c.pos = pos
		}
	case manscdp.PTZPresetDelete:
		delete(c.presets, p.Preset)
	}
}

// PTZ returns the channel's PTZ state now.
func (c *Channel) PTZ() PTZState {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle(time.Now())
	return PTZState{Position: c.pos, Moving: c.vel != (Position{}), Last: c.last, Commands: c.commands}
}

// Presets returns the stored preset numbers.
func (c *Channel) Presets() []uint8 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]uint8, 0, len(c.presets))
	for i := 1; i < 256; i++ {
		if _, ok := c.presets[uint8(i)]; ok {
			out = append(out, uint8(i))
		}
	}
	return out
}

// KeyframeRequests counts IFameCmd commands received for the channel.
func (c *Channel) KeyframeRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keyframeRq
}

// requestKeyframe records an IFameCmd and tells every live session of the
// channel to send a keyframe next.
func (c *Channel) requestKeyframe() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keyframeRq++
	for _, k := range c.kick {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

// watchKeyframes registers a session's kick channel; the returned func
// removes it.
func (c *Channel) watchKeyframes() (<-chan struct{}, func()) {
	k := make(chan struct{}, 1)
	c.mu.Lock()
	c.kick = append(c.kick, k)
	c.mu.Unlock()
	return k, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.kick {
			if x == k {
				c.kick = append(c.kick[:i], c.kick[i+1:]...)
				break
			}
		}
	}
}

func (c *Channel) item(d *DeviceConfig) manscdp.Item {
	it := manscdp.Item{
		DeviceID: c.ID, Name: c.Name, Manufacturer: d.Manufacturer, Model: d.Model, Owner: "Owner",
		CivilCode: c.CivilCode, Address: "Address", ParentID: c.ParentID, BusinessGroupID: c.BusinessGroupID,
		RegisterWay: 1, Status: manscdp.StatusOn, Longitude: c.Longitude, Latitude: c.Latitude,
	}
	c.mu.Lock()
	off := c.Off
	c.mu.Unlock()
	if off {
		it.Status = manscdp.StatusOff
	}
	if c.PTZType != 0 {
		it.Info = &manscdp.Info{PTZType: c.PTZType}
	}
	if d.Quirks.V2022 {
		with2022(&it, c)
	}
	return it
}
