package permissions

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/store"
)

// reference decides by brute force from first principles, with its own
// ancestor walk over the generated tree.
func reference(grants []Grant, parent map[string]string, u accounts.User, a Action, p catalog.Point, now time.Time) bool {
	if u.Disabled {
		return false
	}
	for _, r := range u.Roles {
		if r == "admin" {
			return true
		}
	}
	for _, g := range grants {
		mine := g.User == u.Username && g.User != ""
		for _, r := range u.Roles {
			mine = mine || (g.Role != "" && g.Role == r)
		}
		if !mine || (g.NotBefore != nil && now.Before(*g.NotBefore)) || (g.NotAfter != nil && !now.Before(*g.NotAfter)) {
			continue
		}
		hasAction := false
		for _, x := range g.Actions {
			hasAction = hasAction || x == a
		}
		if !hasAction || p.Level > g.MaxLevel {
			continue
		}
		catOK := false
		for _, c := range g.Categories {
			catOK = catOK || c == "*" || c == p.Category
		}
		// Unclassified points are for admins only: no grant covers them, not even "*".
		catOK = catOK && p.Category != catalog.Unclassified
		regOK := false
		for _, want := range g.Regions {
			if want == "*" {
				regOK = true
			}
			for r := p.Region; r != ""; r = parent[r] {
				regOK = regOK || r == want
			}
		}
		if catOK && regOK {
			return true
		}
	}
	return false
}

func TestGrantDecisionsEqualBruteForceAndCatalogScope(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := catalog.New(db)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	parent := map[string]string{}
	regions := []string{"440307"}
	if _, err := cat.CreateRegion(catalog.Region{Code: "440307", Name: "District"}); err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 4; s++ {
		sc := fmt.Sprintf("440307%03d", s)
		if _, err := cat.CreateRegion(catalog.Region{Code: sc, Name: "Street " + sc, Parent: "440307"}); err != nil {
			t.Fatal(err)
		}
		parent[sc], regions = "440307", append(regions, sc)
		for c := 1; c <= 3; c++ {
			cc := fmt.Sprintf("%s%03d", sc, c)
			if _, err := cat.CreateRegion(catalog.Region{Code: cc, Name: "Community " + cc, Parent: sc}); err != nil {
				t.Fatal(err)
			}
			parent[cc], regions = sc, append(regions, cc)
		}
	}
	cats := []string{"reservoir", "river", "school", "road"}
	pointCats := append(cats[:len(cats):len(cats)], catalog.Unclassified)
	var points []catalog.Point
	for i := range 120 {
		p, err := cat.Create(catalog.Point{
			ID: fmt.Sprintf("p%03d", i), Name: "pt", Kind: catalog.KindHD,
			Category: pointCats[rng.IntN(len(pointCats))], Region: regions[rng.IntN(len(regions))],
			Level: 1 + rng.IntN(4), Main: catalog.Source{Type: catalog.SourcePublish}, OnDemand: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		points = append(points, p)
	}
	now := time.Now()
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	pick := func(all []string) []string {
		if rng.IntN(5) == 0 {
			return []string{"*"}
		}
		out := []string{all[rng.IntN(len(all))]}
		if rng.IntN(2) == 0 {
			out = append(out, all[rng.IntN(len(all))])
		}
		return out
	}
	for round := range 200 {
		var grants []Grant
		for range rng.IntN(5) {
			g := Grant{Categories: pick(cats), Regions: pick(regions), MaxLevel: 1 + rng.IntN(4),
				Actions: []Action{AllActions[rng.IntN(3)]}}
			if rng.IntN(2) == 0 {
				g.User = "u1"
			} else {
				g.Role = []string{"water", "street"}[rng.IntN(2)]
			}
			switch rng.IntN(4) {
			case 0:
				g.NotAfter = &past
			case 1:
				g.NotBefore = &future
			}
			if err := g.Validate(); err != nil {
				t.Fatalf("generated grant invalid: %v", err)
			}
			grants = append(grants, g)
		}
		u := accounts.User{Username: "u1", Roles: [][]string{nil, {"water"}, {"street", "water"}}[rng.IntN(3)]}
		for _, a := range []Action{View, PTZ, Snapshot} {
			scope := ScopeOf(grants, u, a, now)
			want := 0
			for _, p := range points {
				got := Allows(grants, u, a, p, cat.RegionPath(p.Region), now)
				ref := reference(grants, parent, u, a, p, now)
				if got != ref {
					t.Fatalf("round %d: %s on %s (%s %s L%d): Allows=%v reference=%v grants=%+v", round, a, p.ID, p.Category, p.Region, p.Level, got, ref, grants)
				}
				if cat.InScope(p, scope) != ref {
					t.Fatalf("round %d: catalog scope disagrees on %s", round, p.ID)
				}
				if ref {
					want++
				}
			}
			res, err := cat.Search(catalog.Query{Limit: 1000}, scope)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != want {
				t.Fatalf("round %d: search total %d, reference %d", round, res.Total, want)
			}
		}
	}
}

func TestGrantStoreRoundTripAndValidation(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gs := NewGrants(db)
	if _, err := gs.Create(Grant{User: "a", Role: "b", Categories: []string{"*"}, Regions: []string{"*"}, MaxLevel: 1, Actions: []Action{View}}, time.Now()); err == nil {
		t.Fatal("grant naming both user and role accepted")
	}
	if _, err := gs.Create(Grant{User: "a", Categories: []string{"volcano"}, Regions: []string{"*"}, MaxLevel: 1, Actions: []Action{View}}, time.Now()); err == nil {
		t.Fatal("unknown category accepted")
	}
	g, err := gs.Create(Grant{User: "a", Categories: []string{"reservoir"}, Regions: []string{"*"}, MaxLevel: 2, Actions: []Action{View}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	list, _ := gs.List()
	if len(list) != 1 || list[0].ID != g.ID {
		t.Fatalf("list %+v", list)
	}
	if err := gs.Delete(g.ID); err != nil {
		t.Fatal(err)
	}
	if err := gs.Delete(g.ID); err != ErrGrantNotFound {
		t.Fatalf("second delete: %v", err)
	}
}

// BenchmarkAllowsWHEPDecision is one decision for a WHEP request by a user
// whose grants cover 3 categories in 2 streets at level ≤ 2 (target ≤10 µs).
func BenchmarkAllowsWHEPDecision(b *testing.B) {
	grants := []Grant{
		{User: "water", Categories: []string{"reservoir", "river", "waterlogging"}, Regions: []string{"440307001", "440307002"}, MaxLevel: 2, Actions: []Action{View}},
	}
	for i := range 20 {
		grants = append(grants, Grant{Role: fmt.Sprintf("r%d", i), Categories: []string{"*"}, Regions: []string{"*"}, MaxLevel: 4, Actions: []Action{View}})
	}
	u := accounts.User{Username: "water", Roles: []string{"street"}}
	p := catalog.Point{ID: "x", Category: "river", Region: "440307002007", Level: 2}
	path := []string{"440307002007", "440307002", "440307"}
	now := time.Now()
	for b.Loop() {
		if !Allows(grants, u, View, p, path, now) {
			b.Fatal("denied")
		}
	}
}

func TestNoGrantMayNameOrCoverUnclassifiedPoints(t *testing.T) {
	g := Grant{User: "u1", Categories: []string{catalog.Unclassified}, Regions: []string{"*"}, MaxLevel: 4, Actions: []Action{View}}
	if err := g.Validate(); err == nil {
		t.Fatal("a grant naming unclassified validated")
	}
	g.Categories = []string{"river", catalog.Unclassified}
	if err := g.Validate(); err == nil {
		t.Fatal("a grant naming unclassified among others validated")
	}
	g.Categories = []string{"*"}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	p := catalog.Point{ID: "p", Category: catalog.Unclassified, Level: 1}
	u := accounts.User{Username: "u1"}
	if Allows([]Grant{g}, u, View, p, nil, time.Now()) {
		t.Fatal("a * grant covers an unclassified point")
	}
	if !Allows(nil, accounts.User{Username: "root", Roles: []string{"admin"}}, View, p, nil, time.Now()) {
		t.Fatal("an admin does not see an unclassified point")
	}
}
