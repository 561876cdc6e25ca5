// Package permissions turns grants into decisions, in one place: every path
// that reads or changes a point (API, WHEP, RTSP) asks Decider. Decisions
// deny unless something grants.
//
// It must never import web or streaming; it reads point attributes from
// catalog and user roles from accounts.
package permissions

import (
	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
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

// Decider decides whether a user may do an action on a point. It is still
// admin-only; the grant rules (Grants, Allows, ScopeOf in grant.go) are
// built and property-tested but not yet wired in (issue [2/5]).
type Decider struct{}

// New returns a Decider.
func New() *Decider { return &Decider{} }

// Can reports whether u may do a on p. The admin role holds everything;
// anyone else is denied until grants exist for them.
func (d *Decider) Can(u accounts.User, a Action, p catalog.Point) bool {
	if u.Disabled {
		return false
	}
	return u.IsAdmin()
}

// CanManage reports whether u may change points, users and settings.
func (d *Decider) CanManage(u accounts.User) bool {
	return !u.Disabled && u.IsAdmin()
}
