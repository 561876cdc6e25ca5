package catalog

import (
	"errors"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

func boundPoint(id, agent, camera string) Point {
	p := rtspPoint(id, "Point "+id)
	p.Agent, p.Camera = agent, camera
	return p
}

func TestCreateRefusesACameraAnotherPointIsBoundTo(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, boundPoint("p1", "a1", "cam-1"))
	if _, err := c.Create(boundPoint("p2", "a1", "cam-1")); !errors.Is(err, ErrCameraBound) {
		t.Fatalf("second point on the same camera: %v, want ErrCameraBound", err)
	}
	if _, err := c.Get("p2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused point was stored: %v", err)
	}
	// The same camera id behind another agent is another camera; a point
	// bound to an agent without a camera binds no camera.
	mustCreate(t, c, boundPoint("p3", "a2", "cam-1"))
	mustCreate(t, c, boundPoint("p4", "a1", ""))
	mustCreate(t, c, boundPoint("p5", "a1", ""))
	if id, ok := c.CameraOwner("a1", "cam-1"); !ok || id != "p1" {
		t.Fatalf("CameraOwner = %q %v, want p1", id, ok)
	}
	// Deleting the owner frees the camera.
	if err := c.Delete("p1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.CameraOwner("a1", "cam-1"); ok {
		t.Fatal("a deleted point still owns its camera")
	}
	mustCreate(t, c, boundPoint("p2", "a1", "cam-1"))
}

func TestUpdateRefusesToBindACameraAnotherPointOwnsButKeepsItsOwn(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, boundPoint("p1", "a1", "cam-1"))
	mustCreate(t, c, boundPoint("p2", "a1", "cam-2"))
	cam1 := "cam-1"
	if _, err := c.Update("p2", PointPatch{Camera: &cam1}); !errors.Is(err, ErrCameraBound) {
		t.Fatalf("rebinding p2 to p1's camera: %v, want ErrCameraBound", err)
	}
	if p, _ := c.Get("p2"); p.Camera != "cam-2" {
		t.Fatalf("refused patch was written: camera %q", p.Camera)
	}
	name := "renamed"
	if _, err := c.Update("p1", PointPatch{Name: &name, Camera: &cam1}); err != nil {
		t.Fatalf("a point keeps its own camera: %v", err)
	}
	// Moving p1 away frees cam-1 for p2.
	cam3 := "cam-3"
	if _, err := c.Update("p1", PointPatch{Camera: &cam3}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update("p2", PointPatch{Camera: &cam1}); err != nil {
		t.Fatalf("binding a freed camera: %v", err)
	}
	if id, _ := c.CameraOwner("a1", "cam-3"); id != "p1" {
		t.Fatalf("cam-3 owner %q", id)
	}
	if _, ok := c.CameraOwner("a1", "cam-2"); ok {
		t.Fatal("cam-2 is still owned after p2 moved off it")
	}
}

func TestUpdateIfDecidesOnTheStoredAndTheResultingPointAndWritesNothingWhenRefused(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, boundPoint("p1", "a1", "cam-1"))
	refused := errors.New("refused")
	level := 4
	var stored, next Point
	_, err := c.UpdateIf("p1", PointPatch{Level: &level}, func(s, n Point) error {
		stored, next = s, n
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("UpdateIf = %v, want the allow error", err)
	}
	if stored.Level != 1 || next.Level != 4 || next.Camera != "cam-1" {
		t.Fatalf("allow saw stored level %d and next level %d", stored.Level, next.Level)
	}
	if p, _ := c.Get("p1"); p.Level != 1 {
		t.Fatalf("refused update was written: level %d", p.Level)
	}
	// allow runs before the binding check, so a refused caller learns
	// nothing about other points' cameras.
	mustCreate(t, c, boundPoint("p2", "a1", "cam-2"))
	cam1 := "cam-1"
	if _, err := c.UpdateIf("p2", PointPatch{Camera: &cam1}, func(Point, Point) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("refused caller got %v before the decision", err)
	}
}

func TestImportRefusesRowsBindingABoundCameraAndWritesNothing(t *testing.T) {
	c := newCatalog(t)
	mustCreate(t, c, boundPoint("p1", "a1", "cam-1"))
	header := strings.Join(append(append([]string{}, PointColumns...), "agent", "camera"), ",")
	row := func(id, agent, camera string) string {
		return id + ",Point " + id + ",hd,road,,,,1,,,false,rtsp://10.0.0.5/s," + "," + agent + "," + camera
	}
	csv := strings.Join([]string{header, row("n1", "a1", "cam-1"), row("n2", "a1", "cam-2"), row("n3", "a1", "cam-2"), row("n4", "a1", "")}, "\n") + "\n"
	n, rows, err := c.ImportPoints(strings.NewReader(csv), ContentTypeCSV, false)
	if !errors.Is(err, ErrCameraBound) || !errors.Is(err, ErrRowsRejected) || n != 0 {
		t.Fatalf("ImportPoints = %d, %v; want ErrCameraBound", n, err)
	}
	if len(rows) != 2 || rows[0].Line != 2 || rows[0].Field != "camera" || rows[1].Line != 4 {
		t.Fatalf("row errors %+v; want lines 2 (stored owner) and 4 (repeats line 3)", rows)
	}
	if c.Len() != 1 {
		t.Fatalf("%d points after a refused import", c.Len())
	}
	// allow sees every row and its refusal names the line.
	refused := errors.New("refused")
	ok := strings.Join([]string{header, row("n2", "a1", "cam-2"), row("n5", "a1", "cam-5")}, "\n") + "\n"
	_, _, err = c.ImportPointsIf(strings.NewReader(ok), ContentTypeCSV, false, func(p Point) error {
		if p.ID == "n5" {
			return refused
		}
		return nil
	})
	if !errors.Is(err, refused) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("ImportPointsIf = %v; want the refusal of line 3", err)
	}
	if n, _, err := c.ImportPoints(strings.NewReader(ok), ContentTypeCSV, false); n != 2 || err != nil {
		t.Fatalf("import of free cameras: %d %v", n, err)
	}
	if id, _ := c.CameraOwner("a1", "cam-5"); id != "n5" {
		t.Fatalf("imported binding not indexed: owner %q", id)
	}
}

func TestPointsSharingACameraFromBeforeTheRuleStillLoadAndCanBeFixed(t *testing.T) {
	dir := t.TempDir()
	c, db := newCatalogAt(t, dir)
	mustCreate(t, c, boundPoint("p1", "a1", "cam-1"))
	// A second point on the same camera, written as an older version would have.
	dup := boundPoint("p2", "a1", "cam-1")
	dup.normalize()
	dup.Status = Status{State: StateUnknown}
	if err := db.Update(func(tx *bbolt.Tx) error { return store.PutJSON(tx, store.BucketPoints, []byte("p2"), dup) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c, _ = newCatalogAt(t, dir)
	name := "kept"
	if _, err := c.Update("p2", PointPatch{Name: &name}); err != nil {
		t.Fatalf("changing a point that shares its camera from before: %v", err)
	}
	if _, err := c.Create(boundPoint("p3", "a1", "cam-1")); !errors.Is(err, ErrCameraBound) {
		t.Fatalf("a third point joined the shared camera: %v", err)
	}
	if err := c.Delete("p1"); err != nil {
		t.Fatal(err)
	}
	if id, _ := c.CameraOwner("a1", "cam-1"); id != "p2" {
		t.Fatalf("after deleting p1 the camera's owner is %q, want p2", id)
	}
}
