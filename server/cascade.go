package server

import (
	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/permissions"
)

// cascadeAccess answers the cascade's questions about an upstream
// platform's account with the same Decider every other door asks: the
// platform sees and plays exactly what its grants allow. Only an enabled
// platform account (accounts.KindPlatform) gets anything: a person's
// account named by mistake, a disabled or a deleted one, gets nothing.
type cascadeAccess struct {
	acc  *accounts.Accounts
	cat  *catalog.Catalog
	perm *permissions.Decider
}

// platformUser returns the enabled platform account named account.
func (c cascadeAccess) platformUser(account string) (accounts.User, bool) {
	u, err := c.acc.GetUser(account)
	if err != nil || u.Disabled || !u.IsPlatform() {
		return accounts.User{}, false
	}
	return u, true
}

// PointsVisibleTo returns every point account may view, in ID order.
func (c cascadeAccess) PointsVisibleTo(account string) []catalog.Point {
	u, ok := c.platformUser(account)
	if !ok {
		return nil
	}
	scope := c.perm.Scope(u, permissions.View)
	var out []catalog.Point
	q := catalog.Query{Limit: 1000}
	for {
		res, err := c.cat.Search(q, scope)
		if err != nil {
			return out
		}
		for _, p := range res.Items {
			// The scope is the index's first cut; Can is the decision.
			if c.perm.Can(u, permissions.View, p) {
				out = append(out, p)
			}
		}
		if res.NextCursor == "" {
			return out
		}
		q.Cursor = res.NextCursor
	}
}

// CanView reports whether account may view pointID now.
func (c cascadeAccess) CanView(account, pointID string) bool {
	u, ok := c.platformUser(account)
	if !ok {
		return false
	}
	p, err := c.cat.Get(pointID)
	return err == nil && c.perm.Can(u, permissions.View, p)
}

// platformStatus says how our registration to the upstream platform id
// stands (the admin page's status column).
func (a *App) platformStatus(id string) gb28181.PlatformStatus {
	if a.Cascade == nil {
		return gb28181.PlatformStatus{}
	}
	return a.Cascade.Status(id)
}

// startCascade registers upward to the configured platforms through srv,
// the GB/T 28181 server, answering them from the hub with the grants of
// their accounts.
func (a *App) startCascade(srv *gb28181.Server, perm *permissions.Decider) {
	a.Cascade = gb28181.NewCascade(srv, a.GBPlatforms, gb28181.CascadeConfig{
		Access:  cascadeAccess{acc: a.Accounts, cat: a.Catalog, perm: perm},
		Streams: a.Hub,
		Audit:   a.Audit,
		Logger:  a.log,
	})
	a.Cascade.Start()
}
