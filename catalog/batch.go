package catalog

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// PutPoints stores whole points in one transaction, for sources that own their points in bulk (the
// channels of a GB/T 28181 device): a point whose ID is new is created, any other replaces the stored
// one (keeping its CreatedAt). Status is stored as given (an empty state is unknown, a zero Since is
// now). Every point is validated first and nothing is written if one is invalid, names a missing
// region, binds an edge camera or pulls a URL (those need Create and Update, which check them).
// The hooks run inside the same transaction, shown the points as stored.
func (c *Catalog) PutPoints(points []Point, also ...store.ResultHook[[]Point]) ([]Point, error) {
	now := c.now().UTC()
	out := make([]Point, len(points))
	seen := make(map[string]bool, len(points))
	for i, p := range points {
		if seen[p.ID] {
			return nil, fmt.Errorf("point %q: %w", p.ID, invalid("id", "appears twice in one batch"))
		}
		seen[p.ID] = true
		p = p.clone()
		p.normalize()
		if p.Status.Since.IsZero() {
			p.Status.Since = now
		}
		if probs := p.problems(false); len(probs) > 0 {
			return nil, fmt.Errorf("point %q: %w", p.ID, probs[0])
		}
		if _, bound := bindingOf(&p); bound || p.Agent != "" {
			return nil, fmt.Errorf("point %q: %w", p.ID, invalid("agent", "points bound to an edge camera cannot be stored in bulk"))
		}
		if fields, _ := pulledURLs(&p); len(fields) > 0 {
			return nil, fmt.Errorf("point %q: %w", p.ID, invalid(fields[0], "pulled points cannot be stored in bulk"))
		}
		p.UpdatedAt = now
		p.intern()
		out[i] = p
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	for i := range out {
		if cur, ok := c.idx.get(out[i].ID); ok {
			out[i].CreatedAt = cur.CreatedAt
		} else {
			out[i].CreatedAt = now
		}
	}
	c.mu.RUnlock()
	err := c.db.Update(func(tx *bbolt.Tx) error {
		for i := range out {
			if err := regionExists(tx, out[i].Region); err != nil {
				return fmt.Errorf("point %q: %w", out[i].ID, err)
			}
			if err := putPoint(tx, &out[i]); err != nil {
				return err
			}
		}
		shown := make([]Point, len(out))
		for i := range out {
			shown[i] = out[i].clone()
		}
		return store.RunResultHooks(tx, shown, also)
	})
	if err != nil {
		return nil, err
	}
	result := make([]Point, len(out))
	var fresh []*Point
	c.mu.Lock()
	for i := range out {
		result[i] = out[i].clone()
		p := &out[i]
		if _, ok := c.idx.get(p.ID); ok {
			c.idx.put(p)
		} else {
			fresh = append(fresh, p)
		}
	}
	// New points merge into the index in one pass rather than one insertion each.
	slices.SortFunc(fresh, func(a, b *Point) int { return strings.Compare(a.ID, b.ID) })
	c.idx.putNew(fresh)
	c.mu.Unlock()
	slog.Info("points stored in bulk", "count", len(out))
	return result, nil
}
