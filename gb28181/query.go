package gb28181

import (
	"context"
	"errors"
	"fmt"

	"github.com/tianyan/vms/gb28181/manscdp"
)

// ErrDeviceOffline is returned for a device that is not registered and
// online.
var ErrDeviceOffline = errors.New("gb28181: the device is not online")

// ErrNoAnswer is returned when a device acknowledged a query but sent no
// answer in time.
var ErrNoAnswer = errors.New("gb28181: the device did not answer in time")

// DeviceInfo asks a device for its identity (name, maker, model,
// firmware, channel count).
func (l *Live) DeviceInfo(ctx context.Context, deviceID string) (*manscdp.DeviceInfoResponse, error) {
	return query[*manscdp.DeviceInfoResponse](ctx, l, deviceID, deviceID, manscdp.CmdDeviceInfo,
		func(sn int) any {
			return &manscdp.DeviceInfoQuery{Header: manscdp.Header{CmdType: manscdp.CmdDeviceInfo, SN: sn, DeviceID: deviceID}}
		})
}

// DeviceStatus asks a device for its running state (online, encoding,
// recording, alarms, clock).
func (l *Live) DeviceStatus(ctx context.Context, deviceID string) (*manscdp.DeviceStatusResponse, error) {
	return query[*manscdp.DeviceStatusResponse](ctx, l, deviceID, deviceID, manscdp.CmdDeviceStatus,
		func(sn int) any {
			return &manscdp.DeviceStatusQuery{Header: manscdp.Header{CmdType: manscdp.CmdDeviceStatus, SN: sn, DeviceID: deviceID}}
		})
}

// Presets asks a channel for its stored presets.
func (l *Live) Presets(ctx context.Context, deviceID, channelID string) ([]manscdp.Preset, error) {
	res, err := query[*manscdp.PresetQueryResponse](ctx, l, deviceID, channelID, manscdp.CmdPresetQuery,
		func(sn int) any {
			return &manscdp.PresetQuery{Header: manscdp.Header{CmdType: manscdp.CmdPresetQuery, SN: sn, DeviceID: channelID}}
		})
	if err != nil {
		return nil, err
	}
	return res.PresetList.Items, nil
}

// query sends a MANSCDP Query to target (the device or one of its
// channels) and waits for the Response MESSAGE with its SN, at most the
// server's request timeout. The device answers the MESSAGE at once and
// the Response later, in a MESSAGE of its own.
func query[T any](ctx context.Context, l *Live, deviceID, target string, cmd manscdp.CmdType, build func(sn int) any) (T, error) {
	var zero T
	peer, ok := l.devicePeer(deviceID)
	if !ok {
		return zero, ErrDeviceOffline
	}
	ctx, cancel := context.WithTimeout(ctx, l.srv.Config().RequestTimeout)
	defer cancel()
	sn := NextSN()
	body, err := manscdp.Marshal(build(sn), bodyCharset)
	if err != nil {
		return zero, err
	}
	type answer struct {
		v   T
		err error
	}
	got := make(chan answer, 1)
	// Expect before sending: a fast device answers before Do returns.
	stop := l.srv.Expect(deviceID, string(cmd), sn, func(r *Request) {
		m, err := manscdp.Parse(r.Body())
		var a answer
		switch v, ok := m.Body.(T); {
		case err != nil:
			a.err = fmt.Errorf("gb28181: the device's %s answer: %w", cmd, err)
		case !ok:
			a.err = fmt.Errorf("gb28181: the device's %s answer is not one", cmd)
		default:
			a.v = v
		}
		select {
		case got <- a:
		default: // a second answer for the same SN: the first stands
		}
	})
	defer stop()
	if err := l.srv.SendMANSCDP(ctx, peer, target, body); err != nil {
		return zero, err
	}
	select {
	case a := <-got:
		return a.v, a.err
	case <-ctx.Done():
		return zero, ErrNoAnswer
	}
}
