package accounts

import (
	"errors"
	"testing"
)

func TestDutyRolesAreBuiltInAndCannotBeCreatedOrDeleted(t *testing.T) {
	f := newFixture(t, Options{})
	roles, err := f.a.ListRoles()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range roles {
		names[r.Name] = true
	}
	for _, r := range append([]string{RoleAdmin}, DutyRoles...) {
		if !names[r] {
			t.Errorf("ListRoles lacks built-in %q", r)
		}
		if err := f.a.CreateRole(Role{Name: r}); !errors.Is(err, ErrRoleBuiltIn) {
			t.Errorf("CreateRole(%q) = %v, want ErrRoleBuiltIn", r, err)
		}
		if err := f.a.DeleteRole(r); !errors.Is(err, ErrRoleBuiltIn) {
			t.Errorf("DeleteRole(%q) = %v, want ErrRoleBuiltIn", r, err)
		}
	}
	// Usable without being created.
	if _, err := f.a.CreateUser(User{Username: "sam", Roles: []string{RoleSysAdmin, RoleAuditor}}, "pass-word-1"); err != nil {
		t.Errorf("without separation of duties two duties are allowed: %v", err)
	}
}

func TestSeparationOfDutiesRefusesTwoDutiesOnOneAccount(t *testing.T) {
	f := newFixture(t, Options{SeparationOfDuties: true})
	wantRolesRefused := func(what string, err error) {
		t.Helper()
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "roles" {
			t.Errorf("%s: err = %v, want a validation error on roles", what, err)
		}
	}
	_, err := f.a.CreateUser(User{Username: "sam", Roles: []string{RoleSysAdmin, RoleSecAdmin}}, "pass-word-1")
	wantRolesRefused("create sysadmin+secadmin", err)
	if _, err := f.a.GetUser("sam"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused user was stored: %v", err)
	}
	if _, err := f.a.CreateUser(User{Username: "sam", Roles: []string{RoleSysAdmin}}, "pass-word-1"); err != nil {
		t.Fatal(err)
	}
	two := []string{RoleSysAdmin, RoleAuditor}
	_, err = f.a.UpdateUser("sam", UserPatch{Roles: &two})
	wantRolesRefused("patch to sysadmin+auditor", err)
	if u, _ := f.a.GetUser("sam"); len(u.Roles) != 1 || u.Roles[0] != RoleSysAdmin {
		t.Errorf("refused patch changed roles to %v", u.Roles)
	}
	_, err = f.a.CreateUser(User{Username: "eve", Roles: []string{RoleAdmin}}, "pass-word-1")
	wantRolesRefused("a second admin", err)
	if _, _, err := f.a.EnsureAdmin("boot-strap-1"); err != nil {
		t.Fatalf("bootstrap admin refused: %v", err)
	}
	withDuty := []string{RoleAdmin, RoleAuditor}
	_, err = f.a.UpdateUser(AdminUsername, UserPatch{Roles: &withDuty})
	wantRolesRefused("admin plus a duty", err)
}

func TestDutyHoldersCountOnlyEnabledNonAdminAccounts(t *testing.T) {
	f := newFixture(t, Options{SeparationOfDuties: true})
	if _, _, err := f.a.EnsureAdmin("boot-strap-1"); err != nil {
		t.Fatal(err)
	}
	held, err := f.a.DutyHolders()
	if err != nil || len(held) != 0 {
		t.Fatalf("only the admin: held = %v, %v", held, err)
	}
	if _, err := f.a.CreateUser(User{Username: "sec", Roles: []string{RoleSecAdmin}}, "pass-word-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.CreateUser(User{Username: "aud", Roles: []string{RoleAuditor}}, "pass-word-1"); err != nil {
		t.Fatal(err)
	}
	off := true
	if _, err := f.a.UpdateUser("aud", UserPatch{Disabled: &off}); err != nil {
		t.Fatal(err)
	}
	held, _ = f.a.DutyHolders()
	if !held[RoleSecAdmin] || held[RoleAuditor] || held[RoleSysAdmin] {
		t.Errorf("held = %v, want only secadmin (the auditor is disabled)", held)
	}
}
