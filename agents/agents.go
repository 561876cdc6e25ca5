// Package agents is the central server's side of the edge agents: their
// records (enrollment, credentials, revocation) in bbolt, the live control
// links they dial in over WebSocket, on-demand relays, and the PTZ and
// snapshot requests that travel to cameras through them.
//
// It decides nothing about users' grants (the caller checks permissions
// before asking for a relay, PTZ or a snapshot) and never carries media:
// agents publish over RTSP to the streaming hub. It must never import web.
package agents

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/store"
)

// Errors.
var (
	ErrNotFound     = errors.New("agent not found")
	ErrBadCode      = errors.New("enrollment code unknown, used or expired")
	ErrBadSecret    = errors.New("agent credentials wrong")
	ErrRevoked      = errors.New("agent revoked")
	ErrOffline      = errors.New("agent not connected")
	ErrInvalid      = errors.New("invalid agent")
	ErrAgentTimeout = errors.New("agent did not answer in time")
)

// DefaultEnrollTTL is how long an enrollment code stays usable.
const DefaultEnrollTTL = 30 * time.Minute

// Agent is an edge agent as admins see it.
type Agent struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	CreatedAt  time.Time          `json:"created_at"`
	CreatedBy  string             `json:"created_by,omitempty"`
	Enrolled   bool               `json:"enrolled"`
	EnrolledAt *time.Time         `json:"enrolled_at,omitempty"`
	Revoked    bool               `json:"revoked"`
	RevokedAt  *time.Time         `json:"revoked_at,omitempty"`
	Hostname   string             `json:"hostname,omitempty"`
	Version    string             `json:"version,omitempty"`
	LastSeen   *time.Time         `json:"last_seen,omitempty"`
	Cameras    []agentlink.Camera `json:"cameras"`
	// Online is true while its control link is up.
	Online bool `json:"online"`
	// Relays running now.
	Relays []agentlink.RelayState `json:"relays,omitempty"`
	// Region is where the agent's cameras are: only technicians whose
	// provision grant covers it see its unbound cameras on its page ("" for
	// none set, which only grants for all regions cover).
	Region string `json:"region,omitempty"`
}

// record is what bbolt holds: the agent plus hashes of its secrets.
type record struct {
	Agent
	CodeHash    string    `json:"code_hash,omitempty"`
	CodeExpires time.Time `json:"code_expires"`
	SecretHash  string    `json:"secret_hash,omitempty"`
}

// Binding is a point relayed by an agent, as the server's catalog says.
type Binding struct {
	Agent, Camera string
	// Main and Sub are the camera's RTSP URLs on the agent's LAN.
	Main, Sub string
}

// Options wire a Registry to the rest of the server.
type Options struct {
	// Binding looks up which agent relays a point; ok is false for points
	// that do not exist or are not bound to an agent.
	Binding func(pointID string) (b Binding, ok bool)
	// PointsOf lists the points bound to an agent.
	PointsOf func(agentID string) []string
	// OnPointHealth is told a point's reachability as its agent reports it.
	OnPointHealth func(pointID string, online bool)
	// OnPointsState is told what an agent's absence means for its points:
	// PointStale when its link drops (its last report is old but the agent
	// may be back any moment), PointAgentOffline when it stays away longer
	// than HealthWindow (or is revoked). Its points' cameras are not known
	// to be offline either way, and must never be shown so.
	OnPointsState func(points []string, state string)
	// HealthWindow is how long an agent may be away before its points are
	// PointAgentOffline (default DefaultHealthWindow): a link blip shorter
	// than this leaves them PointStale, never offline.
	HealthWindow time.Duration
	// KeepaliveInterval is how often the centre sends on an idle link
	// (default agentlink.KeepaliveInterval); agents are told it in Welcome.
	KeepaliveInterval time.Duration
	// OnRevoke is called after an agent is revoked, to cut its publishes.
	OnRevoke  func(agentID string)
	EnrollTTL time.Duration
	// RequestTimeout bounds PTZ and snapshot round trips (default 10 s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
	Now            func() time.Time
}

// Registry holds the agents and their live links.
type Registry struct {
	db   *store.DB
	opts Options
	log  *slog.Logger

	serving sync.WaitGroup // Serve calls in flight

	// pointsMu orders what the registry says about points, so a late
	// "agent offline" can never overwrite a fresher report of its new link.
	pointsMu sync.Mutex

	mu     sync.Mutex
	closed bool
	links  map[string]*link              // agent ID → live link
	wanted map[agentlink.RelayKey]*relay // relays someone is watching
	away   map[string]*absence           // agents whose link dropped, within HealthWindow
}

// relay is a relay the hub wants running.
type relay struct {
	agent    string
	password string // one-time publish secret
	state    agentlink.RelayState
}

// New opens the registry kept in db.
func New(db *store.DB, opts Options) *Registry {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.EnrollTTL <= 0 {
		opts.EnrollTTL = DefaultEnrollTTL
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	if opts.HealthWindow <= 0 {
		opts.HealthWindow = DefaultHealthWindow
	}
	if opts.KeepaliveInterval <= 0 {
		opts.KeepaliveInterval = agentlink.KeepaliveInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Binding == nil {
		opts.Binding = func(string) (Binding, bool) { return Binding{}, false }
	}
	if opts.PointsOf == nil {
		opts.PointsOf = func(string) []string { return nil }
	}
	r := &Registry{db: db, opts: opts, log: opts.Logger, links: map[string]*link{}, wanted: map[agentlink.RelayKey]*relay{},
		away: map[string]*absence{}}
	r.expectAll()
	return r
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return strings.ToLower(strings.TrimRight(base32.StdEncoding.EncodeToString(b), "="))
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Create adds an agent in region (a catalog region code the caller has
// checked, or "") and returns it with a one-time enrollment code. The hooks
// run inside the same transaction, shown the agent as stored; an error from
// one stores nothing.
func (r *Registry) Create(name, region, by string, also ...store.ResultHook[Agent]) (Agent, string, time.Time, error) {
	name, err := checkName(name)
	if err != nil {
		return Agent{}, "", time.Time{}, err
	}
	if region, err = checkRegion(region); err != nil {
		return Agent{}, "", time.Time{}, err
	}
	now := r.opts.Now().UTC()
	// The code is typed on a phone or pasted into a CLI: 20 base32
	// characters, 100 bits, hashed at rest and usable once.
	code := randomString(13)[:20]
	rec := record{Agent: Agent{ID: "agt-" + randomString(8)[:12], Name: name, Region: region, CreatedAt: now, CreatedBy: by},
		CodeHash: hashSecret(code), CodeExpires: now.Add(r.opts.EnrollTTL)}
	err = r.db.Update(func(tx *bbolt.Tx) error {
		if err := store.PutJSON(tx, store.BucketAgents, []byte(rec.ID), rec); err != nil {
			return err
		}
		return store.RunResultHooks(tx, rec.Agent, also)
	})
	if err != nil {
		return Agent{}, "", time.Time{}, err
	}
	return rec.Agent, code, rec.CodeExpires, nil
}

// Enroll trades a code for the agent's long-lived credentials. The code
// is spent by the first use, right or wrong hostname. The hooks run inside
// the same transaction, shown the enrolled agent (never its secret); an
// error from one leaves the code unspent.
func (r *Registry) Enroll(code, hostname string, also ...store.ResultHook[Agent]) (agentlink.EnrollResponse, error) {
	code = strings.ToLower(strings.TrimSpace(code))
	if code == "" || len(code) > 64 {
		return agentlink.EnrollResponse{}, ErrBadCode
	}
	want := hashSecret(code)
	secret := randomString(32)
	var out agentlink.EnrollResponse
	err := r.db.Update(func(tx *bbolt.Tx) error {
		now := r.opts.Now()
		c := tx.Bucket(store.BucketAgents).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			if rec.CodeHash == "" || subtle.ConstantTimeCompare([]byte(rec.CodeHash), []byte(want)) != 1 {
				continue
			}
			if rec.Revoked || now.After(rec.CodeExpires) {
				return ErrBadCode
			}
			t := now.UTC()
			rec.CodeHash, rec.SecretHash = "", hashSecret(secret)
			rec.Enrolled, rec.EnrolledAt = true, &t
			if hostname = strings.TrimSpace(hostname); utf8.ValidString(hostname) && len(hostname) <= 255 {
				rec.Hostname = hostname
			}
			out = agentlink.EnrollResponse{AgentID: rec.ID, Secret: secret}
			if err := store.PutJSON(tx, store.BucketAgents, k, rec); err != nil {
				return err
			}
			return store.RunResultHooks(tx, rec.Agent, also)
		}
		return ErrBadCode
	})
	return out, err
}

func (r *Registry) get(id string) (record, error) {
	var rec record
	err := r.db.View(func(tx *bbolt.Tx) error {
		ok, err := store.GetJSON(tx, store.BucketAgents, []byte(id), &rec)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	return rec, err
}

// Authenticate checks an agent's credentials (constant time).
func (r *Registry) Authenticate(id, secret string) (Agent, error) {
	rec, err := r.get(id)
	if errors.Is(err, ErrNotFound) {
		// Spend the same work as a real comparison.
		subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(hashSecret("x")))
		return Agent{}, ErrBadSecret
	}
	if err != nil {
		return Agent{}, err
	}
	if rec.Revoked {
		// Said plainly so the agent stops retrying; the ID alone proves
		// nothing, but a revoked agent has nothing left to protect.
		return Agent{}, ErrRevoked
	}
	if rec.SecretHash == "" || subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(rec.SecretHash)) != 1 {
		return Agent{}, ErrBadSecret
	}
	return rec.Agent, nil
}

// Get returns one agent with its live state.
func (r *Registry) Get(id string) (Agent, error) {
	rec, err := r.get(id)
	if err != nil {
		return Agent{}, err
	}
	return r.withLive(rec.Agent), nil
}

// List returns every agent with its live state, by name.
func (r *Registry) List() ([]Agent, error) {
	var out []Agent
	err := r.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(store.BucketAgents).ForEach(func(_, v []byte) error {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec.Agent)
			return nil
		})
	})
	for i := range out {
		out[i] = r.withLive(out[i])
	}
	slices.SortFunc(out, func(a, b Agent) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

func (r *Registry) withLive(a Agent) Agent {
	if a.Cameras == nil {
		a.Cameras = []agentlink.Camera{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, a.Online = r.links[a.ID]
	for _, rl := range r.wanted {
		if rl.agent == a.ID && rl.state.State != "" {
			a.Relays = append(a.Relays, rl.state)
		}
	}
	slices.SortFunc(a.Relays, func(x, y agentlink.RelayState) int { return strings.Compare(x.String(), y.String()) })
	return a
}

// Revoke disables an agent for good: its link is cut at once, its
// credentials stop working and its RTSP publishes are refused and ended.
// The hooks run inside the transaction that stores the revocation; an
// error from one leaves the agent as it was.
func (r *Registry) Revoke(id string, also ...store.TxHook) error {
	err := r.updateThen(id, also, func(rec *record) error {
		if rec.Revoked {
			return nil
		}
		t := r.opts.Now().UTC()
		rec.Revoked, rec.RevokedAt, rec.SecretHash, rec.CodeHash = true, &t, "", ""
		return nil
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	l := r.links[id]
	for k, rl := range r.wanted {
		if rl.agent == id {
			rl.password = ""
			delete(r.wanted, k)
		}
	}
	r.mu.Unlock()
	if l != nil {
		l.close("agent revoked")
	}
	if r.opts.OnRevoke != nil {
		r.opts.OnRevoke(id)
	}
	r.log.Info("agent revoked", "agent", id)
	return nil
}

// Delete removes a revoked or never-enrolled agent's record. The hooks run
// inside the same transaction; an error from one keeps the record.
func (r *Registry) Delete(id string, also ...store.TxHook) error {
	return r.db.Update(func(tx *bbolt.Tx) error {
		var rec record
		ok, err := store.GetJSON(tx, store.BucketAgents, []byte(id), &rec)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		if !rec.Revoked && rec.Enrolled {
			return fmt.Errorf("%w: revoke the agent before deleting it", ErrInvalid)
		}
		if err := tx.Bucket(store.BucketAgents).Delete([]byte(id)); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
}

func (r *Registry) update(id string, fn func(*record) error) error {
	return r.updateThen(id, nil, fn)
}

// updateThen changes the record id with fn and runs the hooks, in one transaction.
func (r *Registry) updateThen(id string, also []store.TxHook, fn func(*record) error) error {
	return r.db.Update(func(tx *bbolt.Tx) error {
		var rec record
		ok, err := store.GetJSON(tx, store.BucketAgents, []byte(id), &rec)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		if err := fn(&rec); err != nil {
			return err
		}
		if err := store.PutJSON(tx, store.BucketAgents, []byte(id), rec); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
}

// Exists reports whether id names an enrolled, unrevoked agent.
func (r *Registry) Exists(id string) bool {
	rec, err := r.get(id)
	return err == nil && !rec.Revoked
}
