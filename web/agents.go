package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

// agentRegistry is the part of the agents registry that keeps edge agents,
// enrolls them and serves their control links.
type agentRegistry interface {
	Create(name, region, by string, also ...store.ResultHook[agents.Agent]) (agents.Agent, string, time.Time, error)
	Update(id string, p agents.AgentPatch, also ...store.TxHook) (agents.Agent, error)
	List() ([]agents.Agent, error)
	Get(id string) (agents.Agent, error)
	Revoke(id string, also ...store.TxHook) error
	Delete(id string, also ...store.TxHook) error
	Rediscover(agentID string) error
	Enroll(code, hostname string, also ...store.ResultHook[agents.Agent]) (agentlink.EnrollResponse, error)
	Authenticate(id, secret string) (agents.Agent, error)
	Serve(ctx context.Context, conn *websocket.Conn, a agents.Agent, rtspURL string) error
}

// cameraRelay asks a camera's edge agent to act on it.
type cameraRelay interface {
	PTZ(ctx context.Context, agentID string, req agentlink.PTZRequest) error
	Snapshot(ctx context.Context, agentID, camera string) (agentlink.SnapshotReply, error)
}

// regionLookup finds a region by code.
type regionLookup interface {
	GetRegion(code string) (catalog.Region, error)
}

// ptzLeases arbitrates between users steering the same camera
// (permissions.PTZArbiter).
type ptzLeases interface {
	Acquire(point, user string, priority int, now time.Time) (ok bool, holder string)
}

// ptzDecider ranks a user's claim on a camera's PTZ head.
type ptzDecider interface {
	PTZPriority(u accounts.User, p catalog.Point) int
}

// agentHandler answers the edge agents' routes (administration,
// enrollment, the control link) and the camera actions that go through an
// agent (PTZ, snapshots).
type agentHandler struct {
	agents   agentRegistry
	regions  regionLookup
	cameras  cameraRelay
	leases   ptzLeases // nil: whoever may steer, steers
	decide   ptzDecider
	gb       gbPTZ // nil: no GB/T 28181 channels to steer
	throttle loginThrottle
	trail    auditTrail
	log      *slog.Logger
	// rtspURL tells an agent where to publish, from its connect request.
	rtspURL func(r *http.Request) string
}

func agentError(c *gin.Context, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, agents.ErrNotFound):
		notFound(c, "agent")
	case errors.Is(err, agents.ErrInvalid):
		fail(c, http.StatusUnprocessableEntity, "invalid", err.Error())
	case errors.Is(err, agents.ErrOffline):
		fail(c, http.StatusServiceUnavailable, "agent_offline", "the edge agent of this camera is not connected")
	case errors.Is(err, agents.ErrAgentTimeout):
		fail(c, http.StatusGatewayTimeout, "agent_timeout", "the edge agent did not answer in time")
	case errors.Is(err, errAuditFailed):
		fail(c, http.StatusInternalServerError, "internal", "the change could not be recorded; nothing was changed")
	default:
		log.Warn("agent request failed", "err", err)
		fail(c, http.StatusBadGateway, "camera_error", err.Error())
	}
}

type createAgentRequest struct {
	Name string `json:"name"`
	// Region is where the agent's cameras are (a region code; optional).
	Region string `json:"region,omitempty"`
}

func (h *agentHandler) create(c *gin.Context) {
	var req createAgentRequest
	if !decodeJSON(c, &req) {
		return
	}
	if !h.checkRegionExists(c, req.Region) {
		return
	}
	by := currentUser(c).Username
	a, code, exp, err := h.agents.Create(req.Name, req.Region, by, func(tx *store.Tx, a agents.Agent) error {
		return h.trail.appendIn(tx, audit.Record{User: by, Action: "agent.create", ClientIP: c.ClientIP(), Detail: map[string]string{"agent": a.ID, "name": a.Name, "region": a.Region}})
	})
	if err != nil {
		agentError(c, h.log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"agent": a, "enrollment_code": code, "expires": exp})
}

func (h *agentHandler) list(c *gin.Context) {
	list, err := h.agents.List()
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "cannot list agents")
		return
	}
	if list == nil {
		list = []agents.Agent{}
	}
	c.JSON(http.StatusOK, gin.H{"items": list})
}

func (h *agentHandler) get(c *gin.Context) {
	a, err := h.agents.Get(c.Param("id"))
	if err != nil {
		agentError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

func (h *agentHandler) revoke(c *gin.Context) {
	if err := h.agents.Revoke(c.Param("id"), h.trail.audited(audit.Record{User: currentUser(c).Username, Action: "agent.revoke", ClientIP: c.ClientIP(), Detail: map[string]string{"agent": c.Param("id")}})); err != nil {
		agentError(c, h.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *agentHandler) delete(c *gin.Context) {
	if err := h.agents.Delete(c.Param("id"), h.trail.audited(audit.Record{User: currentUser(c).Username, Action: "agent.delete", ClientIP: c.ClientIP(), Detail: map[string]string{"agent": c.Param("id")}})); err != nil {
		if errors.Is(err, agents.ErrInvalid) {
			fail(c, http.StatusConflict, "not_revoked", err.Error())
			return
		}
		agentError(c, h.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *agentHandler) rediscover(c *gin.Context) {
	if err := h.agents.Rediscover(c.Param("id")); err != nil {
		agentError(c, h.log, err)
		return
	}
	c.Status(http.StatusAccepted)
}

func (h *agentHandler) enroll(c *gin.Context) {
	var req agentlink.EnrollRequest
	if !decodeJSON(c, &req) {
		return
	}
	// Codes are 100-bit and single-use; the login throttle still locks an
	// address spraying guesses. It is keyed by the client address alone (no
	// username): a shared key would let a few bad codes from anywhere lock
	// every site's enrollment out.
	ip := c.ClientIP()
	if wait, locked := h.throttle.Check("", ip, time.Now()); wait > 0 {
		h.trail.record(audit.Record{Action: "agent.enroll_throttled", ClientIP: ip,
			Detail: map[string]string{"locked": strconv.FormatBool(locked), "retry_after_s": retryAfter(wait)}})
		c.Header("Retry-After", retryAfter(wait))
		fail(c, http.StatusTooManyRequests, "too_many_attempts", "too many failed enrollments; try again later")
		return
	}
	res, err := h.agents.Enroll(req.Code, req.Hostname, func(tx *store.Tx, a agents.Agent) error {
		return h.trail.appendIn(tx, audit.Record{Action: "agent.enroll", ClientIP: ip, Detail: map[string]string{"agent": a.ID, "hostname": req.Hostname}})
	})
	if err != nil && !errors.Is(err, agents.ErrBadCode) {
		// The code was good but the store or the audit log failed: the
		// code stays unspent, and the agent may try again.
		h.log.Error("enrollment failed", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "enrollment failed; try again")
		return
	}
	if err != nil {
		if h.throttle.Failure("", ip, time.Now()) {
			h.trail.record(audit.Record{Action: "login.locked", ClientIP: ip, Detail: map[string]string{"via": "enroll"}})
		}
		h.trail.record(audit.Record{Action: "agent.enroll_fail", ClientIP: ip})
		fail(c, http.StatusUnauthorized, "bad_code", "enrollment code unknown, used or expired")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, res)
}

// connect upgrades an agent's authenticated request to its control
// link and serves it until it drops.
func (h *agentHandler) connect(c *gin.Context) {
	id, secret, ok := c.Request.BasicAuth()
	if !ok {
		c.Header("WWW-Authenticate", `Basic realm="tianyan-agent"`)
		fail(c, http.StatusUnauthorized, "unauthenticated", "agent credentials required")
		return
	}
	a, err := h.agents.Authenticate(id, secret)
	if err != nil {
		h.log.Info("agent refused", "agent", id, "ip", c.ClientIP(), "err", err)
		code := http.StatusUnauthorized
		if errors.Is(err, agents.ErrRevoked) {
			code = http.StatusForbidden
		}
		fail(c, code, "agent_refused", err.Error())
		return
	}
	// The HTTP server's read/write timeouts must not cut a long-lived link;
	// the link has its own heartbeat deadline.
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	conn, err := websocket.Accept(c.Writer, c.Request, &websocket.AcceptOptions{})
	if err != nil {
		return // Accept has answered
	}
	rtspURL := ""
	if h.rtspURL != nil {
		rtspURL = h.rtspURL(c.Request)
	}
	_ = h.agents.Serve(context.WithoutCancel(c.Request.Context()), conn, a, rtspURL)
}

// ptz answers POST /api/v1/points/{id}/ptz: steer the camera through
// its agent, under the ptz grant and the PTZ lease of higher priority.
func (h *agentHandler) ptz(c *gin.Context) {
	p, ok := visiblePoint(c, h.log, permissions.PTZ)
	if !ok {
		return
	}
	if p.PTZ && p.Main.Type == catalog.SourceGB28181 {
		h.ptzGB(c, p)
		return
	}
	if !p.PTZ || p.Agent == "" {
		fail(c, http.StatusConflict, "no_ptz", "this point has no PTZ through an edge agent")
		return
	}
	var req agentlink.PTZRequest
	if !decodeJSON(c, &req) {
		return
	}
	req.Camera = p.Camera
	if err := req.Validate(); err != nil {
		fail(c, http.StatusUnprocessableEntity, "invalid", err.Error())
		return
	}
	u := currentUser(c)
	if h.leases != nil {
		if ok, holder := h.leases.Acquire(p.ID, u.Username, h.decide.PTZPriority(u, p), time.Now()); !ok {
			fail(c, http.StatusConflict, "ptz_busy", "PTZ is held by "+holder)
			return
		}
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 10*time.Second)
	defer cancel()
	if err := h.cameras.PTZ(ctx, p.Agent, req); err != nil {
		agentError(c, h.log, err)
		return
	}
	h.trail.record(audit.Record{User: u.Username, Action: "ptz." + req.Op, Point: p.ID, ClientIP: c.ClientIP()})
	c.Status(http.StatusNoContent)
}

// snapshot answers GET /api/v1/points/{id}/snapshot.jpg through the
// point's agent, under the snapshot grant.
func (h *agentHandler) snapshot(c *gin.Context) {
	p, ok := visiblePoint(c, h.log, permissions.Snapshot)
	if !ok {
		return
	}
	if p.Agent == "" {
		fail(c, http.StatusNotFound, "no_snapshot", "snapshots come from cameras behind an edge agent")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 10*time.Second)
	defer cancel()
	snap, err := h.cameras.Snapshot(ctx, p.Agent, p.Camera)
	if err != nil {
		agentError(c, h.log, err)
		return
	}
	if !strings.HasPrefix(snap.ContentType, "image/") {
		fail(c, http.StatusBadGateway, "camera_error", "the camera's snapshot is not an image")
		return
	}
	h.trail.record(audit.Record{User: currentUser(c).Username, Action: "snapshot", Point: p.ID, ClientIP: c.ClientIP()})
	c.Header("Cache-Control", "private, no-store")
	c.Data(http.StatusOK, snap.ContentType, snap.Data)
}

// patch answers PATCH /api/v1/agents/{id} (administrators): rename an
// agent or move it to another region, which changes who sees its unbound
// cameras from the next request on its page.
func (h *agentHandler) patch(c *gin.Context) {
	var p agents.AgentPatch
	if !decodeJSON(c, &p) {
		return
	}
	if p.Region != nil && !h.checkRegionExists(c, *p.Region) {
		return
	}
	id := c.Param("id")
	detail := map[string]string{"agent": id}
	if p.Name != nil {
		detail["name"] = *p.Name
	}
	if p.Region != nil {
		detail["region"] = *p.Region
	}
	a, err := h.agents.Update(id, p, h.trail.audited(audit.Record{User: currentUser(c).Username, Action: "agent.update", ClientIP: c.ClientIP(), Detail: detail}))
	if err != nil {
		agentError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

// checkRegionExists answers 422 for a region code the catalog does not
// know ("" is no region and passes).
func (h *agentHandler) checkRegionExists(c *gin.Context, code string) bool {
	if code = strings.TrimSpace(code); code == "" {
		return true
	}
	if _, err := h.regions.GetRegion(code); err != nil {
		if errors.Is(err, catalog.ErrRegionNotFound) {
			failField(c, http.StatusUnprocessableEntity, "invalid", "region", "no such region")
		} else {
			fail(c, http.StatusInternalServerError, "internal", "cannot read regions")
		}
		return false
	}
	return true
}
