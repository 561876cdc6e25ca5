package catalog

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInScopeMatchesCategoryRegionSubtreeAndLevel(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	p := rtspPoint("cam", "Cam")
	p.Category, p.Region, p.Level = "river", "440307001002", 2
	unassigned := p
	unassigned.Region = ""
	rule := func(cats, regions []string, level int) Scope {
		return Scope{Rules: []ScopeRule{{Categories: cats, Regions: regions, MaxLevel: level}}}
	}
	tests := []struct {
		name          string
		s             Scope
		in, unassigIn bool
	}{
		{"all", Scope{All: true}, true, true},
		{"no rules", Scope{}, false, false},
		{"everything up to 4", rule(nil, nil, 4), true, true},
		{"wildcards", rule([]string{"*"}, []string{"*"}, 2), true, true},
		{"level too low", rule(nil, nil, 1), false, false},
		{"level 0 admits nothing", rule(nil, nil, 0), false, false},
		{"other category", rule([]string{"road"}, nil, 4), false, false},
		{"own category", rule([]string{"road", "river"}, nil, 4), true, true},
		{"empty category list admits nothing", rule([]string{}, nil, 4), false, false},
		{"own community", rule(nil, []string{"440307001002"}, 4), true, false},
		{"own street", rule(nil, []string{"440307001"}, 4), true, false},
		{"district", rule(nil, []string{"440307"}, 4), true, false},
		{"sibling community", rule(nil, []string{"440307001001"}, 4), false, false},
		{"other street", rule(nil, []string{"440307002"}, 4), false, false},
		{"empty region list admits nothing", rule(nil, []string{}, 4), false, false},
		{"second rule matches", Scope{Rules: []ScopeRule{{Categories: []string{"road"}, MaxLevel: 4}, {Regions: []string{"440307001"}, MaxLevel: 3}}}, true, false},
	}
	for _, tt := range tests {
		if got := c.InScope(p, tt.s); got != tt.in {
			t.Errorf("%s: InScope = %v, want %v", tt.name, got, tt.in)
		}
		if got := c.InScope(unassigned, tt.s); got != tt.unassigIn {
			t.Errorf("%s: InScope(unassigned) = %v, want %v", tt.name, got, tt.unassigIn)
		}
	}
}

// world is a random catalog for the property test.
type world struct {
	c       *Catalog
	regions []Region
	points  []Point
}

var termPool = []string{"gate", "水库", "sk", "north", "cam", "1", "Road", "dam", "x"}

func randomWorld(t *testing.T, rng *rand.Rand) world {
	c := newCatalog(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { clock = clock.Add(time.Duration(rng.IntN(3)) * time.Second); return clock }
	// A random forest: 1-2 roots of 6 digits, streets of 9, communities of 12.
	var regions []Region
	for r := range 1 + rng.IntN(2) {
		root := fmt.Sprintf("4403%02d", r+7)
		regions = append(regions, Region{Code: root, Name: "D" + root})
		for s := range rng.IntN(4) {
			street := fmt.Sprintf("%s%03d", root, s+1)
			regions = append(regions, Region{Code: street, Name: "S" + street, Parent: root})
			for k := range rng.IntN(4) {
				regions = append(regions, Region{Code: fmt.Sprintf("%s%03d", street, k+1), Name: "C", Parent: street})
			}
		}
	}
	rng.Shuffle(len(regions), func(i, j int) { regions[i], regions[j] = regions[j], regions[i] })
	if _, rowErrs, err := c.ImportRegionsCSV(strings.NewReader(regionsCSV(regions)), false); err != nil {
		t.Fatalf("regions: %v %v", rowErrs, err)
	}
	cats := []string{"road", "river", "school", "reservoir"}
	names := []string{"North gate", "前海水库", "Lobby", "Dam road 1", "camera x"}
	var b strings.Builder
	b.WriteString(csvHeader)
	n := 20 + rng.IntN(120)
	for i := range n {
		region := ""
		if rng.IntN(6) > 0 {
			region = regions[rng.IntN(len(regions))].Code
		}
		lat, lon := "", ""
		if rng.IntN(4) > 0 {
			lat, lon = fmt.Sprintf("%.3f", 22.4+rng.Float64()*0.3), fmt.Sprintf("%.3f", 113.7+rng.Float64()*0.4)
		}
		kind := []string{"", KindHD, KindPanoramic}[rng.IntN(3)]
		tags := []string{"", "dam", "north;x"}[rng.IntN(3)]
		id := ""
		if rng.IntN(3) > 0 {
			id = fmt.Sprintf("p%03d", i)
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s,%d,%s,%s,,,\n", id, names[rng.IntN(len(names))], kind, cats[rng.IntN(len(cats))],
			region, lat, lon, 1+rng.IntN(MaxLevel), []string{"", "Road 9", "南山"}[rng.IntN(3)], tags)
	}
	mustImport(t, c, b.String(), ContentTypeCSV)
	points, _ := c.List()
	for _, p := range points {
		switch rng.IntN(4) {
		case 0:
			_ = c.SetStatus(p.ID, StateOnline, time.Time{})
		case 1:
			_ = c.SetStatus(p.ID, StateOffline, time.Time{})
		case 2:
			name := names[rng.IntN(len(names))] + " v2"
			if _, err := c.Update(p.ID, PointPatch{Name: &name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	points, _ = c.List()
	return world{c: c, regions: regions, points: points}
}

func pick[T any](rng *rand.Rand, from []T, maxN int) []T {
	var out []T
	for range rng.IntN(maxN + 1) {
		out = append(out, from[rng.IntN(len(from))])
	}
	return out
}

func (w world) randomScope(rng *rand.Rand) Scope {
	if rng.IntN(10) == 0 {
		return Scope{All: true}
	}
	codes := make([]string, 0, len(w.regions)+1)
	for _, r := range w.regions {
		codes = append(codes, r.Code)
	}
	codes = append(codes, "449999") // a region that does not exist
	var s Scope
	for range rng.IntN(4) {
		r := ScopeRule{MaxLevel: rng.IntN(MaxLevel + 2)}
		switch rng.IntN(4) {
		case 0: // nil: all
		case 1:
			r.Categories = []string{Wildcard}
		default:
			r.Categories = pick(rng, []string{"road", "river", "school", "reservoir", "zoo"}, 3)
			if r.Categories == nil {
				r.Categories = []string{}
			}
		}
		switch rng.IntN(4) {
		case 0:
		case 1:
			r.Regions = []string{Wildcard}
		default:
			r.Regions = pick(rng, codes, 3)
			if r.Regions == nil {
				r.Regions = []string{}
			}
		}
		s.Rules = append(s.Rules, r)
	}
	return s
}

func (w world) randomQuery(rng *rand.Rand) Query {
	q := Query{Limit: 1 + rng.IntN(15), Sort: []string{"", SortID, SortName, SortUpdatedDesc}[rng.IntN(4)]}
	if rng.IntN(2) == 0 {
		q.Categories = pick(rng, []string{"road", "river", "school", "reservoir", "hospital"}, 2)
	}
	if rng.IntN(2) == 0 {
		q.Region = w.regions[rng.IntN(len(w.regions))].Code
	}
	if rng.IntN(4) == 0 {
		q.Kind = kinds[rng.IntN(len(kinds))]
	}
	if rng.IntN(4) == 0 {
		q.Status = states[rng.IntN(len(states))]
	}
	if rng.IntN(4) == 0 {
		q.Level = 1 + rng.IntN(MaxLevel)
	}
	if rng.IntN(3) == 0 {
		q.Q = strings.Join(pick(rng, termPool, 2), " ")
	}
	if rng.IntN(4) == 0 {
		lon, lat := 113.7+rng.Float64()*0.4, 22.4+rng.Float64()*0.3
		q.BBox = &[4]float64{lon, lat, lon + rng.Float64()*0.3, lat + rng.Float64()*0.2}
	}
	return q
}

// refFilter is the brute-force reading of a Query's filters; skip names the
// dimension ("category", "region", "status") to leave out, as facets do.
func (w world) refFilter(p Point, q Query, skip string) bool {
	if skip != "category" && len(q.Categories) > 0 && !slices.Contains(q.Categories, p.Category) {
		return false
	}
	if skip != "region" && q.Region != "" && !slices.Contains(w.c.RegionPath(p.Region), q.Region) {
		return false
	}
	if skip != "status" && q.Status != "" && p.Status.State != q.Status {
		return false
	}
	if q.Kind != "" && p.Kind != q.Kind || q.Level > 0 && p.Level != q.Level {
		return false
	}
	if b := q.BBox; b != nil && (p.Lat == nil || *p.Lon < b[0] || *p.Lon > b[2] || *p.Lat < b[1] || *p.Lat > b[3]) {
		return false
	}
	fields := append([]string{p.ID, p.Name, p.Address, initials(p.Name)}, p.Tags...)
	for _, term := range strings.Fields(strings.ToLower(q.Q)) {
		if !slices.ContainsFunc(fields, func(f string) bool { return strings.Contains(strings.ToLower(f), term) }) {
			return false
		}
	}
	return true
}

func refSort(points []Point, sort string) {
	slices.SortFunc(points, func(a, b Point) int {
		switch sort {
		case SortName:
			if c := strings.Compare(a.Name, b.Name); c != 0 {
				return c
			}
		case SortUpdatedDesc:
			if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
				return c
			}
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func TestSearchAndFacetsEqualBruteForceOverRandomCatalogs(t *testing.T) {
	const worlds, casesPerWorld = 8, 120
	nonEmpty := 0
	defer func() { t.Logf("%d of %d cases had matches", nonEmpty, worlds*casesPerWorld) }()
	for wi := range worlds {
		rng := rand.New(rand.NewPCG(uint64(wi), 42))
		w := randomWorld(t, rng)
		for ci := range casesPerWorld {
			s, q := w.randomScope(rng), w.randomQuery(rng)
			var want []Point
			for _, p := range w.points {
				if w.c.InScope(p, s) && w.refFilter(p, q, "") {
					want = append(want, p)
				}
			}
			refSort(want, q.sort())
			nonEmpty += min(len(want), 1)
			var got []string
			page := q
			for pages := 0; ; pages++ {
				res, err := w.c.Search(page, s)
				if err != nil {
					t.Fatalf("world %d case %d: Search(%+v): %v", wi, ci, page, err)
				}
				if res.Total != len(want) {
					t.Fatalf("world %d case %d: Total = %d, want %d\nquery %+v\nscope %+v", wi, ci, res.Total, len(want), q, s)
				}
				if len(res.Items) > q.Limit {
					t.Fatalf("page of %d > limit %d", len(res.Items), q.Limit)
				}
				got = append(got, ids(res.Items)...)
				if res.NextCursor == "" || pages > len(w.points) {
					break
				}
				page.Cursor = res.NextCursor
			}
			if !slices.Equal(got, ids(want)) {
				t.Fatalf("world %d case %d: items %v\nwant %v\nquery %+v\nscope %+v", wi, ci, got, ids(want), q, s)
			}
			w.checkFacets(t, q, s)
			w.checkLocations(t, q, s)
		}
	}
}

func (w world) checkFacets(t *testing.T, q Query, s Scope) {
	t.Helper()
	f, err := w.c.Facets(q, s)
	if err != nil {
		t.Fatal(err)
	}
	cats, states, regions := map[string]int{}, map[string]int{}, map[string]int{}
	total, unassigned := 0, 0
	for _, p := range w.points {
		if !w.c.InScope(p, s) {
			continue
		}
		if w.refFilter(p, q, "") {
			total++
		}
		if w.refFilter(p, q, "category") {
			cats[p.Category]++
		}
		if w.refFilter(p, q, "status") {
			states[p.Status.State]++
		}
		if w.refFilter(p, q, "region") {
			path := w.c.RegionPath(p.Region)
			if len(path) == 0 {
				unassigned++
			}
			for _, code := range path {
				regions[code]++
			}
		}
	}
	if f.Total != total || f.Unassigned != unassigned {
		t.Fatalf("facets total %d unassigned %d, want %d %d (q %+v s %+v)", f.Total, f.Unassigned, total, unassigned, q, s)
	}
	for _, cc := range f.Categories {
		if cc.Count != cats[cc.Code] {
			t.Fatalf("category %s = %d, want %d (q %+v s %+v)", cc.Code, cc.Count, cats[cc.Code], q, s)
		}
	}
	for st, n := range f.Status {
		if n != states[st] {
			t.Fatalf("status %s = %d, want %d", st, n, states[st])
		}
	}
	seen := 0
	var walk func([]RegionCount)
	walk = func(nodes []RegionCount) {
		for _, n := range nodes {
			seen++
			if n.Count != regions[n.Code] {
				t.Fatalf("region %s = %d, want %d (q %+v s %+v)", n.Code, n.Count, regions[n.Code], q, s)
			}
			walk(n.Children)
		}
	}
	walk(f.Regions)
	if seen != len(w.regions) {
		t.Fatalf("region tree has %d nodes, want %d", seen, len(w.regions))
	}
}

func TestUnclassifiedPointsAreInNoRuleScopeOnlyAll(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	p := rtspPoint("gbcam", "GB channel")
	p.Category, p.Region, p.Level = Unclassified, "440307001002", 1
	if _, err := c.Create(p); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Scope{
		{Rules: []ScopeRule{{MaxLevel: 4}}},
		{Rules: []ScopeRule{{Categories: []string{"*"}, Regions: []string{"*"}, MaxLevel: 4}}},
		{Rules: []ScopeRule{{Categories: []string{Unclassified}, Regions: []string{"*"}, MaxLevel: 4}}},
	} {
		if c.InScope(p, s) {
			t.Errorf("InScope(%+v) admits an unclassified point", s)
		}
		res, err := c.Search(Query{Limit: 10}, s)
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != 0 {
			t.Errorf("Search(%+v) finds %d unclassified points", s, res.Total)
		}
	}
	all := Scope{All: true}
	if !c.InScope(p, all) {
		t.Fatal("Scope.All does not see an unclassified point")
	}
	if res, _ := c.Search(Query{Limit: 10}, all); res.Total != 1 {
		t.Fatalf("Scope.All search total %d", res.Total)
	}
	if Grantable(Unclassified) || !Grantable("river") || Grantable("nope") {
		t.Fatal("Grantable")
	}
}
