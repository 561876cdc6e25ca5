package server

import (
	"time"

	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/streaming"
)

// revokeInterval is how often live views are re-checked against grants; a
// removed or expired grant ends the views it allowed within this time.
const revokeInterval = 2 * time.Second

// watchGrants ends WebRTC views, RTSP readers and RTSP publishers whose user has lost access to the point
// (grant removed or expired, user disabled or deleted, point deleted).
func (a *App) watchGrants(perm *permissions.Decider) {
	defer close(a.watchDone)
	t := time.NewTicker(revokeInterval)
	defer t.Stop()
	for {
		select {
		case <-a.watchStop:
			return
		case <-t.C:
		}
		for _, s := range a.WebRTC.Sessions() {
			pointID, _ := streaming.SplitPathKey(s.PointID)
			if !a.stillAllowed(perm, s.User, permissions.View, pointID) {
				a.log.Info("view ended: access revoked", "point", s.PointID, "user", s.User, "via", "webrtc")
				s.Close()
			}
		}
		for _, s := range a.RTSP.Sessions() {
			action := permissions.View
			if s.Publisher {
				action = permissions.Publish
			}
			pointID, _ := streaming.SplitPathKey(s.PointID)
			if id, ok := agents.AgentOfUser(s.User); ok {
				if !a.Agents.MayPublish(id, pointID) {
					a.log.Info("agent publish ended: agent revoked, offline or unbound", "point", s.PointID, "agent", id)
					s.Close()
				}
				continue
			}
			if !a.stillAllowed(perm, s.User, action, pointID) {
				a.log.Info("rtsp session ended: access revoked", "point", s.PointID, "user", s.User, "publisher", s.Publisher)
				s.Close()
			}
		}
	}
}

// stillAllowed re-decides a live session: the user must still exist and be
// enabled, the point must exist, and a grant must still allow the action.
func (a *App) stillAllowed(perm *permissions.Decider, user string, action permissions.Action, pointID string) bool {
	u, err := a.Accounts.GetUser(user)
	if err != nil {
		return false
	}
	p, err := a.Catalog.Get(pointID)
	if err != nil {
		return false
	}
	return perm.Can(u, action, p)
}

// pruneInterval is how often audit records past the retention are removed.
const pruneInterval = time.Hour

// pruneAudit removes audit records past the retention, once at start and
// then hourly.
func (a *App) pruneAudit() {
	defer close(a.pruneDone)
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		if _, err := a.Audit.Prune(time.Now()); err != nil {
			// A broken chain is evidence: Prune refuses to delete it, and
			// the operator must look.
			a.log.Error("audit prune refused", "err", err)
		}
		select {
		case <-a.pruneStop:
			return
		case <-t.C:
		}
	}
}
