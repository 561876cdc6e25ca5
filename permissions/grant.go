package permissions

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/store"
)

// Grant gives a user, or everyone holding a role, some actions on the
// points of some categories in some regions up to a sensitivity level,
// optionally only within a validity window (分类分级授权).
type Grant struct {
	ID          string     `json:"id"`
	User        string     `json:"user,omitempty"`
	Role        string     `json:"role,omitempty"`
	Categories  []string   `json:"categories"`
	Regions     []string   `json:"regions"`
	MaxLevel    int        `json:"max_level"`
	Actions     []Action   `json:"actions"`
	NotBefore   *time.Time `json:"not_before,omitempty"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	PTZPriority int        `json:"ptz_priority"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   string     `json:"created_by,omitempty"`
}

// ErrGrantNotFound reports an unknown grant ID.
var ErrGrantNotFound = errors.New("grant not found")

// AllActions are the actions a grant may name.
var AllActions = []Action{View, PTZ, Snapshot, Provision, Manage, Audit, Publish}

// Validate checks a grant's shape (not whether its user or regions exist).
func (g Grant) Validate() error {
	if (g.User == "") == (g.Role == "") {
		return errors.New("a grant names exactly one of user or role")
	}
	if len(g.Categories) == 0 || len(g.Regions) == 0 {
		return errors.New("categories and regions are required (use [\"*\"] for all)")
	}
	for _, c := range g.Categories {
		if c == catalog.Unclassified {
			return fmt.Errorf("category %q cannot be granted: classify the points first", c)
		}
		if c != catalog.Wildcard && !catalog.Grantable(c) {
			return fmt.Errorf("unknown category %q", c)
		}
	}
	if g.MaxLevel < catalog.MinLevel || g.MaxLevel > catalog.MaxLevel {
		return fmt.Errorf("max_level must be %d..%d", catalog.MinLevel, catalog.MaxLevel)
	}
	if len(g.Actions) == 0 {
		return errors.New("actions are required")
	}
	for _, a := range g.Actions {
		if !slices.Contains(AllActions, a) {
			return fmt.Errorf("unknown action %q", a)
		}
	}
	if g.NotBefore != nil && g.NotAfter != nil && !g.NotAfter.After(*g.NotBefore) {
		return errors.New("not_after must be after not_before")
	}
	return nil
}

// ValidAt reports whether the grant's window contains now.
func (g Grant) ValidAt(now time.Time) bool {
	return (g.NotBefore == nil || !now.Before(*g.NotBefore)) && (g.NotAfter == nil || now.Before(*g.NotAfter))
}

// AppliesTo reports whether the grant is given to u, directly or by role.
func (g Grant) AppliesTo(u accounts.User) bool {
	return (g.User != "" && g.User == u.Username) || (g.Role != "" && slices.Contains(u.Roles, g.Role))
}

// Grants stores grants in bbolt.
type Grants struct{ db *store.DB }

// NewGrants returns the grant store.
func NewGrants(db *store.DB) *Grants { return &Grants{db: db} }

// Create validates and stores a grant, assigning its ID. The hooks run
// inside the same transaction, shown the grant as stored; an error from
// one stores nothing.
func (s *Grants) Create(g Grant, now time.Time, also ...store.ResultHook[Grant]) (Grant, error) {
	if err := g.Validate(); err != nil {
		return Grant{}, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	g.ID, g.CreatedAt = hex.EncodeToString(b[:]), now.UTC()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := store.PutJSON(tx, store.BucketGrants, []byte(g.ID), g); err != nil {
			return err
		}
		return store.RunResultHooks(tx, g, also)
	})
	if err != nil {
		return Grant{}, err
	}
	return g, nil
}

// List returns every grant.
func (s *Grants) List() ([]Grant, error) {
	var out []Grant
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(store.BucketGrants).ForEach(func(_, v []byte) error {
			var g Grant
			if err := jsonUnmarshal(v, &g); err != nil {
				return err
			}
			out = append(out, g)
			return nil
		})
	})
	return out, err
}

// Delete removes a grant. The hooks run inside the same transaction; an
// error from one keeps the grant.
func (s *Grants) Delete(id string, also ...store.TxHook) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketGrants)
		if b.Get([]byte(id)) == nil {
			return ErrGrantNotFound
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
}

// deleteWhere removes, inside the caller's transaction tx, every grant
// match picks, and returns them (sorted by ID).
func deleteWhere(tx *bbolt.Tx, match func(Grant) bool) ([]Grant, error) {
	b := tx.Bucket(store.BucketGrants)
	var doomed []Grant
	err := b.ForEach(func(_, v []byte) error {
		var g Grant
		if err := jsonUnmarshal(v, &g); err != nil {
			return err
		}
		if match(g) {
			doomed = append(doomed, g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Deleting while ForEach walks the bucket is undefined in bbolt.
	for _, g := range doomed {
		if err := b.Delete([]byte(g.ID)); err != nil {
			return nil, fmt.Errorf("permissions: delete grant %s: %w", g.ID, err)
		}
	}
	return doomed, nil
}

// Allows decides whether u may do a on p given all grants; regionPath is
// p's region and its ancestors (catalog.RegionPath). Admins may do anything.
func Allows(grants []Grant, u accounts.User, a Action, p catalog.Point, regionPath []string, now time.Time) bool {
	if u.Disabled {
		return false
	}
	if u.IsAdmin() {
		return true
	}
	for _, g := range grants {
		if g.covers(u, a, p, regionPath, now) {
			return true
		}
	}
	return false
}

// covers reports whether this one grant lets u do a on p now.
func (g Grant) covers(u accounts.User, a Action, p catalog.Point, regionPath []string, now time.Time) bool {
	if !g.AppliesTo(u) || !g.ValidAt(now) || !slices.Contains(g.Actions, a) || p.Level > g.MaxLevel {
		return false
	}
	if p.Category == catalog.Unclassified {
		return false // admins only, whatever the grant names (even "*")
	}
	if !slices.Contains(g.Categories, catalog.Wildcard) && !slices.Contains(g.Categories, p.Category) {
		return false
	}
	return slices.Contains(g.Regions, catalog.Wildcard) || slices.ContainsFunc(regionPath, func(r string) bool { return slices.Contains(g.Regions, r) })
}

// AdminPTZPriority is the PTZ priority of administrators: above any grant's.
const AdminPTZPriority = 1 << 30

// PTZPriorityOf is the highest ptz_priority among the grants that let u
// steer p now; -1 if none does.
func PTZPriorityOf(grants []Grant, u accounts.User, p catalog.Point, regionPath []string, now time.Time) int {
	if u.Disabled {
		return -1
	}
	if u.IsAdmin() {
		return AdminPTZPriority
	}
	best := -1
	for _, g := range grants {
		if g.covers(u, PTZ, p, regionPath, now) && g.PTZPriority > best {
			best = g.PTZPriority
		}
	}
	return best
}

// ScopeOf turns u's grants for a into a catalog.Scope, so lists and facets
// filter with the same rules as single decisions.
func ScopeOf(grants []Grant, u accounts.User, a Action, now time.Time) catalog.Scope {
	if u.Disabled {
		return catalog.Scope{}
	}
	if u.IsAdmin() {
		return catalog.Scope{All: true}
	}
	s := catalog.Scope{Rules: []catalog.ScopeRule{}}
	for _, g := range grants {
		if g.AppliesTo(u) && g.ValidAt(now) && slices.Contains(g.Actions, a) {
			s.Rules = append(s.Rules, catalog.ScopeRule{Categories: g.Categories, Regions: g.Regions, MaxLevel: g.MaxLevel})
		}
	}
	return s
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
