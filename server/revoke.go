package server

import (
	"errors"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/streaming"
)

// revokeInterval is how often live views are re-checked against grants and
// credentials; whatever ended a view's right to run ends the view within
// this time.
const revokeInterval = 2 * time.Second

// Why the watcher ended a stream, as view.stop / publish.stop records give
// it (detail "reason").
const (
	endSessionEnded     = "session_ended"      // logout, session revoked or expired, password changed
	endTokenRevoked     = "token_revoked"      // API token revoked or expired
	endStreamKeyRotated = "stream_key_rotated" // RTSP opened with the stream key
	endPasswordChanged  = "password_changed"   // RTSP opened with the password
	endUserDisabled     = "user_disabled"
	endUserDeleted      = "user_deleted"
	endNoCredential     = "no_credential" // nothing to hold the stream to: fail closed
	endCheckFailed      = "check_failed"  // the store could not answer: fail closed
	endPointDeleted     = "point_deleted"
	endAccessRevoked    = "access_revoked" // grant removed, expired or narrowed
	endAgentBound       = "agent_bound"    // a user publishing a point now fed by an agent
	endAgentRevoked     = "agent_revoked"  // agent revoked, offline or unbound
)

// watchGrants ends WebRTC views, RTSP readers and RTSP publishers that have
// lost the right to run: the login session, API token, stream key or
// password that opened them ended or changed, the user was disabled or
// deleted, the grant went, the point went, or (publishers) the point is now
// fed by an edge agent.
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
		a.recheckStreams(perm)
	}
}

// recheckStreams is one pass of watchGrants.
func (a *App) recheckStreams(perm *permissions.Decider) {
	c := streamCheck{a: a, perm: perm, creds: map[[2]string]string{}}
	for _, s := range a.WebRTC.Sessions() {
		pointID, _ := streaming.SplitPathKey(s.PointID)
		if reason := c.endReason(s.User, s.Credential, permissions.View, pointID); reason != "" {
			a.log.Info("view ended", "point", s.PointID, "user", s.User, "via", "webrtc", "reason", reason)
			s.End(reason)
		}
	}
	for _, s := range a.RTSP.Sessions() {
		pointID, _ := streaming.SplitPathKey(s.PointID)
		if id, ok := agents.AgentOfUser(s.User); ok {
			if !a.Agents.MayPublish(id, pointID) {
				a.log.Info("agent publish ended: agent revoked, offline or unbound", "point", s.PointID, "agent", id)
				s.End(endAgentRevoked)
			}
			continue
		}
		action := permissions.View
		if s.Publisher {
			action = permissions.Publish
		}
		if reason := c.endReason(s.User, s.Credential, action, pointID); reason != "" {
			a.log.Info("rtsp session ended", "point", s.PointID, "user", s.User, "publisher", s.Publisher, "reason", reason)
			s.End(reason)
		}
	}
}

// streamCheck re-decides live streams; one is made per pass so a user's
// many views cost one credential lookup, not one each.
type streamCheck struct {
	a     *App
	perm  *permissions.Decider
	creds map[[2]string]string // (user, credential) → end reason, "" to keep
}

// endReason says why a stream user opened with credential, doing action on
// pointID, must end, or "" if it may go on.
func (c *streamCheck) endReason(user, credential string, action permissions.Action, pointID string) string {
	key := [2]string{user, credential}
	reason, seen := c.creds[key]
	if !seen {
		reason = c.credentialEnded(user, credential)
		c.creds[key] = reason
	}
	if reason != "" {
		return reason
	}
	u, err := c.a.Accounts.GetUser(user)
	if err != nil {
		return endUserDeleted
	}
	p, err := c.a.Catalog.Get(pointID)
	if err != nil {
		return endPointDeleted
	}
	if !c.perm.Can(u, action, p) {
		return endAccessRevoked
	}
	if action == permissions.Publish && p.Agent != "" {
		return endAgentBound
	}
	return ""
}

// credentialEnded is why credential no longer admits user, or "".
func (c *streamCheck) credentialEnded(user, credential string) string {
	if credential == "" {
		return endNoCredential
	}
	err := c.a.Accounts.CheckCredential(user, accounts.Credential(credential))
	switch {
	case err == nil:
		return ""
	case errors.Is(err, accounts.ErrNoSession):
		return endSessionEnded
	case errors.Is(err, accounts.ErrNoToken):
		return endTokenRevoked
	case errors.Is(err, accounts.ErrStreamKeyRotated):
		return endStreamKeyRotated
	case errors.Is(err, accounts.ErrPasswordChanged):
		return endPasswordChanged
	case errors.Is(err, accounts.ErrDisabled):
		return endUserDisabled
	case errors.Is(err, accounts.ErrNotFound):
		return endUserDeleted
	case errors.Is(err, accounts.ErrBadCredential):
		return endNoCredential
	}
	c.a.log.Error("credential check failed; ending the stream", "user", user, "err", err)
	return endCheckFailed
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
