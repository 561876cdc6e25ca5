package gb28181

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// Errors of the upstream platform store; match them with errors.Is.
var (
	// ErrPlatformNotFound reports that no upstream platform has that ID.
	ErrPlatformNotFound = errors.New("upstream platform not found")
	// ErrPlatformExists reports that an upstream platform with that ID is configured already.
	ErrPlatformExists = errors.New("upstream platform exists")
)

// PlatformInvalid reports a rejected upstream platform field.
type PlatformInvalid struct {
	Field   string
	Message string
}

// Error returns "field: message".
func (e *PlatformInvalid) Error() string { return e.Field + ": " + e.Message }

// Upstream defaults and bounds.
const (
	DefaultUpstreamExpiry    = 3600 // seconds a REGISTER upward asks for
	DefaultUpstreamKeepalive = 60   // seconds between keepalive MESSAGEs upward
	minUpstreamExpiry        = 60
	maxUpstreamExpiry        = 86400
	minUpstreamKeepalive     = 5
	maxUpstreamKeepalive     = 3600
	maxUpstreamPassword      = 128
	maxUpstreamName          = 128
	maxMediaNetworks         = 32
)

var (
	gbID20       = regexp.MustCompile(`^[0-9]{20}$`)
	gbDomain     = regexp.MustCompile(`^[0-9]{10}$`)
	upstreamUser = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{1,31}$`) // accounts' username rule
)

// Platform is an upstream GB/T 28181 platform (the city's) this server
// registers to, as administrators see it: never its password.
type Platform struct {
	// ID is the 20-digit SIP server ID of the upper platform.
	ID string `json:"id"`
	// Name is a label for the admin page.
	Name string `json:"name"`
	// Domain is the upper platform's 10-digit SIP domain (realm); empty
	// takes the first 10 digits of ID.
	Domain string `json:"domain"`
	// Address is where its SIP server listens, host:port.
	Address string `json:"address"`
	// Transport is "udp" or "tcp", for SIP.
	Transport string `json:"transport"`
	// LocalID is the 20-digit ID we present to it; empty is our --sip-id.
	LocalID string `json:"local_id"`
	// Expiry is the registration lifetime we ask for, in seconds.
	Expiry int `json:"register_expiry_s"`
	// Keepalive is the interval of our keepalive MESSAGEs, in seconds.
	Keepalive int `json:"keepalive_interval_s"`
	// Account is the platform account (accounts.KindPlatform) whose grants
	// decide which points the platform sees and may play.
	Account string `json:"account"`
	// MediaNetworks are the CIDRs (besides the platform's own SIP host)
	// its media servers may sit in: we send RTP only there, whatever an
	// INVITE's SDP names.
	MediaNetworks []string `json:"media_networks"`
	// Enabled registers upward; a disabled platform is unregistered.
	Enabled bool `json:"enabled"`
	// PasswordSet says whether a password is stored (it is never returned).
	PasswordSet bool      `json:"password_set"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// RealmDomain is the domain to present: Domain, or the ID's first 10 digits.
func (p Platform) RealmDomain() string {
	if p.Domain != "" {
		return p.Domain
	}
	if len(p.ID) >= 10 {
		return p.ID[:10]
	}
	return p.ID
}

// PlatformPatch lists what Update changes; nil fields stay as they are.
type PlatformPatch struct {
	Name          *string   `json:"name,omitempty"`
	Domain        *string   `json:"domain,omitempty"`
	Address       *string   `json:"address,omitempty"`
	Transport     *string   `json:"transport,omitempty"`
	Password      *string   `json:"password,omitempty"` // write-only
	LocalID       *string   `json:"local_id,omitempty"`
	Expiry        *int      `json:"register_expiry_s,omitempty"`
	Keepalive     *int      `json:"keepalive_interval_s,omitempty"`
	Account       *string   `json:"account,omitempty"`
	MediaNetworks *[]string `json:"media_networks,omitempty"`
	Enabled       *bool     `json:"enabled,omitempty"`
}

// platformRecord is the stored form, with the password: Digest needs the
// shared secret itself, so it is stored retrievably (as RTSP stream keys
// are) and must never leave this package except to the registration.
type platformRecord struct {
	Platform
	Password string `json:"password,omitempty"`
}

func (r platformRecord) public() Platform {
	p := r.Platform
	p.PasswordSet = r.Password != ""
	if p.MediaNetworks == nil {
		p.MediaNetworks = []string{}
	}
	return p
}

// PlatformStore keeps the upstream platforms in store.BucketGBPlatforms.
// Every change runs the caller's hooks (an audit record) in its transaction
// and then tells the subscribers (the cascade, which re-registers).
type PlatformStore struct {
	db  *store.DB
	now func() time.Time

	mu   sync.Mutex
	subs []func()
}

// NewPlatformStore returns the store of upstream platforms in db.
func NewPlatformStore(db *store.DB) *PlatformStore {
	return &PlatformStore{db: db, now: time.Now}
}

// OnChange calls fn (on the changing goroutine, after the commit) whenever a
// platform is created, changed or deleted; fn must not block.
func (s *PlatformStore) OnChange(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
}

func (s *PlatformStore) changed() {
	s.mu.Lock()
	subs := slices.Clone(s.subs)
	s.mu.Unlock()
	for _, fn := range subs {
		fn()
	}
}

// Create stores a new platform with password; ErrPlatformExists if its ID is taken.
func (s *PlatformStore) Create(p Platform, password string, also ...store.ResultHook[Platform]) (Platform, error) {
	if err := normalizePlatform(&p); err != nil {
		return Platform{}, err
	}
	if err := checkUpstreamPassword(password); err != nil {
		return Platform{}, err
	}
	now := s.now().UTC()
	p.CreatedAt, p.UpdatedAt = now, now
	rec := platformRecord{Platform: p, Password: password}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(store.BucketGBPlatforms).Get([]byte(p.ID)) != nil {
			return fmt.Errorf("gb28181: platform %s: %w", p.ID, ErrPlatformExists)
		}
		if err := store.PutJSON(tx, store.BucketGBPlatforms, []byte(p.ID), rec); err != nil {
			return err
		}
		return store.RunResultHooks(tx, rec.public(), also)
	})
	if err != nil {
		return Platform{}, err
	}
	slog.Info("upstream platform created", "platform", p.ID, "address", p.Address, "transport", p.Transport, "account", p.Account)
	s.changed()
	return rec.public(), nil
}

// Update applies patch to the platform id and returns the result.
func (s *PlatformStore) Update(id string, patch PlatformPatch, also ...store.ResultHook[Platform]) (Platform, error) {
	if patch.Password != nil {
		if err := checkUpstreamPassword(*patch.Password); err != nil {
			return Platform{}, err
		}
	}
	var rec platformRecord
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if rec, err = getPlatform(tx, id); err != nil {
			return err
		}
		p := &rec.Platform
		setIf(&p.Name, patch.Name)
		setIf(&p.Domain, patch.Domain)
		setIf(&p.Address, patch.Address)
		setIf(&p.Transport, patch.Transport)
		setIf(&p.LocalID, patch.LocalID)
		setIf(&p.Expiry, patch.Expiry)
		setIf(&p.Keepalive, patch.Keepalive)
		setIf(&p.Account, patch.Account)
		setIf(&p.MediaNetworks, patch.MediaNetworks)
		setIf(&p.Enabled, patch.Enabled)
		setIf(&rec.Password, patch.Password)
		if err := normalizePlatform(p); err != nil {
			return err
		}
		p.UpdatedAt = s.now().UTC()
		if err := store.PutJSON(tx, store.BucketGBPlatforms, []byte(id), rec); err != nil {
			return err
		}
		return store.RunResultHooks(tx, rec.public(), also)
	})
	if err != nil {
		return Platform{}, err
	}
	slog.Info("upstream platform updated", "platform", id, "address", rec.Address, "enabled", rec.Enabled,
		"password_changed", patch.Password != nil)
	s.changed()
	return rec.public(), nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Delete removes the platform id; the cascade unregisters from it.
func (s *PlatformStore) Delete(id string, also ...store.TxHook) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if _, err := getPlatform(tx, id); err != nil {
			return err
		}
		if err := tx.Bucket(store.BucketGBPlatforms).Delete([]byte(id)); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
	if err != nil {
		return err
	}
	slog.Info("upstream platform deleted", "platform", id)
	s.changed()
	return nil
}

// Get returns the platform id, without its password.
func (s *PlatformStore) Get(id string) (Platform, error) {
	var rec platformRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, err = getPlatform(tx, id)
		return err
	})
	if err != nil {
		return Platform{}, err
	}
	return rec.public(), nil
}

// List returns every platform in ID order, without passwords.
func (s *PlatformStore) List() ([]Platform, error) {
	recs, err := s.all()
	if err != nil {
		return nil, err
	}
	out := make([]Platform, len(recs))
	for i, r := range recs {
		out[i] = r.public()
	}
	return out, nil
}

// all returns every stored record with its password: for the cascade only.
func (s *PlatformStore) all() ([]platformRecord, error) {
	out := []platformRecord{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(store.BucketGBPlatforms).ForEach(func(k, _ []byte) error {
			rec, err := getPlatform(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

func getPlatform(tx *bbolt.Tx, id string) (platformRecord, error) {
	var rec platformRecord
	if id == "" {
		return rec, fmt.Errorf("gb28181: platform %q: %w", id, ErrPlatformNotFound)
	}
	found, err := store.GetJSON(tx, store.BucketGBPlatforms, []byte(id), &rec)
	if err != nil {
		// The value holds a password: the store's error names the key only.
		return platformRecord{}, err
	}
	if !found {
		return platformRecord{}, fmt.Errorf("gb28181: platform %q: %w", id, ErrPlatformNotFound)
	}
	return rec, nil
}

// normalizePlatform checks p and fills its defaults.
func normalizePlatform(p *Platform) error {
	p.ID = strings.TrimSpace(p.ID)
	if !gbID20.MatchString(p.ID) {
		return &PlatformInvalid{"id", "must be the upper platform's 20-digit SIP server ID"}
	}
	if p.Domain != "" && !gbDomain.MatchString(p.Domain) {
		return &PlatformInvalid{"domain", "must be 10 digits (or empty: the ID's first 10)"}
	}
	if msg := checkLabel(p.Name); msg != "" {
		return &PlatformInvalid{"name", msg}
	}
	if err := checkHostPort(p.Address); err != nil {
		return &PlatformInvalid{"address", err.Error()}
	}
	p.Transport = strings.ToLower(p.Transport)
	if p.Transport == "" {
		p.Transport = "udp"
	}
	if p.Transport != "udp" && p.Transport != "tcp" {
		return &PlatformInvalid{"transport", `must be "udp" or "tcp"`}
	}
	if p.LocalID != "" && !gbID20.MatchString(p.LocalID) {
		return &PlatformInvalid{"local_id", "must be 20 digits (or empty: this server's --sip-id)"}
	}
	if p.Expiry == 0 {
		p.Expiry = DefaultUpstreamExpiry
	}
	if p.Expiry < minUpstreamExpiry || p.Expiry > maxUpstreamExpiry {
		return &PlatformInvalid{"register_expiry_s", fmt.Sprintf("must be %d–%d seconds", minUpstreamExpiry, maxUpstreamExpiry)}
	}
	if p.Keepalive == 0 {
		p.Keepalive = DefaultUpstreamKeepalive
	}
	if p.Keepalive < minUpstreamKeepalive || p.Keepalive > maxUpstreamKeepalive {
		return &PlatformInvalid{"keepalive_interval_s", fmt.Sprintf("must be %d–%d seconds", minUpstreamKeepalive, maxUpstreamKeepalive)}
	}
	if !upstreamUser.MatchString(p.Account) {
		return &PlatformInvalid{"account", "must name the platform account whose grants decide what it sees"}
	}
	if len(p.MediaNetworks) > maxMediaNetworks {
		return &PlatformInvalid{"media_networks", fmt.Sprintf("at most %d networks", maxMediaNetworks)}
	}
	nets := make([]string, 0, len(p.MediaNetworks))
	for _, n := range p.MediaNetworks {
		pfx, err := parseNetwork(n)
		if err != nil {
			return &PlatformInvalid{"media_networks", err.Error()}
		}
		if !slices.Contains(nets, pfx.String()) {
			nets = append(nets, pfx.String())
		}
	}
	p.MediaNetworks = nets
	return nil
}

// parseNetwork reads a CIDR or a bare address (a /32 or /128).
func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	return p.Masked(), nil
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return errors.New("must be host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("port must be 1–65535")
	}
	if len(host) > 253 || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' || r == '@' }) {
		return errors.New("host is not a name or address")
	}
	return nil
}

func checkUpstreamPassword(pw string) error {
	if len(pw) > maxUpstreamPassword {
		return &PlatformInvalid{"password", fmt.Sprintf("must be at most %d bytes", maxUpstreamPassword)}
	}
	if strings.ContainsFunc(pw, unicode.IsControl) || !utf8.ValidString(pw) {
		return &PlatformInvalid{"password", "must be printable text"}
	}
	return nil
}

func checkLabel(s string) string {
	switch {
	case utf8.RuneCountInString(s) > maxUpstreamName:
		return fmt.Sprintf("must be at most %d characters", maxUpstreamName)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl):
		return "must be printable text"
	}
	return ""
}
