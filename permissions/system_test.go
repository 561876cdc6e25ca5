package permissions

import (
	"testing"

	"github.com/tianyan/vms/accounts"
)

type fakeDuties struct {
	on   bool
	held map[string]bool
}

func (f fakeDuties) SeparationOfDuties() bool              { return f.on }
func (f fakeDuties) DutyHolders() (map[string]bool, error) { return f.held, nil }
func (f fakeDuties) UsersChanged() uint64                  { return 0 }

func TestEachDutyRoleHoldsOnlyItsOwnSystemActions(t *testing.T) {
	want := map[string][]SystemAction{
		accounts.RoleSysAdmin: {ManageUsers, ManageAgents, ManageRegions, ManageAllPoints, Operate},
		accounts.RoleSecAdmin: {ManageGrants},
		accounts.RoleAuditor:  {ReadAudit},
		"water-bureau":        nil,
	}
	for role, acts := range want {
		u := accounts.User{Username: "u", Roles: []string{role}}
		for _, a := range SystemActions {
			has := false
			for _, w := range acts {
				has = has || w == a
			}
			if got := CanSystem(u, a); got != has {
				t.Errorf("role %s, %s: %v, want %v", role, a, got, has)
			}
		}
	}
	admin := accounts.User{Username: "admin", Roles: []string{accounts.RoleAdmin}}
	for _, a := range SystemActions {
		if !CanSystem(admin, a) {
			t.Errorf("admin lacks %s", a)
		}
		if CanSystem(accounts.User{Roles: []string{accounts.RoleAdmin}, Disabled: true}, a) {
			t.Errorf("a disabled admin may %s", a)
		}
	}
}

func TestBootstrapAdminHandsTheDutiesOverOnceAllThreeHaveHolders(t *testing.T) {
	d := &Decider{}
	admin := accounts.User{Username: "admin", Roles: []string{accounts.RoleAdmin}}
	d.UseDuties(fakeDuties{on: true, held: map[string]bool{accounts.RoleSecAdmin: true, accounts.RoleAuditor: true}})
	for _, a := range SystemActions {
		if !d.CanSystem(admin, a) {
			t.Errorf("admin lost %s before every duty has a holder", a)
		}
	}
	d.UseDuties(fakeDuties{on: true, held: map[string]bool{accounts.RoleSecAdmin: true, accounts.RoleAuditor: true, accounts.RoleSysAdmin: true}})
	for _, a := range SystemActions {
		if d.CanSystem(admin, a) {
			t.Errorf("admin still may %s after handing the duties over", a)
		}
	}
	d.UseDuties(fakeDuties{on: false, held: map[string]bool{accounts.RoleSecAdmin: true, accounts.RoleAuditor: true, accounts.RoleSysAdmin: true}})
	if !d.CanSystem(admin, ManageGrants) {
		t.Error("without separation of duties admin keeps everything")
	}
}
