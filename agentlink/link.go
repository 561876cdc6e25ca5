// Package agentlink is the control protocol between an edge agent and the
// central server: the JSON messages sent over the WebSocket the agent dials
// out to /api/v1/agents/connect, and the enrollment exchange before it.
//
// Both sides import it; it owns only message shapes and their validation.
// It must never import the server's packages (web, catalog, permissions)
// or the agent's (edge), and never carry media: video goes over RTSP.
package agentlink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Version is the protocol version an agent announces in Hello.
const Version = 1

// ConnectPath is where agents open their control link.
const ConnectPath = "/api/v1/agents/connect"

// EnrollPath is where an agent trades a one-time code for credentials.
const EnrollPath = "/api/v1/agents/enroll"

// MaxMessageBytes bounds one message in either direction (inventory of a
// large LAN, or a snapshot reply, fits).
const MaxMessageBytes = 8 << 20

// HeartbeatInterval is how often an agent reports health by default.
const HeartbeatInterval = 5 * time.Second

// KeepaliveInterval is how often each side sends a keepalive by default.
// Each side tells the other its own interval (Hello, Welcome) and waits
// for the other's messages by the other's interval, never its own: an idle
// link stays up however differently the two ends are configured.
const KeepaliveInterval = 5 * time.Second

// MissedKeepalives is how many of the peer's intervals may pass in silence
// before a side gives the link up.
const MissedKeepalives = 3

// Bounds on an announced keepalive interval: a peer cannot make the other
// side hold a dead link for hours, nor spin on a tiny deadline.
const (
	MinKeepalive = 50 * time.Millisecond
	MaxKeepalive = time.Minute
)

// PeerInterval is the keepalive interval to expect from a peer that
// announced ms milliseconds, within [MinKeepalive, MaxKeepalive]. A peer
// that announced none (an older agent, whose health report every
// HeartbeatInterval was its only beat; an older centre) gets the default.
func PeerInterval(ms int64) time.Duration {
	if ms <= 0 {
		return KeepaliveInterval
	}
	return min(max(time.Duration(ms)*time.Millisecond, MinKeepalive), MaxKeepalive)
}

// ReadDeadline is how long a side waits for the next message from a peer
// that sends at least every peerInterval: MissedKeepalives intervals, and
// a margin of one more (at least a second) for a busy peer or network.
func ReadDeadline(peerInterval time.Duration) time.Duration {
	return MissedKeepalives*peerInterval + max(peerInterval, time.Second)
}

// Message types.
const (
	// agent → centre
	TypeHello      = "hello"
	TypeInventory  = "inventory"
	TypeHealth     = "health"
	TypeRelayState = "relay_state"
	TypeReply      = "reply"
	// both ways: says only that the sender is there (no body)
	TypeKeepalive = "keepalive"
	// centre → agent
	TypeWelcome    = "welcome"
	TypeRelayStart = "relay_start"
	TypeRelayStop  = "relay_stop"
	TypePTZ        = "ptz"
	TypeSnapshot   = "snapshot"
	TypeRediscover = "rediscover"
	TypeBindings   = "bindings"
)

// Envelope is one message on the link. ID pairs a request with its Reply.
type Envelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// EnrollRequest is POSTed to EnrollPath.
type EnrollRequest struct {
	Code     string `json:"code"`
	Hostname string `json:"hostname,omitempty"`
}

// EnrollResponse carries the agent's long-lived credentials.
type EnrollResponse struct {
	AgentID string `json:"agent_id"`
	Secret  string `json:"secret"`
}

// Hello is the agent's first message.
type Hello struct {
	Protocol int    `json:"protocol"`
	Version  string `json:"version"`
	Hostname string `json:"hostname,omitempty"`
	// Relays the agent is running or wants to resume after a reconnect.
	Relays []RelayKey `json:"relays,omitempty"`
	// KeepaliveMs is how often the agent sends at least one message; the
	// centre's read deadline follows it (see ReadDeadline).
	KeepaliveMs int64 `json:"keepalive_ms,omitempty"`
}

// Welcome answers Hello.
type Welcome struct {
	AgentID string `json:"agent_id"`
	// RTSPURL is the base the agent publishes to, e.g. rtsp://centre:8554.
	RTSPURL string `json:"rtsp_url"`
	// Points bound to this agent, whose cameras it watches for health.
	Points []PointBinding `json:"points,omitempty"`
	// KeepaliveMs is how often the centre sends at least one message; the
	// agent's read deadline follows it (see ReadDeadline).
	KeepaliveMs int64 `json:"keepalive_ms,omitempty"`
}

// PointBinding is a catalog point relayed by the agent.
type PointBinding struct {
	Point  string `json:"point"`
	Camera string `json:"camera,omitempty"`
	// Source is the main RTSP URL on the agent's LAN (may hold credentials).
	Source string `json:"source"`
}

// Bindings replaces the agent's list of bound points.
type Bindings struct {
	Points []PointBinding `json:"points"`
}

// RelayKey names one relayed stream.
type RelayKey struct {
	Point   string `json:"point"`
	Profile string `json:"profile"` // "main" or "sub"
}

// String is "point/profile".
func (k RelayKey) String() string { return k.Point + "/" + k.Profile }

// RelayStart asks the agent to pull Source and publish it to PublishURL.
type RelayStart struct {
	RelayKey
	// Camera is the agent-local camera ID (for ONVIF calls such as
	// SetSynchronizationPoint); may be empty.
	Camera string `json:"camera,omitempty"`
	// Source is the camera's RTSP URL on the agent's LAN (may hold credentials).
	Source string `json:"source"`
	// PublishURL is where to push; User and Password authenticate the
	// publish (one-time, valid while the relay is wanted).
	PublishURL string `json:"publish_url"`
	User       string `json:"user"`
	Password   string `json:"password"`
}

// RelayStop asks the agent to stop a relay.
type RelayStop struct {
	RelayKey
}

// Relay states reported in RelayState.
const (
	RelayStarting = "starting"
	RelayRunning  = "running"
	RelayRetrying = "retrying"
	RelayStopped  = "stopped"
)

// RelayState reports a relay's progress.
type RelayState struct {
	RelayKey
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// Camera is one camera the agent knows (discovered and/or provisioned).
type Camera struct {
	ID           string    `json:"id"`
	XAddr        string    `json:"xaddr,omitempty"`
	IP           string    `json:"ip,omitempty"`
	Manufacturer string    `json:"manufacturer,omitempty"`
	Model        string    `json:"model,omitempty"`
	Profiles     []Profile `json:"profiles,omitempty"`
	PTZ          bool      `json:"ptz,omitempty"`
	Error        string    `json:"error,omitempty"`
}

// Profile is one media profile of a camera.
type Profile struct {
	Token     string `json:"token"`
	Name      string `json:"name,omitempty"`
	Codec     string `json:"codec,omitempty"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	StreamURI string `json:"stream_uri,omitempty"`
}

// Inventory is the agent's full camera list.
type Inventory struct {
	Cameras []Camera `json:"cameras"`
}

// CameraHealth is one camera's state as the agent sees it.
type CameraHealth struct {
	Camera    string  `json:"camera"`
	Point     string  `json:"point,omitempty"`
	Reachable bool    `json:"reachable"`
	FPS       float64 `json:"fps,omitempty"`
	Bitrate   int     `json:"bitrate,omitempty"` // bit/s
	LastError string  `json:"last_error,omitempty"`
}

// Health is the periodic report; it doubles as the heartbeat.
type Health struct {
	Cameras []CameraHealth `json:"cameras,omitempty"`
	// Points maps point ID → reachable, for points whose relay the agent
	// is responsible for (running or last tried).
	Points map[string]bool `json:"points,omitempty"`
}

// PTZ operations.
const (
	PTZMove   = "move"
	PTZStop   = "stop"
	PTZPreset = "preset"
)

// PTZRequest steers a camera.
type PTZRequest struct {
	Camera  string  `json:"camera"`
	Profile string  `json:"profile,omitempty"` // ONVIF profile token, default the camera's main
	Op      string  `json:"op"`
	Pan     float64 `json:"pan,omitempty"`
	Tilt    float64 `json:"tilt,omitempty"`
	Zoom    float64 `json:"zoom,omitempty"`
	// TimeoutMs bounds a move (the camera stops by itself), default 1000.
	TimeoutMs int    `json:"timeout_ms,omitempty"`
	Preset    string `json:"preset,omitempty"`
}

// Validate checks a PTZ request's shape.
func (r PTZRequest) Validate() error {
	if r.Camera == "" {
		return errors.New("camera missing")
	}
	switch r.Op {
	case PTZMove:
		for _, v := range []float64{r.Pan, r.Tilt, r.Zoom} {
			if v < -1 || v > 1 {
				return errors.New("pan, tilt and zoom speeds must be within [-1, 1]")
			}
		}
		if r.TimeoutMs < 0 || r.TimeoutMs > 10000 {
			return errors.New("timeout_ms must be within 0..10000")
		}
	case PTZStop:
	case PTZPreset:
		if strings.TrimSpace(r.Preset) == "" {
			return errors.New("preset missing")
		}
	default:
		return fmt.Errorf("unknown PTZ op %q (want move, stop or preset)", r.Op)
	}
	return nil
}

// SnapshotRequest asks for a JPEG from a camera.
type SnapshotRequest struct {
	Camera string `json:"camera"`
}

// SnapshotReply carries the image.
type SnapshotReply struct {
	ContentType string `json:"content_type"`
	Data        []byte `json:"data"` // base64 in JSON
}

// Reply answers a request by its ID.
type Reply struct {
	OK    bool            `json:"ok"`
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Encode wraps body in an envelope of type t.
func Encode(t, id string, body any) ([]byte, error) {
	var raw json.RawMessage
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		raw = b
	}
	return json.Marshal(Envelope{Type: t, ID: id, Body: raw})
}

// Decode reads an envelope, refusing what is not one.
func Decode(data []byte) (Envelope, error) {
	if len(data) > MaxMessageBytes {
		return Envelope{}, fmt.Errorf("agentlink: message of %d bytes exceeds %d", len(data), MaxMessageBytes)
	}
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return Envelope{}, fmt.Errorf("agentlink: malformed message: %w", err)
	}
	if e.Type == "" {
		return Envelope{}, errors.New("agentlink: message without type")
	}
	return e, nil
}

// Body decodes an envelope's body into v, strictly.
func (e Envelope) Decode(v any) error {
	if len(e.Body) == 0 {
		return fmt.Errorf("agentlink: %s without body", e.Type)
	}
	if err := json.Unmarshal(e.Body, v); err != nil {
		return fmt.Errorf("agentlink: %s: %w", e.Type, err)
	}
	return nil
}
