// Package catalog owns the camera points of Tianyan VMS: their identity,
// name, video source and on-demand flag, persisted in store.BucketPoints.
//
// It validates every point before it is written and is the only package that
// writes BucketPoints. It must never import web, gin, permissions or
// streaming, and must never log or return in errors a raw source URL (which
// may carry camera credentials): use Source.Redacted.
package catalog

import (
	"errors"
	"fmt"
	"log/slog"
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
)

// GB/T 28181-style generated IDs: region 44030700, industry 00, type 132
// (IPC), network 0, then a 6-digit serial.
const (
	generatedIDPrefix = "44030700" + "00" + "132" + "0"
	maxSerial         = 999999
)

// Catalog reads and writes camera points.
type Catalog struct {
	db  *store.DB
	now func() time.Time
}

// New returns a Catalog backed by db.
func New(db *store.DB) *Catalog {
	return &Catalog{db: db, now: time.Now}
}

// Create validates p, assigns an ID when p.ID is empty, stamps times and stores it.
func (c *Catalog) Create(p Point) (Point, error) {
	p.normalize()
	now := c.now().UTC()
	p.CreatedAt, p.UpdatedAt = now, now
	err := c.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketPoints)
		if p.ID == "" {
			id, err := nextID(b)
			if err != nil {
				return err
			}
			p.ID = id
		}
		if err := p.validate(); err != nil {
			return err
		}
		if b.Get([]byte(p.ID)) != nil {
			return fmt.Errorf("catalog: point %q: %w", p.ID, ErrExists)
		}
		return store.PutJSON(tx, store.BucketPoints, []byte(p.ID), p)
	})
	if err != nil {
		return Point{}, err
	}
	slog.Info("point created", "id", p.ID, "source", p.Source)
	return p, nil
}

// nextID returns the next free generated ID, consuming the bucket sequence.
func nextID(b *bbolt.Bucket) (string, error) {
	for {
		seq, err := b.NextSequence()
		if err != nil {
			return "", fmt.Errorf("catalog: next sequence: %w", err)
		}
		if seq > maxSerial {
			return "", errors.New("catalog: generated point IDs exhausted; supply an id")
		}
		id := fmt.Sprintf("%s%06d", generatedIDPrefix, seq)
		if b.Get([]byte(id)) == nil {
			return id, nil
		}
	}
}

// Get returns the point with the given ID, or ErrNotFound.
func (c *Catalog) Get(id string) (Point, error) {
	var p Point
	err := c.db.View(func(tx *bbolt.Tx) error {
		var err error
		p, err = get(tx, id)
		return err
	})
	return p, err
}

func get(tx *bbolt.Tx, id string) (Point, error) {
	var p Point
	if id == "" {
		return p, fmt.Errorf("catalog: point %q: %w", id, ErrNotFound)
	}
	found, err := store.GetJSON(tx, store.BucketPoints, []byte(id), &p)
	if err != nil {
		return Point{}, err
	}
	if !found {
		return Point{}, fmt.Errorf("catalog: point %q: %w", id, ErrNotFound)
	}
	return p, nil
}

// List returns every point sorted by ID; it is never nil.
func (c *Catalog) List() ([]Point, error) {
	points := []Point{}
	err := c.db.View(func(tx *bbolt.Tx) error {
		var p Point
		return tx.Bucket(store.BucketPoints).ForEach(func(k, _ []byte) error {
			p = Point{}
			if _, err := store.GetJSON(tx, store.BucketPoints, k, &p); err != nil {
				return err
			}
			points = append(points, p)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return points, nil
}

// Update applies patch to the point id in one transaction; an invalid patch writes nothing.
//
// A source URL whose password is "***" (as produced by Redacted) keeps the
// stored password when scheme, host and username are unchanged.
func (c *Catalog) Update(id string, patch PointPatch) (Point, error) {
	var p Point
	err := c.db.Update(func(tx *bbolt.Tx) error {
		var err error
		p, err = get(tx, id)
		if err != nil {
			return err
		}
		if patch.Name != nil {
			p.Name = *patch.Name
		}
		if patch.Source != nil {
			src := *patch.Source
			if src.Type == SourceRTSP && p.Source.Type == SourceRTSP {
				src.URL = keepRedactedPassword(p.Source.URL, src.URL)
			}
			p.Source = src
		}
		if patch.OnDemand != nil {
			p.OnDemand = *patch.OnDemand
		}
		p.normalize()
		if err := p.validate(); err != nil {
			return err
		}
		p.UpdatedAt = c.now().UTC()
		return store.PutJSON(tx, store.BucketPoints, []byte(p.ID), p)
	})
	if err != nil {
		return Point{}, err
	}
	slog.Info("point updated", "id", p.ID, "source", p.Source)
	return p, nil
}

// Delete removes the point id, or returns ErrNotFound.
func (c *Catalog) Delete(id string) error {
	err := c.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketPoints)
		if id == "" || b.Get([]byte(id)) == nil {
			return fmt.Errorf("catalog: point %q: %w", id, ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return err
	}
	slog.Info("point deleted", "id", id)
	return nil
}
