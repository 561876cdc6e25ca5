package server

import (
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/streaming"
)

// rtspAuthorizer lets RTSP clients in with a password (Basic only: it is
// never stored in a form Digest could use) or the user's stream key (Basic
// or Digest), and asks permissions for every read and publish.
//
// Users' credentials go through the same login throttle as HTTP logins and
// are audited the same way (detail via=rtsp): a guess over RTSP counts
// against the same user and address as one over HTTP, and a locked or
// slowed user or address is refused before any hash is computed.
type rtspAuthorizer struct {
	agents   *agents.Registry
	acc      *accounts.Accounts
	cat      *catalog.Catalog
	perm     *permissions.Decider
	throttle *accounts.Throttle
	audit    *audit.Log
	log      *slog.Logger
}

func (a *rtspAuthorizer) AuthenticateRTSP(c *streaming.RTSPCredentials) (string, error) {
	// Edge agents publish with a one-time secret per relay: random, checked
	// without a hash, and outside the login throttle so technicians'
	// typos behind the agent's address cannot stop its relays.
	if id, ok := agents.AgentOfUser(c.Username); ok {
		if a.agents != nil && a.agents.VerifyPublish(id, c.VerifySecret) {
			return c.Username, nil
		}
		return "", streaming.ErrUnauthenticated
	}
	ip := ""
	if c.ClientIP != nil {
		ip = c.ClientIP.String()
	}
	detail := func(kv ...string) map[string]string {
		d := map[string]string{"via": "rtsp", "method": c.Method}
		for i := 0; i+1 < len(kv); i += 2 {
			d[kv[i]] = kv[i+1]
		}
		return d
	}
	if wait, locked := a.throttle.Check(c.Username, ip, time.Now()); wait > 0 {
		a.record(audit.Record{User: c.Username, Action: "login.throttled", ClientIP: ip,
			Detail: detail("locked", strconv.FormatBool(locked), "retry_after_s", strconv.Itoa(int((wait+time.Second-1)/time.Second)))})
		return "", streaming.ErrUnauthenticated
	}
	user, err := a.verify(c)
	switch {
	case err == nil:
		a.throttle.Success(user, ip)
		return user, nil
	case errors.Is(err, accounts.ErrBusy):
		// No argon2 slot: refused like a throttled attempt, not counted as a
		// failure (the password was never checked).
		a.record(audit.Record{User: c.Username, Action: "login.throttled", ClientIP: ip,
			Detail: detail("busy", "true", "retry_after_s", "1")})
	case errors.Is(err, accounts.ErrBadCredentials):
		locked := a.throttle.Failure(c.Username, ip, time.Now())
		a.record(audit.Record{User: c.Username, Action: "login.fail", ClientIP: ip, Detail: detail()})
		if locked {
			a.record(audit.Record{User: c.Username, Action: "login.locked", ClientIP: ip, Detail: detail()})
		}
	default:
		a.log.Error("rtsp authentication", "user", c.Username, "err", err)
	}
	return "", streaming.ErrUnauthenticated
}

// verify checks a user's RTSP credentials: ErrBadCredentials when they are
// wrong, ErrBusy when the password could not be checked.
func (a *rtspAuthorizer) verify(c *streaming.RTSPCredentials) (string, error) {
	if pw, ok := c.BasicPassword(); ok {
		// The stream key first: it costs a SHA-256, the password an argon2 run.
		if a.acc.VerifyStreamKey(c.Username, pw) {
			return c.Username, nil
		}
		u, err := a.acc.Authenticate(c.Username, pw)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	}
	// Digest proves the stream key (the password is never stored in a form
	// Digest could use); StreamKey refuses unknown and disabled users.
	key, err := a.acc.StreamKey(c.Username)
	if errors.Is(err, accounts.ErrNotFound) || errors.Is(err, accounts.ErrDisabled) || errors.Is(err, accounts.ErrBadCredentials) ||
		err == nil && !c.VerifySecret(key) {
		return "", accounts.ErrBadCredentials
	}
	if err != nil {
		return "", err
	}
	return c.Username, nil
}

func (a *rtspAuthorizer) record(r audit.Record) {
	if a.audit == nil {
		return
	}
	if _, err := a.audit.Append(r); err != nil {
		a.log.Error("audit append failed", "action", r.Action, "err", err)
	}
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
