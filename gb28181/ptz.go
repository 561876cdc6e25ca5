package gb28181

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tianyan/vms/gb28181/manscdp"
)

// PTZ operations on a channel.
const (
	PTZMove         = "move"
	PTZStop         = "stop"
	PTZPresetGoto   = "preset"
	PTZPresetSet    = "preset_set"
	PTZPresetDelete = "preset_delete"
)

// ptzDefaultMove is how long a move lasts when the caller names no
// timeout: GB/T 28181 has no timed move, so we send the stop ourselves.
const ptzDefaultMove = time.Second

// ErrBadPTZ wraps a PTZ command that cannot be sent as asked.
var ErrBadPTZ = errors.New("bad PTZ command")

// PTZCommand steers a channel, in the same terms as ONVIF points:
// speeds within [-1, 1] (pan + right, tilt + up, zoom + in), a move that
// stops by itself after Timeout, presets 1–255.
type PTZCommand struct {
	Op              string
	Pan, Tilt, Zoom float64
	Timeout         time.Duration
	Preset          int
	ControlPriority int // 1–5 (GB/T 28181-2016 A.2.3.1), 0 to leave out
}

// ptzEncode translates c into the PTZ value of its PTZCmd.
func ptzEncode(c PTZCommand) (manscdp.PTZ, error) {
	p := manscdp.PTZ{Address: 1}
	switch c.Op {
	case PTZMove:
		for _, v := range []float64{c.Pan, c.Tilt, c.Zoom} {
			if math.IsNaN(v) || v < -1 || v > 1 {
				return p, fmt.Errorf("%w: pan, tilt and zoom speeds must be within [-1, 1]", ErrBadPTZ)
			}
		}
		p.Op = manscdp.PTZMove
		p.Pan, p.PanSpeed = ptzAxis(c.Pan, 255)
		p.Tilt, p.TiltSpeed = ptzAxis(c.Tilt, 255)
		p.Zoom, p.ZoomSpeed = ptzAxis(c.Zoom, 15)
	case PTZStop:
		p.Op = manscdp.PTZMove
	case PTZPresetGoto, PTZPresetSet, PTZPresetDelete:
		if c.Preset < 1 || c.Preset > 255 {
			return p, fmt.Errorf("%w: a GB/T 28181 preset is a number from 1 to 255", ErrBadPTZ)
		}
		p.Preset = uint8(c.Preset)
		p.Op = map[string]manscdp.PTZOp{PTZPresetGoto: manscdp.PTZPresetGoto, PTZPresetSet: manscdp.PTZPresetSet,
			PTZPresetDelete: manscdp.PTZPresetDelete}[c.Op]
	default:
		return p, fmt.Errorf("%w: unknown op %q (want move, stop, preset, preset_set or preset_delete)", ErrBadPTZ, c.Op)
	}
	return p, nil
}

// ptzAxis turns a speed in [-1, 1] into a direction and a speed byte of
// at most max; any movement at all gets at least speed 1.
func ptzAxis(v float64, max uint8) (int8, uint8) {
	switch {
	case v > 0:
		return 1, uint8(math.Max(1, math.Round(v*float64(max))))
	case v < 0:
		return -1, uint8(math.Max(1, math.Round(-v*float64(max))))
	}
	return 0, 0
}

// ptzStops holds the pending automatic stop of each steered channel.
type ptzStops struct {
	mu     sync.Mutex
	timers map[string]*time.Timer
	closed bool
	// firing counts stops being sent; close waits for them. Add happens
	// under mu while !closed, so it never races the Wait.
	firing sync.WaitGroup
}

// arm (re)schedules f for channel after d; a later move replaces it.
func (s *ptzStops) arm(channel string, d time.Duration, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.timers == nil {
		s.timers = map[string]*time.Timer{}
	}
	if t := s.timers[channel]; t != nil {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		mine := s.timers[channel] == t && !s.closed
		if mine {
			delete(s.timers, channel)
			s.firing.Add(1)
		}
		s.mu.Unlock()
		if mine {
			defer s.firing.Done()
			f()
		}
	})
	s.timers[channel] = t
}

// cancel drops a channel's pending stop (an explicit command came).
func (s *ptzStops) cancel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timers[channel]; t != nil {
		t.Stop()
		delete(s.timers, channel)
	}
}

// close stops every pending stop and waits for those being sent; none
// fires afterwards.
func (s *ptzStops) close() {
	s.mu.Lock()
	s.closed = true
	for k, t := range s.timers {
		t.Stop()
		delete(s.timers, k)
	}
	s.mu.Unlock()
	s.firing.Wait()
}

// PTZ steers a device's channel with DeviceControl PTZCmd. A move is
// followed by a stop after cmd.Timeout (default 1 s) unless another
// command for the channel comes first, so a viewer whose browser vanishes
// mid-move does not leave the camera spinning. Who may steer, and who
// wins between users, is decided before this is called (the ptz grant
// and the PTZ arbiter).
func (l *Live) PTZ(ctx context.Context, deviceID, channelID string, cmd PTZCommand) error {
	p, err := ptzEncode(cmd)
	if err != nil {
		return err
	}
	peer, ok := l.devicePeer(deviceID)
	if !ok {
		return ErrDeviceOffline
	}
	ctl := &manscdp.DeviceControl{Header: manscdp.Header{CmdType: manscdp.CmdDeviceControl, SN: NextSN(), DeviceID: channelID},
		PTZCmd: manscdp.EncodePTZ(p)}
	if cmd.ControlPriority >= 1 && cmd.ControlPriority <= 5 {
		ctl.Info = &manscdp.ControlInfo{ControlPriority: cmd.ControlPriority}
	}
	if cmd.Op != PTZMove {
		l.ptzStops.cancel(channelID)
	}
	if err := l.control(ctx, peer, ctl); err != nil {
		return err
	}
	if cmd.Op == PTZMove {
		d := cmd.Timeout
		if d <= 0 {
			d = ptzDefaultMove
		}
		l.ptzStops.arm(channelID, d, func() {
			sctx, cancel := context.WithTimeout(l.srv.Context(), l.srv.Config().RequestTimeout)
			defer cancel()
			stop := &manscdp.DeviceControl{Header: manscdp.Header{CmdType: manscdp.CmdDeviceControl, SN: NextSN(), DeviceID: channelID},
				PTZCmd: manscdp.EncodePTZ(manscdp.PTZ{Op: manscdp.PTZMove, Address: 1})}
			if peer, ok := l.devicePeer(deviceID); ok {
				if err := l.control(sctx, peer, stop); err != nil {
					l.log.Warn("gb28181: PTZ stop after the move's timeout failed", "device", deviceID, "channel", channelID, "err", err)
				}
			}
		})
	}
	return nil
}
