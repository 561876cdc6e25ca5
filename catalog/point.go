package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Source type values.
const (
	// SourceRTSP means the server pulls the stream from Source.URL.
	SourceRTSP = "rtsp"
	// SourcePublish means an encoder or edge device pushes the stream to the server.
	SourcePublish = "publish"
)

// Transport values for RTSP sources.
const (
	// TransportTCP carries RTP interleaved over the RTSP TCP connection (the default).
	TransportTCP = "tcp"
	// TransportUDP carries RTP over separate UDP ports.
	TransportUDP = "udp"
)

// RedactedPassword replaces URL passwords in Source.Redacted output.
const RedactedPassword = "***"

const (
	maxNameRunes = 128
	maxURLBytes  = 2048
	maxBodyBytes = 1 << 20
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Source describes where a point's video comes from.
type Source struct {
	Type      string `json:"type"`                // "rtsp" (server pulls URL) | "publish" (encoder/edge pushes)
	URL       string `json:"url,omitempty"`       // rtsp:// or rtsps:// ; required iff Type=="rtsp"
	Transport string `json:"transport,omitempty"` // "tcp" (default when rtsp) | "udp"
}

// Point is one camera point of the catalog.
type Point struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Source    Source    `json:"source"`
	OnDemand  bool      `json:"on_demand"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PointPatch is a partial update: nil fields are left unchanged; Source replaces the whole source.
type PointPatch struct {
	Name     *string `json:"name,omitempty"`
	Source   *Source `json:"source,omitempty"`
	OnDemand *bool   `json:"on_demand,omitempty"`
}

// ValidationError reports input that was rejected, naming the offending field.
type ValidationError struct {
	Field   string
	Message string
}

// Error returns "field: message".
func (e *ValidationError) Error() string {
	return e.Field + ": " + e.Message
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Redacted returns a copy of p whose source URL has its password masked.
func (p Point) Redacted() Point {
	p.Source = p.Source.Redacted()
	return p
}

// Redacted returns a copy of s whose URL password is replaced by "***"; use it for API responses and logs.
func (s Source) Redacted() Source {
	s.URL = redactURL(s.URL)
	return s
}

// LogValue makes slog print only the redacted form of a source.
func (s Source) LogValue() slog.Value {
	r := s.Redacted()
	return slog.GroupValue(
		slog.String("type", r.Type),
		slog.String("url", r.URL),
		slog.String("transport", r.Transport),
	)
}

// redactURL masks the password of raw. Anything it cannot confidently
// rewrite is masked entirely, so a secret never leaks through an odd URL.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return RedactedPassword
	}
	if u.User == nil {
		return raw
	}
	pass, hasPass := u.User.Password()
	if !hasPass {
		return raw
	}
	if pass == RedactedPassword {
		// Already redacted; keep idempotent.
		return raw
	}
	rest := *u
	rest.User = nil
	s := rest.String()
	prefix := u.Scheme + "://"
	if u.Scheme == "" || !strings.HasPrefix(s, prefix) {
		return RedactedPassword
	}
	return prefix + url.User(u.User.Username()).String() + ":" + RedactedPassword + "@" + strings.TrimPrefix(s, prefix)
}

// normalize trims the name and fills the default transport.
func (p *Point) normalize() {
	p.Name = strings.TrimSpace(p.Name)
	if p.Source.Type == SourceRTSP && p.Source.Transport == "" {
		p.Source.Transport = TransportTCP
	}
}

// validate checks a normalized point.
func (p *Point) validate() error {
	if !idPattern.MatchString(p.ID) {
		return invalid("id", "must match %s", idPattern)
	}
	if err := validateName(p.Name); err != nil {
		return err
	}
	return p.Source.validate()
}

func validateName(name string) error {
	switch {
	case name == "":
		return invalid("name", "is required")
	case !utf8.ValidString(name):
		return invalid("name", "must be valid UTF-8")
	case utf8.RuneCountInString(name) > maxNameRunes:
		return invalid("name", "must be at most %d characters", maxNameRunes)
	case strings.ContainsFunc(name, unicode.IsControl):
		return invalid("name", "must not contain control characters")
	}
	return nil
}

func (s *Source) validate() error {
	switch s.Type {
	case SourceRTSP:
		if s.URL == "" {
			return invalid("source.url", "is required when source.type is %q", SourceRTSP)
		}
		if err := validateRTSPURL(s.URL); err != nil {
			return err
		}
		if s.Transport != TransportTCP && s.Transport != TransportUDP {
			return invalid("source.transport", "must be %q or %q", TransportTCP, TransportUDP)
		}
	case SourcePublish:
		if s.URL != "" {
			return invalid("source.url", "must be empty when source.type is %q", SourcePublish)
		}
		if s.Transport != "" {
			return invalid("source.transport", "must be empty when source.type is %q", SourcePublish)
		}
	case "":
		return invalid("source.type", "is required")
	default:
		return invalid("source.type", "must be %q or %q", SourceRTSP, SourcePublish)
	}
	return nil
}

// validateRTSPURL never echoes the URL back: it may contain a password.
func validateRTSPURL(raw string) error {
	if len(raw) > maxURLBytes {
		return invalid("source.url", "must be at most %d bytes", maxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("source.url", "is not a valid URL")
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return invalid("source.url", "scheme must be rtsp or rtsps")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return invalid("source.url", "must include a host")
	}
	if pass, ok := u.User.Password(); ok && pass == RedactedPassword {
		return invalid("source.url", "password is the redaction placeholder %q; send the real password", RedactedPassword)
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return invalid("source.url", "port must be between 1 and 65535")
		}
	}
	return nil
}

// keepRedactedPassword lets a client send back the redacted URL it was shown:
// when next carries the "***" placeholder and points at the same scheme, host
// and user as prev, prev's real password is kept. It never moves a password
// to a different host.
func keepRedactedPassword(prev, next string) string {
	nu, err := url.Parse(next)
	if err != nil || nu.User == nil {
		return next
	}
	if pass, ok := nu.User.Password(); !ok || pass != RedactedPassword {
		return next
	}
	pu, err := url.Parse(prev)
	if err != nil || pu.User == nil {
		return next
	}
	prevPass, ok := pu.User.Password()
	if !ok || pu.Scheme != nu.Scheme || !strings.EqualFold(pu.Host, nu.Host) || pu.User.Username() != nu.User.Username() {
		return next
	}
	nu.User = url.UserPassword(nu.User.Username(), prevPass)
	return nu.String()
}

// pointInput is the client-settable wire form of a Point.
type pointInput struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Source   Source `json:"source"`
	OnDemand *bool  `json:"on_demand"`
}

// DecodePoint reads a Point from JSON, rejecting unknown fields; on_demand defaults to true when absent.
func DecodePoint(r io.Reader) (Point, error) {
	var in pointInput
	if err := decodeStrict(r, &in); err != nil {
		return Point{}, err
	}
	p := Point{ID: in.ID, Name: in.Name, Source: in.Source, OnDemand: true}
	if in.OnDemand != nil {
		p.OnDemand = *in.OnDemand
	}
	return p, nil
}

// DecodePatch reads a PointPatch from JSON, rejecting unknown fields and explicit nulls.
func DecodePatch(r io.Reader) (PointPatch, error) {
	var raw map[string]json.RawMessage
	if err := decodeStrict(r, &raw); err != nil {
		return PointPatch{}, err
	}
	if raw == nil {
		return PointPatch{}, invalid("body", "must be a JSON object")
	}
	var patch PointPatch
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		val := raw[key]
		if bytes.Equal(bytes.TrimSpace(val), []byte("null")) {
			return PointPatch{}, invalid(key, "must not be null")
		}
		var dst any
		switch key {
		case "name":
			patch.Name = new(string)
			dst = patch.Name
		case "source":
			patch.Source = new(Source)
			dst = patch.Source
		case "on_demand":
			patch.OnDemand = new(bool)
			dst = patch.OnDemand
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
	return patch, nil
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
