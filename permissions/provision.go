package permissions

import (
	"slices"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
)

// MayProvisionIn reports whether u may provision cameras in region: some
// valid provision grant of u's covers the region (names it, one of its
// ancestors, or all regions), whatever its categories and level. An edge
// agent's unbound cameras are shown only to such users; the point they
// then create is decided on its own attributes by Can.
//
// region "" (an agent given no region) is covered only by grants for all
// regions; so is a region the catalog no longer knows.
func (d *Decider) MayProvisionIn(u accounts.User, region string) bool {
	var path []string
	if region != "" {
		path = d.cat.RegionPath(region)
	}
	return ProvisionCovers(d.snapshot(), d.effective(u), path, time.Now())
}

// ProvisionCovers is Decider.MayProvisionIn over explicit grants; regionPath
// is the region and its ancestors (catalog.RegionPath).
func ProvisionCovers(grants []Grant, u accounts.User, regionPath []string, now time.Time) bool {
	if u.Disabled {
		return false
	}
	if u.IsAdmin() {
		return true
	}
	for _, g := range grants {
		if !g.AppliesTo(u) || !g.ValidAt(now) || !slices.Contains(g.Actions, Provision) || g.MaxLevel < catalog.MinLevel {
			continue
		}
		if slices.Contains(g.Regions, catalog.Wildcard) || slices.ContainsFunc(regionPath, func(r string) bool { return slices.Contains(g.Regions, r) }) {
			return true
		}
	}
	return false
}
