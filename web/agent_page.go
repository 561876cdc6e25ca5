package web

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
)

// The edge agent's provisioning page decides nothing itself: it asks these
// routes, which answer only the agent (its Basic credentials) and only
// about the technician whose token it forwards.

// agentAuthenticator checks an edge agent's long-lived credentials.
type agentAuthenticator interface {
	Authenticate(id, secret string) (agents.Agent, error)
}

// authenticateAgent checks the request's HTTP Basic agent credentials
// against reg (nil: no agents, nobody is one) and answers 401 (403 for a
// revoked agent) itself when they do not hold.
func authenticateAgent(c *gin.Context, log *slog.Logger, reg agentAuthenticator) (agents.Agent, bool) {
	id, secret, ok := c.Request.BasicAuth()
	if !ok || reg == nil {
		c.Header("WWW-Authenticate", `Basic realm="tianyan-agent"`)
		fail(c, http.StatusUnauthorized, "agent_refused", "agent credentials required")
		return agents.Agent{}, false
	}
	a, err := reg.Authenticate(id, secret)
	if err != nil {
		log.Info("agent refused", "agent", id, "ip", c.ClientIP(), "path", c.FullPath(), "err", err)
		code := http.StatusUnauthorized
		if errors.Is(err, agents.ErrRevoked) {
			code = http.StatusForbidden
		}
		fail(c, code, "agent_refused", err.Error())
		return agents.Agent{}, false
	}
	return a, true
}

// pageAgents is the part of the agents registry the agent's page asks:
// who the agent is and which points are bound to its cameras.
type pageAgents interface {
	agentAuthenticator
	PointsOf(agentID string) []string
}

// pageDecider is what the agent's page asks permissions about the
// technician.
type pageDecider interface {
	MayProvisionSomewhere(u accounts.User) bool
	MayProvisionIn(u accounts.User, region string) bool
	Explain(u accounts.User, p catalog.Point) (actions []permissions.Action, via []string)
}

// agentPageHandler answers the edge agent's provisioning page, which
// decides nothing itself: the agent asks here what the technician whose
// token it forwards may do.
type agentPageHandler struct {
	agents pageAgents
	tokens tokenResolver
	points pointLookup
	decide pageDecider
	log    *slog.Logger
}

// access answers GET /api/v1/agents/page-access for the agent
// whose credentials the request carries: what the technician whose token
// it forwards may do on its page. Bound cameras come with the user's
// actions on their point (decided by permissions, as for any other door);
// unbound cameras are the user's only when a provision grant covers the
// agent's region.
func (h *agentPageHandler) access(c *gin.Context) {
	a, ok := authenticateAgent(c, h.log, h.agents)
	if !ok {
		return
	}
	u, err := h.tokens.Resolve(c.GetHeader(agentlink.UserTokenHeader))
	if err != nil {
		fail(c, http.StatusUnauthorized, "unauthenticated", "the technician's session expired or is invalid; log in again")
		return
	}
	out := agentlink.PageAccess{User: u.Username, Region: a.Region, Bound: []agentlink.BoundCamera{},
		ProvisionSomewhere: h.decide.MayProvisionSomewhere(u),
		ProvisionHere:      h.decide.MayProvisionIn(u, a.Region)}
	for _, id := range h.agents.PointsOf(a.ID) {
		p, err := h.points.Get(id)
		if err != nil || p.Agent != a.ID || p.Camera == "" {
			continue
		}
		actions, _ := h.decide.Explain(u, p)
		b := agentlink.BoundCamera{Camera: p.Camera, Point: p.ID, Actions: []string{}}
		for _, x := range actions {
			b.Actions = append(b.Actions, string(x))
		}
		if slices.Contains(actions, permissions.View) {
			b.Name = p.Name
		}
		out.Bound = append(out.Bound, b)
	}
	slices.SortFunc(out.Bound, func(x, y agentlink.BoundCamera) int {
		return strings.Compare(x.Camera+"\x00"+x.Point, y.Camera+"\x00"+y.Point)
	})
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}
