package server

import (
	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/streaming"
)

// rtspAuthorizer lets RTSP clients in with a password (Basic only: it is
// never stored in a form Digest could use) or the user's stream key (Basic
// or Digest), and asks permissions for every read and publish.
type rtspAuthorizer struct {
	agents *agents.Registry
	acc    *accounts.Accounts
	cat    *catalog.Catalog
	perm   *permissions.Decider
}

func (a *rtspAuthorizer) AuthenticateRTSP(c *streaming.RTSPCredentials) (string, error) {
	// Edge agents publish with a one-time secret per relay.
	if id, ok := agents.AgentOfUser(c.Username); ok {
		if a.agents != nil && a.agents.VerifyPublish(id, c.VerifySecret) {
			return c.Username, nil
		}
		return "", streaming.ErrUnauthenticated
	}
	if pw, ok := c.BasicPassword(); ok {
		if u, err := a.acc.Authenticate(c.Username, pw); err == nil {
			return u.Username, nil
		}
		if a.acc.VerifyStreamKey(c.Username, pw) {
			return c.Username, nil
		}
		return "", streaming.ErrUnauthenticated
	}
	if _, err := a.acc.GetUser(c.Username); err != nil {
		return "", streaming.ErrUnauthenticated
	}
	key, err := a.acc.StreamKey(c.Username)
	if err != nil || !c.VerifySecret(key) {
		return "", streaming.ErrUnauthenticated
	}
	return c.Username, nil
}

func (a *rtspAuthorizer) AuthorizeRTSP(user, action, key string) error {
	pointID, profile := streaming.SplitPathKey(key)
	if id, ok := agents.AgentOfUser(user); ok {
		// An agent publishes the points bound to it, and nothing else.
		if action == streaming.ActionPublish && a.agents.MayPublish(id, pointID) {
			return nil
		}
		return streaming.ErrForbidden
	}
	u, err := a.acc.GetUser(user)
	if err != nil {
		return streaming.ErrUnauthenticated
	}
	p, err := a.cat.Get(pointID)
	if err != nil || profile == streaming.ProfileSub && p.Sub == nil && action == streaming.ActionRead {
		return streaming.ErrUnknownPoint
	}
	if !a.perm.Can(u, permissions.View, p) {
		// Invisible points do not exist for this user.
		return streaming.ErrUnknownPoint
	}
	want := permissions.View
	if action == streaming.ActionPublish {
		want = permissions.Publish
	}
	if !a.perm.Can(u, want, p) {
		return streaming.ErrForbidden
	}
	if action == streaming.ActionPublish && p.Agent != "" {
		// The camera's feed comes from its agent's relay alone: anyone else
		// publishing there would replace it for every viewer.
		return streaming.ErrForbidden
	}
	return nil
}
