package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/store"
)

// gbDeviceAdmin is the part of the GB/T 28181 server that administers the devices registering to
// us, their channels and the channel → category mapping rules.
type gbDeviceAdmin interface {
	ListDevices() []gb28181.Device
	Device(id string) (gb28181.Device, bool)
	PrepareDevice(id string, p gb28181.DevicePatch, hooks ...store.TxHook) (gb28181.Device, error)
	UpdateDevice(id string, p gb28181.DevicePatch, hooks ...store.TxHook) (gb28181.Device, error)
	DeleteDevice(id string, hooks ...store.TxHook) error
	QueryCatalog(ctx context.Context, device string) (gb28181.CatalogResult, error)
	Channels(device string) ([]gb28181.Channel, error)
	ListRules() []gb28181.Rule
	CreateRule(r gb28181.Rule, by string, hooks ...store.TxHook) (gb28181.Rule, error)
	UpdateRule(id string, r gb28181.Rule, hooks ...store.TxHook) (gb28181.Rule, error)
	DeleteRule(id string, hooks ...store.TxHook) error
}

// gbDeviceHandler answers /api/v1/gb/devices, /api/v1/gb/channels and /api/v1/gb/rules.
type gbDeviceHandler struct {
	gb    gbDeviceAdmin
	trail auditTrail
	log   *slog.Logger
}

func gbError(c *gin.Context, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, gb28181.ErrDeviceNotFound):
		notFound(c, "device")
	case errors.Is(err, gb28181.ErrRuleNotFound):
		notFound(c, "rule")
	case errors.Is(err, gb28181.ErrInvalidDevice), errors.Is(err, gb28181.ErrInvalidRule):
		fail(c, http.StatusUnprocessableEntity, "invalid", err.Error())
	case errors.Is(err, gb28181.ErrNoPeer):
		fail(c, http.StatusConflict, "device_offline", "the device is not registered")
	case errors.Is(err, gb28181.ErrCatalogBusy):
		fail(c, http.StatusConflict, "busy", err.Error())
	case errors.Is(err, errAuditFailed):
		fail(c, http.StatusInternalServerError, "internal", "the change could not be recorded; nothing was changed")
	case errors.Is(err, context.DeadlineExceeded):
		fail(c, http.StatusGatewayTimeout, "device_timeout", "the device did not answer in time")
	default:
		log.Warn("gb28181 request failed", "err", err)
		fail(c, http.StatusBadGateway, "device_error", err.Error())
	}
}

// gbDeviceRequest creates a device record ahead of its first registration (its own password).
type gbDeviceRequest struct {
	ID              string  `json:"id"`
	Name            *string `json:"name,omitempty"`
	Password        *string `json:"password,omitempty"`
	StreamTransport *string `json:"stream_transport,omitempty"`
}

// gbDeviceView is a device as the API shows it: durations in seconds.
type gbDeviceView struct {
	gb28181.Device
	Expires           int64 `json:"expires"`                      // seconds its registration lasts
	KeepaliveInterval int64 `json:"keepalive_interval,omitempty"` // seconds, when the device reported its own
}

func viewOfDevice(d gb28181.Device) gbDeviceView {
	return gbDeviceView{Device: d, Expires: int64(d.Expires / time.Second), KeepaliveInterval: int64(d.KeepaliveInterval / time.Second)}
}

func (h *gbDeviceHandler) listDevices(c *gin.Context) {
	list := h.gb.ListDevices()
	out := make([]gbDeviceView, len(list))
	for i, d := range list {
		out[i] = viewOfDevice(d)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
}

func auditPatch(id string, p gb28181.DevicePatch) map[string]string {
	d := map[string]string{"device": id}
	if p.Name != nil {
		d["name"] = *p.Name
	}
	if p.StreamTransport != nil {
		d["stream_transport"] = *p.StreamTransport
	}
	if p.Password != nil {
		d["password"] = "changed" // never the password itself
	}
	return d
}

func (h *gbDeviceHandler) createDevice(c *gin.Context) {
	var req gbDeviceRequest
	if !decodeJSON(c, &req) {
		return
	}
	if !gb28181.IsID(req.ID) {
		failField(c, http.StatusUnprocessableEntity, "invalid", "id", "must be a 20-digit GB/T 28181 ID")
		return
	}
	if _, exists := h.gb.Device(req.ID); exists {
		fail(c, http.StatusConflict, "exists", "device already known")
		return
	}
	p := gb28181.DevicePatch{Name: req.Name, Password: req.Password, StreamTransport: req.StreamTransport}
	if err := p.Validate(); err != nil {
		gbError(c, h.log, err)
		return
	}
	d, err := h.gb.PrepareDevice(req.ID, p, h.trail.auditedBy(c, "gb.device.create", auditPatch(req.ID, p)))
	if err != nil {
		gbError(c, h.log, err)
		return
	}
	c.JSON(http.StatusCreated, viewOfDevice(d))
}

func (h *gbDeviceHandler) patchDevice(c *gin.Context) {
	var p gb28181.DevicePatch
	if !decodeJSON(c, &p) {
		return
	}
	id := c.Param("id")
	d, err := h.gb.UpdateDevice(id, p, h.trail.auditedBy(c, "gb.device.update", auditPatch(id, p)))
	if err != nil {
		gbError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, viewOfDevice(d))
}

func (h *gbDeviceHandler) deleteDevice(c *gin.Context) {
	id := c.Param("id")
	if err := h.gb.DeleteDevice(id, h.trail.auditedBy(c, "gb.device.delete", map[string]string{"device": id})); err != nil {
		gbError(c, h.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// queryCatalog asks the device for its catalog again and answers what the sync did.
func (h *gbDeviceHandler) queryCatalog(c *gin.Context) {
	id := c.Param("id")
	if _, ok := h.gb.Device(id); !ok {
		notFound(c, "device")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 50*time.Second)
	defer cancel()
	res, err := h.gb.QueryCatalog(ctx, id)
	if err != nil {
		gbError(c, h.log, err)
		return
	}
	h.trail.recordBy(c, "gb.catalog.query", map[string]string{"device": id})
	c.JSON(http.StatusOK, res)
}

// listChannels answers the channels of one device (?device=) or of all, only the flagged ones with
// ?flagged=1.
func (h *gbDeviceHandler) listChannels(c *gin.Context) {
	device := c.Query("device")
	if device != "" && !gb28181.IsID(device) {
		failField(c, http.StatusBadRequest, "invalid", "device", "must be a 20-digit ID")
		return
	}
	list, err := h.gb.Channels(device)
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "cannot list channels")
		return
	}
	if f := c.Query("flagged"); f == "1" || f == "true" {
		list = slices.DeleteFunc(list, func(ch gb28181.Channel) bool { return len(ch.Flags) == 0 })
	}
	if list == nil {
		list = []gb28181.Channel{}
	}
	c.JSON(http.StatusOK, gin.H{"items": list})
}

// gbRuleRequest is a mapping rule as an admin writes it.
type gbRuleRequest struct {
	Name            string `json:"name,omitempty"`
	CivilCodePrefix string `json:"civil_code_prefix,omitempty"`
	ParentID        string `json:"parent_id,omitempty"`
	NamePattern     string `json:"name_pattern,omitempty"`
	Category        string `json:"category"`
	Level           int    `json:"level"`
	Priority        int    `json:"priority"`
}

func (r gbRuleRequest) rule() gb28181.Rule {
	return gb28181.Rule{Name: r.Name, CivilCodePrefix: r.CivilCodePrefix, ParentID: r.ParentID, NamePattern: r.NamePattern,
		Category: r.Category, Level: r.Level, Priority: r.Priority}
}

func (r gbRuleRequest) detail(id string) map[string]string {
	return map[string]string{"rule": id, "category": r.Category, "civil_code_prefix": r.CivilCodePrefix,
		"parent_id": r.ParentID, "name_pattern": r.NamePattern}
}

func (h *gbDeviceHandler) listRules(c *gin.Context) {
	list := h.gb.ListRules()
	if list == nil {
		list = []gb28181.Rule{}
	}
	c.JSON(http.StatusOK, gin.H{"items": list})
}

func (h *gbDeviceHandler) createRule(c *gin.Context) {
	var req gbRuleRequest
	if !decodeJSON(c, &req) {
		return
	}
	r, err := h.gb.CreateRule(req.rule(), currentUser(c).Username, h.trail.auditedBy(c, "gb.rule.create", req.detail("")))
	if err != nil {
		gbError(c, h.log, err)
		return
	}
	c.JSON(http.StatusCreated, r)
}

func (h *gbDeviceHandler) putRule(c *gin.Context) {
	var req gbRuleRequest
	if !decodeJSON(c, &req) {
		return
	}
	id := c.Param("id")
	r, err := h.gb.UpdateRule(id, req.rule(), h.trail.auditedBy(c, "gb.rule.update", req.detail(id)))
	if err != nil {
		gbError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (h *gbDeviceHandler) deleteRule(c *gin.Context) {
	id := c.Param("id")
	if err := h.gb.DeleteRule(id, h.trail.auditedBy(c, "gb.rule.delete", map[string]string{"rule": id})); err != nil {
		gbError(c, h.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}
