package catalog

import (
	"slices"
	"strings"
)

// index is the in-memory copy of every point and region that Get, List,
// Search and Facets read; bbolt is read only at New. It is guarded by
// Catalog.mu and changed only after the bbolt transaction that it mirrors
// has committed.
//
// Points are kept sorted by ID in parallel slices. meta holds what a scan
// tests, packed into 32 bytes per point so that a full scan of 136k points
// stays in cache-friendly sequential memory; the *Point values are
// immutable once indexed (a write replaces the pointer).
type index struct {
	ids     []string
	points  []*Point
	meta    []meta
	keys    []string // lower-case search text: id, name, address, tags, pinyin initials
	updated []int64  // UpdatedAt in Unix nanoseconds, for sort=-updated
	regions regionTable
	// cameras maps an (agent, camera) binding to the points bound to it:
	// one, since Create, Update and ImportPoints refuse a second; several
	// only for data stored before that rule, kept so they can be fixed.
	cameras map[cameraKey][]string
}

// cameraKey is one camera behind one edge agent.
type cameraKey struct{ agent, camera string }

// bindingOf is p's camera binding; ok is false for a point not bound to a
// camera (no agent, or an agent without a camera).
func bindingOf(p *Point) (k cameraKey, ok bool) {
	return cameraKey{p.Agent, p.Camera}, p.Agent != "" && p.Camera != ""
}

// meta is the scan-time view of one point.
type meta struct {
	lon, lat float64
	region   int32 // interned region index, or -1 for none or unknown
	cat      uint8 // index in Categories; numCategories for an unknown code
	kind     uint8 // index in kinds; len(kinds) for an unknown kind
	state    uint8 // index in states
	level    uint8 // 1..4; levelInvalid when out of range
	hasLoc   bool
}

// levelInvalid marks a stored level outside 1..4: no rule admits it.
const levelInvalid = 255

// regionTable interns region codes: index i is the i-th region by code.
type regionTable struct {
	list     []Region
	parent   []int32 // -1 for roots (and for parents that do not exist)
	children [][]int32
	byCode   map[string]int32
}

func newRegionTable(regions []Region) regionTable {
	list := slices.Clone(regions)
	slices.SortFunc(list, func(a, b Region) int { return strings.Compare(a.Code, b.Code) })
	t := regionTable{
		list:     list,
		parent:   make([]int32, len(list)),
		children: make([][]int32, len(list)),
		byCode:   make(map[string]int32, len(list)),
	}
	for i, r := range list {
		t.byCode[r.Code] = int32(i)
	}
	for i, r := range list {
		t.parent[i] = -1
		if p, ok := t.byCode[r.Parent]; ok && r.Parent != "" {
			t.parent[i] = p
		}
	}
	// The catalog refuses cycles; should stored data hold one anyway, cut it
	// so that every walk up the tree ends.
	for i := range t.parent {
		steps := 0
		for a := t.parent[i]; a >= 0; a = t.parent[a] {
			if steps++; steps > len(t.list) {
				t.parent[i] = -1
				break
			}
		}
	}
	for i, p := range t.parent {
		if p >= 0 {
			t.children[p] = append(t.children[p], int32(i))
		}
	}
	return t
}

// lookup returns the interned index of code, or -1.
func (t *regionTable) lookup(code string) int32 {
	if i, ok := t.byCode[code]; ok && code != "" {
		return i
	}
	return -1
}

// path returns code and its ancestors, code first; nil when code is unknown.
func (t *regionTable) path(code string) []string {
	var out []string
	for i := t.lookup(code); i >= 0; i = t.parent[i] {
		out = append(out, t.list[i].Code)
	}
	return out
}

// subtree returns a row set (row = region index + 1) holding root and every descendant.
func (t *regionTable) subtree(root int32) []bool {
	rows := make([]bool, len(t.list)+1)
	var walk func(int32)
	walk = func(i int32) {
		if rows[i+1] {
			return
		}
		rows[i+1] = true
		for _, c := range t.children[i] {
			walk(c)
		}
	}
	walk(root)
	return rows
}

func newIndex(points []Point, regions []Region) *index {
	ix := &index{regions: newRegionTable(regions), cameras: map[cameraKey][]string{}}
	sorted := make([]*Point, len(points))
	for i := range points {
		sorted[i] = &points[i]
	}
	slices.SortFunc(sorted, func(a, b *Point) int { return strings.Compare(a.ID, b.ID) })
	ix.grow(len(sorted))
	for _, p := range sorted {
		ix.appendPoint(p)
	}
	return ix
}

func (ix *index) grow(n int) {
	ix.ids = slices.Grow(ix.ids, n)
	ix.points = slices.Grow(ix.points, n)
	ix.meta = slices.Grow(ix.meta, n)
	ix.keys = slices.Grow(ix.keys, n)
	ix.updated = slices.Grow(ix.updated, n)
}

func (ix *index) appendPoint(p *Point) {
	ix.ids = append(ix.ids, p.ID)
	ix.points = append(ix.points, p)
	ix.meta = append(ix.meta, ix.metaOf(p))
	ix.keys = append(ix.keys, searchKey(p))
	ix.updated = append(ix.updated, p.UpdatedAt.UnixNano())
	ix.bind(p)
}

// bind records p's camera binding, if any.
func (ix *index) bind(p *Point) {
	if k, ok := bindingOf(p); ok && !slices.Contains(ix.cameras[k], p.ID) {
		ix.cameras[k] = append(ix.cameras[k], p.ID)
	}
}

// unbind forgets p's camera binding, if any.
func (ix *index) unbind(p *Point) {
	k, ok := bindingOf(p)
	if !ok {
		return
	}
	ids := slices.DeleteFunc(ix.cameras[k], func(id string) bool { return id == p.ID })
	if len(ids) == 0 {
		delete(ix.cameras, k)
		return
	}
	ix.cameras[k] = ids
}

// cameraOwner returns a point other than self bound to camera k.
func (ix *index) cameraOwner(k cameraKey, self string) (string, bool) {
	for _, id := range ix.cameras[k] {
		if id != self {
			return id, true
		}
	}
	return "", false
}

func (ix *index) metaOf(p *Point) meta {
	m := meta{region: ix.regions.lookup(p.Region), level: levelInvalid}
	if c, ok := lookupCategory(p.Category); ok {
		m.cat = c
	} else {
		m.cat = uint8(numCategories)
	}
	m.kind = uint8(len(kinds))
	if k := slices.Index(kinds, p.Kind); k >= 0 {
		m.kind = uint8(k)
	}
	m.state = uint8(slices.Index(states, StateUnknown))
	if s := slices.Index(states, p.Status.State); s >= 0 {
		m.state = uint8(s)
	}
	if p.Level >= MinLevel && p.Level <= MaxLevel {
		m.level = uint8(p.Level)
	}
	if p.Lat != nil && p.Lon != nil {
		m.hasLoc, m.lat, m.lon = true, *p.Lat, *p.Lon
	}
	return m
}

// searchKey is the lower-case text a query term is matched against. Fields
// are separated by a control character, which query terms never contain, so
// a term never matches across two fields.
func searchKey(p *Point) string {
	var b strings.Builder
	b.Grow(len(p.ID) + len(p.Name) + len(p.Address) + 32)
	b.WriteString(strings.ToLower(p.ID))
	b.WriteByte(keySep)
	b.WriteString(strings.ToLower(p.Name))
	b.WriteByte(keySep)
	b.WriteString(strings.ToLower(p.Address))
	for _, t := range p.Tags {
		b.WriteByte(keySep)
		b.WriteString(strings.ToLower(t))
	}
	if in := initials(p.Name); in != "" {
		b.WriteByte(keySep)
		b.WriteString(in)
	}
	return b.String()
}

const keySep = '\x1f'

// find returns the position of id, or where it would be inserted.
func (ix *index) find(id string) (int, bool) {
	return slices.BinarySearch(ix.ids, id)
}

// get returns the indexed point id.
func (ix *index) get(id string) (*Point, bool) {
	i, ok := ix.find(id)
	if !ok {
		return nil, false
	}
	return ix.points[i], true
}

// put inserts p or replaces the point with its ID. p must not be changed afterwards.
func (ix *index) put(p *Point) {
	i, ok := ix.find(p.ID)
	if ok {
		ix.unbind(ix.points[i])
		ix.bind(p)
		ix.points[i] = p
		ix.meta[i] = ix.metaOf(p)
		ix.keys[i] = searchKey(p)
		ix.updated[i] = p.UpdatedAt.UnixNano()
		return
	}
	ix.ids = slices.Insert(ix.ids, i, p.ID)
	ix.points = slices.Insert(ix.points, i, p)
	ix.meta = slices.Insert(ix.meta, i, ix.metaOf(p))
	ix.keys = slices.Insert(ix.keys, i, searchKey(p))
	ix.updated = slices.Insert(ix.updated, i, p.UpdatedAt.UnixNano())
	ix.bind(p)
}

// remove deletes the point id if indexed.
func (ix *index) remove(id string) {
	i, ok := ix.find(id)
	if !ok {
		return
	}
	ix.unbind(ix.points[i])
	ix.ids = slices.Delete(ix.ids, i, i+1)
	ix.points = slices.Delete(ix.points, i, i+1)
	ix.meta = slices.Delete(ix.meta, i, i+1)
	ix.keys = slices.Delete(ix.keys, i, i+1)
	ix.updated = slices.Delete(ix.updated, i, i+1)
}

// putNew merges points sorted by ID, none of which is indexed yet, in one pass.
func (ix *index) putNew(sorted []*Point) {
	old := *ix
	*ix = index{regions: old.regions, cameras: old.cameras}
	ix.grow(len(old.ids) + len(sorted))
	i, j := 0, 0
	for i < len(old.ids) || j < len(sorted) {
		if j == len(sorted) || (i < len(old.ids) && old.ids[i] < sorted[j].ID) {
			ix.ids = append(ix.ids, old.ids[i])
			ix.points = append(ix.points, old.points[i])
			ix.meta = append(ix.meta, old.meta[i])
			ix.keys = append(ix.keys, old.keys[i])
			ix.updated = append(ix.updated, old.updated[i])
			i++
			continue
		}
		ix.appendPoint(sorted[j])
		j++
	}
}

// setRegions replaces the region table and re-interns every point's region.
func (ix *index) setRegions(regions []Region) {
	ix.regions = newRegionTable(regions)
	for i, p := range ix.points {
		ix.meta[i].region = ix.regions.lookup(p.Region)
	}
}

// regionInUse reports whether any point is assigned to code.
func (ix *index) regionInUse(code string) bool {
	r := ix.regions.lookup(code)
	if r < 0 {
		return false
	}
	for i := range ix.meta {
		if ix.meta[i].region == r {
			return true
		}
	}
	return false
}
