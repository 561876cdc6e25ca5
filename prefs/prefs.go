// Package prefs owns each user's viewing preferences: the named video-wall
// layouts they save and their favourite points, persisted in
// store.BucketPrefs.
//
// It stores what a user chose, not what they may see: a layout or favourite
// naming a point the user has since lost access to is kept, and the caller
// (web) filters by permissions when it answers. It must never import web,
// permissions or streaming, and never decides access.
package prefs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// Limits on what one user may store; they keep a bbolt value and a UI list small.
const (
	// MaxLayouts is how many named layouts one user may keep.
	MaxLayouts = 100
	// MaxFavourites is how many favourite points one user may keep.
	MaxFavourites = 500
	// MaxTourPoints is how many points a tour may rotate through.
	MaxTourPoints = 1000
	// MinTourInterval and MaxTourInterval bound a tour's step, in seconds.
	MinTourInterval = 5
	MaxTourInterval = 3600
	maxNameRunes    = 64
)

// Grids maps each wall layout to its number of tiles: n×n grids, and one
// large tile with 5 (3×3 grid) or 7 (4×4 grid) small ones.
var Grids = map[string]int{"1": 1, "4": 4, "9": 9, "16": 16, "1+5": 6, "1+7": 8}

// Errors; match them with errors.Is.
var (
	// ErrNotFound reports that the user has no layout of that name.
	ErrNotFound = errors.New("layout not found")
	// ErrTooMany reports that saving another layout would exceed MaxLayouts.
	ErrTooMany = errors.New("too many layouts")
)

// ValidationError reports rejected input, naming the offending field.
type ValidationError struct {
	Field   string
	Message string
}

// Error returns "field: message".
func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Layout is a named arrangement of points on the video wall.
type Layout struct {
	Name string `json:"name"`
	// Grid is a key of Grids.
	Grid string `json:"grid"`
	// Tiles holds a point ID per tile in reading order, "" for an empty
	// tile; it may be shorter than the grid.
	Tiles []string `json:"tiles"`
	// Tour, when set, rotates points through the tiles.
	Tour      *Tour     `json:"tour,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Tour (轮巡) rotates either a list of points or every point of a category
// through the wall's tiles, one page every IntervalSec seconds.
type Tour struct {
	Points      []string `json:"points,omitempty"`
	Category    string   `json:"category,omitempty"`
	IntervalSec int      `json:"interval_s"`
}

// pointIDPattern admits both forms of catalog point ID (20-digit GB/T 28181
// and short legacy IDs) without importing catalog's rules: a stale or
// unknown ID is harmless here, the web layer resolves IDs with permissions.
var pointIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

var categoryPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// CheckName validates a layout name: 1–64 characters, no control
// characters and no '/' (names travel in URL paths).
func CheckName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return nil
}

func checkName(name string) *ValidationError {
	if strings.TrimSpace(name) != name || name == "" {
		return invalid("name", "must be non-empty without leading or trailing spaces")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameRunes {
		return invalid("name", "must be valid text of at most %d characters", maxNameRunes)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return invalid("name", "must not contain control characters or slashes")
		}
	}
	return nil
}

// Validate checks l as it would be stored.
func (l *Layout) Validate() error {
	if err := checkName(l.Name); err != nil {
		return err
	}
	n, ok := Grids[l.Grid]
	if !ok {
		return invalid("grid", "must be one of 1, 4, 9, 16, 1+5, 1+7")
	}
	if len(l.Tiles) > n {
		return invalid("tiles", "grid %s has %d tiles, got %d", l.Grid, n, len(l.Tiles))
	}
	for i, id := range l.Tiles {
		if id != "" && !pointIDPattern.MatchString(id) {
			return invalid(fmt.Sprintf("tiles[%d]", i), "is not a point ID")
		}
	}
	if t := l.Tour; t != nil {
		if (len(t.Points) == 0) == (t.Category == "") {
			return invalid("tour", "needs either points or a category")
		}
		if len(t.Points) > MaxTourPoints {
			return invalid("tour.points", "at most %d points", MaxTourPoints)
		}
		for i, id := range t.Points {
			if !pointIDPattern.MatchString(id) {
				return invalid(fmt.Sprintf("tour.points[%d]", i), "is not a point ID")
			}
		}
		if t.Category != "" && !categoryPattern.MatchString(t.Category) {
			return invalid("tour.category", "is not a category code")
		}
		if t.IntervalSec < MinTourInterval || t.IntervalSec > MaxTourInterval {
			return invalid("tour.interval_s", "must be between %d and %d seconds", MinTourInterval, MaxTourInterval)
		}
	}
	return nil
}

// Prefs reads and writes users' preferences.
type Prefs struct {
	db  *store.DB
	now func() time.Time
}

// New returns Prefs over db.
func New(db *store.DB) *Prefs { return &Prefs{db: db, now: time.Now} }

const (
	kindLayout     = "layout"
	kindFavourites = "favourites"
)

// key builds username NUL kind NUL name; usernames and layout names never
// contain NUL, so one user's keys of a kind share a prefix nobody else's do.
func key(user, kind, name string) []byte {
	return []byte(user + "\x00" + kind + "\x00" + name)
}

// Layouts returns the user's layouts sorted by name; never nil.
func (p *Prefs) Layouts(user string) ([]Layout, error) {
	out := []Layout{}
	err := p.db.View(func(tx *bbolt.Tx) error {
		prefix := key(user, kindLayout, "")
		c := tx.Bucket(store.BucketPrefs).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var l Layout
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("prefs: decode layout: %w", err)
			}
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// Layout returns the user's layout called name, or ErrNotFound.
func (p *Prefs) Layout(user, name string) (Layout, error) {
	var l Layout
	err := p.db.View(func(tx *bbolt.Tx) error {
		found, err := store.GetJSON(tx, store.BucketPrefs, key(user, kindLayout, name), &l)
		if err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	return l, err
}

// PutLayout validates l and stores it under l.Name, replacing a layout of
// that name; created reports whether it is new. A new layout beyond
// MaxLayouts fails with ErrTooMany.
func (p *Prefs) PutLayout(user string, l Layout) (saved Layout, created bool, err error) {
	l.Tiles = slices.Clone(l.Tiles)
	if l.Tiles == nil {
		l.Tiles = []string{}
	}
	if err := l.Validate(); err != nil {
		return Layout{}, false, err
	}
	l.UpdatedAt = p.now().UTC()
	err = p.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketPrefs)
		k := key(user, kindLayout, l.Name)
		created = b.Get(k) == nil
		if created {
			n := 0
			prefix := key(user, kindLayout, "")
			c := b.Cursor()
			for ck, _ := c.Seek(prefix); ck != nil && bytes.HasPrefix(ck, prefix); ck, _ = c.Next() {
				n++
			}
			if n >= MaxLayouts {
				return ErrTooMany
			}
		}
		return store.PutJSON(tx, store.BucketPrefs, k, l)
	})
	if err != nil {
		return Layout{}, false, err
	}
	return l, created, nil
}

// DeleteLayout removes the user's layout called name, or returns ErrNotFound.
func (p *Prefs) DeleteLayout(user, name string) error {
	return p.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketPrefs)
		k := key(user, kindLayout, name)
		if b.Get(k) == nil {
			return ErrNotFound
		}
		return b.Delete(k)
	})
}

// Favourites returns the user's favourite point IDs in the order they were
// saved; never nil.
func (p *Prefs) Favourites(user string) ([]string, error) {
	ids := []string{}
	err := p.db.View(func(tx *bbolt.Tx) error {
		_, err := store.GetJSON(tx, store.BucketPrefs, key(user, kindFavourites, ""), &ids)
		return err
	})
	if ids == nil {
		ids = []string{}
	}
	return ids, err
}

// SetFavourites replaces the user's favourites with ids, dropping
// duplicates (the first occurrence keeps its place), and returns what it
// stored.
func (p *Prefs) SetFavourites(user string, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		if !pointIDPattern.MatchString(id) {
			return nil, invalid(fmt.Sprintf("ids[%d]", i), "is not a point ID")
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) > MaxFavourites {
		return nil, invalid("ids", "at most %d favourites", MaxFavourites)
	}
	err := p.db.Update(func(tx *bbolt.Tx) error {
		return store.PutJSON(tx, store.BucketPrefs, key(user, kindFavourites, ""), out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteUser removes every preference of user (for when the account goes).
func (p *Prefs) DeleteUser(user string) error {
	return p.db.Update(func(tx *bbolt.Tx) error {
		prefix := []byte(user + "\x00")
		c := tx.Bucket(store.BucketPrefs).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}
