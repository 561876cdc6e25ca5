package catalog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
	"github.com/tianyan/vms/store/storetest"
)

// The shared test hooks (store/storetest), under this file's short names.
var (
	errRefused = storetest.ErrRefused
	witnessKey = storetest.WitnessKey
	txHook     = storetest.TxHook
)

func resultHook[T any](fail bool, calls *int, check func(tx *bbolt.Tx, made T) error) store.ResultHook[T] {
	return storetest.ResultHook(fail, calls, check)
}

// witnessed reports whether a witness hook's transaction committed.
func witnessed(t *testing.T, db *store.DB) bool { return storetest.Witnessed(t, db) }

// catalogState describes every point and region, as the catalog's index
// holds them and as a catalog freshly loaded from db does; it fails the
// test when the two disagree.
func catalogState(t *testing.T, c *Catalog, db *store.DB) string {
	t.Helper()
	dump := func(c *Catalog) string {
		ps, err := c.List()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(struct {
			Points  []Point
			Regions []Region
		}{ps, c.ListRegions()})
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	fresh, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	mem, disk := dump(c), dump(fresh)
	if mem != disk {
		t.Fatalf("index and store disagree:\nindex %s\nstore %s", mem, disk)
	}
	return mem
}

func pointStored(tx *bbolt.Tx, p Point) error {
	if p.ID == "" || tx.Bucket(store.BucketPoints).Get([]byte(p.ID)) == nil {
		return errors.New("hook ran before the point was written")
	}
	return nil
}

func regionStored(tx *bbolt.Tx, r Region) error {
	if tx.Bucket(store.BucketRegions).Get([]byte(r.Code)) == nil {
		return errors.New("hook ran before the region was written")
	}
	return nil
}

// TestEveryCatalogChangeCommitsWithItsHookOrNotAtAll: for each kind of
// change, a hook that fails (an audit record that cannot be written) rolls
// the change back, in the store and in the index; a hook that succeeds
// commits with the change and sees it inside the transaction.
func TestEveryCatalogChangeCommitsWithItsHookOrNotAtAll(t *testing.T) {
	importCSV := csvHeader +
		",Imported A,,road,440307001,,,,,,,rtsp://10.0.0.9/a,\n" +
		"imp-b,Imported B,,road,440307002,,,,,,,rtsp://10.0.0.9/b,\n"
	cases := []struct {
		name string
		do   func(c *Catalog, fail bool, calls *int) error
	}{
		{"point create", func(c *Catalog, fail bool, calls *int) error {
			p := rtspPoint("", "New")
			p.Region = "440307001"
			_, err := c.Create(p, resultHook(fail, calls, pointStored))
			return err
		}},
		{"point update", func(c *Catalog, fail bool, calls *int) error {
			name, level := "Renamed", 3
			_, err := c.Update("cam1", PointPatch{Name: &name, Level: &level}, resultHook(fail, calls, func(tx *bbolt.Tx, p Point) error {
				var stored Point
				if _, err := store.GetJSON(tx, store.BucketPoints, []byte(p.ID), &stored); err != nil || stored.Name != name {
					return errors.New("hook ran before the change was written")
				}
				return nil
			}))
			return err
		}},
		{"point delete", func(c *Catalog, fail bool, calls *int) error {
			return c.Delete("cam1", txHook(fail, calls))
		}},
		{"region create", func(c *Catalog, fail bool, calls *int) error {
			_, err := c.CreateRegion(Region{Code: "440307003", Name: " Street C ", Parent: "440307"}, resultHook(fail, calls, func(tx *bbolt.Tx, r Region) error {
				if r.Name != "Street C" {
					return errors.New("hook not shown the region as stored")
				}
				return regionStored(tx, r)
			}))
			return err
		}},
		{"region update", func(c *Catalog, fail bool, calls *int) error {
			_, err := c.UpdateRegion("440307002001", "Moved", "440307001", resultHook(fail, calls, regionStored))
			return err
		}},
		{"region delete", func(c *Catalog, fail bool, calls *int) error {
			return c.DeleteRegion("440307002001", txHook(fail, calls))
		}},
		{"points import", func(c *Catalog, fail bool, calls *int) error {
			_, _, err := c.ImportPoints(strings.NewReader(importCSV), ContentTypeCSV, false, resultHook(fail, calls, func(tx *bbolt.Tx, n int) error {
				if n != 2 || tx.Bucket(store.BucketPoints).Get([]byte("imp-b")) == nil {
					return errors.New("hook not shown the import")
				}
				return nil
			}))
			return err
		}},
		{"regions import", func(c *Catalog, fail bool, calls *int) error {
			_, _, err := c.ImportRegionsCSV(strings.NewReader("code,name,parent\n440307009,Street I,440307\n440307009001,Community I1,440307009\n"), false,
				resultHook(fail, calls, func(tx *bbolt.Tx, n int) error {
					if n != 2 {
						return errors.New("hook not shown the count")
					}
					return regionStored(tx, Region{Code: "440307009001"})
				}))
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, db := newCatalogAt(t, t.TempDir())
			smallTree(t, c)
			cam := rtspPoint("cam1", "Gate")
			cam.Region = "440307001001"
			mustCreate(t, c, cam)
			before := catalogState(t, c, db)

			calls := 0
			if err := tc.do(c, true, &calls); !errors.Is(err, errRefused) {
				t.Fatalf("with a failing hook: err = %v, want the hook's error", err)
			}
			if calls != 1 {
				t.Fatalf("failing hook ran %d times, want once", calls)
			}
			if after := catalogState(t, c, db); after != before {
				t.Fatalf("a failed hook left the change behind:\nbefore %s\nafter  %s", before, after)
			}
			if witnessed(t, db) {
				t.Fatal("the failing hook's transaction committed")
			}

			calls = 0
			if err := tc.do(c, false, &calls); err != nil {
				t.Fatalf("with a good hook: %v", err)
			}
			if calls != 1 || !witnessed(t, db) {
				t.Fatalf("good hook ran %d times, committed %v", calls, witnessed(t, db))
			}
			if after := catalogState(t, c, db); after == before {
				t.Fatal("the change with a good hook changed nothing")
			}
		})
	}
}

// TestAFailedCatalogChangeRunsNoHook: a change the catalog refuses never
// reaches its hooks, so it leaves no audit record behind.
func TestAFailedCatalogChangeRunsNoHook(t *testing.T) {
	c, db := newCatalogAt(t, t.TempDir())
	smallTree(t, c)
	cam := rtspPoint("cam1", "Gate")
	cam.Region = "440307001001"
	mustCreate(t, c, cam)
	calls := 0
	never := func(*bbolt.Tx, Point) error { calls++; return nil }
	neverTx := func(*bbolt.Tx) error { calls++; return nil }
	neverRegion := func(*bbolt.Tx, Region) error { calls++; return nil }
	neverN := func(*bbolt.Tx, int) error { calls++; return nil }
	name := "x"
	unknown := "440399"
	for what, err := range map[string]error{
		"create existing id": func() error { _, err := c.Create(cam, never); return err }(),
		"create in unknown region": func() error {
			p := rtspPoint("", "y")
			p.Region = unknown
			_, err := c.Create(p, never)
			return err
		}(),
		"update unknown":       func() error { _, err := c.Update("nope", PointPatch{Name: &name}, never); return err }(),
		"update to bad region": func() error { _, err := c.Update("cam1", PointPatch{Region: &unknown}, never); return err }(),
		"delete unknown":       c.Delete("nope", neverTx),
		"region exists":        func() error { _, err := c.CreateRegion(Region{Code: "440307", Name: "D"}, neverRegion); return err }(),
		"region cycle":         func() error { _, err := c.UpdateRegion("440307", "D", "440307001", neverRegion); return err }(),
		"region in use":        c.DeleteRegion("440307001001", neverTx),
		"import with a bad row": func() error {
			_, _, err := c.ImportPoints(strings.NewReader(csvHeader+"cam1,Dup,,road,,,,,,,,,\n"), ContentTypeCSV, false, neverN)
			return err
		}(),
		"import dry run": func() error {
			_, _, err := c.ImportPoints(strings.NewReader(csvHeader+"new1,New,,road,,,,,,,,,\n"), ContentTypeCSV, true, neverN)
			return err
		}(),
		"regions import bad row": func() error {
			_, _, err := c.ImportRegionsCSV(strings.NewReader("code,name,parent\n440307,Dup,\n"), false, neverN)
			return err
		}(),
	} {
		if what != "import dry run" && err == nil {
			t.Errorf("%s: succeeded", what)
		}
	}
	if calls != 0 || witnessed(t, db) {
		t.Fatalf("refused changes ran %d hooks", calls)
	}
}
