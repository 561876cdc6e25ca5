package catalog

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// Region errors; match them with errors.Is.
var (
	// ErrRegionNotFound reports that no region has the requested code.
	ErrRegionNotFound = errors.New("region not found")
	// ErrRegionExists reports that a region with the requested code already exists.
	ErrRegionExists = errors.New("region already exists")
	// ErrRegionInUse reports that points or child regions still reference a region.
	ErrRegionInUse = errors.New("region in use")
)

const maxRegionNameRunes = 64

// Region is one administrative area: the district, a street (街道) or a
// community (社区). Codes follow GB/T 2260 extended: 6 digits for the
// district, 9 for a street, 12 for a community. Parent is "" for a root.
type Region struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Parent string `json:"parent"`
}

// validateRegionCode checks the form of a region code (not its existence).
func validateRegionCode(field, code string) *ValidationError {
	if !allDigits(code) || (len(code) != 6 && len(code) != 9 && len(code) != 12) {
		return invalid(field, "must be a region code of 6, 9 or 12 digits")
	}
	return nil
}

func (r *Region) normalize() {
	r.Code = strings.TrimSpace(r.Code)
	r.Name = strings.TrimSpace(r.Name)
	r.Parent = strings.TrimSpace(r.Parent)
}

// problems checks a normalized region's own fields.
func (r *Region) problems() []*ValidationError {
	var out []*ValidationError
	if err := validateRegionCode("code", r.Code); err != nil {
		out = append(out, err)
	}
	if r.Name == "" {
		out = append(out, invalid("name", "is required"))
	} else if err := validateText("name", r.Name, maxRegionNameRunes); err != nil {
		out = append(out, err)
	}
	if r.Parent != "" {
		if err := validateRegionCode("parent", r.Parent); err != nil {
			out = append(out, err)
		} else if r.Parent == r.Code {
			out = append(out, invalid("parent", "must not be the region itself"))
		}
	}
	return out
}

func putRegion(tx *bbolt.Tx, r Region) error {
	return store.PutJSON(tx, store.BucketRegions, []byte(r.Code), r)
}

// putRegionThen stores r and runs the caller's hooks in the same transaction.
func putRegionThen(tx *bbolt.Tx, r Region, also []store.ResultHook[Region]) error {
	if err := putRegion(tx, r); err != nil {
		return err
	}
	return store.RunResultHooks(tx, r, also)
}

// CreateRegion validates and stores r; its parent must exist (empty parent
// makes a root). The hooks run inside the same transaction, shown the
// region as stored; an error from one stores nothing.
func (c *Catalog) CreateRegion(r Region, also ...store.ResultHook[Region]) (Region, error) {
	r.normalize()
	if probs := r.problems(); len(probs) > 0 {
		return Region{}, probs[0]
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	_, exists := c.idx.regions.byCode[r.Code]
	_, parentOK := c.idx.regions.byCode[r.Parent]
	regions := append(c.idx.regions.list[:len(c.idx.regions.list):len(c.idx.regions.list)], r)
	c.mu.RUnlock()
	if exists {
		return Region{}, fmt.Errorf("catalog: region %q: %w", r.Code, ErrRegionExists)
	}
	if r.Parent != "" && !parentOK {
		return Region{}, invalid("parent", "is not a known region code")
	}
	if err := c.db.Update(func(tx *bbolt.Tx) error { return putRegionThen(tx, r, also) }); err != nil {
		return Region{}, err
	}
	c.setRegions(regions)
	slog.Info("region created", "code", r.Code, "parent", r.Parent)
	return r, nil
}

// setRegions publishes a committed region list to the index.
func (c *Catalog) setRegions(regions []Region) {
	c.mu.Lock()
	c.idx.setRegions(regions)
	c.mu.Unlock()
}

// GetRegion returns the region with the given code, or ErrRegionNotFound.
func (c *Catalog) GetRegion(code string) (Region, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i := c.idx.regions.lookup(code)
	if i < 0 {
		return Region{}, fmt.Errorf("catalog: region %q: %w", code, ErrRegionNotFound)
	}
	return c.idx.regions.list[i], nil
}

// ListRegions returns every region sorted by code; it is never nil.
func (c *Catalog) ListRegions() []Region {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]Region{}, c.idx.regions.list...)
}

// RegionPath returns code followed by all its ancestors up to the root; nil when code is unknown.
func (c *Catalog) RegionPath(code string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx.regions.path(code)
}

// UpdateRegion renames the region code and moves it under parent ("" makes
// it a root), refusing cycles. The hooks run inside the same transaction,
// shown the region as stored; an error from one changes nothing.
func (c *Catalog) UpdateRegion(code, name, parent string, also ...store.ResultHook[Region]) (Region, error) {
	r := Region{Code: code, Name: name, Parent: parent}
	r.normalize()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	t := &c.idx.regions
	i := t.lookup(r.Code)
	var cycle, parentOK bool
	if i >= 0 {
		p := t.lookup(r.Parent)
		parentOK = p >= 0
		for steps := 0; p >= 0 && steps <= len(t.list); steps++ {
			if p == i {
				cycle = true
				break
			}
			p = t.parent[p]
		}
	}
	regions := append([]Region{}, t.list...)
	c.mu.RUnlock()
	if i < 0 {
		return Region{}, fmt.Errorf("catalog: region %q: %w", code, ErrRegionNotFound)
	}
	if probs := r.problems(); len(probs) > 0 {
		return Region{}, probs[0]
	}
	switch {
	case r.Parent != "" && !parentOK:
		return Region{}, invalid("parent", "is not a known region code")
	case cycle:
		return Region{}, invalid("parent", "is a descendant of the region; regions must form a tree")
	}
	regions[i] = r
	if err := c.db.Update(func(tx *bbolt.Tx) error { return putRegionThen(tx, r, also) }); err != nil {
		return Region{}, err
	}
	c.setRegions(regions)
	slog.Info("region updated", "code", r.Code, "parent", r.Parent)
	return r, nil
}

// DeleteRegion removes the region code; it fails with ErrRegionInUse while
// points or child regions reference it. The hooks run inside the same
// transaction; an error from one keeps the region.
func (c *Catalog) DeleteRegion(code string, also ...store.TxHook) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	t := &c.idx.regions
	i := t.lookup(code)
	var inUse bool
	var regions []Region
	if i >= 0 {
		inUse = len(t.children[i]) > 0 || c.idx.regionInUse(code)
		regions = append(append([]Region{}, t.list[:i]...), t.list[i+1:]...)
	}
	c.mu.RUnlock()
	switch {
	case i < 0:
		return fmt.Errorf("catalog: region %q: %w", code, ErrRegionNotFound)
	case inUse:
		return fmt.Errorf("catalog: region %q: %w", code, ErrRegionInUse)
	}
	err := c.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(store.BucketRegions).Delete([]byte(code)); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
	if err != nil {
		return err
	}
	c.setRegions(regions)
	slog.Info("region deleted", "code", code)
	return nil
}

// regionHeader is the exact header ImportRegionsCSV expects.
var regionHeader = []string{"code", "name", "parent"}

// ImportRegionsCSV adds the regions of a CSV file with header code,name,parent,
// all or nothing, and returns how many it added (or would add, with dryRun).
//
// Rows may name parents defined later in the same file. A code that already
// exists, is repeated, or a parent chain that is unknown or forms a cycle is
// an error row. When any row is bad nothing is written, every bad row is
// returned and err is ErrRowsRejected. Unless dryRun, the hooks run inside
// the transaction that writes the rows, shown their count (even 0); an
// error from one writes nothing.
func (c *Catalog) ImportRegionsCSV(r io.Reader, dryRun bool, also ...store.ResultHook[int]) (n int, rowErrs []RowError, err error) {
	lr := &limitedReader{r: r, left: maxImportBytes}
	cr := csv.NewReader(skipBOM(lr))
	cr.FieldsPerRecord = len(regionHeader)
	cr.ReuseRecord = true
	if _, err := readHeader(cr, regionHeader, nil); err != nil {
		return 0, nil, lr.wrap(err)
	}
	type row struct {
		line int
		r    Region
	}
	var rows []row
	lines := map[string]int{}
	var errs rowErrors
	count := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			if lr.over || errors.Is(err, ErrTooLarge) {
				return 0, nil, ErrTooLarge
			}
			re, fatal, ok := csvProblem(err)
			if !ok {
				return 0, nil, err
			}
			errs.add(re.Line, re.Field, re.Message)
			if fatal {
				break
			}
			continue
		}
		if count++; count > maxImportRows {
			return 0, nil, ErrTooManyRows
		}
		line, _ := cr.FieldPos(0)
		reg := Region{Code: rec[0], Name: rec[1], Parent: rec[2]}
		reg.normalize()
		probs := reg.problems()
		for _, p := range probs {
			errs.add(line, p.Field, p.Message)
		}
		if len(probs) > 0 {
			continue
		}
		if prev, dup := lines[reg.Code]; dup {
			errs.add(line, "code", fmt.Sprintf("repeats the code of line %d", prev))
			continue
		}
		lines[reg.Code] = line
		rows = append(rows, row{line, reg})
	}

	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	existing := c.idx.regions.byCode
	regions := append([]Region{}, c.idx.regions.list...)
	inFile := make(map[string]Region, len(rows))
	for _, rw := range rows {
		inFile[rw.r.Code] = rw.r
	}
	for _, rw := range rows {
		if _, ok := existing[rw.r.Code]; ok {
			errs.add(rw.line, "code", "already exists")
			continue
		}
		if msg := fileParentProblem(rw.r, inFile, existing); msg != "" {
			errs.add(rw.line, "parent", msg)
		}
	}
	c.mu.RUnlock()
	if len(errs.list) > 0 {
		return 0, errs.sorted(), ErrRowsRejected
	}
	if dryRun || (len(rows) == 0 && len(also) == 0) {
		return len(rows), nil, nil
	}
	err = c.db.Update(func(tx *bbolt.Tx) error {
		for _, rw := range rows {
			if err := putRegion(tx, rw.r); err != nil {
				return err
			}
		}
		return store.RunResultHooks(tx, len(rows), also)
	})
	if err != nil {
		return 0, nil, err
	}
	for _, rw := range rows {
		regions = append(regions, rw.r)
	}
	c.setRegions(regions)
	slog.Info("regions imported", "count", len(rows))
	return len(rows), nil, nil
}

// fileParentProblem follows r's parent chain through the file's regions and
// the stored ones and says what is wrong with it, or "" when it reaches a
// stored region or a root.
func fileParentProblem(r Region, inFile map[string]Region, existing map[string]int32) string {
	seen := map[string]bool{r.Code: true}
	for p := r.Parent; p != ""; {
		if _, ok := existing[p]; ok {
			return ""
		}
		next, ok := inFile[p]
		if !ok {
			return fmt.Sprintf("%q is not a known region code nor defined in the file", p)
		}
		if seen[p] {
			return "parent chain forms a cycle"
		}
		seen[p] = true
		p = next.Parent
	}
	return ""
}
