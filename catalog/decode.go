package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// pointInput is the client-settable wire form of a Point. "source" is the
// field's name before sub streams existed and is accepted as an alias of
// "main".
type pointInput struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Category *string  `json:"category"`
	Region   string   `json:"region"`
	Lat      *float64 `json:"lat"`
	Lon      *float64 `json:"lon"`
	Address  string   `json:"address"`
	Level    *int     `json:"level"`
	Tags     []string `json:"tags"`
	PTZ      bool     `json:"ptz"`
	Main     *Source  `json:"main"`
	Source   *Source  `json:"source"`
	Sub      *Source  `json:"sub"`
	Agent    string   `json:"agent"`
	Camera   string   `json:"camera"`
	OnDemand *bool    `json:"on_demand"`
}

// DecodePoint reads a Point from JSON, rejecting unknown and read-only fields.
//
// Defaults for absent fields: category "public-security" (so callers that
// send only id, name and source keep working), level 1, kind hd, on_demand
// true. "source" is accepted as an alias of "main"; sending both is an error.
func DecodePoint(r io.Reader) (Point, error) {
	var in pointInput
	if err := decodeStrict(r, &in); err != nil {
		return Point{}, err
	}
	if in.Main != nil && in.Source != nil {
		return Point{}, invalid("source", "is an alias of main; send only one of them")
	}
	p := Point{
		ID: in.ID, Name: in.Name, Kind: in.Kind, Category: DefaultCategory, Region: in.Region,
		Lat: in.Lat, Lon: in.Lon, Address: in.Address, Level: MinLevel, Tags: in.Tags, PTZ: in.PTZ,
		Sub: in.Sub, Agent: in.Agent, Camera: in.Camera, OnDemand: true,
	}
	if in.Category != nil {
		p.Category = *in.Category
	}
	if in.Level != nil {
		p.Level = *in.Level
		if p.Level == 0 {
			// normalize would turn an explicit 0 into the default.
			return Point{}, invalid("level", "must be between %d and %d", MinLevel, MaxLevel)
		}
	}
	switch {
	case in.Main != nil:
		p.Main = *in.Main
	case in.Source != nil:
		p.Main = *in.Source
	}
	if in.OnDemand != nil {
		p.OnDemand = *in.OnDemand
	}
	return p, nil
}

// DecodePatch reads a PointPatch from JSON, rejecting unknown and read-only fields.
//
// Only "lat", "lon" (together) and "sub" may be null, which clears them.
// "source" is accepted as an alias of "main"; sending both is an error.
func DecodePatch(r io.Reader) (PointPatch, error) {
	var raw map[string]json.RawMessage
	if err := decodeStrict(r, &raw); err != nil {
		return PointPatch{}, err
	}
	if raw == nil {
		return PointPatch{}, invalid("body", "must be a JSON object")
	}
	if _, ok := raw["main"]; ok {
		if _, ok := raw["source"]; ok {
			return PointPatch{}, invalid("source", "is an alias of main; send only one of them")
		}
	}
	isNull := func(key string) bool {
		v, ok := raw[key]
		return ok && bytes.Equal(bytes.TrimSpace(v), []byte("null"))
	}
	var patch PointPatch
	switch latNull, lonNull := isNull("lat"), isNull("lon"); {
	case latNull && lonNull:
		patch.ClearLocation = true
		delete(raw, "lat")
		delete(raw, "lon")
	case latNull:
		return PointPatch{}, invalid("lat", "may be null only together with lon")
	case lonNull:
		return PointPatch{}, invalid("lon", "may be null only together with lat")
	}
	if isNull("sub") {
		patch.ClearSub = true
		delete(raw, "sub")
	}
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		val := raw[key]
		if bytes.Equal(bytes.TrimSpace(val), []byte("null")) {
			return PointPatch{}, invalid(key, "must not be null")
		}
		var dst any
		switch key {
		case "name":
			dst = ptrTo(&patch.Name)
		case "kind":
			dst = ptrTo(&patch.Kind)
		case "category":
			dst = ptrTo(&patch.Category)
		case "region":
			dst = ptrTo(&patch.Region)
		case "lat":
			dst = ptrTo(&patch.Lat)
		case "lon":
			dst = ptrTo(&patch.Lon)
		case "address":
			dst = ptrTo(&patch.Address)
		case "level":
			dst = ptrTo(&patch.Level)
		case "tags":
			dst = ptrTo(&patch.Tags)
		case "ptz":
			dst = ptrTo(&patch.PTZ)
		case "main", "source":
			dst = ptrTo(&patch.Main)
		case "sub":
			dst = ptrTo(&patch.Sub)
		case "agent":
			dst = ptrTo(&patch.Agent)
		case "camera":
			dst = ptrTo(&patch.Camera)
		case "on_demand":
			dst = ptrTo(&patch.OnDemand)
		default:
			return PointPatch{}, invalid(key, "unknown or read-only field")
		}
		if err := decodeStrict(bytes.NewReader(val), dst); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) && ve.Field == "body" {
				ve.Field = key
			} else if ve != nil {
				ve.Field = key + "." + ve.Field
			}
			return PointPatch{}, err
		}
	}
	if patch.Level != nil && *patch.Level == 0 {
		return PointPatch{}, invalid("level", "must be between %d and %d", MinLevel, MaxLevel)
	}
	return patch, nil
}

// ptrTo allocates the value a patch field points to and returns it as a decode target.
func ptrTo[T any](field **T) *T {
	*field = new(T)
	return *field
}

// decodeStrict decodes exactly one JSON value from r into v, turning every
// failure into a *ValidationError.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("body", "unexpected data after JSON value")
	}
	return nil
}

func jsonError(err error) *ValidationError {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return invalid("body", "is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body", "is truncated JSON")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return invalid(typeErr.Field, "has the wrong JSON type")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if unq, err := strconv.Unquote(name); err == nil {
			name = unq
		}
		return invalid(name, "unknown field")
	}
	return invalid("body", "malformed JSON: %s", msg)
}
