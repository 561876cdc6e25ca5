package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/gb28181/manscdp"
)

// gbPTZ steers the channels of GB/T 28181 devices (gb28181.Live).
type gbPTZ interface {
	PTZ(ctx context.Context, deviceID, channelID string, cmd gb28181.PTZCommand) error
}

// gbRequestError answers a request to a GB/T 28181 device that failed.
func gbRequestError(c *gin.Context, h *agentHandler, err error) {
	var status *gb28181.StatusError
	switch {
	case errors.Is(err, gb28181.ErrBadPTZ):
		fail(c, http.StatusUnprocessableEntity, "invalid", err.Error())
	case errors.Is(err, gb28181.ErrDeviceOffline):
		fail(c, http.StatusServiceUnavailable, "device_offline", "the GB/T 28181 device of this camera is not online")
	case errors.Is(err, gb28181.ErrNoAnswer), errors.Is(err, context.DeadlineExceeded):
		fail(c, http.StatusGatewayTimeout, "device_timeout", "the GB/T 28181 device did not answer in time")
	case errors.As(err, &status):
		fail(c, http.StatusBadGateway, "camera_error", status.Error())
	default:
		h.log.Warn("GB/T 28181 request failed", "err", err)
		fail(c, http.StatusBadGateway, "camera_error", err.Error())
	}
}

// ptzGB steers a channel of a GB/T 28181 device through DeviceControl
// PTZCmd: the same request body, grant and PTZ priority as a point behind
// an edge agent, so the web app's pad works unchanged. GB points also take
// preset_set and preset_delete (presets are numbers 1–255).
func (h *agentHandler) ptzGB(c *gin.Context, p catalog.Point) {
	if h.gb == nil {
		fail(c, http.StatusConflict, "no_ptz", "this server does not speak GB/T 28181")
		return
	}
	var req agentlink.PTZRequest
	if !decodeJSON(c, &req) {
		return
	}
	cmd := gb28181.PTZCommand{Op: req.Op, Pan: req.Pan, Tilt: req.Tilt, Zoom: req.Zoom}
	if req.TimeoutMs < 0 || req.TimeoutMs > 10000 {
		fail(c, http.StatusUnprocessableEntity, "invalid", "timeout_ms must be within 0..10000")
		return
	}
	cmd.Timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	switch req.Op {
	case gb28181.PTZPresetGoto, gb28181.PTZPresetSet, gb28181.PTZPresetDelete:
		n, err := strconv.Atoi(strings.TrimSpace(req.Preset))
		if err != nil {
			fail(c, http.StatusUnprocessableEntity, "invalid", "preset must be a number from 1 to 255 on a GB/T 28181 camera")
			return
		}
		cmd.Preset = n
	}
	u := currentUser(c)
	prio := 0
	if h.leases != nil {
		prio = h.decide.PTZPriority(u, p)
		if ok, holder := h.leases.Acquire(p.ID, u.Username, prio, time.Now()); !ok {
			fail(c, http.StatusConflict, "ptz_busy", "PTZ is held by "+holder)
			return
		}
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 10*time.Second)
	defer cancel()
	if err := h.gb.PTZ(ctx, p.Main.Device, p.ID, cmd); err != nil {
		gbRequestError(c, h, err)
		return
	}
	h.trail.record(audit.Record{User: u.Username, Action: "ptz." + req.Op, Point: p.ID, ClientIP: c.ClientIP()})
	c.Status(http.StatusNoContent)
}

// gbQueries asks GB/T 28181 devices about themselves (gb28181.Live).
type gbQueries interface {
	DeviceInfo(ctx context.Context, deviceID string) (*manscdp.DeviceInfoResponse, error)
	DeviceStatus(ctx context.Context, deviceID string) (*manscdp.DeviceStatusResponse, error)
}

// gbLiveHandler answers the administrator's questions to a device, asked
// over SIP at the time of the request (DeviceInfo, DeviceStatus).
type gbLiveHandler struct {
	live gbQueries
	log  *slog.Logger
}

// gbDeviceInfo is a device's DeviceInfo answer.
type gbDeviceInfo struct {
	Device       string `json:"device"`
	Name         string `json:"name,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	Firmware     string `json:"firmware,omitempty"`
	// Channels is the number of channels the device says it has.
	Channels int `json:"channels"`
	// Result is the device's own verdict: "OK" or "ERROR".
	Result string `json:"result,omitempty"`
}

// gbDeviceStatus is a device's DeviceStatus answer.
type gbDeviceStatus struct {
	Device string `json:"device"`
	// Online is "ONLINE" or "OFFLINE" as the device sees itself; Status
	// "OK" or "ERROR", with Reason.
	Online     string          `json:"online,omitempty"`
	Status     string          `json:"status,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Encode     string          `json:"encode,omitempty"`
	Record     string          `json:"record,omitempty"`
	DeviceTime string          `json:"device_time,omitempty"`
	Result     string          `json:"result,omitempty"`
	Alarms     []gbAlarmStatus `json:"alarms,omitempty"`
}

// gbAlarmStatus is one alarm input's duty state.
type gbAlarmStatus struct {
	Device     string `json:"device"`
	DutyStatus string `json:"duty_status"`
}

// info answers GET /api/v1/gb/devices/{id}/info.
func (h *gbLiveHandler) info(c *gin.Context) {
	id := c.Param("id")
	if !gb28181.IsID(id) {
		notFound(c, "device")
		return
	}
	res, err := h.live.DeviceInfo(c.Request.Context(), id)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gbDeviceInfo{Device: id, Name: res.DeviceName, Manufacturer: res.Manufacturer, Model: res.Model,
		Firmware: res.Firmware, Channels: res.Channel, Result: res.Result})
}

// status answers GET /api/v1/gb/devices/{id}/status.
func (h *gbLiveHandler) status(c *gin.Context) {
	id := c.Param("id")
	if !gb28181.IsID(id) {
		notFound(c, "device")
		return
	}
	res, err := h.live.DeviceStatus(c.Request.Context(), id)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := gbDeviceStatus{Device: id, Online: res.Online, Status: res.Status, Reason: res.Reason, Encode: res.Encode,
		Record: res.Record, DeviceTime: res.DeviceTime, Result: res.Result}
	if res.Alarms != nil {
		for _, a := range res.Alarms.Items {
			out.Alarms = append(out.Alarms, gbAlarmStatus{Device: a.DeviceID, DutyStatus: a.DutyStatus})
		}
	}
	c.JSON(http.StatusOK, out)
}

func (h *gbLiveHandler) fail(c *gin.Context, err error) {
	switch {
	case errors.Is(err, gb28181.ErrDeviceOffline):
		fail(c, http.StatusServiceUnavailable, "device_offline", "the GB/T 28181 device is not online")
	case errors.Is(err, gb28181.ErrNoAnswer), errors.Is(err, context.DeadlineExceeded):
		fail(c, http.StatusGatewayTimeout, "device_timeout", "the GB/T 28181 device did not answer in time")
	default:
		h.log.Warn("GB/T 28181 query failed", "err", err)
		fail(c, http.StatusBadGateway, "device_error", err.Error())
	}
}
