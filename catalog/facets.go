package catalog

// Facets counts the points in scope that match a query, per category, status and region.
//
// Each dimension is counted with every filter of the query except its own:
// category counts ignore Query.Categories, status counts ignore
// Query.Status, region counts ignore Query.Region. So the UI can show how
// many points the other choices of a filter would give while one is
// selected, and the counts equal Result.Total once the filter is applied.
// Limit, Cursor and Sort do not affect facets.
type Facets struct {
	Total      int             `json:"total"`      // matches with every filter, as Result.Total
	Categories []CategoryCount `json:"categories"` // all categories, in Categories order, zeros included
	Status     map[string]int  `json:"status"`     // count per state (online, offline, unknown, stale, agent_offline), zeros included
	Regions    []RegionCount   `json:"regions"`    // the region tree from its roots, zeros included
	Unassigned int             `json:"unassigned"` // points without a (known) region
}

// CategoryCount is the number of matching points of one category.
type CategoryCount struct {
	Code  string `json:"code"`
	Count int    `json:"count"`
}

// RegionCount is the number of matching points in a region and its whole subtree.
type RegionCount struct {
	Code     string        `json:"code"`
	Name     string        `json:"name"`
	Count    int           `json:"count"`
	Children []RegionCount `json:"children,omitempty"`
}

// Facets counts the points in scope s matching q per category, status and region (see type Facets).
func (c *Catalog) Facets(q Query, s Scope) (Facets, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ix := c.idx
	cq, err := ix.compileQuery(q)
	if err != nil {
		return Facets{}, err
	}
	cs := ix.compileScope(s)
	cats := make([]int, numCategories+1)
	st := make([]int, len(states))
	rows := make([]int, len(ix.regions.list)+1)
	total := 0
	for i := range ix.meta {
		m := &ix.meta[i]
		if !cs.admits(m) {
			continue
		}
		okCat, okRegion, okState := cq.matchCategory(m), cq.matchRegion(m), cq.matchState(m)
		failed := 0
		for _, ok := range [3]bool{okCat, okRegion, okState} {
			if !ok {
				failed++
			}
		}
		if failed > 1 || !cq.matchRest(m, ix.keys[i]) {
			continue
		}
		if okRegion && okState {
			cats[m.cat]++
		}
		if okCat && okRegion {
			st[m.state]++
		}
		if okCat && okState {
			rows[m.region+1]++
		}
		if failed == 0 {
			total++
		}
	}
	f := Facets{Total: total, Status: make(map[string]int, len(states)), Unassigned: rows[0]}
	f.Categories = make([]CategoryCount, numCategories)
	for i, cat := range Categories[:numCategories] {
		f.Categories[i] = CategoryCount{Code: cat.Code, Count: cats[i]}
	}
	for i, s := range states {
		f.Status[s] = st[i]
	}
	t := &ix.regions
	var build func(r int32) RegionCount
	build = func(r int32) RegionCount {
		rc := RegionCount{Code: t.list[r].Code, Name: t.list[r].Name, Count: rows[r+1]}
		for _, ch := range t.children[r] {
			child := build(ch)
			rc.Count += child.Count
			rc.Children = append(rc.Children, child)
		}
		return rc
	}
	f.Regions = []RegionCount{}
	for r := range t.list {
		if t.parent[r] < 0 {
			f.Regions = append(f.Regions, build(int32(r)))
		}
	}
	return f, nil
}
