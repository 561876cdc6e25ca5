package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/store"
)

func (s *Server) agentError(c *gin.Context, err error) {
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
		s.log.Warn("agent request failed", "err", err)
		fail(c, http.StatusBadGateway, "camera_error", err.Error())
	}
}

type createAgentRequest struct {
	Name string `json:"name"`
	// Region is where the agent's cameras are (a region code; optional).
	Region string `json:"region,omitempty"`
}

func (s *Server) createAgent(c *gin.Context) {
	var req createAgentRequest
	if !decodeJSON(c, &req) {
		return
	}
	if !s.checkRegionExists(c, req.Region) {
		return
	}
	by := currentUser(c).Username
	a, code, exp, err := s.d.Agents.Create(req.Name, req.Region, by, func(tx *store.Tx, a agents.Agent) error {
		return s.appendIn(tx, audit.Record{User: by, Action: "agent.create", ClientIP: c.ClientIP(), Detail: map[string]string{"agent": a.ID, "name": a.Name, "region": a.Region}})
	})
	if err != nil {
		s.agentError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"agent": a, "enrollment_code": code, "expires": exp})
}

func (s *Server) listAgents(c *gin.Context) {
	list, err := s.d.Agents.List()
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "cannot list agents")
		return
	}
	if list == nil {
		list = []agents.Agent{}
	}
	c.JSON(http.StatusOK, gin.H{"items": list})
}

func (s *Server) getAgent(c *gin.Context) {
	a, err := s.d.Agents.Get(c.Param("id"))
	if err != nil {
		s.agentError(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

func (s *Server) revokeAgent(c *gin.Context) {
	if err := s.d.Agents.Revoke(c.Param("id"), s.audited(audit.Record{User: currentUser(c).Username, Action: "agent.revoke", ClientIP: c.ClientIP(), Detail: map[string]string{"agent": c.Param("id")}})); err != nil {
		s.agentError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) deleteAgent(c *gin.Context) {
	if err := s.d.Agents.Delete(c.Param("id"), s.audited(audit.Record{User: currentUser(c).Username, Action: "agent.delete", ClientIP: c.ClientIP(), Detail: map[string]string{"agent": c.Param("id")}})); err != nil {
		if errors.Is(err, agents.ErrInvalid) {
			fail(c, http.StatusConflict, "not_revoked", err.Error())
			return
		}
		s.agentError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) rediscoverAgent(c *gin.Context) {
	if err := s.d.Agents.Rediscover(c.Param("id")); err != nil {
		s.agentError(c, err)
		return
	}
	c.Status(http.StatusAccepted)
}

func (s *Server) enrollAgent(c *gin.Context) {
	var req agentlink.EnrollRequest
	if !decodeJSON(c, &req) {
		return
	}
	// Codes are 100-bit and single-use; the login throttle still locks an
	// address spraying guesses. It is keyed by the client address alone (no
	// username): a shared key would let a few bad codes from anywhere lock
	// every site's enrollment out.
	ip := c.ClientIP()
	if wait, locked := s.throttle.Check("", ip, time.Now()); wait > 0 {
		s.record(audit.Record{Action: "agent.enroll_throttled", ClientIP: ip,
			Detail: map[string]string{"locked": strconv.FormatBool(locked), "retry_after_s": retryAfter(wait)}})
		c.Header("Retry-After", retryAfter(wait))
		fail(c, http.StatusTooManyRequests, "too_many_attempts", "too many failed enrollments; try again later")
		return
	}
	res, err := s.d.Agents.Enroll(req.Code, req.Hostname, func(tx *store.Tx, a agents.Agent) error {
		return s.appendIn(tx, audit.Record{Action: "agent.enroll", ClientIP: ip, Detail: map[string]string{"agent": a.ID, "hostname": req.Hostname}})
	})
	if err != nil && !errors.Is(err, agents.ErrBadCode) {
		// The code was good but the store or the audit log failed: the
		// code stays unspent, and the agent may try again.
		s.log.Error("enrollment failed", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "enrollment failed; try again")
		return
	}
	if err != nil {
		if s.throttle.Failure("", ip, time.Now()) {
			s.record(audit.Record{Action: "login.locked", ClientIP: ip, Detail: map[string]string{"via": "enroll"}})
		}
		s.record(audit.Record{Action: "agent.enroll_fail", ClientIP: ip})
		fail(c, http.StatusUnauthorized, "bad_code", "enrollment code unknown, used or expired")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, res)
}

// agentConnect upgrades an agent's authenticated request to its control
// link and serves it until it drops.
func (s *Server) agentConnect(c *gin.Context) {
	id, secret, ok := c.Request.BasicAuth()
	if !ok {
		c.Header("WWW-Authenticate", `Basic realm="tianyan-agent"`)
		fail(c, http.StatusUnauthorized, "unauthenticated", "agent credentials required")
		return
	}
	a, err := s.d.Agents.Authenticate(id, secret)
	if err != nil {
		s.log.Info("agent refused", "agent", id, "ip", c.ClientIP(), "err", err)
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
	if s.d.AgentRTSPURL != nil {
		rtspURL = s.d.AgentRTSPURL(c.Request)
	}
	_ = s.d.Agents.Serve(context.WithoutCancel(c.Request.Context()), conn, a, rtspURL)
}

// pointPTZ answers POST /api/v1/points/{id}/ptz: steer the camera through
// its agent, under the ptz grant and the PTZ lease of higher priority.
func (s *Server) pointPTZ(c *gin.Context) {
	p, ok := s.visiblePoint(c, permissions.PTZ)
	if !ok {
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
	if s.d.PTZ != nil {
		if ok, holder := s.d.PTZ.Acquire(p.ID, u.Username, s.d.Permissions.PTZPriority(u, p), time.Now()); !ok {
			fail(c, http.StatusConflict, "ptz_busy", "PTZ is held by "+holder)
			return
		}
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 10*time.Second)
	defer cancel()
	if err := s.d.Agents.PTZ(ctx, p.Agent, req); err != nil {
		s.agentError(c, err)
		return
	}
	s.record(audit.Record{User: u.Username, Action: "ptz." + req.Op, Point: p.ID, ClientIP: c.ClientIP()})
	c.Status(http.StatusNoContent)
}

// pointSnapshot answers GET /api/v1/points/{id}/snapshot.jpg through the
// point's agent, under the snapshot grant.
func (s *Server) pointSnapshot(c *gin.Context) {
	p, ok := s.visiblePoint(c, permissions.Snapshot)
	if !ok {
		return
	}
	if p.Agent == "" {
		fail(c, http.StatusNotFound, "no_snapshot", "snapshots come from cameras behind an edge agent")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 10*time.Second)
	defer cancel()
	snap, err := s.d.Agents.Snapshot(ctx, p.Agent, p.Camera)
	if err != nil {
		s.agentError(c, err)
		return
	}
	if !strings.HasPrefix(snap.ContentType, "image/") {
		fail(c, http.StatusBadGateway, "camera_error", "the camera's snapshot is not an image")
		return
	}
	s.record(audit.Record{User: currentUser(c).Username, Action: "snapshot", Point: p.ID, ClientIP: c.ClientIP()})
	c.Header("Cache-Control", "private, no-store")
	c.Data(http.StatusOK, snap.ContentType, snap.Data)
}

// checkAgentBinding refuses a point bound to an agent that does not exist
// or was revoked.
func (s *Server) checkAgentBinding(c *gin.Context, p catalog.Point) bool {
	if p.Agent == "" {
		return true
	}
	if s.d.Agents == nil || !s.d.Agents.Exists(p.Agent) {
		failField(c, http.StatusUnprocessableEntity, "invalid", "agent", "no such edge agent (or it was revoked)")
		return false
	}
	return true
}
