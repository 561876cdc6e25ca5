package catalog

import "math"

// Locations is where every matching point is, in parallel arrays: entry i
// of ID, Name, Lat, Lon, Category and Status describe one point. It is what
// a map needs to draw all of a district's points at once, about a tenth of
// the bytes of the full points, and without paging.
type Locations struct {
	Total     int       `json:"total"`     // matching points in scope, located or not
	Unlocated int       `json:"unlocated"` // of Total, the points without coordinates; they are not listed
	ID        []string  `json:"id"`
	Name      []string  `json:"name"`
	Lat       []float64 `json:"lat"`      // WGS-84, rounded to 1e-6° (about 0.1 m)
	Lon       []float64 `json:"lon"`      // WGS-84, rounded to 1e-6°
	Category  []string  `json:"category"` // category code
	Status    []string  `json:"status"`   // a point state: "online", "offline", "unknown", "stale" or "agent_offline"
}

// Locations lists the located points in scope s that match q, sorted by
// ID, and counts those without a location.
//
// Every filter of q applies; Sort, Limit and Cursor do not, because the
// list is always whole and in ID order. Like Search it reads only the
// in-memory index, and its strings are shared with the index, which never
// changes them.
func (c *Catalog) Locations(q Query, s Scope) (Locations, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ix := c.idx
	q.Sort, q.Limit, q.Cursor = "", 0, ""
	cq, err := ix.compileQuery(q)
	if err != nil {
		return Locations{}, err
	}
	cs := ix.compileScope(s)
	// Two passes: count, then fill slices of the exact size, so a district
	// of 136k points costs six allocations rather than growing six slices.
	match := make([]int32, 0, 1024)
	var loc Locations
	for i := range ix.meta {
		m := &ix.meta[i]
		if !cs.admits(m) || !cq.matchCategory(m) || !cq.matchRegion(m) || !cq.matchState(m) || !cq.matchRest(m, ix.keys[i]) {
			continue
		}
		loc.Total++
		if !m.hasLoc {
			loc.Unlocated++
			continue
		}
		match = append(match, int32(i))
	}
	n := len(match)
	loc.ID, loc.Name, loc.Category, loc.Status = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	loc.Lat, loc.Lon = make([]float64, n), make([]float64, n)
	for j, i := range match {
		m, p := &ix.meta[i], ix.points[i]
		loc.ID[j], loc.Name[j], loc.Category[j], loc.Status[j] = p.ID, p.Name, p.Category, states[m.state]
		loc.Lat[j], loc.Lon[j] = roundMicro(m.lat), roundMicro(m.lon)
	}
	return loc, nil
}

// roundMicro rounds degrees to 1e-6: a tenth of a metre is finer than any
// map shows, and shorter numbers keep the answer small.
func roundMicro(deg float64) float64 {
	return math.Round(deg*1e6) / 1e6
}
