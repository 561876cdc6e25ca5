package permissions

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
)

// Explain must agree with the brute-force reference on every action, name
// exactly the grants that give something, and give admins everything.
func TestExplainAgreesWithTheReferenceAndNamesEveryGivingGrant(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	parent := map[string]string{"440307001": "440307", "440307002": "440307", "440307001001": "440307001"}
	regions := []string{"440307", "440307001", "440307002", "440307001001"}
	path := func(code string) []string {
		var out []string
		for r := code; r != ""; r = parent[r] {
			out = append(out, r)
		}
		return out
	}
	cats := []string{"reservoir", "river", "school"}
	now := time.Now()
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	for round := range 500 {
		var grants []Grant
		for i := range rng.IntN(6) {
			g := Grant{ID: fmt.Sprintf("g%d", i), MaxLevel: 1 + rng.IntN(4),
				Categories: []string{[]string{"*", cats[0], cats[1], cats[2]}[rng.IntN(4)]},
				Regions:    []string{append([]string{"*"}, regions...)[rng.IntN(len(regions)+1)]}}
			for _, a := range AllActions {
				if rng.IntN(3) == 0 {
					g.Actions = append(g.Actions, a)
				}
			}
			if len(g.Actions) == 0 {
				g.Actions = []Action{View}
			}
			if rng.IntN(2) == 0 {
				g.User = "u1"
			} else {
				g.Role = "water"
			}
			switch rng.IntN(5) {
			case 0:
				g.NotAfter = &past
			case 1:
				g.NotBefore = &future
			}
			grants = append(grants, g)
		}
		u := accounts.User{Username: "u1", Roles: [][]string{nil, {"water"}}[rng.IntN(2)], Disabled: rng.IntN(10) == 0}
		p := catalog.Point{ID: "p", Category: cats[rng.IntN(len(cats))], Region: regions[rng.IntN(len(regions))], Level: 1 + rng.IntN(4)}

		actions, via := Explain(grants, u, p, path(p.Region), now)
		for _, a := range AllActions {
			if got, want := slices.Contains(actions, a), reference(grants, parent, u, a, p, now); got != want {
				t.Fatalf("round %d: %s: Explain %v, reference %v (grants %+v, user %+v, point %+v)", round, a, got, want, grants, u, p)
			}
		}
		for _, g := range grants {
			gives := false
			for _, a := range AllActions {
				gives = gives || reference([]Grant{g}, parent, u, a, p, now)
			}
			if gives != slices.Contains(via, g.ID) {
				t.Fatalf("round %d: grant %+v gives something: %v, named in via %v", round, g, gives, via)
			}
		}
	}

	admin := accounts.User{Username: "root", Roles: []string{accounts.RoleAdmin}}
	actions, via := Explain(nil, admin, catalog.Point{Category: "school", Level: 4}, nil, now)
	if !slices.Equal(actions, AllActions) || via != nil {
		t.Fatalf("admin: %v via %v", actions, via)
	}
	admin.Disabled = true
	if actions, _ := Explain(nil, admin, catalog.Point{Category: "school", Level: 4}, nil, now); len(actions) != 0 {
		t.Fatalf("disabled admin may %v", actions)
	}
}
