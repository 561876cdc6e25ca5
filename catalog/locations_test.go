package catalog

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// checkLocations compares Locations with the brute-force reading of q and
// s: every located match in ID order with its own fields, the others counted.
func (w world) checkLocations(t *testing.T, q Query, s Scope) {
	t.Helper()
	loc, err := w.c.Locations(q, s)
	if err != nil {
		t.Fatalf("Locations(%+v): %v", q, err)
	}
	var want Locations
	for _, p := range w.points { // List is in ID order
		if !w.c.InScope(p, s) || !w.refFilter(p, q, "") {
			continue
		}
		want.Total++
		if p.Lat == nil {
			want.Unlocated++
			continue
		}
		want.ID = append(want.ID, p.ID)
		want.Name = append(want.Name, p.Name)
		want.Lat = append(want.Lat, *p.Lat)
		want.Lon = append(want.Lon, *p.Lon)
		want.Category = append(want.Category, p.Category)
		want.Status = append(want.Status, p.Status.State)
	}
	if loc.Total != want.Total || loc.Unlocated != want.Unlocated || !slices.Equal(loc.ID, want.ID) ||
		!slices.Equal(loc.Name, want.Name) || !slices.Equal(loc.Lat, want.Lat) || !slices.Equal(loc.Lon, want.Lon) ||
		!slices.Equal(loc.Category, want.Category) || !slices.Equal(loc.Status, want.Status) {
		t.Fatalf("Locations = %+v\nwant %+v\nquery %+v\nscope %+v", loc, want, q, s)
	}
}

func TestLocationsRoundToMicrodegreesAndCountPointsWithoutOne(t *testing.T) {
	c := newCatalog(t)
	lat, lon := 22.123456789, 113.987654321
	a := rtspPoint("a", "Dam \"north\" <1>")
	a.Lat, a.Lon, a.Category = &lat, &lon, "reservoir"
	mustCreate(t, c, a)
	mustCreate(t, c, rtspPoint("b", "No location"))
	if err := c.SetStatus("a", StateOffline, time.Time{}); err != nil {
		t.Fatal(err)
	}
	loc, err := c.Locations(Query{}, Scope{All: true})
	if err != nil {
		t.Fatal(err)
	}
	want := Locations{Total: 2, Unlocated: 1, ID: []string{"a"}, Name: []string{a.Name}, Lat: []float64{22.123457},
		Lon: []float64{113.987654}, Category: []string{"reservoir"}, Status: []string{StateOffline}}
	if fmt.Sprint(loc) != fmt.Sprint(want) {
		t.Errorf("Locations = %+v\nwant %+v", loc, want)
	}
	if got := fmt.Sprint(loc.Lat[0]); got != "22.123457" {
		t.Errorf("latitude prints as %s, want the six decimals 22.123457", got)
	}
}

func TestLocationsIgnoreSortLimitAndCursorButApplyEveryFilter(t *testing.T) {
	c := memCatalog(syntheticPoints(rand.New(rand.NewPCG(3, 500)), 500), syntheticRegions())
	all, err := c.Locations(Query{Sort: SortName, Limit: 3, Cursor: "anything"}, Scope{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.ID) != 500 || all.Total != 500 || !slices.IsSorted(all.ID) {
		t.Fatalf("%d of %d points, sorted %v; want all 500 in ID order", len(all.ID), all.Total, slices.IsSorted(all.ID))
	}
	reservoirs, err := c.Locations(Query{Categories: []string{"reservoir"}, Status: StateOnline}, Scope{All: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(Query{Categories: []string{"reservoir"}, Status: StateOnline, Limit: MaxLimit}, Scope{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(reservoirs.ID, ids(res.Items)) || len(reservoirs.ID) == 0 {
		t.Errorf("online reservoirs %v, Search says %v", reservoirs.ID, ids(res.Items))
	}
	_, err = c.Locations(Query{Region: "449999"}, Scope{All: true})
	wantValidationError(t, err, "region")
}

func BenchmarkLocations(b *testing.B) {
	for _, n := range benchSizes {
		c := benchCatalog(n)
		for _, v := range []struct {
			name string
			s    Scope
		}{{"all", Scope{All: true}}, {"scoped", benchScope}} {
			b.Run(fmt.Sprintf("points=%d/%s", n, v.name), func(b *testing.B) {
				var took []time.Duration
				for b.Loop() {
					start := time.Now()
					if _, err := c.Locations(Query{}, v.s); err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(start))
				}
				reportPercentiles(b, took)
			})
		}
	}
}
