package catalog

import (
	"fmt"
	"log/slog"
	"math"
	"net/url"
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
	// SourceGB28181 means the point is a channel of a GB/T 28181 device or
	// lower platform (Source.Device) that registers to the server; the
	// point's ID is the channel ID and the server INVITEs it on demand.
	SourceGB28181 = "gb28181"
)

// Transport values for RTSP sources.
const (
	// TransportTCP carries RTP interleaved over the RTSP TCP connection (the default).
	TransportTCP = "tcp"
	// TransportUDP carries RTP over separate UDP ports.
	TransportUDP = "udp"
)

// Point kinds.
const (
	// KindHD is a fixed or dome HD camera (the default).
	KindHD = "hd"
	// KindPanoramic is a high-altitude panoramic PTZ mast.
	KindPanoramic = "panoramic"
)

// Status states.
const (
	// StateUnknown means no edge agent or stream has reported on the point yet (the default).
	StateUnknown = "unknown"
	// StateOnline means the point's stream was last seen working.
	StateOnline = "online"
	// StateOffline means the point's stream was last seen failing.
	StateOffline = "offline"
	// StateStale means the edge agent that reports on the point has been
	// out of touch for moments: its last word (online or offline) is older
	// than expected but the agent may be back any second.
	StateStale = "stale"
	// StateAgentOffline means the point's edge agent has been away longer
	// than the health window: nothing is known of the camera itself, which
	// must not be taken (or shown) as offline.
	StateAgentOffline = "agent_offline"
)

// Point levels: access rules grant levels up to a maximum, so MaxLevel is the most restricted.
const (
	// MinLevel is the lowest (least restricted) point level and the default.
	MinLevel = 1
	// MaxLevel is the highest (most restricted) point level.
	MaxLevel = 4
)

// RedactedPassword replaces URL passwords in Source.Redacted output.
const RedactedPassword = "***"

// Per-field limits; import applies the same ones.
const (
	maxNameRunes    = 128
	maxAddressRunes = 256
	maxTags         = 16
	maxTagRunes     = 32
	maxBindingBytes = 128
	maxURLBytes     = 2048
	maxBodyBytes    = 1 << 20
)

var kinds = []string{KindHD, KindPanoramic}

var states = []string{StateOnline, StateOffline, StateUnknown, StateStale, StateAgentOffline}

// statesHelp names the valid states for error messages.
var statesHelp = `"` + strings.Join(states, `", "`) + `"`

// Source describes where a point's video comes from.
type Source struct {
	Type      string `json:"type"`                // "rtsp" (server pulls URL) | "publish" (encoder/edge pushes) | "gb28181" (a device's channel)
	URL       string `json:"url,omitempty"`       // rtsp:// or rtsps:// ; required iff Type=="rtsp"
	Transport string `json:"transport,omitempty"` // "tcp" (default when rtsp) | "udp"; for gb28181 the media transport, "" = the device's setting
	Device    string `json:"device,omitempty"`    // gb28181: the 20-digit ID of the device or platform the channel belongs to
}

// Status is the last known liveness of a point's stream.
type Status struct {
	State string    `json:"state"`          // "online" | "offline" | "unknown" | "stale" | "agent_offline"
	Since time.Time `json:"since,omitzero"` // when State was entered
}

// Point is one camera point of the catalog.
//
// ID is a 20-digit GB/T 28181 device ID, or for compatibility a short ID
// matching ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ such as "cam1"; see Create for
// generated IDs. Lat and Lon are WGS-84 and either both set or both nil.
type Point struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`     // "hd" | "panoramic"
	Category  string    `json:"category"` // a code from Categories
	Region    string    `json:"region"`   // a region code, or "" for unassigned
	Lat       *float64  `json:"lat,omitempty"`
	Lon       *float64  `json:"lon,omitempty"`
	Address   string    `json:"address,omitempty"`
	Level     int       `json:"level"` // 1..4
	Tags      []string  `json:"tags,omitempty"`
	PTZ       bool      `json:"ptz"`
	Main      Source    `json:"main"`
	Sub       *Source   `json:"sub,omitempty"`
	Agent     string    `json:"agent,omitempty"`  // edge agent binding
	Camera    string    `json:"camera,omitempty"` // camera binding within the agent
	OnDemand  bool      `json:"on_demand"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PointPatch is a partial update: nil fields are left unchanged; Main and Sub replace the whole source.
type PointPatch struct {
	Name     *string   `json:"name,omitempty"`
	Kind     *string   `json:"kind,omitempty"`
	Category *string   `json:"category,omitempty"`
	Region   *string   `json:"region,omitempty"` // "" unassigns
	Lat      *float64  `json:"lat,omitempty"`
	Lon      *float64  `json:"lon,omitempty"`
	Address  *string   `json:"address,omitempty"`
	Level    *int      `json:"level,omitempty"`
	Tags     *[]string `json:"tags,omitempty"` // an empty list clears
	PTZ      *bool     `json:"ptz,omitempty"`
	Main     *Source   `json:"main,omitempty"`
	Sub      *Source   `json:"sub,omitempty"`
	Agent    *string   `json:"agent,omitempty"`
	Camera   *string   `json:"camera,omitempty"`
	OnDemand *bool     `json:"on_demand,omitempty"`
	// ClearLocation removes Lat and Lon (JSON: "lat":null,"lon":null).
	ClearLocation bool `json:"-"`
	// ClearSub removes the sub stream (JSON: "sub":null).
	ClearSub bool `json:"-"`
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

// Redacted returns a copy of p whose main and sub URLs have their passwords masked.
func (p Point) Redacted() Point {
	p.Main = p.Main.Redacted()
	if p.Sub != nil {
		sub := p.Sub.Redacted()
		p.Sub = &sub
	}
	return p
}

// LogValue makes slog print a point's identity and only the redacted form of its sources.
func (p Point) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", p.ID),
		slog.String("name", p.Name),
		slog.Any("main", p.Main),
	}
	if p.Sub != nil {
		attrs = append(attrs, slog.Any("sub", *p.Sub))
	}
	return slog.GroupValue(attrs...)
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

// clone returns a deep copy of p, so callers never share slices or
// pointers with the index.
func (p Point) clone() Point {
	p.Tags = slices.Clone(p.Tags)
	if p.Lat != nil {
		p.Lat = new(*p.Lat)
	}
	if p.Lon != nil {
		p.Lon = new(*p.Lon)
	}
	if p.Sub != nil {
		p.Sub = new(*p.Sub)
	}
	return p
}

// redactURL masks the user name and password of raw: both are secrets of
// the camera (a user name is half a guess). Anything it cannot confidently
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
	if u.User.Username() == RedactedPassword && (!hasPass || pass == RedactedPassword) {
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
	userinfo := RedactedPassword
	if hasPass {
		userinfo += ":" + RedactedPassword
	}
	return prefix + userinfo + "@" + strings.TrimPrefix(s, prefix)
}

// normalize trims text fields and fills defaults: kind hd, level 1, state
// unknown, transport tcp; tags are trimmed, de-duplicated and nil when empty.
func (p *Point) normalize() {
	p.Name = strings.TrimSpace(p.Name)
	p.Region = strings.TrimSpace(p.Region)
	p.Address = strings.TrimSpace(p.Address)
	p.Agent = strings.TrimSpace(p.Agent)
	p.Camera = strings.TrimSpace(p.Camera)
	if p.Kind == "" {
		p.Kind = KindHD
	}
	if p.Level == 0 {
		p.Level = MinLevel
	}
	if p.Status.State == "" {
		p.Status.State = StateUnknown
	}
	p.Main.normalize()
	if p.Sub != nil {
		p.Sub.normalize()
	}
	p.Tags = normalizeTags(p.Tags)
	p.intern()
}

// intern swaps enumerated strings for the shared constants, so a large index
// does not hold one copy of "public-security" per point.
func (p *Point) intern() {
	if i, ok := lookupCategory(p.Category); ok {
		p.Category = Categories[i].Code
	}
	if i := slices.Index(kinds, p.Kind); i >= 0 {
		p.Kind = kinds[i]
	}
	if i := slices.Index(states, p.Status.State); i >= 0 {
		p.Status.State = states[i]
	}
}

func normalizeTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func (s *Source) normalize() {
	if s.Type == SourceRTSP && s.Transport == "" {
		s.Transport = TransportTCP
	}
}

// validate checks a normalized point and returns its first problem.
func (p *Point) validate() error {
	if probs := p.problems(false); len(probs) > 0 {
		return probs[0]
	}
	return nil
}

// problems checks a normalized point and returns every problem found, one
// per field; skipID leaves an empty ID to be generated later. Region
// existence is checked by the catalog, which knows the regions.
func (p *Point) problems(skipID bool) []*ValidationError {
	var out []*ValidationError
	add := func(e *ValidationError) {
		if e != nil {
			out = append(out, e)
		}
	}
	if !skipID || p.ID != "" {
		add(validateID(p.ID))
	}
	add(validateName(p.Name))
	if !slices.Contains(kinds, p.Kind) {
		add(invalid("kind", "must be %q or %q", KindHD, KindPanoramic))
	}
	switch _, ok := lookupCategory(p.Category); {
	case p.Category == "":
		add(invalid("category", "is required"))
	case !ok:
		add(invalid("category", "is not a known category code"))
	}
	if p.Region != "" {
		add(validateRegionCode("region", p.Region))
	}
	add(validateLocation(p.Lat, p.Lon))
	add(validateText("address", p.Address, maxAddressRunes))
	if p.Level < MinLevel || p.Level > MaxLevel {
		add(invalid("level", "must be between %d and %d", MinLevel, MaxLevel))
	}
	add(validateTags(p.Tags))
	add(p.Main.validate("main"))
	if p.Sub != nil {
		if p.Sub.Type != SourceRTSP {
			// A sub stream is always pulled; edge agents publish main only.
			add(invalid("sub.type", "must be %q", SourceRTSP))
		} else {
			add(p.Sub.validate("sub"))
		}
	}
	add(validateBinding("agent", p.Agent))
	add(validateBinding("camera", p.Camera))
	if !slices.Contains(states, p.Status.State) {
		add(invalid("status.state", "must be one of %s", statesHelp))
	}
	return out
}

func validateName(name string) *ValidationError {
	if name == "" {
		return invalid("name", "is required")
	}
	return validateText("name", name, maxNameRunes)
}

// validateText checks an optional single-line text field.
func validateText(field, s string, maxRunes int) *ValidationError {
	switch {
	case !utf8.ValidString(s):
		return invalid(field, "must be valid UTF-8")
	case utf8.RuneCountInString(s) > maxRunes:
		return invalid(field, "must be at most %d characters", maxRunes)
	case strings.ContainsFunc(s, unicode.IsControl):
		return invalid(field, "must not contain control characters")
	}
	return nil
}

func validateBinding(field, s string) *ValidationError {
	if len(s) > maxBindingBytes {
		return invalid(field, "must be at most %d bytes", maxBindingBytes)
	}
	return validateText(field, s, maxBindingBytes)
}

func validateTags(tags []string) *ValidationError {
	if len(tags) > maxTags {
		return invalid("tags", "must be at most %d tags", maxTags)
	}
	for _, t := range tags {
		if err := validateText("tags", t, maxTagRunes); err != nil {
			return err
		}
		if strings.Contains(t, ";") {
			return invalid("tags", "must not contain ';' (the CSV tag separator)")
		}
	}
	return nil
}

func validateLocation(lat, lon *float64) *ValidationError {
	switch {
	case lat == nil && lon == nil:
		return nil
	case lat == nil:
		return invalid("lat", "is required when lon is set")
	case lon == nil:
		return invalid("lon", "is required when lat is set")
	case math.IsNaN(*lat) || *lat < -90 || *lat > 90:
		return invalid("lat", "must be a WGS-84 latitude between -90 and 90")
	case math.IsNaN(*lon) || *lon < -180 || *lon > 180:
		return invalid("lon", "must be a WGS-84 longitude between -180 and 180")
	}
	return nil
}

func (s *Source) validate(field string) *ValidationError {
	switch s.Type {
	case SourceRTSP:
		if s.URL == "" {
			return invalid(field+".url", "is required when %s.type is %q", field, SourceRTSP)
		}
		if err := validateRTSPURL(field+".url", s.URL); err != nil {
			return err
		}
		if s.Transport != TransportTCP && s.Transport != TransportUDP {
			return invalid(field+".transport", "must be %q or %q", TransportTCP, TransportUDP)
		}
	case SourcePublish:
		if s.URL != "" {
			return invalid(field+".url", "must be empty when %s.type is %q", field, SourcePublish)
		}
		if s.Transport != "" {
			return invalid(field+".transport", "must be empty when %s.type is %q", field, SourcePublish)
		}
	case SourceGB28181:
		if s.URL != "" {
			return invalid(field+".url", "must be empty when %s.type is %q", field, SourceGB28181)
		}
		if len(s.Device) != gbIDLen || !allDigits(s.Device) {
			return invalid(field+".device", "must be the 20-digit GB/T 28181 ID of the channel's device")
		}
		if s.Transport != "" && s.Transport != TransportTCP && s.Transport != TransportUDP {
			return invalid(field+".transport", "must be empty, %q or %q", TransportTCP, TransportUDP)
		}
	case "":
		return invalid(field+".type", "is required")
	default:
		return invalid(field+".type", "must be %q, %q or %q", SourceRTSP, SourcePublish, SourceGB28181)
	}
	if s.Type != SourceGB28181 && s.Device != "" {
		return invalid(field+".device", "is only for %q sources", SourceGB28181)
	}
	return nil
}

// validateRTSPURL never echoes the URL back: it may contain a password.
func validateRTSPURL(field, raw string) *ValidationError {
	if len(raw) > maxURLBytes {
		return invalid(field, "must be at most %d bytes", maxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid(field, "is not a valid URL")
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return invalid(field, "scheme must be rtsp or rtsps")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return invalid(field, "must include a host")
	}
	if pass, ok := u.User.Password(); ok && pass == RedactedPassword {
		return invalid(field, "password is the redaction placeholder %q; send the real password", RedactedPassword)
	}
	if u.User.Username() == RedactedPassword {
		return invalid(field, "user name is the redaction placeholder %q; send the real user name", RedactedPassword)
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return invalid(field, "port must be between 1 and 65535")
		}
	}
	return nil
}

// keepRedactedPassword lets a client send back the redacted URL it was shown:
// when next carries the "***" placeholders and points at the same scheme and
// host as prev (and, if next names a user, the same user), prev's real user
// name and password are kept. It never moves credentials to a different host.
func keepRedactedPassword(prev, next string) string {
	nu, err := url.Parse(next)
	if err != nil || nu.User == nil {
		return next
	}
	pass, hasPass := nu.User.Password()
	redactedUser := nu.User.Username() == RedactedPassword
	if !(hasPass && pass == RedactedPassword) && !(redactedUser && !hasPass) {
		return next
	}
	pu, err := url.Parse(prev)
	if err != nil || pu.User == nil {
		return next
	}
	if pu.Scheme != nu.Scheme || !strings.EqualFold(pu.Host, nu.Host) {
		return next
	}
	if !redactedUser && pu.User.Username() != nu.User.Username() {
		return next
	}
	prevPass, ok := pu.User.Password()
	if !ok && hasPass {
		return next
	}
	if ok {
		nu.User = url.UserPassword(pu.User.Username(), prevPass)
	} else {
		nu.User = url.User(pu.User.Username())
	}
	return nu.String()
}

// patchSource applies a replacement source, keeping a redacted password of prev.
func patchSource(prev *Source, next Source) Source {
	if prev != nil && next.Type == SourceRTSP && prev.Type == SourceRTSP {
		next.URL = keepRedactedPassword(prev.URL, next.URL)
	}
	return next
}

// apply changes p as patch says.
func (patch *PointPatch) apply(p *Point) {
	setIf(&p.Name, patch.Name)
	setIf(&p.Kind, patch.Kind)
	setIf(&p.Category, patch.Category)
	setIf(&p.Region, patch.Region)
	setIf(&p.Address, patch.Address)
	setIf(&p.Level, patch.Level)
	setIf(&p.PTZ, patch.PTZ)
	setIf(&p.Agent, patch.Agent)
	setIf(&p.Camera, patch.Camera)
	setIf(&p.OnDemand, patch.OnDemand)
	if patch.Tags != nil {
		p.Tags = slices.Clone(*patch.Tags)
	}
	if patch.ClearLocation {
		p.Lat, p.Lon = nil, nil
	}
	if patch.Lat != nil {
		p.Lat = new(*patch.Lat)
	}
	if patch.Lon != nil {
		p.Lon = new(*patch.Lon)
	}
	if patch.Main != nil {
		p.Main = patchSource(&p.Main, *patch.Main)
	}
	if patch.ClearSub {
		p.Sub = nil
	}
	if patch.Sub != nil {
		p.Sub = new(patchSource(p.Sub, *patch.Sub))
	}
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
