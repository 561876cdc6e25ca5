package onvif

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// DefaultMoveTimeout bounds a ContinuousMove when the caller passes no
// timeout: without one a camera keeps turning until Stop, and a lost Stop
// would leave a mast camera spinning.
const DefaultMoveTimeout = time.Second

func (c *Client) ptzAddr(ctx context.Context, op string) (string, error) {
	s, err := c.services(ctx)
	if err != nil {
		return "", err
	}
	if s.ptz == "" {
		return "", &Error{Op: op, XAddr: c.xaddr, Kind: KindUnsupported, Detail: "camera has no PTZ service"}
	}
	return s.ptz, nil
}

// ContinuousMove starts moving at the given normalised velocities (each
// clamped to [-1, 1]) for at most timeout (DefaultMoveTimeout when <= 0).
func (c *Client) ContinuousMove(ctx context.Context, profileToken string, pan, tilt, zoom float64, timeout time.Duration) (err error) {
	const op = "ContinuousMove"
	defer guard(op, c.xaddr, &err)
	if profileToken == "" {
		return &Error{Op: op, XAddr: c.xaddr, Kind: KindInvalid, Detail: "empty profile token"}
	}
	for _, v := range []float64{pan, tilt, zoom} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &Error{Op: op, XAddr: c.xaddr, Kind: KindInvalid, Detail: fmt.Sprintf("velocity %v is not a number", v)}
		}
	}
	if timeout <= 0 {
		timeout = DefaultMoveTimeout
	}
	addr, err := c.ptzAddr(ctx, op)
	if err != nil {
		return err
	}
	req := reqContinuousMove(profileToken, clamp1(pan), clamp1(tilt), clamp1(zoom), timeout)
	return c.call(ctx, op, svcPTZ, addr, req, nil, callOpts{})
}

func clamp1(v float64) float64 { return math.Max(-1, math.Min(1, v)) }

// Stop stops pan, tilt and zoom movement.
func (c *Client) Stop(ctx context.Context, profileToken string) (err error) {
	defer guard("Stop", c.xaddr, &err)
	if profileToken == "" {
		return &Error{Op: "Stop", XAddr: c.xaddr, Kind: KindInvalid, Detail: "empty profile token"}
	}
	addr, err := c.ptzAddr(ctx, "Stop")
	if err != nil {
		return err
	}
	return c.call(ctx, "Stop", svcPTZ, addr, reqStop(profileToken), nil, callOpts{})
}

// GotoPreset moves to a stored preset at the camera's default speed.
func (c *Client) GotoPreset(ctx context.Context, profileToken, presetToken string) (err error) {
	defer guard("GotoPreset", c.xaddr, &err)
	if profileToken == "" || presetToken == "" {
		return &Error{Op: "GotoPreset", XAddr: c.xaddr, Kind: KindInvalid, Detail: "empty profile or preset token"}
	}
	addr, err := c.ptzAddr(ctx, "GotoPreset")
	if err != nil {
		return err
	}
	// Speed is optional; use-go always marshals it, and a zero speed would
	// keep some cameras still, so it is dropped.
	return c.call(ctx, "GotoPreset", svcPTZ, addr, reqGotoPreset(profileToken, presetToken), nil, callOpts{omit: "tptz:Speed"})
}

// Presets lists the presets stored for a profile.
func (c *Client) Presets(ctx context.Context, profileToken string) (presets []Preset, err error) {
	defer guard("GetPresets", c.xaddr, &err)
	if profileToken == "" {
		return nil, &Error{Op: "GetPresets", XAddr: c.xaddr, Kind: KindInvalid, Detail: "empty profile token"}
	}
	addr, err := c.ptzAddr(ctx, "GetPresets")
	if err != nil {
		return nil, err
	}
	var r presetsResponse
	if err := c.call(ctx, "GetPresets", svcPTZ, addr, reqGetPresets(profileToken), &r, callOpts{}); err != nil {
		return nil, err
	}
	out := make([]Preset, 0, len(r.Preset))
	for _, p := range r.Preset {
		t := strings.TrimSpace(p.Token)
		if t == "" {
			continue // a preset without token cannot be recalled
		}
		out = append(out, Preset{Token: t, Name: strings.TrimSpace(p.Name)})
	}
	return out, nil
}
