package server

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/streaming"
)

// agentBindings answers the agents registry's questions from the catalog,
// and keeps an index of which points each agent relays so health reports
// and link changes do not scan the whole catalog.
type agentBindings struct {
	cat *catalog.Catalog

	mu      sync.Mutex
	byAgent map[string]map[string]bool // agent → points
	agentOf map[string]string          // point → agent
}

func newAgentBindings(cat *catalog.Catalog, points []catalog.Point) *agentBindings {
	b := &agentBindings{cat: cat, byAgent: map[string]map[string]bool{}, agentOf: map[string]string{}}
	for _, p := range points {
		b.set(p.ID, p.Agent)
	}
	return b
}

// set records point's agent ("" for none) and returns the previous one.
func (b *agentBindings) set(point, agent string) (old string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old = b.agentOf[point]
	if old != "" {
		delete(b.byAgent[old], point)
	}
	if agent == "" {
		delete(b.agentOf, point)
		return old
	}
	b.agentOf[point] = agent
	if b.byAgent[agent] == nil {
		b.byAgent[agent] = map[string]bool{}
	}
	b.byAgent[agent][point] = true
	return old
}

func (b *agentBindings) pointsOf(agent string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.byAgent[agent]))
	for p := range b.byAgent[agent] {
		out = append(out, p)
	}
	return out
}

func (b *agentBindings) binding(pointID string) (agents.Binding, bool) {
	p, err := b.cat.Get(pointID)
	if err != nil || p.Agent == "" {
		return agents.Binding{}, false
	}
	out := agents.Binding{Agent: p.Agent, Camera: p.Camera, Main: p.Main.URL}
	if p.Sub != nil {
		out.Sub = p.Sub.URL
	}
	return out, true
}

// hubDemander turns the hub's demand for a path into a relay request.
type hubDemander struct{ reg func() *agents.Registry }

func (d hubDemander) Demand(key string) bool {
	r := d.reg()
	if r == nil {
		return false
	}
	id, profile := streaming.SplitPathKey(key)
	return r.Demand(id, profile)
}

func (d hubDemander) Undemand(key string) {
	if r := d.reg(); r != nil {
		id, profile := streaming.SplitPathKey(key)
		r.Undemand(id, profile)
	}
}

// setPointHealth records what an agent reports about a point's camera.
func (a *App) setPointHealth(pointID string, online bool) {
	state := catalog.StateOffline
	if online {
		state = catalog.StateOnline
	}
	p, err := a.Catalog.Get(pointID)
	if err != nil || p.Status.State == state {
		return
	}
	if err := a.Catalog.SetStatus(pointID, state, time.Now()); err != nil {
		a.log.Warn("point status not saved", "point", pointID, "err", err)
		return
	}
	a.log.Info("point status", "point", pointID, "state", state)
}

// setAgentPointsState records what an agent's absence means for its
// points: stale while it may be back any moment, agent_offline after the
// health window. Neither says the cameras are offline.
func (a *App) setAgentPointsState(points []string, state string) {
	var st string
	switch state {
	case agents.PointStale:
		st = catalog.StateStale
	case agents.PointAgentOffline:
		st = catalog.StateAgentOffline
	default:
		a.log.Error("unknown agent point state", "state", state)
		return
	}
	n, err := a.Catalog.SetStatuses(points, st, time.Now())
	if err != nil {
		a.log.Warn("point status not saved", "points", len(points), "state", st, "err", err)
		return
	}
	if n > 0 {
		a.log.Info("points status", "points", n, "state", st)
	}
}

// pulledSourceState records the state of a camera the centre pulls itself
// (points behind an agent get theirs from the agent's health reports). An
// on-demand camera is checked only while someone watches; between views
// its status is the last one seen.
func (a *App) pulledSourceState(key string, up bool) {
	id, profile := streaming.SplitPathKey(key)
	if profile != streaming.ProfileMain {
		return
	}
	if p, err := a.Catalog.Get(id); err != nil || p.Agent != "" {
		return
	}
	a.setPointHealth(id, up)
}

// cutAgentPublishes ends a revoked agent's RTSP publishes at once.
func (a *App) cutAgentPublishes(agentID string) {
	for _, s := range a.RTSP.Sessions() {
		if id, ok := agents.AgentOfUser(s.User); ok && id == agentID {
			s.Close()
		}
	}
}

// agentRTSPURL tells a connecting agent where to publish: the configured
// URL, or the host the agent reached us by with the RTSP port.
func (a *App) agentRTSPURL(r *http.Request) string {
	if a.cfg.AgentRTSPURL != "" {
		return a.cfg.AgentRTSPURL
	}
	scheme := "rtsp"
	if a.tls {
		scheme = "rtsps"
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	_, port, _ := net.SplitHostPort(a.RTSP.Addr())
	if _, err := strconv.Atoi(port); err != nil {
		port = "8554"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
