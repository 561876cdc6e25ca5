package catalog

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// District sizes of the benchmarks: the report's 13,000 HD + 635 panoramic
// points, and ten times that.
var benchSizes = []int{13_635, 136_350}

var (
	benchMu       sync.Mutex
	benchCatalogs = map[int]*Catalog{}
)

// benchCatalog returns a cached in-memory catalog of n synthetic points.
func benchCatalog(n int) *Catalog {
	benchMu.Lock()
	defer benchMu.Unlock()
	if c, ok := benchCatalogs[n]; ok {
		return c
	}
	c := memCatalog(syntheticPoints(rand.New(rand.NewPCG(7, uint64(n))), n), syntheticRegions())
	benchCatalogs[n] = c
	return c
}

// benchScope is a typical district official's grant: 3 categories in 2
// streets, up to level 2.
var benchScope = Scope{Rules: []ScopeRule{{
	Categories: []string{"reservoir", "river", "waterlogging"},
	Regions:    []string{streetCode(0), streetCode(3)},
	MaxLevel:   2,
}}}

// benchQuery is the list view with a category filter.
var benchQuery = Query{Categories: []string{"reservoir", "river"}, Limit: 50}

func searchAndFacets(b testing.TB, c *Catalog, q Query, s Scope) {
	if _, err := c.Search(q, s); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Facets(q, s); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkSearchAndFacets(b *testing.B) {
	for _, n := range benchSizes {
		c := benchCatalog(n)
		for _, v := range []struct {
			name string
			q    Query
			s    Scope
		}{
			{"scoped", benchQuery, benchScope},
			{"scoped-q", Query{Categories: benchQuery.Categories, Q: "前海", Limit: 50}, benchScope},
			{"all-sort-name", Query{Sort: SortName, Limit: 50}, Scope{All: true}},
			{"all-q-initials", Query{Q: "qhsk", Sort: SortUpdatedDesc, Limit: 50}, Scope{All: true}},
		} {
			b.Run(fmt.Sprintf("points=%d/%s", n, v.name), func(b *testing.B) {
				for b.Loop() {
					searchAndFacets(b, c, v.q, v.s)
				}
			})
		}
	}
}

func BenchmarkInScope(b *testing.B) {
	c := benchCatalog(benchSizes[0])
	p := *c.idx.points[0]
	for b.Loop() {
		c.InScope(p, benchScope)
	}
}

// TestReportSearchLatency logs p50/p99 of search+facets over 1000 runs and
// the index's memory; it runs only with -v and without -race or -short.
// The benchmarks are the source of truth for figures.
func TestReportSearchLatency(t *testing.T) {
	if !testing.Verbose() || testing.Short() || raceEnabled {
		t.Skip("report only: run with -v, without -race")
	}
	for _, n := range benchSizes {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		points := syntheticPoints(rand.New(rand.NewPCG(7, uint64(n))), n)
		c := memCatalog(points, syntheticRegions())
		points = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := after.HeapAlloc - before.HeapAlloc
		durations := make([]time.Duration, 1000)
		for i := range durations {
			start := time.Now()
			searchAndFacets(t, c, benchQuery, benchScope)
			durations[i] = time.Since(start)
		}
		slices.Sort(durations)
		res, _ := c.Search(benchQuery, benchScope)
		t.Logf("points=%d: search+facets p50 %v p99 %v max %v (total matches %d); index heap %.1f MiB (%d B/point)",
			n, durations[500], durations[990], durations[999], res.Total, float64(heap)/(1<<20), heap/uint64(n))
		runtime.KeepAlive(c)
	}
}
