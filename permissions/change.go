package permissions

import (
	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
)

// Changing the catalog is decided on every point a change touches: the
// point as stored and the point as it would be. Deciding on the stored
// point alone would let a user with manage on one street move a point out
// of it, or raise it above their level, into a place they could not reach.

// CanManagePoint reports whether u may change or delete p: the system
// action ManageAllPoints, or a grant's manage action covering p.
func (d *Decider) CanManagePoint(u accounts.User, p catalog.Point) bool {
	return d.CanSystem(u, ManageAllPoints) || d.Can(u, Manage, p)
}

// CanChange reports whether u may turn the stored point into next: u must
// be allowed to manage both.
func (d *Decider) CanChange(u accounts.User, stored, next catalog.Point) bool {
	return d.CanManagePoint(u, stored) && d.CanManagePoint(u, next)
}

// CanCreate reports whether u may add p to the catalog: as someone who may
// manage it, or as a technician holding provision for it when p is a
// camera behind an edge agent (what the agent's provisioning page
// registers, with the technician's login).
func (d *Decider) CanCreate(u accounts.User, p catalog.Point) bool {
	if d.CanManagePoint(u, p) {
		return true
	}
	return p.Agent != "" && d.Can(u, Provision, p)
}

// HoldsSomewhere reports whether u may do a on some point (a valid grant
// of a, or the admin role): the cheap check a route makes before the
// point it is about is known, such as a create before its body is read.
func (d *Decider) HoldsSomewhere(u accounts.User, a Action) bool {
	s := d.Scope(u, a)
	return s.All || len(s.Rules) > 0
}
