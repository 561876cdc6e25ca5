package catalog

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tianyan/vms/internal/csvcell"
)

// Export formats.
const (
	// FormatCSV writes PointColumns followed by OptionalPointColumns.
	FormatCSV = "csv"
	// FormatGeoJSON writes a FeatureCollection of Point features.
	FormatGeoJSON = "geojson"
)

// ExportPoints writes the points in scope s, sorted by ID, as CSV or GeoJSON
// in the form ImportPoints reads, so that exporting and importing into a
// catalog with the same regions gives the same points (apart from times and
// status).
//
// Unless includeSecrets is set, URL passwords are written as "***"; such a
// file documents the catalog but cannot be imported again, because import,
// like Create, rejects the placeholder as a password. Pass includeSecrets
// only for callers allowed to read camera credentials.
func (c *Catalog) ExportPoints(w io.Writer, format string, s Scope, includeSecrets bool) error {
	if format != FormatCSV && format != FormatGeoJSON {
		return invalid("format", "must be %q or %q", FormatCSV, FormatGeoJSON)
	}
	// Take the snapshot under the lock, write without it: the writer may be
	// a slow client. Indexed points are never changed in place.
	c.mu.RLock()
	cs := c.idx.compileScope(s)
	var points []*Point
	for i := range c.idx.meta {
		if cs.admits(&c.idx.meta[i]) {
			points = append(points, c.idx.points[i])
		}
	}
	c.mu.RUnlock()
	bw := bufio.NewWriterSize(w, 64<<10)
	var err error
	if format == FormatCSV {
		err = writeCSV(bw, points, includeSecrets)
	} else {
		err = writeGeoJSON(bw, points, includeSecrets)
	}
	if err != nil {
		return fmt.Errorf("catalog: export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("catalog: export: %w", err)
	}
	return nil
}

// exportRow is a point in import column form.
type exportRow struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Kind          string   `json:"kind"`
	Category      string   `json:"category"`
	Region        string   `json:"region"`
	Level         int      `json:"level"`
	Address       string   `json:"address"`
	Tags          []string `json:"tags"`
	PTZ           bool     `json:"ptz"`
	MainURL       string   `json:"main_url"`
	SubURL        string   `json:"sub_url"`
	OnDemand      bool     `json:"on_demand"`
	MainTransport string   `json:"main_transport"`
	SubTransport  string   `json:"sub_transport"`
	Agent         string   `json:"agent"`
	Camera        string   `json:"camera"`
}

func toExportRow(p *Point, includeSecrets bool) exportRow {
	main, sub := p.Main, Source{}
	if p.Sub != nil {
		sub = *p.Sub
	}
	if !includeSecrets {
		main, sub = main.Redacted(), sub.Redacted()
	}
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	return exportRow{
		ID: p.ID, Name: p.Name, Kind: p.Kind, Category: p.Category, Region: p.Region, Level: p.Level,
		Address: p.Address, Tags: tags, PTZ: p.PTZ, MainURL: main.URL, SubURL: sub.URL, OnDemand: p.OnDemand,
		MainTransport: main.Transport, SubTransport: sub.Transport, Agent: p.Agent, Camera: p.Camera,
	}
}

func formatCoord(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func writeCSV(w io.Writer, points []*Point, includeSecrets bool) error {
	cw := csv.NewWriter(w)
	header := append(append([]string{}, PointColumns...), OptionalPointColumns...)
	if err := cw.Write(header); err != nil {
		return err
	}
	rec := make([]string, len(header))
	for _, p := range points {
		r := toExportRow(p, includeSecrets)
		rec = append(rec[:0],
			r.ID, r.Name, r.Kind, r.Category, r.Region, formatCoord(p.Lat), formatCoord(p.Lon),
			strconv.Itoa(r.Level), r.Address, strings.Join(r.Tags, ";"), strconv.FormatBool(r.PTZ),
			r.MainURL, r.SubURL,
			strconv.FormatBool(r.OnDemand), r.MainTransport, r.SubTransport, r.Agent, r.Camera)
		for i := range rec {
			rec[i] = csvcell.Neutralize(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

type geoFeatureOut struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	Geometry   *geoPoint `json:"geometry"`
	Properties exportRow `json:"properties"`
}

// writeGeoJSON streams one feature at a time rather than building the document.
func writeGeoJSON(w io.Writer, points []*Point, includeSecrets bool) error {
	if _, err := io.WriteString(w, `{"type":"FeatureCollection","features":[`); err != nil {
		return err
	}
	for i, p := range points {
		f := geoFeatureOut{Type: "Feature", ID: p.ID, Properties: toExportRow(p, includeSecrets)}
		if p.Lat != nil && p.Lon != nil {
			f.Geometry = &geoPoint{Type: "Point", Coordinates: []float64{*p.Lon, *p.Lat}}
		}
		raw, err := json.Marshal(f)
		if err != nil {
			return err
		}
		if i > 0 {
			raw = append([]byte{',', '\n'}, raw...)
		}
		if _, err := w.Write(raw); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "]}\n")
	return err
}
