package server

import (
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/streaming"
)

// RTSPCredential implements streaming.CredentialNamer: an RTSP session
// lives as long as what opened it — the user's stream key (rotating it ends
// the session) or the user's password (changing it does). Agents' relays
// are held to their binding instead (watchGrants).
func (a *rtspAuthorizer) RTSPCredential(c *streaming.RTSPCredentials) string {
	if _, ok := agents.AgentOfUser(c.Username); ok {
		return ""
	}
	pw, basic := c.BasicPassword()
	return string(a.acc.RTSPCredential(c.Username, pw, basic))
}
