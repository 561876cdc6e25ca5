package catalog

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Sort orders of Query.Sort.
const (
	// SortID orders by point ID (the default).
	SortID = "id"
	// SortName orders by name, then ID.
	SortName = "name"
	// SortUpdatedDesc orders by UpdatedAt, newest first, then ID.
	SortUpdatedDesc = "-updated"
)

// Page sizes.
const (
	// DefaultLimit is the page size when Query.Limit is 0.
	DefaultLimit = 50
	// MaxLimit is the largest page size.
	MaxLimit = 1000
)

const (
	maxQueryRunes   = 128
	maxCursorBytes  = 2048
	maxQueryTerms   = 8
	maxCategoryArgs = 64
)

// Query selects and pages points; zero fields do not filter.
type Query struct {
	Categories []string    // any of these category codes
	Region     string      // this region and its whole subtree
	Kind       string      // "hd" | "panoramic"
	Status     string      // a point state (StateOnline …); "" for any
	Level      int         // exactly this level when > 0
	Q          string      // every whitespace-separated term, case-insensitively, in id, name, address, tags or the name's pinyin initials
	BBox       *[4]float64 // minLon, minLat, maxLon, maxLat (WGS-84); points without a location never match
	Sort       string      // "id" (default) | "name" | "-updated"
	Limit      int         // page size, default 50, at most 1000
	Cursor     string      // opaque, from the previous page's Result.NextCursor
}

// Result is one page of matching points.
type Result struct {
	Items      []Point `json:"items"`       // never nil; secrets not redacted
	NextCursor string  `json:"next_cursor"` // "" on the last page
	Total      int     `json:"total"`       // all matches in scope, on every page
}

// queryParams are the URL parameters ParseQuery knows; "category" may repeat.
var queryParams = []string{"category", "region", "kind", "status", "level", "q", "bbox", "sort", "limit", "cursor"}

// ParseQuery reads a Query from URL parameters, strictly: an unknown
// parameter, a repeated single-valued one or a bad value fails with a
// *ValidationError naming the parameter. category may repeat and may be
// comma-separated; bbox is "minLon,minLat,maxLon,maxLat"; empty values count
// as absent. Callers with parameters of their own remove them first.
func ParseQuery(values url.Values) (Query, error) {
	var q Query
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if !slices.Contains(queryParams, key) {
			return Query{}, invalid(truncate(key, 40), "unknown query parameter")
		}
		if key != "category" && len(values[key]) > 1 {
			return Query{}, invalid(key, "must be given once")
		}
	}
	one := func(key string) string { return strings.TrimSpace(values.Get(key)) }
	for _, v := range values["category"] {
		for code := range strings.SplitSeq(v, ",") {
			if code = strings.TrimSpace(code); code != "" && !slices.Contains(q.Categories, code) {
				q.Categories = append(q.Categories, code)
			}
		}
	}
	if len(q.Categories) > maxCategoryArgs {
		return Query{}, invalid("category", "names too many categories")
	}
	q.Region, q.Kind, q.Status, q.Q, q.Sort, q.Cursor = one("region"), one("kind"), one("status"), one("q"), one("sort"), one("cursor")
	if s := one("level"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < MinLevel || n > MaxLevel {
			return Query{}, invalid("level", "must be an integer between %d and %d", MinLevel, MaxLevel)
		}
		q.Level = n
	}
	if s := one("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return Query{}, invalid("limit", "must be an integer between 1 and %d", MaxLimit)
		}
		q.Limit = n
	}
	if s := one("bbox"); s != "" {
		parts := strings.Split(s, ",")
		if len(parts) != 4 {
			return Query{}, invalid("bbox", "must be minLon,minLat,maxLon,maxLat")
		}
		var box [4]float64
		for i, part := range parts {
			f, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
			if err != nil {
				return Query{}, invalid("bbox", "must be four decimal numbers")
			}
			box[i] = f
		}
		q.BBox = &box
	}
	if err := q.validate(); err != nil {
		return Query{}, err
	}
	return q, nil
}

// validate checks what does not depend on the catalog's contents.
func (q *Query) validate() *ValidationError {
	for _, code := range q.Categories {
		if _, ok := lookupCategory(code); !ok {
			return invalid("category", "%q is not a known category code", truncate(code, 40))
		}
	}
	if q.Region != "" {
		if err := validateRegionCode("region", q.Region); err != nil {
			return err
		}
	}
	if q.Kind != "" && !slices.Contains(kinds, q.Kind) {
		return invalid("kind", "must be %q or %q", KindHD, KindPanoramic)
	}
	if q.Status != "" && !slices.Contains(states, q.Status) {
		return invalid("status", "must be one of %s", statesHelp)
	}
	if q.Level < 0 || q.Level > MaxLevel {
		return invalid("level", "must be between %d and %d", MinLevel, MaxLevel)
	}
	if err := validateText("q", q.Q, maxQueryRunes); err != nil {
		return err
	}
	if len(strings.Fields(q.Q)) > maxQueryTerms {
		return invalid("q", "must have at most %d terms", maxQueryTerms)
	}
	if b := q.BBox; b != nil {
		for _, f := range b {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return invalid("bbox", "must be finite numbers")
			}
		}
		switch {
		case b[0] < -180 || b[2] > 180 || b[1] < -90 || b[3] > 90:
			return invalid("bbox", "must lie within longitude -180..180 and latitude -90..90")
		case b[0] > b[2] || b[1] > b[3]:
			return invalid("bbox", "minimum must not exceed maximum")
		}
	}
	switch q.Sort {
	case "", SortID, SortName, SortUpdatedDesc:
	default:
		return invalid("sort", "must be %q, %q or %q", SortID, SortName, SortUpdatedDesc)
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return invalid("limit", "must be between 1 and %d", MaxLimit)
	}
	if q.Cursor != "" {
		if _, err := decodeCursor(q.Cursor, q.sort()); err != nil {
			return err
		}
	}
	return nil
}

func (q *Query) sort() string {
	if q.Sort == "" {
		return SortID
	}
	return q.Sort
}

// cursor is the sort key of the last item of a page; the next page starts
// strictly after it, so pages stay stable while points are added or removed.
type cursor struct {
	Sort    string `json:"s"`
	ID      string `json:"i"`
	Name    string `json:"n,omitempty"`
	Updated int64  `json:"u,omitempty"`
}

func (c cursor) encode() string {
	raw, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeCursor(s, sort string) (cursor, *ValidationError) {
	var c cursor
	if len(s) > maxCursorBytes {
		return c, invalid("cursor", "is too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(raw, &c) != nil || c.ID == "" {
		return c, invalid("cursor", "is not a cursor from a previous page")
	}
	if c.Sort != sort {
		return c, invalid("cursor", "belongs to sort %q, not %q", truncate(c.Sort, 20), sort)
	}
	return c, nil
}

// compiledQuery is a Query resolved against the index.
type compiledQuery struct {
	catMask  uint32 // 0: any category
	regionOK []bool // by row (interned region + 1); nil: any region
	kind     int    // index in kinds, or -1
	state    int    // index in states, or -1
	level    uint8  // 0: any level
	bbox     *[4]float64
	terms    []string
	sort     string
	limit    int
	cur      *cursor
}

// compileQuery validates q and resolves it against ix; call with the index read-locked.
func (ix *index) compileQuery(q Query) (compiledQuery, error) {
	if err := q.validate(); err != nil {
		return compiledQuery{}, err
	}
	cq := compiledQuery{kind: -1, state: -1, level: uint8(q.Level), bbox: q.BBox, sort: q.sort(), limit: cmp.Or(q.Limit, DefaultLimit)}
	for _, code := range q.Categories {
		i, _ := lookupCategory(code)
		cq.catMask |= 1 << i
	}
	if q.Region != "" {
		r := ix.regions.lookup(q.Region)
		if r < 0 {
			return compiledQuery{}, invalid("region", "is not a known region code")
		}
		cq.regionOK = ix.regions.subtree(r)
	}
	if q.Kind != "" {
		cq.kind = slices.Index(kinds, q.Kind)
	}
	if q.Status != "" {
		cq.state = slices.Index(states, q.Status)
	}
	for _, t := range strings.Fields(q.Q) {
		cq.terms = append(cq.terms, strings.ToLower(t))
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor, cq.sort)
		if err != nil {
			return compiledQuery{}, err
		}
		cq.cur = &c
	}
	return cq, nil
}

// matchCategory, matchRegion and matchState test the three faceted
// dimensions; matchRest tests every other filter.
func (cq *compiledQuery) matchCategory(m *meta) bool {
	return cq.catMask == 0 || cq.catMask&(1<<m.cat) != 0
}

func (cq *compiledQuery) matchRegion(m *meta) bool {
	return cq.regionOK == nil || cq.regionOK[m.region+1]
}

func (cq *compiledQuery) matchState(m *meta) bool {
	return cq.state < 0 || int(m.state) == cq.state
}

func (cq *compiledQuery) matchRest(m *meta, key string) bool {
	if cq.kind >= 0 && int(m.kind) != cq.kind {
		return false
	}
	if cq.level != 0 && m.level != cq.level {
		return false
	}
	if b := cq.bbox; b != nil && (!m.hasLoc || m.lon < b[0] || m.lon > b[2] || m.lat < b[1] || m.lat > b[3]) {
		return false
	}
	for _, t := range cq.terms {
		if !strings.Contains(key, t) {
			return false
		}
	}
	return true
}

// Search returns the page of points in scope s that match q, and how many match in all.
//
// It reads only the in-memory index. Items are copies with secrets intact:
// redact them before they leave the process. An unknown q.Region, like any
// invalid field of q, fails with a *ValidationError.
func (c *Catalog) Search(q Query, s Scope) (Result, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ix := c.idx
	cq, err := ix.compileQuery(q)
	if err != nil {
		return Result{}, err
	}
	cs := ix.compileScope(s)
	pg := newPager(ix, &cq)
	total := 0
	for i := range ix.meta {
		m := &ix.meta[i]
		if !cs.admits(m) || !cq.matchCategory(m) || !cq.matchRegion(m) || !cq.matchState(m) || !cq.matchRest(m, ix.keys[i]) {
			continue
		}
		total++
		pg.offer(int32(i))
	}
	res := Result{Items: make([]Point, 0, min(len(pg.page), cq.limit)), Total: total}
	page := pg.result()
	for _, i := range page {
		res.Items = append(res.Items, ix.points[i].clone())
	}
	if pg.after > len(page) && len(page) > 0 {
		res.NextCursor = pg.cursorOf(page[len(page)-1]).encode()
	}
	return res, nil
}

// pager keeps the first limit matches after the cursor in sort order. For
// sort=id the scan already runs in order; otherwise it keeps a bounded
// max-heap, so a page costs O(matches × log limit), not a full sort.
type pager struct {
	ix    *index
	cq    *compiledQuery
	page  []int32
	after int // matches after the cursor
	start int // for sort=id: first position after the cursor
}

func newPager(ix *index, cq *compiledQuery) *pager {
	pg := &pager{ix: ix, cq: cq}
	if cq.sort == SortID && cq.cur != nil {
		i, found := ix.find(cq.cur.ID)
		if found {
			i++
		}
		pg.start = i
	}
	return pg
}

// less orders positions a and b by the query's sort.
func (pg *pager) less(a, b int32) bool {
	ix := pg.ix
	switch pg.cq.sort {
	case SortName:
		if na, nb := ix.points[a].Name, ix.points[b].Name; na != nb {
			return na < nb
		}
	case SortUpdatedDesc:
		if ua, ub := ix.updated[a], ix.updated[b]; ua != ub {
			return ua > ub
		}
	}
	return ix.ids[a] < ix.ids[b]
}

// afterCursor reports whether position i sorts after the cursor.
func (pg *pager) afterCursor(i int32) bool {
	c := pg.cq.cur
	if c == nil {
		return true
	}
	ix := pg.ix
	switch pg.cq.sort {
	case SortName:
		if n := ix.points[i].Name; n != c.Name {
			return n > c.Name
		}
	case SortUpdatedDesc:
		if u := ix.updated[i]; u != c.Updated {
			return u < c.Updated
		}
	default:
		return int(i) >= pg.start
	}
	return ix.ids[i] > c.ID
}

func (pg *pager) cursorOf(i int32) cursor {
	c := cursor{Sort: pg.cq.sort, ID: pg.ix.ids[i]}
	switch pg.cq.sort {
	case SortName:
		c.Name = pg.ix.points[i].Name
	case SortUpdatedDesc:
		c.Updated = pg.ix.updated[i]
	}
	return c
}

func (pg *pager) offer(i int32) {
	if !pg.afterCursor(i) {
		return
	}
	pg.after++
	limit := pg.cq.limit
	if pg.cq.sort == SortID {
		if len(pg.page) < limit {
			pg.page = append(pg.page, i)
		}
		return
	}
	h := pg.page
	if len(h) < limit {
		h = append(h, i)
		// Sift up: the heap's root is the last item in sort order.
		for j := len(h) - 1; j > 0; {
			p := (j - 1) / 2
			if !pg.less(h[p], h[j]) {
				break
			}
			h[p], h[j] = h[j], h[p]
			j = p
		}
		pg.page = h
		return
	}
	if !pg.less(i, h[0]) {
		return
	}
	h[0] = i
	for j := 0; ; {
		l, r, big := 2*j+1, 2*j+2, j
		if l < len(h) && pg.less(h[big], h[l]) {
			big = l
		}
		if r < len(h) && pg.less(h[big], h[r]) {
			big = r
		}
		if big == j {
			break
		}
		h[j], h[big] = h[big], h[j]
		j = big
	}
}

// result returns the kept positions in sort order.
func (pg *pager) result() []int32 {
	if pg.cq.sort != SortID {
		slices.SortFunc(pg.page, func(a, b int32) int {
			if pg.less(a, b) {
				return -1
			}
			return 1
		})
	}
	return pg.page
}
