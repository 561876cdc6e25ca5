package agents

import (
	"encoding/json"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// What an agent's absence means for its points (see Options.OnPointsState).
const (
	// PointStale: the agent's last report is older than expected, but the
	// agent may be back within HealthWindow; its points keep being what
	// they were, with a caveat.
	PointStale = "stale"
	// PointAgentOffline: the agent has been away longer than HealthWindow
	// (or was revoked): nothing is known of its cameras.
	PointAgentOffline = "agent_offline"
)

// DefaultHealthWindow is how long an agent may be away before its points
// are agent_offline: a reconnect after a centre restart or a network blip
// (the agent retries within a second, backing off to 30 s) fits well inside.
const DefaultHealthWindow = time.Minute

// absence is an agent whose link dropped: when HealthWindow passes with no
// new link, its points become agent_offline.
type absence struct {
	timer *time.Timer
}

// expectAll treats every agent as just gone when the registry opens: the
// status the catalog kept from before is old news until the agent
// reconnects and reports again. Revoked agents will not be back.
func (r *Registry) expectAll() {
	var live, revoked []string
	err := r.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(store.BucketAgents).ForEach(func(k, v []byte) error {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			switch {
			case rec.Revoked:
				revoked = append(revoked, rec.ID)
			case rec.Enrolled:
				live = append(live, rec.ID)
			}
			return nil
		})
	})
	if err != nil {
		r.log.Warn("agents not read; their points keep their last status", "err", err)
	}
	for _, id := range revoked {
		r.tellPoints(id, PointAgentOffline)
	}
	for _, id := range live {
		r.wentAway(id)
	}
}

// wentAway is called when an agent has no link (it dropped, or the centre
// just started): its points are stale now and agent_offline after
// HealthWindow unless a new link comes first. A revoked agent's points
// are agent_offline at once.
func (r *Registry) wentAway(id string) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		// Shutting down: the next start treats every agent as just gone.
		return
	}
	if !r.Exists(id) {
		r.tellPoints(id, PointAgentOffline)
		return
	}
	r.pointsMu.Lock()
	defer r.pointsMu.Unlock()
	r.mu.Lock()
	if r.closed || r.links[id] != nil {
		r.mu.Unlock()
		return
	}
	if old := r.away[id]; old != nil {
		old.timer.Stop()
	}
	ab := &absence{}
	ab.timer = time.AfterFunc(r.opts.HealthWindow, func() { r.stayedAway(id, ab) })
	r.away[id] = ab
	r.mu.Unlock()
	r.tellPointsLocked(id, PointStale)
}

// stayedAway runs when an absence outlasted HealthWindow.
func (r *Registry) stayedAway(id string, ab *absence) {
	r.pointsMu.Lock()
	defer r.pointsMu.Unlock()
	r.mu.Lock()
	current := r.away[id] == ab && r.links[id] == nil && !r.closed
	if current {
		delete(r.away, id)
	}
	r.mu.Unlock()
	if !current {
		return
	}
	r.log.Warn("agent away longer than the health window; its points are agent_offline", "agent", id, "window", r.opts.HealthWindow)
	r.tellPointsLocked(id, PointAgentOffline)
}

// cameBackLocked ends an agent's absence (called with r.mu held, when its new
// link is registered); its points stay stale until it reports.
func (r *Registry) cameBackLocked(id string) {
	if ab := r.away[id]; ab != nil {
		ab.timer.Stop()
		delete(r.away, id)
	}
}

// stopAbsencesLocked ends every pending absence (registry closing).
func (r *Registry) stopAbsencesLocked() {
	for id, ab := range r.away {
		ab.timer.Stop()
		delete(r.away, id)
	}
}

func (r *Registry) tellPoints(id, state string) {
	r.pointsMu.Lock()
	defer r.pointsMu.Unlock()
	r.tellPointsLocked(id, state)
}

func (r *Registry) tellPointsLocked(id, state string) {
	if r.opts.OnPointsState == nil {
		return
	}
	if points := r.opts.PointsOf(id); len(points) > 0 {
		r.opts.OnPointsState(points, state)
	}
}

// reportHealth passes an agent's report on its own points.
func (r *Registry) reportHealth(id string, points map[string]bool) {
	if r.opts.OnPointHealth == nil {
		return
	}
	r.pointsMu.Lock()
	defer r.pointsMu.Unlock()
	bound := r.opts.PointsOf(id)
	for point, ok := range points {
		// An agent speaks only for its own points.
		if containsString(bound, point) {
			r.opts.OnPointHealth(point, ok)
		}
	}
}

// Online reports whether an agent's control link is up now.
func (r *Registry) Online(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.links[id] != nil
}
