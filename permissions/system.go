package permissions

import (
	"slices"
	"sync"

	"github.com/tianyan/vms/accounts"
)

// SystemAction is something a user may do to the system itself rather than
// to one point: manage accounts, agents, regions or grants, read the audit
// log, operate the server. Point actions (View, Manage, …) are decided by
// grants; system actions by built-in roles (separation of duties, 三员分立).
type SystemAction string

// System actions. Each route that is not about one point names one of these.
const (
	// ManageUsers: users, their sessions and tokens (not grants).
	ManageUsers SystemAction = "users.manage"
	// ManageAgents: enroll, revoke, delete edge agents and set their region.
	ManageAgents SystemAction = "agents.manage"
	// ManageRegions: the region tree.
	ManageRegions SystemAction = "regions.manage"
	// ManageAllPoints: create, change, import and delete any point whatever
	// the grants say (a grant's manage action covers only its own scope).
	ManageAllPoints SystemAction = "points.manage_all"
	// ManageGrants: grants and roles, and the access previews.
	ManageGrants SystemAction = "grants.manage"
	// ReadAudit: the whole audit log and its verification (a point grant's
	// audit action covers only the records of its own points).
	ReadAudit SystemAction = "audit.read"
	// Operate: backups and metrics.
	Operate SystemAction = "system.operate"
)

// SystemActions lists every system action.
var SystemActions = []SystemAction{ManageUsers, ManageAgents, ManageRegions, ManageAllPoints, ManageGrants, ReadAudit, Operate}

// systemRoles maps each built-in duty role to the system actions it holds.
// accounts.RoleAdmin holds them all.
var systemRoles = map[string][]SystemAction{
	accounts.RoleSysAdmin: {ManageUsers, ManageAgents, ManageRegions, ManageAllPoints, Operate},
	accounts.RoleSecAdmin: {ManageGrants},
	accounts.RoleAuditor:  {ReadAudit},
}

// Duties tells a Decider whether separation of duties is on and which
// duties have holders of their own (*accounts.Accounts is one).
type Duties interface {
	SeparationOfDuties() bool
	DutyHolders() (map[string]bool, error)
	// UsersChanged moves whenever a user is created, changed or deleted.
	UsersChanged() uint64
}

// handover caches whether the bootstrap admin has handed the duties over,
// looked up again only when the users changed.
type handover struct {
	mu    sync.Mutex
	valid bool
	gen   uint64
	over  bool
}

// handedOver reports whether separation of duties is on and a sysadmin, a
// secadmin and an auditor all exist, so the admin role no longer holds
// anything by itself. A failed lookup counts as handed over (deny when
// unsure).
func (d *Decider) handedOver() bool {
	d.mu.RLock()
	src := d.duties
	d.mu.RUnlock()
	if src == nil || !src.SeparationOfDuties() {
		return false
	}
	gen := src.UsersChanged()
	d.ho.mu.Lock()
	defer d.ho.mu.Unlock()
	if d.ho.valid && d.ho.gen == gen {
		return d.ho.over
	}
	held, err := src.DutyHolders()
	over := err == nil
	for _, duty := range accounts.DutyRoles {
		over = over && held[duty]
	}
	if err != nil {
		over = true
	}
	d.ho.valid, d.ho.gen, d.ho.over = true, gen, over
	return over
}

// effective is u as decisions see them: under separation of duties, once
// the duties are handed over, the admin role gives nothing by itself, so
// the bootstrap admin is decided by grants like anyone else.
func (d *Decider) effective(u accounts.User) accounts.User {
	if !u.IsAdmin() || !d.handedOver() {
		return u
	}
	u.Roles = slices.DeleteFunc(slices.Clone(u.Roles), func(r string) bool { return r == accounts.RoleAdmin })
	return u
}

// UseDuties makes the Decider apply separation of duties from src: the
// admin role then keeps the system actions only until every duty has a
// holder of its own.
func (d *Decider) UseDuties(src Duties) {
	d.mu.Lock()
	d.duties = src
	d.mu.Unlock()
	d.ho.mu.Lock()
	d.ho.valid = false
	d.ho.mu.Unlock()
}

// CanSystem reports whether u may do the system action a. Disabled users
// may do nothing; the admin role holds every system action, except, under
// separation of duties, once a system administrator, a security
// administrator and an auditor all exist: the bootstrap admin sets the
// three up (accounts, then roles) and then hands every duty over at once.
func (d *Decider) CanSystem(u accounts.User, a SystemAction) bool {
	return CanSystem(d.effective(u), a)
}

// CanSystem is Decider.CanSystem without a Decider (roles only).
func CanSystem(u accounts.User, a SystemAction) bool {
	if u.Disabled {
		return false
	}
	if u.IsAdmin() {
		return true
	}
	for _, r := range u.Roles {
		if slices.Contains(systemRoles[r], a) {
			return true
		}
	}
	return false
}
