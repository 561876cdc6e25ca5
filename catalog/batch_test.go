package catalog

import (
	"errors"
	"testing"

	"github.com/tianyan/vms/store"
	"github.com/tianyan/vms/store/storetest"
)

func gbPoint(id, name, region string) Point {
	return Point{ID: id, Name: name, Category: Unclassified, Region: region, Level: MaxLevel,
		Main: Source{Type: SourceGB28181, Device: "34020000001180000001"}, OnDemand: true}
}

func TestPutPointsCreatesAndReplacesInOneTransaction(t *testing.T) {
	dir := t.TempDir()
	c, db := newCatalogAt(t, dir)
	smallTree(t, c)
	a := gbPoint("34020000001320000001", "通道1", "440307001")
	b := gbPoint("34020000001320000002", "通道2", "")
	b.Status = Status{State: StateOnline}
	calls := 0
	got, err := c.PutPoints([]Point{a, b}, storetest.ResultHook(false, &calls, func(_ *store.Tx, made []Point) error {
		if len(made) != 2 {
			return errors.New("hook not shown both points")
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].CreatedAt.IsZero() || got[1].Status.State != StateOnline || got[0].Status.State != StateUnknown {
		t.Fatalf("stored %+v", got)
	}
	if !storetest.Witnessed(t, db) || calls != 1 {
		t.Fatal("hook did not commit with the points")
	}
	created := got[0].CreatedAt
	a.Name = "通道1改"
	if _, err := c.PutPoints([]Point{a}); err != nil {
		t.Fatal(err)
	}
	p, err := c.Get(a.ID)
	if err != nil || p.Name != "通道1改" || !p.CreatedAt.Equal(created) {
		t.Fatalf("replaced %+v %v", p, err)
	}
	if c.Len() != 2 {
		t.Fatalf("%d points", c.Len())
	}
	// All or nothing: one bad point (unknown region) stores none, and a failing hook stores none.
	bad := gbPoint("34020000001320000003", "x", "440307999")
	ok := gbPoint("34020000001320000004", "y", "")
	if _, err := c.PutPoints([]Point{ok, bad}); err == nil {
		t.Fatal("a point in an unknown region was stored")
	}
	if _, err := c.PutPoints([]Point{ok}, storetest.ResultHook(true, &calls, func(*store.Tx, []Point) error { return nil })); !errors.Is(err, storetest.ErrRefused) {
		t.Fatalf("refusing hook: %v", err)
	}
	if _, err := c.Get(ok.ID); err == nil {
		t.Fatal("a refused batch left a point")
	}
	// Pulled or agent-bound points need the checks of Create and Update.
	if _, err := c.PutPoints([]Point{rtspPoint("cam9", "Cam")}); err == nil {
		t.Fatal("a pulled point was stored in bulk")
	}
	if _, err := c.PutPoints([]Point{ok, ok}); err == nil {
		t.Fatal("a batch naming one ID twice was stored")
	}
	// What was stored survives a reload.
	db.Close()
	c2, _ := newCatalogAt(t, dir)
	if c2.Len() != 2 {
		t.Fatalf("reloaded %d points", c2.Len())
	}
}
