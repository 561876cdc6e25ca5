package web

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/store"
)

// sessionStore is the part of accounts that keeps a user's login sessions
// and API tokens.
type sessionStore interface {
	ListSessions(username string) ([]accounts.SessionInfo, error)
	RevokeSession(username, id string, also ...store.TxHook) error
	RevokeAllSessions(username string, also ...store.ResultHook[int]) (int, error)
	ListTokens(username string) ([]accounts.TokenInfo, error)
	RevokeToken(username, id string, also ...store.TxHook) error
}

// credentials answers for one user's sessions and API tokens, the same
// whether an administrator asks (/users/{name}/…, userHandler) or the
// user (/me/…, selfHandler): the routes' rules say who may ask.
type credentials struct {
	sessions sessionStore
	trail    auditTrail
	log      *slog.Logger
}

func (cr credentials) listSessions(c *gin.Context, user string) {
	list, err := cr.sessions.ListSessions(user)
	if err != nil {
		accountError(c, cr.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": list})
}

func (cr credentials) revokeSession(c *gin.Context, user, id string) {
	if err := cr.sessions.RevokeSession(user, id, cr.trail.auditedBy(c, "session.revoke", map[string]string{"target": user, "session": id})); err != nil {
		accountError(c, cr.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (cr credentials) revokeSessions(c *gin.Context, user string) {
	n, err := cr.sessions.RevokeAllSessions(user, func(tx *store.Tx, n int) error {
		return cr.trail.appendIn(tx, byCaller(c, "session.revoke", map[string]string{"target": user, "session": "all", "count": strconv.Itoa(n)}))
	})
	if err != nil {
		accountError(c, cr.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"revoked": n})
}

func (cr credentials) listTokens(c *gin.Context, user string) {
	list, err := cr.sessions.ListTokens(user)
	if err != nil {
		accountError(c, cr.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": list})
}

func (cr credentials) revokeToken(c *gin.Context, user, id string) {
	if err := cr.sessions.RevokeToken(user, id, cr.trail.auditedBy(c, "token.revoke", map[string]string{"target": user, "token_id": id})); err != nil {
		accountError(c, cr.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}
