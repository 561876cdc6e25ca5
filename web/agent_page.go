package web

import (
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
)

// The edge agent's provisioning page decides nothing itself: it asks these
// routes, which answer only the agent (its Basic credentials) and only
// about the technician whose token it forwards.

// authenticateAgent checks the request's HTTP Basic agent credentials and
// answers 401 (403 for a revoked agent) itself when they do not hold.
func (s *Server) authenticateAgent(c *gin.Context) (agents.Agent, bool) {
	id, secret, ok := c.Request.BasicAuth()
	if !ok || s.d.Agents == nil {
		c.Header("WWW-Authenticate", `Basic realm="tianyan-agent"`)
		fail(c, http.StatusUnauthorized, "agent_refused", "agent credentials required")
		return agents.Agent{}, false
	}
	a, err := s.d.Agents.Authenticate(id, secret)
	if err != nil {
		s.log.Info("agent refused", "agent", id, "ip", c.ClientIP(), "path", c.FullPath(), "err", err)
		code := http.StatusUnauthorized
		if errors.Is(err, agents.ErrRevoked) {
			code = http.StatusForbidden
		}
		fail(c, code, "agent_refused", err.Error())
		return agents.Agent{}, false
	}
	return a, true
}

// maxClientAddressLen bounds the header before it is parsed.
const maxClientAddressLen = 64

// loginClientIP is the address a login is throttled and audited under: the
// TCP peer (or what a trusted proxy says), or, when an enrolled agent logs
// a technician in from its page, the technician's browser as that agent
// saw it, written "ADDR via AGENT". The header is believed only on a
// request that carries that agent's valid credentials; sent by anyone else
// it is refused, never silently honoured. Keeping the agent in the key
// keeps two agents' LANs (which may reuse addresses) and the centre's own
// clients apart, and an agent can only ever lock out addresses of its own.
func (s *Server) loginClientIP(c *gin.Context) (string, bool) {
	claimed, present := c.Request.Header[http.CanonicalHeaderKey(agentlink.ClientAddressHeader)]
	if !present {
		return c.ClientIP(), true
	}
	a, ok := s.authenticateAgent(c)
	if !ok {
		return "", false
	}
	if len(claimed) != 1 || len(claimed[0]) > maxClientAddressLen {
		fail(c, http.StatusBadRequest, "bad_client_address", agentlink.ClientAddressHeader+" must be one IP address")
		return "", false
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(claimed[0]))
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_client_address", agentlink.ClientAddressHeader+" must be one IP address")
		return "", false
	}
	return addr.Unmap().WithZone("").String() + " via " + a.ID, true
}

// agentPageAccess answers GET /api/v1/agents/page-access for the agent
// whose credentials the request carries: what the technician whose token
// it forwards may do on its page. Bound cameras come with the user's
// actions on their point (decided by permissions, as for any other door);
// unbound cameras are the user's only when a provision grant covers the
// agent's region.
func (s *Server) agentPageAccess(c *gin.Context) {
	a, ok := s.authenticateAgent(c)
	if !ok {
		return
	}
	u, err := s.d.Accounts.Resolve(c.GetHeader(agentlink.UserTokenHeader))
	if err != nil {
		fail(c, http.StatusUnauthorized, "unauthenticated", "the technician's session expired or is invalid; log in again")
		return
	}
	out := agentlink.PageAccess{User: u.Username, Region: a.Region, Bound: []agentlink.BoundCamera{},
		ProvisionSomewhere: s.d.Permissions.MayProvisionSomewhere(u),
		ProvisionHere:      s.d.Permissions.MayProvisionIn(u, a.Region)}
	for _, id := range s.d.Agents.PointsOf(a.ID) {
		p, err := s.d.Catalog.Get(id)
		if err != nil || p.Agent != a.ID || p.Camera == "" {
			continue
		}
		actions, _ := s.d.Permissions.Explain(u, p)
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

// checkRegionExists answers 422 for a region code the catalog does not
// know ("" is no region and passes).
func (s *Server) checkRegionExists(c *gin.Context, code string) bool {
	if code = strings.TrimSpace(code); code == "" {
		return true
	}
	if _, err := s.d.Catalog.GetRegion(code); err != nil {
		if errors.Is(err, catalog.ErrRegionNotFound) {
			failField(c, http.StatusUnprocessableEntity, "invalid", "region", "no such region")
		} else {
			fail(c, http.StatusInternalServerError, "internal", "cannot read regions")
		}
		return false
	}
	return true
}

// patchAgent answers PATCH /api/v1/agents/{id} (administrators): rename an
// agent or move it to another region, which changes who sees its unbound
// cameras from the next request on its page.
func (s *Server) patchAgent(c *gin.Context) {
	var p agents.AgentPatch
	if !decodeJSON(c, &p) {
		return
	}
	if p.Region != nil && !s.checkRegionExists(c, *p.Region) {
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
	a, err := s.d.Agents.Update(id, p, s.audited(audit.Record{User: currentUser(c).Username, Action: "agent.update", ClientIP: c.ClientIP(), Detail: detail}))
	if err != nil {
		s.agentError(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}
