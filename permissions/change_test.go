package permissions

import (
	"testing"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/store"
)

func TestChangesAreDecidedOnTheStoredAndTheResultingPoint(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := catalog.New(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []catalog.Region{{Code: "440307", Name: "D"}, {Code: "440307001", Name: "S1", Parent: "440307"}, {Code: "440307002", Name: "S2", Parent: "440307"}} {
		if _, err := cat.CreateRegion(r); err != nil {
			t.Fatal(err)
		}
	}
	d, err := New(NewGrants(db), cat)
	if err != nil {
		t.Fatal(err)
	}
	grant := func(user string, actions ...Action) {
		t.Helper()
		if _, err := d.CreateGrant(Grant{User: user, Categories: []string{"road"}, Regions: []string{"440307001"}, MaxLevel: 2, Actions: actions}); err != nil {
			t.Fatal(err)
		}
	}
	grant("mgr", Manage)
	grant("tech", Provision)
	mgr, tech := accounts.User{Username: "mgr"}, accounts.User{Username: "tech"}
	sys := accounts.User{Username: "sys", Roles: []string{accounts.RoleSysAdmin}}
	sec := accounts.User{Username: "sec", Roles: []string{accounts.RoleSecAdmin}}

	in := catalog.Point{Category: "road", Region: "440307001", Level: 1}
	moved := func(f func(p *catalog.Point)) catalog.Point { p := in; f(&p); return p }
	higher := moved(func(p *catalog.Point) { p.Level = 4 })
	elsewhere := moved(func(p *catalog.Point) { p.Region = "440307002" })
	otherCat := moved(func(p *catalog.Point) { p.Category = "reservoir" })
	renamed := moved(func(p *catalog.Point) { p.Name = "renamed" })

	for _, tc := range []struct {
		name         string
		u            accounts.User
		stored, next catalog.Point
		want         bool
	}{
		{"manage inside, stays inside", mgr, in, renamed, true},
		{"raised above the grant's level", mgr, in, higher, false},
		{"moved to another street", mgr, in, elsewhere, false},
		{"moved to another category", mgr, in, otherCat, false},
		{"brought into the grant from outside", mgr, higher, in, false},
		{"provision is not manage", tech, in, renamed, false},
		{"ManageAllPoints moves anything", sys, in, higher, true},
		{"grants administrators do not manage points", sec, in, renamed, false},
	} {
		if got := d.CanChange(tc.u, tc.stored, tc.next); got != tc.want {
			t.Errorf("%s: CanChange = %v, want %v", tc.name, got, tc.want)
		}
	}

	bound := moved(func(p *catalog.Point) { p.Agent = "a1"; p.Camera = "c1" })
	for _, tc := range []struct {
		name string
		u    accounts.User
		p    catalog.Point
		want bool
	}{
		{"manage creates inside its grant", mgr, in, true},
		{"manage does not create above its level", mgr, higher, false},
		{"provision creates a camera behind an agent", tech, bound, true},
		{"provision does not create a point without an agent", tech, in, false},
		{"provision does not create outside its grant", tech, moved(func(p *catalog.Point) { p.Agent = "a1"; p.Level = 3 }), false},
		{"ManageAllPoints creates anything", sys, higher, true},
		{"no grant, no create", sec, bound, false},
		{"disabled", accounts.User{Username: "mgr", Disabled: true}, in, false},
	} {
		if got := d.CanCreate(tc.u, tc.p); got != tc.want {
			t.Errorf("%s: CanCreate = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !d.HoldsSomewhere(tech, Provision) || d.HoldsSomewhere(tech, Manage) || d.HoldsSomewhere(sys, Manage) {
		t.Error("HoldsSomewhere reads grants, not system roles")
	}
}
