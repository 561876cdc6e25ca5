package catalog

import (
	"fmt"
	"math/rand/v2"
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
				var took []time.Duration
				for b.Loop() {
					start := time.Now()
					searchAndFacets(b, c, v.q, v.s)
					took = append(took, time.Since(start))
				}
				reportPercentiles(b, took)
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

// reportPercentiles adds p50 and p99 of the per-call times to the
// benchmark's output: the targets are stated as p99, not as a mean.
func reportPercentiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	at := func(q float64) float64 {
		return float64(took[min(len(took)-1, int(q*float64(len(took))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
