package permissions

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
)

// TestProvisionCoversARegionIffSomePointThereMayBeProvisioned holds
// ProvisionCovers to its meaning, by brute force through the reference:
// a user's provision grants cover a region exactly when some point of some
// category and level in that region could be provisioned by them.
func TestProvisionCoversARegionIffSomePointThereMayBeProvisioned(t *testing.T) {
	parent := map[string]string{"440307001": "440307", "440307002": "440307", "440307001001": "440307001", "440307002001": "440307002"}
	regions := []string{"440307", "440307001", "440307002", "440307001001", "440307002001"}
	path := func(r string) []string {
		var out []string
		for ; r != ""; r = parent[r] {
			out = append(out, r)
		}
		return out
	}
	cats := []string{"reservoir", "school", "road"}
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now()
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	pick := func(all []string) []string {
		if rng.IntN(5) == 0 {
			return []string{"*"}
		}
		return []string{all[rng.IntN(len(all))]}
	}
	covered := 0
	for round := range 500 {
		var grants []Grant
		for range rng.IntN(4) {
			g := Grant{User: "u1", Categories: pick(cats), Regions: pick(regions), MaxLevel: 1 + rng.IntN(4),
				Actions: []Action{[]Action{Provision, View, Snapshot}[rng.IntN(3)]}}
			if rng.IntN(2) == 0 {
				g.User, g.Role = "", "tech"
			}
			switch rng.IntN(5) {
			case 0:
				g.NotAfter = &past
			case 1:
				g.NotBefore = &future
			}
			grants = append(grants, g)
		}
		u := accounts.User{Username: "u1", Roles: [][]string{nil, {"tech"}}[rng.IntN(2)], Disabled: rng.IntN(10) == 0}
		for _, r := range append(regions, "", "unknown") {
			want := false
			for _, c := range cats {
				for level := catalog.MinLevel; level <= catalog.MaxLevel; level++ {
					p := catalog.Point{Category: c, Region: r, Level: level}
					want = want || reference(grants, parent, u, Provision, p, now)
				}
			}
			var rp []string
			if r != "unknown" {
				rp = path(r)
			}
			if got := ProvisionCovers(grants, u, rp, now); got != want {
				t.Fatalf("round %d region %q: ProvisionCovers=%v, reference=%v; user %+v grants %+v", round, r, got, want, u, grants)
			}
			if want {
				covered++
			}
		}
	}
	if covered == 0 {
		t.Fatal("no generated case was covered: the test proves nothing")
	}
	admin := accounts.User{Username: "root", Roles: []string{accounts.RoleAdmin}}
	if !ProvisionCovers(nil, admin, nil, now) || ProvisionCovers(nil, accounts.User{Username: "root", Roles: []string{accounts.RoleAdmin}, Disabled: true}, nil, now) {
		t.Fatal("admins may provision anywhere, unless disabled")
	}
}
