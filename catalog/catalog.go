// Package catalog owns the camera points and administrative regions of
// Tianyan VMS, persisted in store.BucketPoints and store.BucketRegions: their
// validation, bulk import and export (CSV, GeoJSON), and search with facets
// over an in-memory index, restricted by a Scope that the caller derives
// from its grants.
//
// It is the only package that writes those buckets, and every write goes
// through Catalog so that the index stays equal to what bbolt holds. It
// decides nothing about who may see what: it only evaluates the Scope it is
// handed. It must never import web, gin, permissions, accounts or streaming,
// and must never log or return in errors a raw source URL (which may carry
// camera credentials): use Source.Redacted.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// Errors returned by Catalog; match them with errors.Is.
var (
	// ErrNotFound reports that no point has the requested ID.
	ErrNotFound = errors.New("point not found")
	// ErrExists reports that a point with the requested ID already exists.
	ErrExists = errors.New("point already exists")
	// ErrCameraBound reports a point that would bind a camera (agent and
	// camera) another point is already bound to: one camera, one point, so
	// whoever may see that point decides who sees the camera.
	ErrCameraBound = errors.New("camera already bound to another point")
)

// Catalog reads and writes camera points and regions.
type Catalog struct {
	db  *store.DB
	now func() time.Time

	// wmu serialises writers for the whole bbolt transaction and the index
	// update after it, so the index applies commits in commit order. mu is
	// held only while the index itself is read or changed, never across
	// bbolt I/O, so searches do not wait for fsync.
	wmu sync.Mutex
	mu  sync.RWMutex
	idx *index

	checkSource SourceCheck // nil: every URL is accepted
}

// New loads every point and region from db into the search index and returns the Catalog.
//
// Points stored before kinds, categories and sub streams existed (with
// "source" instead of "main") are upgraded in place.
func New(db *store.DB, opts ...Option) (*Catalog, error) {
	c := &Catalog{db: db, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	var points []Point
	var regions []Region
	var migrated []int
	err := db.View(func(tx *bbolt.Tx) error {
		err := tx.Bucket(store.BucketPoints).ForEach(func(k, v []byte) error {
			p, upgraded, err := decodeStored(v)
			if err != nil {
				return fmt.Errorf("catalog: decode point %q: %w", k, err)
			}
			points = append(points, p)
			if upgraded {
				migrated = append(migrated, len(points)-1)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(store.BucketRegions).ForEach(func(k, v []byte) error {
			var r Region
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("catalog: decode region %q: %w", k, err)
			}
			regions = append(regions, r)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(migrated) > 0 {
		err := db.Update(func(tx *bbolt.Tx) error {
			for _, i := range migrated {
				if err := putPoint(tx, &points[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("catalog: upgrade stored points: %w", err)
		}
		slog.Info("catalog points upgraded", "count", len(migrated))
	}
	c.idx = newIndex(points, regions)
	for k, ids := range c.idx.cameras {
		if len(ids) > 1 {
			// Stored before one camera could bind only one point; each
			// keeps working, but no new point may join them.
			slog.Warn("camera bound to several points; keep one", "agent", k.agent, "camera", k.camera, "points", ids)
		}
	}
	slog.Info("catalog loaded", "points", len(points), "regions", len(regions))
	return c, nil
}

// storedPoint reads both the current and the first stored form of a point.
type storedPoint struct {
	Point
	LegacySource *Source `json:"source,omitempty"`
}

// decodeStored decodes a stored point, reporting whether it needed upgrading.
func decodeStored(raw []byte) (Point, bool, error) {
	var sp storedPoint
	if err := json.Unmarshal(raw, &sp); err != nil {
		return Point{}, false, err
	}
	p := sp.Point
	upgraded := false
	if sp.LegacySource != nil && p.Main.Type == "" {
		p.Main = *sp.LegacySource
		upgraded = true
	}
	if p.Category == "" {
		p.Category = DefaultCategory
		upgraded = true
	}
	if p.Kind == "" || p.Level == 0 || p.Status.State == "" {
		upgraded = true
	}
	p.normalize()
	return p, upgraded, nil
}

func putPoint(tx *bbolt.Tx, p *Point) error {
	return store.PutJSON(tx, store.BucketPoints, []byte(p.ID), p)
}

// Create validates p, assigns an ID when p.ID is empty, stamps times and stores it.
//
// A generated ID is a GB/T 28181 ID: the first 8 digits of p.Region (zero
// padded; the district 44030700 for unassigned points), industry 00, type 131
// for panoramic or 132 for hd points, network 0 and a 6-digit serial from a
// bbolt sequence, skipping IDs already taken. Status starts as unknown.
// The hooks run inside the same transaction, shown the point as stored;
// an error from one stores nothing.
func (c *Catalog) Create(p Point, also ...store.ResultHook[Point]) (Point, error) {
	p = p.clone()
	p.normalize()
	now := c.now().UTC()
	p.CreatedAt, p.UpdatedAt = now, now
	p.Status = Status{State: StateUnknown, Since: now}
	if probs := p.problems(true); len(probs) > 0 {
		return Point{}, probs[0]
	}
	if err := c.checkSources(nil, &p, nil); err != nil {
		return Point{}, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketPoints)
		if err := regionExists(tx, p.Region); err != nil {
			return err
		}
		if p.ID == "" {
			id, err := nextID(b, idPrefix(p.Region, p.Kind), nil)
			if err != nil {
				return err
			}
			p.ID = id
		}
		if b.Get([]byte(p.ID)) != nil {
			return fmt.Errorf("catalog: point %q: %w", p.ID, ErrExists)
		}
		if err := c.checkCamera(&p); err != nil {
			return err
		}
		if err := putPoint(tx, &p); err != nil {
			return err
		}
		return store.RunResultHooks(tx, p.clone(), also)
	})
	if err != nil {
		return Point{}, err
	}
	c.indexPut(p)
	slog.Info("point created", "point", p)
	return p.clone(), nil
}

// regionExists fails with a ValidationError on field "region" unless code is empty or stored.
func regionExists(tx *bbolt.Tx, code string) error {
	if code == "" || tx.Bucket(store.BucketRegions).Get([]byte(code)) != nil {
		return nil
	}
	return invalid("region", "is not a known region code")
}

// indexPut publishes a committed point to the index; p is owned by the index afterwards.
func (c *Catalog) indexPut(p Point) {
	c.mu.Lock()
	c.idx.put(&p)
	c.mu.Unlock()
}

// Get returns the point with the given ID, or ErrNotFound.
func (c *Catalog) Get(id string) (Point, error) {
	c.mu.RLock()
	p, ok := c.idx.get(id)
	c.mu.RUnlock()
	if !ok {
		return Point{}, fmt.Errorf("catalog: point %q: %w", id, ErrNotFound)
	}
	return p.clone(), nil
}

// List returns every point sorted by ID; it is never nil.
func (c *Catalog) List() ([]Point, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	points := make([]Point, len(c.idx.points))
	for i, p := range c.idx.points {
		points[i] = p.clone()
	}
	return points, nil
}

// Len returns the number of points.
func (c *Catalog) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.idx.ids)
}

// checkCamera fails with ErrCameraBound when another point is bound to p's
// camera. Callers hold wmu, under which the index is what bbolt holds.
func (c *Catalog) checkCamera(p *Point) error {
	k, ok := bindingOf(p)
	if !ok {
		return nil
	}
	c.mu.RLock()
	_, taken := c.idx.cameraOwner(k, p.ID)
	c.mu.RUnlock()
	if taken {
		return fmt.Errorf("catalog: agent %q camera %q: %w", p.Agent, p.Camera, ErrCameraBound)
	}
	return nil
}

// CameraOwner returns the ID of the point bound to camera behind agent.
func (c *Catalog) CameraOwner(agent, camera string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx.cameraOwner(cameraKey{agent, camera}, "")
}

// Update applies patch to the point id in one transaction; an invalid patch writes nothing.
//
// A main or sub URL whose password is "***" (as produced by Redacted) keeps
// the stored password when scheme, host and username are unchanged. The
// hooks run inside the same transaction, shown the point as stored; an
// error from one changes nothing.
func (c *Catalog) Update(id string, patch PointPatch, also ...store.ResultHook[Point]) (Point, error) {
	return c.UpdateIf(id, patch, nil, also...)
}

// UpdateIf is Update, writing only when allow (if not nil) accepts the
// stored point and the point the patch makes of it; allow's error is
// returned as it is. allow runs under the catalog's write lock, so the
// point it judges is the one replaced: a concurrent change cannot slip in
// between the decision and the write.
//
// A patch that binds the point to a camera another point is bound to fails
// with ErrCameraBound, after allow (so that the answer tells nothing about
// points the caller may not change).
func (c *Catalog) UpdateIf(id string, patch PointPatch, allow func(stored, next Point) error, also ...store.ResultHook[Point]) (Point, error) {
	checked, err := c.precheckUpdate(id, patch)
	if err != nil {
		return Point{}, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.idx.get(id)
	c.mu.RUnlock()
	if !ok {
		return Point{}, fmt.Errorf("catalog: point %q: %w", id, ErrNotFound)
	}
	p := cur.clone()
	patch.apply(&p)
	p.normalize()
	if err := p.validate(); err != nil {
		return Point{}, err
	}
	if allow != nil {
		if err := allow(cur.clone(), p.clone()); err != nil {
			return Point{}, err
		}
	}
	if k, bound := bindingOf(&p); bound {
		if old, _ := bindingOf(cur); old != k {
			// A binding kept as it was stays, even one shared by points
			// stored before the rule: they can still be fixed.
			if err := c.checkCamera(&p); err != nil {
				return Point{}, err
			}
		}
	}
	if err := c.checkSources(cur, &p, checked); err != nil {
		return Point{}, err
	}
	p.UpdatedAt = c.now().UTC()
	err = c.db.Update(func(tx *bbolt.Tx) error {
		if err := regionExists(tx, p.Region); err != nil {
			return err
		}
		if err := putPoint(tx, &p); err != nil {
			return err
		}
		return store.RunResultHooks(tx, p.clone(), also)
	})
	if err != nil {
		return Point{}, err
	}
	c.indexPut(p)
	slog.Info("point updated", "point", p)
	return p.clone(), nil
}

// SetStatus records that the point id entered state (one of the State
// constants) at since; the zero since means now. Reporting the state the
// point is already in changes nothing, so Since keeps when it was entered.
// UpdatedAt is not touched: it tracks configuration changes.
func (c *Catalog) SetStatus(id, state string, since time.Time) error {
	if !slices.Contains(states, state) {
		return invalid("state", "must be one of %s", statesHelp)
	}
	if since.IsZero() {
		since = c.now()
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.idx.get(id)
	c.mu.RUnlock()
	if !ok {
		return fmt.Errorf("catalog: point %q: %w", id, ErrNotFound)
	}
	if cur.Status.State == state {
		return nil
	}
	p := cur.clone()
	p.Status = Status{State: state, Since: since.UTC()}
	p.intern()
	if err := c.db.Update(func(tx *bbolt.Tx) error { return putPoint(tx, &p) }); err != nil {
		return err
	}
	c.indexPut(p)
	slog.Debug("point status", "id", id, "state", state)
	return nil
}

// SetStatuses sets the status of many points in one transaction (bulk
// health updates, seeding); unknown IDs are skipped. It returns how many
// points changed.
func (c *Catalog) SetStatuses(ids []string, state string, since time.Time) (int, error) {
	if !slices.Contains(states, state) {
		return 0, invalid("state", "must be one of %s", statesHelp)
	}
	if since.IsZero() {
		since = c.now()
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var changed []Point
	c.mu.RLock()
	for _, id := range ids {
		cur, ok := c.idx.get(id)
		if !ok || cur.Status.State == state {
			continue
		}
		p := cur.clone()
		p.Status = Status{State: state, Since: since.UTC()}
		p.intern()
		changed = append(changed, p)
	}
	c.mu.RUnlock()
	err := c.db.Update(func(tx *bbolt.Tx) error {
		for i := range changed {
			if err := putPoint(tx, &changed[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, p := range changed {
		c.indexPut(p)
	}
	return len(changed), nil
}

// Delete removes the point id, or returns ErrNotFound. The hooks run
// inside the same transaction; an error from one keeps the point.
func (c *Catalog) Delete(id string, also ...store.TxHook) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketPoints)
		if id == "" || b.Get([]byte(id)) == nil {
			return fmt.Errorf("catalog: point %q: %w", id, ErrNotFound)
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.idx.remove(id)
	c.mu.Unlock()
	slog.Info("point deleted", "id", id)
	return nil
}
