package accounts

import (
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/bbolt"
)

// Separation of duties (三员分立, GB/T 22239 level 3): the system
// administrator, the security administrator and the auditor are three
// people. Which system actions each duty holds is decided by permissions;
// this file keeps who holds which duty consistent.

// DutyRoles are the built-in duty roles, in the order they are listed.
var DutyRoles = []string{RoleSysAdmin, RoleSecAdmin, RoleAuditor}

// builtInRoles are the roles that exist without being created and can be
// neither created nor deleted.
var builtInRoles = map[string]string{
	RoleAdmin:    adminRoleDescription,
	RoleSysAdmin: "System administrator (系统管理员): users, edge agents, points and regions; no grants, no audit",
	RoleSecAdmin: "Security administrator (安全管理员): grants and roles",
	RoleAuditor:  "Auditor (安全审计员): reads and verifies the audit log",
}

// IsBuiltInRole reports whether name is admin or one of DutyRoles.
func IsBuiltInRole(name string) bool {
	_, ok := builtInRoles[name]
	return ok
}

// dutiesOf lists the duties roles hold; the admin role holds all three.
func dutiesOf(roles []string) []string {
	if slices.Contains(roles, RoleAdmin) {
		return DutyRoles
	}
	var out []string
	for _, r := range DutyRoles {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	return out
}

// checkSeparation refuses, when separation of duties is on, roles that give
// one account two duties. Only the bootstrap account may keep the admin
// role, which holds all three until each has a holder of its own (see
// DutyHolders); nobody else may be given it.
func (a *Accounts) checkSeparation(username string, roles []string) error {
	if !a.separate {
		return nil
	}
	if slices.Contains(roles, RoleAdmin) {
		if username != AdminUsername || len(roles) > 1 && len(dutiesOfExplicit(roles)) > 0 {
			return &ValidationError{"roles", "separation of duties: only the bootstrap admin holds role admin, and with no duty role besides"}
		}
		return nil
	}
	if d := dutiesOfExplicit(roles); len(d) > 1 {
		return &ValidationError{"roles", fmt.Sprintf("separation of duties: one account may hold only one of %s, not %s",
			strings.Join(DutyRoles, ", "), strings.Join(d, " and "))}
	}
	return nil
}

func dutiesOfExplicit(roles []string) []string {
	var out []string
	for _, r := range DutyRoles {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	return out
}

// SeparationOfDuties reports whether one account may hold only one duty.
func (a *Accounts) SeparationOfDuties() bool { return a.separate }

// DutyHolders reports, for each duty role, whether an enabled user other
// than an admin holds it explicitly. Under separation of duties the admin
// role keeps a duty only while nobody else holds it.
func (a *Accounts) DutyHolders() (map[string]bool, error) {
	held := map[string]bool{}
	err := a.db.View(func(tx *bbolt.Tx) error {
		return forEachUser(tx, func(rec userRecord) error {
			if rec.Disabled || rec.IsAdmin() {
				return nil
			}
			for _, d := range dutiesOfExplicit(rec.Roles) {
				held[d] = true
			}
			return nil
		})
	})
	return held, err
}

// UsersChanged counts committed user creates, updates and deletes: when it
// has not moved, DutyHolders has not either.
func (a *Accounts) UsersChanged() uint64 { return a.usersChanged.Load() }
