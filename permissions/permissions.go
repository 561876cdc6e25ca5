// Package permissions turns grants into decisions, in one place: every path
// that reads or changes a point (API, WHEP, RTSP) asks Decider. Decisions
// deny unless something grants.
//
// It must never import web or streaming; it reads point attributes and
// region ancestry from catalog and user roles from accounts.
package permissions

import (
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/store"
)

// Action is something a user may do to a point.
type Action string

// Actions.
const (
	View      Action = "view"
	Publish   Action = "publish"
	Manage    Action = "manage"
	PTZ       Action = "ptz"
	Snapshot  Action = "snapshot"
	Provision Action = "provision"
	Audit     Action = "audit"
)

// Decider decides whether a user may do an action on a point, from the
// grants it keeps cached in memory (writes go through it).
type Decider struct {
	store *Grants
	cat   *catalog.Catalog

	mu     sync.RWMutex
	grants []Grant
	duties Duties // nil: no separation of duties
	ho     handover
}

// New loads the grants and returns a Decider.
func New(store *Grants, cat *catalog.Catalog) (*Decider, error) {
	d := &Decider{store: store, cat: cat}
	return d, d.reload()
}

func (d *Decider) reload() error {
	gs, err := d.store.List()
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.grants = gs
	d.mu.Unlock()
	return nil
}

func (d *Decider) snapshot() []Grant {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.grants
}

// Can reports whether u may do a on p now. The admin role holds everything.
func (d *Decider) Can(u accounts.User, a Action, p catalog.Point) bool {
	u = d.effective(u)
	if u.Disabled {
		return false
	}
	if u.IsAdmin() {
		return true
	}
	return Allows(d.snapshot(), u, a, p, d.cat.RegionPath(p.Region), time.Now())
}

// PTZPriority is u's priority for steering p (see PTZArbiter).
func (d *Decider) PTZPriority(u accounts.User, p catalog.Point) int {
	return PTZPriorityOf(d.snapshot(), d.effective(u), p, d.cat.RegionPath(p.Region), time.Now())
}

// MayProvisionSomewhere reports whether u holds any valid provision grant
// (a cheap first check before a point's own attributes are known).
func (d *Decider) MayProvisionSomewhere(u accounts.User) bool {
	return d.HoldsSomewhere(u, Provision)
}

// Scope is what u may do a on, for lists and facets.
func (d *Decider) Scope(u accounts.User, a Action) catalog.Scope {
	return ScopeOf(d.snapshot(), d.effective(u), a, time.Now())
}

// CanManage reports whether u holds the admin role.
//
// Deprecated: every centre route names the SystemAction it needs (see
// CanSystem) or the point action it decides (see CanManagePoint); nothing
// should ask "is this an administrator" any more.
func (d *Decider) CanManage(u accounts.User) bool {
	return !u.Disabled && u.IsAdmin()
}

// CreateGrant stores a grant and applies it at once. The hooks run inside
// the same transaction, shown the grant as stored; an error from one
// stores nothing.
func (d *Decider) CreateGrant(g Grant, also ...store.ResultHook[Grant]) (Grant, error) {
	g, err := d.store.Create(g, time.Now(), also...)
	if err != nil {
		return g, err
	}
	return g, d.reload()
}

// DeleteGrant removes a grant and applies that at once. The hooks run
// inside the same transaction; an error from one keeps the grant.
func (d *Decider) DeleteGrant(id string, also ...store.TxHook) error {
	if err := d.store.Delete(id, also...); err != nil {
		return err
	}
	return d.reload()
}

// DeleteGrantsIn removes every grant match picks inside tx, a write
// transaction of the caller's (deleting the user or role they name, so that
// a later one of the same name inherits nothing), and returns them. The
// removal applies to decisions once tx commits; if tx rolls back the
// grants stay.
func (d *Decider) DeleteGrantsIn(tx *bbolt.Tx, match func(Grant) bool) ([]Grant, error) {
	gone, err := deleteWhere(tx, match)
	if err != nil || len(gone) == 0 {
		return gone, err
	}
	tx.OnCommit(func() {
		if err := d.reload(); err != nil {
			slog.Error("reloading grants after removal", "err", err)
		}
	})
	return gone, nil
}

// Grants lists every grant.
func (d *Decider) Grants() []Grant { return append([]Grant(nil), d.snapshot()...) }
