package catalog

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"

	"github.com/tianyan/vms/internal/csvcell"
)

// Media types ImportPoints reads.
const (
	// ContentTypeCSV is a CSV file with the PointColumns header.
	ContentTypeCSV = "text/csv"
	// ContentTypeGeoJSON is a GeoJSON FeatureCollection of Point features.
	ContentTypeGeoJSON = "application/geo+json"
)

// Import limits; variables only so that tests can lower them.
var (
	maxImportBytes int64 = 64 << 20
	maxImportRows        = 200_000
)

// maxFieldBytes bounds any one imported field before it is parsed.
const maxFieldBytes = 4096

// Import errors; match them with errors.Is.
var (
	// ErrRowsRejected reports that an import had invalid rows, listed in its []RowError, and wrote nothing.
	ErrRowsRejected = errors.New("import rejected: invalid rows; nothing was written")
	// ErrTooLarge reports an import body over 64 MiB.
	ErrTooLarge = errors.New("import larger than 64 MiB")
	// ErrTooManyRows reports an import of more than 200,000 rows.
	ErrTooManyRows = errors.New("import has more than 200000 rows")
)

// PointColumns is the exact header a points CSV starts with.
var PointColumns = []string{"id", "name", "kind", "category", "region", "lat", "lon", "level", "address", "tags", "ptz", "main_url", "sub_url"}

// OptionalPointColumns may follow PointColumns, in any order; ExportPoints
// writes them all so that a round trip keeps every configured field.
var OptionalPointColumns = []string{"on_demand", "main_transport", "sub_transport", "agent", "camera"}

// RowError reports one problem of one imported row.
type RowError struct {
	Line    int    `json:"line"`    // CSV: 1-based line, the header being line 1; GeoJSON: feature index + 1
	Field   string `json:"field"`   // the column or property, or "record" for the row as a whole
	Message string `json:"message"` // never echoes a URL
}

// Error returns "line N: field: message".
func (e RowError) Error() string {
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Message)
}

type rowErrors struct{ list []RowError }

func (e *rowErrors) add(line int, field, msg string) {
	e.list = append(e.list, RowError{Line: line, Field: field, Message: msg})
}

func (e *rowErrors) sorted() []RowError {
	slices.SortStableFunc(e.list, func(a, b RowError) int { return a.Line - b.Line })
	return e.list
}

// limitedReader fails once more than left bytes are read, so an oversized
// upload is rejected instead of silently truncated.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
}

// Read reads from the underlying reader until the limit is crossed.
func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Probe one byte: input of exactly the limit is fine.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.over = true
			return 0, ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// wrap turns any error seen after the limit was crossed into ErrTooLarge.
func (l *limitedReader) wrap(err error) error {
	if l.over || errors.Is(err, ErrTooLarge) {
		return ErrTooLarge
	}
	return err
}

// skipBOM drops a UTF-8 byte order mark, which spreadsheet programs write.
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	return br
}

// readHeader reads the header line: required columns first, exactly, then
// any distinct optional ones. It returns the column names.
func readHeader(cr *csv.Reader, required, optional []string) ([]string, error) {
	rec, err := cr.Read()
	if err == io.EOF {
		return nil, invalid("header", "is missing: the file is empty")
	}
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, invalid("header", "is not valid CSV")
	}
	want := strings.Join(required, ",")
	if len(rec) < len(required) || !slices.Equal(rec[:len(required)], required) {
		return nil, invalid("header", "must be exactly %s", want)
	}
	cols := slices.Clone(rec)
	for i, c := range cols[len(required):] {
		if !slices.Contains(optional, c) || slices.Contains(cols[:len(required)+i], c) {
			return nil, invalid("header", "column %q is unknown or repeated; optional columns are %s", truncate(c, 40), strings.Join(optional, ","))
		}
	}
	return cols, nil
}

// csvProblem turns a CSV read error into a row error; fatal means reading cannot go on.
func csvProblem(err error) (re RowError, fatal, ok bool) {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return RowError{}, true, false
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return RowError{Line: pe.StartLine, Field: "record", Message: "has the wrong number of fields"}, false, true
	}
	return RowError{Line: pe.Line, Field: "record", Message: "is not valid CSV: " + pe.Err.Error()}, true, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// importRow is one parsed row waiting to be written.
type importRow struct {
	line int
	p    Point
}

// ImportPoints adds the points of a CSV (ContentTypeCSV) or GeoJSON
// (ContentTypeGeoJSON) document, all or nothing, and returns how many it
// added (or would add, with dryRun).
//
// CSV: the header is PointColumns exactly, optionally followed by
// OptionalPointColumns. tags are ';'-separated; ptz and on_demand are
// true/false/1/0 (on_demand defaults to true); an empty id is generated as
// in Create; lat and lon may be empty; an empty main_url makes a publish
// source, any other an rtsp source; an empty sub_url means no sub stream.
// GeoJSON: a FeatureCollection whose features have Point geometry
// ([lon, lat]) or null, and properties with the same names (tags may also be
// an array); unknown properties are ignored.
//
// Every row is checked before anything is written: an invalid field, an
// unknown region, an id that already exists or repeats within the file.
// If any row is bad, nothing is written, every bad row is returned and err is
// ErrRowsRejected. Otherwise all rows are written in one bbolt transaction,
// in which the hooks then run, shown the count (even 0); an error from one
// writes nothing. Inputs over 64 MiB or 200,000 rows fail with ErrTooLarge
// or ErrTooManyRows, a bad header or document with a *ValidationError.
func (c *Catalog) ImportPoints(r io.Reader, contentType string, dryRun bool, also ...store.ResultHook[int]) (n int, rowErrs []RowError, err error) {
	return c.ImportPointsIf(r, contentType, dryRun, nil, also...)
}

// ImportPointsIf is ImportPoints, writing only when allow (if not nil)
// accepts every row's point. allow runs once the rows are valid, before
// camera bindings are checked; the first refusal ends the import with
// allow's error, wrapped with the row's line, and nothing is written.
//
// Rows binding a camera (agent and camera) that a stored point or an
// earlier row is bound to are listed as row errors on field "camera", with
// err wrapping both ErrRowsRejected and ErrCameraBound.
func (c *Catalog) ImportPointsIf(r io.Reader, contentType string, dryRun bool, allow func(Point) error, also ...store.ResultHook[int]) (n int, rowErrs []RowError, err error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, nil, invalid("content_type", "is not a media type")
	}
	var rows []importRow
	var errs rowErrors
	switch mt {
	case ContentTypeCSV:
		rows, errs, err = readPointsCSV(r)
	case ContentTypeGeoJSON, "application/json":
		rows, errs, err = readPointsGeoJSON(r)
	default:
		return 0, nil, invalid("content_type", "must be %s or %s", ContentTypeCSV, ContentTypeGeoJSON)
	}
	if err != nil {
		return 0, nil, err
	}
	lines := make(map[string]int, len(rows))
	for _, row := range rows {
		if row.p.ID == "" {
			continue
		}
		if prev, dup := lines[row.p.ID]; dup {
			errs.add(row.line, "id", fmt.Sprintf("repeats the id of line %d", prev))
			continue
		}
		lines[row.p.ID] = row.line
	}
	c.checkImportSources(rows, &errs)

	c.wmu.Lock()
	defer c.wmu.Unlock()
	// Under wmu the index is exactly what bbolt holds, so checking it is
	// checking the store.
	c.mu.RLock()
	for _, row := range rows {
		if row.p.Region != "" && c.idx.regions.lookup(row.p.Region) < 0 {
			errs.add(row.line, "region", "is not a known region code")
		}
		if _, taken := c.idx.get(row.p.ID); taken && row.p.ID != "" {
			errs.add(row.line, "id", "already exists")
		}
	}
	c.mu.RUnlock()
	if len(errs.list) > 0 {
		return 0, errs.sorted(), ErrRowsRejected
	}
	if allow != nil {
		for _, row := range rows {
			if err := allow(row.p.clone()); err != nil {
				return 0, nil, fmt.Errorf("line %d: %w", row.line, err)
			}
		}
	}
	if bound := c.boundRows(rows); len(bound.list) > 0 {
		return 0, bound.sorted(), fmt.Errorf("%w: %w", ErrRowsRejected, ErrCameraBound)
	}
	if dryRun || (len(rows) == 0 && len(also) == 0) {
		return len(rows), nil, nil
	}
	now := c.now().UTC()
	points := make([]*Point, len(rows))
	err = c.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketPoints)
		inFile := func(id string) bool { _, ok := lines[id]; return ok }
		for i := range rows {
			p := &rows[i].p
			if p.ID == "" {
				id, err := nextID(b, idPrefix(p.Region, p.Kind), inFile)
				if err != nil {
					return err
				}
				p.ID = id
			}
			p.CreatedAt, p.UpdatedAt = now, now
			p.Status = Status{State: StateUnknown, Since: now}
			points[i] = p
		}
		// Sorted keys fill bbolt pages in order.
		slices.SortFunc(points, func(a, b *Point) int { return strings.Compare(a.ID, b.ID) })
		for _, p := range points {
			raw, err := json.Marshal(p)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(p.ID), raw); err != nil {
				return fmt.Errorf("catalog: put point %q: %w", p.ID, err)
			}
		}
		return store.RunResultHooks(tx, len(points), also)
	})
	if err != nil {
		return 0, nil, err
	}
	c.mu.Lock()
	c.idx.putNew(points)
	c.mu.Unlock()
	slog.Info("points imported", "count", len(points))
	return len(points), nil, nil
}

// boundRows lists the rows that bind a camera a stored point or an earlier
// row is bound to. Callers hold wmu.
func (c *Catalog) boundRows(rows []importRow) rowErrors {
	var errs rowErrors
	seen := map[cameraKey]int{}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, row := range rows {
		k, ok := bindingOf(&row.p)
		if !ok {
			continue
		}
		if prev, dup := seen[k]; dup {
			errs.add(row.line, "camera", fmt.Sprintf("is bound by line %d too: one camera, one point", prev))
			continue
		}
		seen[k] = row.line
		if _, taken := c.idx.cameraOwner(k, ""); taken {
			errs.add(row.line, "camera", "is already bound to another point")
		}
	}
	return errs
}

func readPointsCSV(r io.Reader) ([]importRow, rowErrors, error) {
	var errs rowErrors
	lr := &limitedReader{r: r, left: maxImportBytes}
	cr := csv.NewReader(skipBOM(lr))
	cr.ReuseRecord = true
	cols, err := readHeader(cr, PointColumns, OptionalPointColumns)
	if err != nil {
		return nil, errs, lr.wrap(err)
	}
	cr.FieldsPerRecord = len(cols)
	colIdx := make(map[string]int, len(cols))
	for i, c := range cols {
		colIdx[c] = i
	}
	var rows []importRow
	count := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			if lr.over || errors.Is(err, ErrTooLarge) {
				return nil, errs, ErrTooLarge
			}
			re, fatal, ok := csvProblem(err)
			if !ok {
				return nil, errs, err
			}
			errs.add(re.Line, re.Field, re.Message)
			if fatal {
				break
			}
			continue
		}
		if count++; count > maxImportRows {
			return nil, errs, ErrTooManyRows
		}
		line, _ := cr.FieldPos(0)
		get := func(col string) (string, bool) {
			i, ok := colIdx[col]
			if !ok {
				return "", false
			}
			// Exports quote formula-like cells; take the quote off.
			return csvcell.Restore(rec[i]), true
		}
		p, probs := pointFromRow(get)
		if len(probs) > 0 {
			for _, e := range probs {
				errs.add(line, e.Field, e.Message)
			}
			continue
		}
		rows = append(rows, importRow{line: line, p: p})
	}
	return rows, errs, nil
}

// pointFromRow builds a normalized point from named text fields and returns
// every problem it has, with import column names as fields.
func pointFromRow(get func(col string) (string, bool)) (Point, []*ValidationError) {
	var probs []*ValidationError
	val := func(col string) string {
		v, _ := get(col)
		if len(v) > maxFieldBytes {
			probs = append(probs, invalid(col, "must be at most %d bytes", maxFieldBytes))
			return ""
		}
		return strings.TrimSpace(v)
	}
	p := Point{
		ID: val("id"), Name: val("name"), Kind: val("kind"), Category: val("category"), Region: val("region"),
		Address: val("address"), Agent: val("agent"), Camera: val("camera"), OnDemand: true,
	}
	if len(probs) > 0 {
		return Point{}, probs
	}
	parseFloat := func(col string) *float64 {
		s := val(col)
		if s == "" {
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			probs = append(probs, invalid(col, "must be a decimal number"))
			return nil
		}
		return &f
	}
	parseBool := func(col string, dst *bool) {
		switch strings.ToLower(val(col)) {
		case "":
		case "true", "1":
			*dst = true
		case "false", "0":
			*dst = false
		default:
			probs = append(probs, invalid(col, "must be true, false, 1 or 0"))
		}
	}
	p.Lat, p.Lon = parseFloat("lat"), parseFloat("lon")
	if s := val("level"); s != "" {
		lvl, err := strconv.Atoi(s)
		if err != nil || lvl == 0 {
			probs = append(probs, invalid("level", "must be an integer between %d and %d", MinLevel, MaxLevel))
		}
		p.Level = lvl
	}
	if s := val("tags"); s != "" {
		p.Tags = strings.Split(s, ";")
	}
	parseBool("ptz", &p.PTZ)
	parseBool("on_demand", &p.OnDemand)
	if u := val("main_url"); u != "" {
		p.Main = Source{Type: SourceRTSP, URL: u, Transport: val("main_transport")}
	} else {
		p.Main = Source{Type: SourcePublish, Transport: val("main_transport")}
	}
	if u := val("sub_url"); u != "" {
		p.Sub = &Source{Type: SourceRTSP, URL: u, Transport: val("sub_transport")}
	} else if val("sub_transport") != "" {
		probs = append(probs, invalid("sub_transport", "must be empty when sub_url is"))
	}
	p.normalize()
	for _, e := range p.problems(true) {
		if !slices.ContainsFunc(probs, func(x *ValidationError) bool { return x.Field == importField(e.Field) }) {
			probs = append(probs, invalid(importField(e.Field), "%s", e.Message))
		}
	}
	if len(probs) > 0 {
		return Point{}, probs
	}
	return p, nil
}

// importField names a Point validation field as the import column it comes from.
func importField(field string) string {
	switch field {
	case "main.url", "main.type":
		return "main_url"
	case "main.transport":
		return "main_transport"
	case "sub.url", "sub.type":
		return "sub_url"
	case "sub.transport":
		return "sub_transport"
	}
	return field
}

// geoFeature is one GeoJSON feature as read; properties stay raw so that
// one bad value is one bad row, not a failed document.
type geoFeature struct {
	Type       string                     `json:"type"`
	Geometry   json.RawMessage            `json:"geometry"`
	Properties map[string]json.RawMessage `json:"properties"`
}

type geoPoint struct {
	Type        string    `json:"type"`
	Coordinates []float64 `json:"coordinates"`
}

func readPointsGeoJSON(r io.Reader) ([]importRow, rowErrors, error) {
	var errs rowErrors
	lr := &limitedReader{r: r, left: maxImportBytes}
	var doc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	dec := json.NewDecoder(skipBOM(lr))
	if err := dec.Decode(&doc); err != nil {
		if err := lr.wrap(err); errors.Is(err, ErrTooLarge) {
			return nil, errs, err
		}
		return nil, errs, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err := lr.wrap(err); errors.Is(err, ErrTooLarge) {
			return nil, errs, err
		}
		return nil, errs, invalid("body", "unexpected data after the FeatureCollection")
	}
	if doc.Type != "FeatureCollection" {
		return nil, errs, invalid("type", "must be FeatureCollection")
	}
	if len(doc.Features) > maxImportRows {
		return nil, errs, ErrTooManyRows
	}
	var rows []importRow
	for i, raw := range doc.Features {
		line := i + 1
		p, probs := pointFromFeature(raw)
		for _, e := range probs {
			errs.add(line, e.Field, e.Message)
		}
		if len(probs) == 0 {
			rows = append(rows, importRow{line: line, p: p})
		}
	}
	return rows, errs, nil
}

func pointFromFeature(raw json.RawMessage) (Point, []*ValidationError) {
	var f geoFeature
	if err := json.Unmarshal(raw, &f); err != nil {
		return Point{}, []*ValidationError{invalid("feature", "is not a GeoJSON feature object")}
	}
	if f.Type != "Feature" {
		return Point{}, []*ValidationError{invalid("type", "must be Feature")}
	}
	props := make(map[string]string, len(f.Properties)+2)
	var probs []*ValidationError
	for k, v := range f.Properties {
		if !slices.Contains(PointColumns, k) && !slices.Contains(OptionalPointColumns, k) {
			continue
		}
		s, err := propertyText(k, v)
		if err != nil {
			probs = append(probs, err)
			continue
		}
		props[k] = s
	}
	if g := bytes.TrimSpace(f.Geometry); len(g) > 0 && !bytes.Equal(g, []byte("null")) {
		var pt geoPoint
		if err := json.Unmarshal(g, &pt); err != nil || pt.Type != "Point" || len(pt.Coordinates) < 2 || len(pt.Coordinates) > 3 {
			probs = append(probs, invalid("geometry", "must be null or a Point with coordinates [lon, lat]"))
		} else {
			props["lon"] = strconv.FormatFloat(pt.Coordinates[0], 'f', -1, 64)
			props["lat"] = strconv.FormatFloat(pt.Coordinates[1], 'f', -1, 64)
		}
	}
	if len(probs) > 0 {
		return Point{}, probs
	}
	return pointFromRow(func(col string) (string, bool) {
		v, ok := props[col]
		return v, ok
	})
}

// propertyText turns a GeoJSON property value into the text its CSV column would hold.
func propertyText(key string, v json.RawMessage) (string, *ValidationError) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return "", nil
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", invalid(key, "is not a valid JSON string")
		}
		return s, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return "", invalid(key, "is not valid JSON")
		}
		return strconv.FormatBool(b), nil
	case '[':
		if key != "tags" {
			break
		}
		var tags []string
		if err := json.Unmarshal(v, &tags); err != nil {
			return "", invalid(key, "must be an array of strings")
		}
		for _, t := range tags {
			if strings.Contains(t, ";") {
				return "", invalid(key, "must not contain ';' (the CSV tag separator)")
			}
		}
		return strings.Join(tags, ";"), nil
	case '{':
	default:
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return "", invalid(key, "is not valid JSON")
		}
		return n.String(), nil
	}
	return "", invalid(key, "must be a string, number or boolean")
}
