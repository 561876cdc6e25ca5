package permissions

import (
	"slices"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
)

// Explain lists what u may do on p now and which grants give it, for
// access previews. Admins get every action and no grants (their role gives
// everything); disabled users get nothing. For every action a,
// slices.Contains(actions, a) equals Can(u, a, p).
func (d *Decider) Explain(u accounts.User, p catalog.Point) (actions []Action, via []string) {
	return Explain(d.snapshot(), d.effective(u), p, d.cat.RegionPath(p.Region), time.Now())
}

// Explain is Decider.Explain over explicit grants; regionPath is p's region
// and its ancestors (catalog.RegionPath). Actions come in AllActions order,
// grant IDs in the order of grants.
func Explain(grants []Grant, u accounts.User, p catalog.Point, regionPath []string, now time.Time) (actions []Action, via []string) {
	if u.Disabled {
		return nil, nil
	}
	if u.IsAdmin() {
		return slices.Clone(AllActions), nil
	}
	give := map[Action]bool{}
	for _, g := range grants {
		one := []Grant{g}
		gives := false
		for _, a := range g.Actions {
			// Allows on the single grant keeps one definition of "applies".
			if Allows(one, u, a, p, regionPath, now) {
				give[a], gives = true, true
			}
		}
		if gives {
			via = append(via, g.ID)
		}
	}
	for _, a := range AllActions {
		if give[a] {
			actions = append(actions, a)
		}
	}
	return actions, via
}
