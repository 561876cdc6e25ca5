package catalog

import "slices"

// Scope is the set of points a caller may see, as derived from its grants;
// the catalog only evaluates it and decides nothing about who gets which.
type Scope struct {
	All   bool        `json:"all"`   // every point, regardless of Rules
	Rules []ScopeRule `json:"rules"` // a point is in scope when any rule matches it
}

// ScopeRule admits points of some categories in some regions up to a level.
// No rule admits Unclassified points, whatever it names: only Scope.All sees them.
//
// Categories and Regions are nil or contain "*" for all; an empty non-nil
// list admits nothing. Regions match by subtree: a rule naming a street
// admits points of its communities. Points without a region match only rules
// for all regions. MaxLevel below 1 admits nothing; use MaxLevel (4) for all.
type ScopeRule struct {
	Categories []string `json:"categories"`
	Regions    []string `json:"regions"`
	MaxLevel   int      `json:"max_level"`
}

// Wildcard in ScopeRule.Categories or ScopeRule.Regions stands for all.
const Wildcard = "*"

func (r *ScopeRule) allCategories() bool {
	return r.Categories == nil || slices.Contains(r.Categories, Wildcard)
}

func (r *ScopeRule) allRegions() bool {
	return r.Regions == nil || slices.Contains(r.Regions, Wildcard)
}

// InScope reports whether p is in scope s. It is the reference definition
// that the compiled form used by Search, Facets and ExportPoints follows;
// use it for single decisions. Points with an unknown category or a level
// outside 1..4 are in no rule's scope.
func (c *Catalog) InScope(p Point, s Scope) bool {
	if s.All {
		return true
	}
	if _, ok := lookupCategory(p.Category); !ok || p.Category == Unclassified || p.Level < MinLevel || p.Level > MaxLevel {
		return false
	}
	var path []string
	if p.Region != "" {
		path = c.RegionPath(p.Region)
	}
	for _, r := range s.Rules {
		if p.Level > r.MaxLevel {
			continue
		}
		if !r.allCategories() && !slices.Contains(r.Categories, p.Category) {
			continue
		}
		if r.allRegions() || slices.ContainsFunc(path, func(code string) bool { return slices.Contains(r.Regions, code) }) {
			return true
		}
	}
	return false
}

// compiledScope is a Scope turned into one table: for each row (interned
// region + 1; row 0 is "no region") and category, the highest level any
// rule admits. A point is in scope iff its level <= that entry, so the
// per-point test is one load and one compare.
type compiledScope struct {
	all   bool
	width int
	max   []uint8
}

// compileScope builds the table in O(rules × regions × depth).
func (ix *index) compileScope(s Scope) compiledScope {
	width := numCategories + 1 // the last column is for unknown categories and stays 0
	cs := compiledScope{all: s.All, width: width}
	if s.All {
		return cs
	}
	t := &ix.regions
	rows := len(t.list) + 1
	cs.max = make([]uint8, rows*width)
	inRule := make([]bool, rows)
	for _, r := range s.Rules {
		if r.MaxLevel < MinLevel {
			continue
		}
		lvl := uint8(min(r.MaxLevel, MaxLevel))
		var cats uint32
		if r.allCategories() {
			cats = 1<<numCategories - 1
		} else {
			for _, code := range r.Categories {
				if i, ok := lookupCategory(code); ok {
					cats |= 1 << i
				}
			}
		}
		cats &^= 1 << categoryIndex[Unclassified] // admins only (Scope.All)
		if cats == 0 {
			continue
		}
		if r.allRegions() {
			for row := range inRule {
				inRule[row] = true
			}
		} else {
			clear(inRule)
			for i := range t.list {
				for a := int32(i); a >= 0; a = t.parent[a] {
					if slices.Contains(r.Regions, t.list[a].Code) {
						inRule[i+1] = true
						break
					}
				}
			}
		}
		for row, ok := range inRule {
			if !ok {
				continue
			}
			line := cs.max[row*width : row*width+width]
			for c := range numCategories {
				if cats&(1<<c) != 0 && line[c] < lvl {
					line[c] = lvl
				}
			}
		}
	}
	return cs
}

// admits reports whether the point with meta m is in scope.
func (cs *compiledScope) admits(m *meta) bool {
	return cs.all || m.level <= cs.max[int(m.region+1)*cs.width+int(m.cat)]
}
