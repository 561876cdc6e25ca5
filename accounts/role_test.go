package accounts

import (
	"errors"
	"strings"
	"testing"
)

func roleNames(rs []Role) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}
	return strings.Join(names, ",")
}

func TestListRolesAlwaysHasTheBuiltInAdminAndIsSortedByName(t *testing.T) {
	f := newFixture(t, Options{})
	if err := f.a.CreateRole(Role{Name: "inspector", Description: "Inspects sites"}); err != nil {
		t.Fatal(err)
	}
	roles, err := f.a.ListRoles()
	if err != nil {
		t.Fatal(err)
	}
	if got := roleNames(roles); got != "admin,auditor,inspector,operator,secadmin,sysadmin,viewer" {
		t.Fatalf("roles = %s", got)
	}
	for _, r := range roles {
		if IsBuiltInRole(r.Name) && r.Description == "" || r.Name == "inspector" && r.Description != "Inspects sites" {
			t.Errorf("role %s description = %q", r.Name, r.Description)
		}
	}
}

func TestCreateRoleTwiceFailsWithErrRoleExists(t *testing.T) {
	f := newFixture(t, Options{})
	if err := f.a.CreateRole(Role{Name: "operator"}); !errors.Is(err, ErrRoleExists) {
		t.Fatalf("err = %v, want ErrRoleExists", err)
	}
	if err := f.a.CreateRole(Role{Name: RoleAdmin}); !errors.Is(err, ErrRoleBuiltIn) {
		t.Fatalf("creating admin: err = %v, want ErrRoleBuiltIn", err)
	}
}

func TestCreateRoleWithInvalidInputFailsWithValidationError(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tc := range []struct {
		field string
		r     Role
	}{
		{"name", Role{}},
		{"name", Role{Name: "Ops"}},
		{"name", Role{Name: "9ops"}},
		{"description", Role{Name: "ops", Description: "a\x00b"}},
		{"description", Role{Name: "ops", Description: strings.Repeat("x", 257)}},
	} {
		var ve *ValidationError
		if err := f.a.CreateRole(tc.r); !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("CreateRole(%+v) err = %v, want ValidationError on %q", tc.r, err, tc.field)
		}
	}
}

func TestDeleteRoleHeldByAUserFailsWithErrRoleInUse(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42", "operator")
	f.mustCreate(t, "bob", "builder-4242", "operator")
	f.mustCreate(t, "carol", "password-77", "viewer")
	if _, err := f.a.UpdateUser("carol", UserPatch{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if err := f.a.DeleteRole("operator"); !errors.Is(err, ErrRoleInUse) {
		t.Fatalf("err = %v, want ErrRoleInUse", err)
	}
	if err := f.a.DeleteRole("viewer"); !errors.Is(err, ErrRoleInUse) {
		t.Fatalf("err = %v, want ErrRoleInUse for a disabled holder too", err)
	}
	if _, err := f.a.UpdateUser("alice", UserPatch{Roles: ptr([]string{})}); err != nil {
		t.Fatal(err)
	}
	if err := f.a.DeleteUser("bob"); err != nil {
		t.Fatal(err)
	}
	if err := f.a.DeleteRole("operator"); err != nil {
		t.Fatalf("DeleteRole after its holders left: %v", err)
	}
	roles, _ := f.a.ListRoles()
	if got := roleNames(roles); got != "admin,auditor,secadmin,sysadmin,viewer" {
		t.Errorf("roles = %s", got)
	}
}

func TestTheBuiltInAdminRoleCannotBeDeleted(t *testing.T) {
	f := newFixture(t, Options{})
	if err := f.a.DeleteRole(RoleAdmin); !errors.Is(err, ErrRoleBuiltIn) {
		t.Fatalf("err = %v, want ErrRoleBuiltIn", err)
	}
	roles, _ := f.a.ListRoles()
	if roles[0].Name != RoleAdmin {
		t.Errorf("admin role gone: %s", roleNames(roles))
	}
}

func TestDeleteUnknownRoleFailsWithErrRoleNotFound(t *testing.T) {
	f := newFixture(t, Options{})
	for _, name := range []string{"ghost", ""} {
		if err := f.a.DeleteRole(name); !errors.Is(err, ErrRoleNotFound) {
			t.Errorf("DeleteRole(%q) err = %v, want ErrRoleNotFound", name, err)
		}
	}
}

func TestCreateUserWithUnknownRoleFailsWithValidationErrorOnRoles(t *testing.T) {
	f := newFixture(t, Options{})
	_, err := f.a.CreateUser(User{Username: "alice", Roles: []string{"viewer", "inspector"}}, "wonderland-42")
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "roles" || !strings.Contains(ve.Message, "inspector") {
		t.Fatalf("err = %v, want ValidationError on roles naming inspector", err)
	}
	if _, err := f.a.GetUser("alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("user stored anyway: %v", err)
	}
}

func TestCreateUserWithTheBuiltInAdminRoleNeedsNoStoredRole(t *testing.T) {
	f := newFixture(t, Options{})
	if u := f.mustCreate(t, "root", "password-1", RoleAdmin); !u.IsAdmin() {
		t.Fatalf("user = %+v", u)
	}
}
