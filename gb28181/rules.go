package gb28181

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/store"
)

// Errors of mapping rules.
var (
	ErrRuleNotFound = errors.New("gb28181: rule not found")
	ErrInvalidRule  = errors.New("gb28181: invalid rule")
)

// Rule maps GB/T 28181 channels to a category and level. Every condition it sets must hold; it must
// set at least one. Rules are tried by Priority (lowest first), then by ID; the first match wins.
// A channel no rule matches is catalog.Unclassified (admins only) until one does or an admin
// classifies its point by hand.
type Rule struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// CivilCodePrefix matches channels whose CivilCode starts with it (digits).
	CivilCodePrefix string `json:"civil_code_prefix,omitempty"`
	// ParentID matches channels whose ParentID, business group or device is this 20-digit ID.
	ParentID string `json:"parent_id,omitempty"`
	// NamePattern is a regular expression (RE2) the channel name must match.
	NamePattern string `json:"name_pattern,omitempty"`
	// Category (grantable) and Level (1..4) are what matching channels get.
	Category  string    `json:"category"`
	Level     int       `json:"level"`
	Priority  int       `json:"priority"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`

	re *regexp.Regexp
}

const maxRulePattern = 256

// Validate checks the rule and compiles its pattern.
func (r *Rule) Validate() error {
	r.Name = strings.TrimSpace(r.Name)
	r.CivilCodePrefix = strings.TrimSpace(r.CivilCodePrefix)
	r.ParentID = strings.TrimSpace(r.ParentID)
	if r.CivilCodePrefix == "" && r.ParentID == "" && r.NamePattern == "" {
		return fmt.Errorf("%w: set at least one of civil_code_prefix, parent_id, name_pattern", ErrInvalidRule)
	}
	if len(r.Name) > 128 || !utf8.ValidString(r.Name) {
		return fmt.Errorf("%w: name too long", ErrInvalidRule)
	}
	if r.CivilCodePrefix != "" && (len(r.CivilCodePrefix) > 20 || !isDigits(r.CivilCodePrefix, len(r.CivilCodePrefix))) {
		return fmt.Errorf("%w: civil_code_prefix must be up to 20 digits", ErrInvalidRule)
	}
	if r.ParentID != "" && !IsID(r.ParentID) {
		return fmt.Errorf("%w: parent_id must be a 20-digit ID", ErrInvalidRule)
	}
	if r.NamePattern != "" {
		if len(r.NamePattern) > maxRulePattern {
			return fmt.Errorf("%w: name_pattern longer than %d bytes", ErrInvalidRule, maxRulePattern)
		}
		re, err := regexp.Compile(r.NamePattern)
		if err != nil {
			return fmt.Errorf("%w: name_pattern: %v", ErrInvalidRule, err)
		}
		r.re = re
	}
	if !catalog.Grantable(r.Category) {
		return fmt.Errorf("%w: category must be a known category other than %s", ErrInvalidRule, catalog.Unclassified)
	}
	if r.Level < catalog.MinLevel || r.Level > catalog.MaxLevel {
		return fmt.Errorf("%w: level must be %d..%d", ErrInvalidRule, catalog.MinLevel, catalog.MaxLevel)
	}
	return nil
}

// ChannelFacts are what rules look at.
type ChannelFacts struct {
	Name, CivilCode, ParentID, BusinessGroupID, Device string
}

func (r *Rule) matches(f ChannelFacts) bool {
	if r.CivilCodePrefix != "" && !strings.HasPrefix(f.CivilCode, r.CivilCodePrefix) {
		return false
	}
	if r.ParentID != "" && r.ParentID != f.ParentID && r.ParentID != f.BusinessGroupID && r.ParentID != f.Device {
		return false
	}
	if r.re != nil && !r.re.MatchString(f.Name) {
		return false
	}
	return true
}

// Rules keeps the mapping rules in bbolt with an ordered, compiled copy in memory.
type Rules struct {
	db  *store.DB
	mu  sync.RWMutex
	all []Rule // sorted by priority, then ID
}

func newRules(db *store.DB) (*Rules, error) {
	rs := &Rules{db: db}
	if db == nil {
		return rs, nil
	}
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(store.BucketGBRules).ForEach(func(k, _ []byte) error {
			var r Rule
			if _, err := store.GetJSON(tx, store.BucketGBRules, k, &r); err != nil {
				return err
			}
			if err := r.Validate(); err != nil {
				return fmt.Errorf("rule %s: %w", k, err)
			}
			rs.all = append(rs.all, r)
			return nil
		})
	})
	rs.sort()
	return rs, err
}

func (rs *Rules) sort() {
	slices.SortFunc(rs.all, func(a, b Rule) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), strings.Compare(a.ID, b.ID))
	})
}

// Classify returns the category and level of the first matching rule, or catalog.Unclassified and
// catalog.MaxLevel (the most restricted) when none matches.
func (rs *Rules) Classify(f ChannelFacts) (category string, level int, matched bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	for i := range rs.all {
		if rs.all[i].matches(f) {
			return rs.all[i].Category, rs.all[i].Level, true
		}
	}
	return catalog.Unclassified, catalog.MaxLevel, false
}

// List returns the rules in the order they are tried.
func (rs *Rules) List() []Rule {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return slices.Clone(rs.all)
}

func newRuleID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Create stores a new rule (its ID is generated), with hooks in the same transaction.
func (rs *Rules) Create(r Rule, now time.Time, hooks ...store.TxHook) (Rule, error) {
	r.ID = newRuleID()
	r.CreatedAt = now.UTC()
	return r, rs.put(r, true, hooks)
}

// Update replaces rule id (keeping its creation), with hooks in the same transaction.
func (rs *Rules) Update(id string, r Rule, hooks ...store.TxHook) (Rule, error) {
	rs.mu.RLock()
	i := slices.IndexFunc(rs.all, func(x Rule) bool { return x.ID == id })
	var old Rule
	if i >= 0 {
		old = rs.all[i]
	}
	rs.mu.RUnlock()
	if i < 0 {
		return Rule{}, ErrRuleNotFound
	}
	r.ID, r.CreatedAt, r.CreatedBy = id, old.CreatedAt, old.CreatedBy
	return r, rs.put(r, false, hooks)
}

func (rs *Rules) put(r Rule, create bool, hooks []store.TxHook) error {
	if err := r.Validate(); err != nil {
		return err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.db != nil {
		err := rs.db.Update(func(tx *bbolt.Tx) error {
			if !create && tx.Bucket(store.BucketGBRules).Get([]byte(r.ID)) == nil {
				return ErrRuleNotFound
			}
			if err := store.PutJSON(tx, store.BucketGBRules, []byte(r.ID), r); err != nil {
				return err
			}
			return store.RunHooks(tx, hooks)
		})
		if err != nil {
			return err
		}
	}
	rs.all = slices.DeleteFunc(rs.all, func(x Rule) bool { return x.ID == r.ID })
	rs.all = append(rs.all, r)
	rs.sort()
	return nil
}

// Delete removes rule id, with hooks in the same transaction. Points it classified keep their
// category.
func (rs *Rules) Delete(id string, hooks ...store.TxHook) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !slices.ContainsFunc(rs.all, func(x Rule) bool { return x.ID == id }) {
		return ErrRuleNotFound
	}
	if rs.db != nil {
		err := rs.db.Update(func(tx *bbolt.Tx) error {
			if err := tx.Bucket(store.BucketGBRules).Delete([]byte(id)); err != nil {
				return err
			}
			return store.RunHooks(tx, hooks)
		})
		if err != nil {
			return err
		}
	}
	rs.all = slices.DeleteFunc(rs.all, func(x Rule) bool { return x.ID == id })
	return nil
}

// CreateRule stores a new mapping rule (hooks in its transaction) and applies the rules again to
// channels not classified by hand.
func (s *Server) CreateRule(r Rule, by string, hooks ...store.TxHook) (Rule, error) {
	r.CreatedBy = by
	r, err := s.rules.Create(r, s.cfg.Now(), hooks...)
	if err != nil {
		return Rule{}, err
	}
	s.reclassifyAfterRules()
	return r, nil
}

// UpdateRule replaces mapping rule id and applies the rules again.
func (s *Server) UpdateRule(id string, r Rule, hooks ...store.TxHook) (Rule, error) {
	r, err := s.rules.Update(id, r, hooks...)
	if err != nil {
		return Rule{}, err
	}
	s.reclassifyAfterRules()
	return r, nil
}

// DeleteRule removes mapping rule id and applies the remaining rules again.
func (s *Server) DeleteRule(id string, hooks ...store.TxHook) error {
	if err := s.rules.Delete(id, hooks...); err != nil {
		return err
	}
	s.reclassifyAfterRules()
	return nil
}

func (s *Server) reclassifyAfterRules() {
	if n, err := s.Reclassify(); err != nil {
		s.log.Warn("gb28181: reclassifying channels", "err", err)
	} else if n > 0 {
		s.log.Info("gb28181: channels reclassified", "points", n)
	}
}
