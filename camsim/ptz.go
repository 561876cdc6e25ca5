package camsim

import (
	"math"
	"sync"
	"time"
)

// PTZVector is a PTZ position in ONVIF's generic spaces: Pan and Tilt in
// [-1, 1], Zoom in [0, 1].
type PTZVector struct {
	Pan, Tilt, Zoom float64
}

// ptzFullSpeed is how far one axis moves per second at velocity 1: a full
// pan sweep (-1 to 1) takes two seconds, a full zoom one.
const ptzFullSpeed = 1.0

// defaultPTZTimeout bounds a ContinuousMove that names no Timeout, as the
// configuration's DefaultPTZTimeout says.
const defaultPTZTimeout = 10 * time.Second

// ptzState is the head's position. It has no goroutine: the position is
// integrated from the last command whenever it is read, so a move stops
// by itself at its deadline or at the end of travel.
type ptzState struct {
	now func() time.Time

	mu       sync.Mutex
	base     PTZVector // position at since
	velocity PTZVector
	since    time.Time
	until    time.Time // the move's deadline
}

func newPTZState(now func() time.Time) *ptzState {
	t := now()
	return &ptzState{now: now, since: t, until: t}
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// at is the position at t; the caller holds mu.
func (p *ptzState) at(t time.Time) PTZVector {
	end := t
	if end.After(p.until) {
		end = p.until
	}
	dt := end.Sub(p.since).Seconds()
	if dt < 0 {
		dt = 0
	}
	return PTZVector{
		Pan:  clamp(p.base.Pan+p.velocity.Pan*ptzFullSpeed*dt, -1, 1),
		Tilt: clamp(p.base.Tilt+p.velocity.Tilt*ptzFullSpeed*dt, -1, 1),
		Zoom: clamp(p.base.Zoom+p.velocity.Zoom*ptzFullSpeed*dt, 0, 1),
	}
}

// rebase freezes the current position as the new starting point.
func (p *ptzState) rebase(t time.Time) {
	p.base = p.at(t)
	p.since = t
}

func (p *ptzState) position() PTZVector {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at(p.now())
}

// moving reports, per axis group, whether the head is still moving (a
// velocity, before the deadline, not held at the end of travel).
func (p *ptzState) moving() (panTilt, zoom bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	if !t.Before(p.until) {
		return false, false
	}
	pos := p.at(t)
	axis := func(v, x, lo, hi float64) bool { return (v > 0 && x < hi) || (v < 0 && x > lo) }
	panTilt = axis(p.velocity.Pan, pos.Pan, -1, 1) || axis(p.velocity.Tilt, pos.Tilt, -1, 1)
	zoom = axis(p.velocity.Zoom, pos.Zoom, 0, 1)
	return panTilt, zoom
}

// continuousMove starts moving at v (each component in [-1, 1]) for at most
// timeout.
func (p *ptzState) continuousMove(v PTZVector, timeout time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	p.rebase(t)
	p.velocity = v
	p.until = t.Add(timeout)
}

// stop halts the pan/tilt axes, the zoom axis, or both.
func (p *ptzState) stop(panTilt, zoom bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rebase(p.now())
	if panTilt {
		p.velocity.Pan, p.velocity.Tilt = 0, 0
	}
	if zoom {
		p.velocity.Zoom = 0
	}
}

// moveTo jumps to a position (presets, AbsoluteMove) and stops there.
func (p *ptzState) moveTo(v PTZVector) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	p.base = PTZVector{clamp(v.Pan, -1, 1), clamp(v.Tilt, -1, 1), clamp(v.Zoom, 0, 1)}
	p.velocity = PTZVector{}
	p.since, p.until = t, t
}
