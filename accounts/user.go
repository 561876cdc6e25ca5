// Package accounts owns the users of Tianyan VMS: their records, argon2id
// password hashes, login sessions and per-user RTSP stream keys, persisted
// in store.BucketUsers and store.BucketSessions.
//
// It must never import web or gin, and must never log (or put into errors)
// passwords, password hashes, session tokens or stream keys. Only the SHA-256
// of a session token is stored; stream keys are stored retrievably because
// RTSP Digest authentication needs the shared secret.
package accounts

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// Errors returned by Accounts; match them with errors.Is.
var (
	// ErrNotFound reports that the user does not exist.
	ErrNotFound = errors.New("user not found")
	// ErrExists reports that a user with that username already exists.
	ErrExists = errors.New("user already exists")
	// ErrBadCredentials reports an unknown user, a wrong password or a disabled user, indistinguishably.
	ErrBadCredentials = errors.New("bad credentials")
	// ErrNoSession reports an unknown or expired session token, or one whose user is gone or disabled.
	ErrNoSession = errors.New("no valid session")
	// ErrDisabled reports that the operation is refused because the user is disabled.
	ErrDisabled = errors.New("user disabled")
)

// RoleAdmin is the role that grants administrator rights.
const RoleAdmin = "admin"

// AdminUsername is the username EnsureAdmin bootstraps.
const AdminUsername = "admin"

const (
	minPasswordRunes   = 8
	maxPasswordBytes   = 1024
	maxDisplayName     = 128
	defaultSessionTTL  = 12 * time.Hour
	generatedPassBytes = 15 // 15 bytes -> 20 base64url characters
)

var (
	usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{1,31}$`)
	rolePattern     = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,63}$`)
)

// ValidationError reports input that was rejected, naming the offending field.
type ValidationError struct {
	Field   string
	Message string
}

// Error returns "field: message".
func (e *ValidationError) Error() string {
	return e.Field + ": " + e.Message
}

// User is an account as seen outside this package; it never carries secrets.
type User struct {
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Roles       []string  `json:"roles"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
}

// IsAdmin reports whether u has the "admin" role.
func (u User) IsAdmin() bool {
	return slices.Contains(u.Roles, RoleAdmin)
}

// userRecord is the stored form of a user, including its secrets.
type userRecord struct {
	User
	PasswordHash string `json:"password_hash"`
	StreamKey    string `json:"stream_key,omitempty"`
}

// Options configures Accounts; zero values take the defaults.
type Options struct {
	SessionTTL time.Duration // login session lifetime; default 12h
	Argon      Argon2Params  // password hashing cost; zero = production defaults (tests may lower it)
}

// Accounts manages users, sessions and stream keys.
type Accounts struct {
	db    *store.DB
	ttl   time.Duration
	argon Argon2Params
	now   func() time.Time

	dummyOnce sync.Once
	dummyHash string
}

// New returns Accounts backed by db.
func New(db *store.DB, opts Options) *Accounts {
	ttl := opts.SessionTTL
	if ttl <= 0 {
		ttl = defaultSessionTTL
	}
	return &Accounts{db: db, ttl: ttl, argon: opts.Argon.withDefaults(), now: time.Now}
}

// EnsureAdmin creates user "admin" if absent, with password or, when empty, a generated one returned in generated.
func (a *Accounts) EnsureAdmin(password string) (generated string, created bool, err error) {
	if _, err := a.GetUser(AdminUsername); err == nil {
		return "", false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", false, err
	}
	pw := password
	if pw == "" {
		if pw, err = randomToken(generatedPassBytes); err != nil {
			return "", false, err
		}
	}
	_, err = a.CreateUser(User{Username: AdminUsername, DisplayName: "Administrator", Roles: []string{RoleAdmin}}, pw)
	if errors.Is(err, ErrExists) {
		return "", false, nil // created concurrently
	}
	if err != nil {
		return "", false, err
	}
	slog.Info("admin user created", "user", AdminUsername, "generated_password", password == "")
	if password == "" {
		return pw, true, nil
	}
	return "", true, nil
}

// CreateUser validates u and password, hashes the password and stores the user; ErrExists if taken.
func (a *Accounts) CreateUser(u User, password string) (User, error) {
	if err := validateUser(&u); err != nil {
		return User{}, err
	}
	if err := validatePassword(password); err != nil {
		return User{}, err
	}
	// Hash outside the write transaction: argon2 is deliberately slow.
	hash, err := HashPassword(password, a.argon)
	if err != nil {
		return User{}, err
	}
	u.CreatedAt = a.now().UTC()
	rec := userRecord{User: u, PasswordHash: hash}
	err = a.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(store.BucketUsers).Get([]byte(u.Username)) != nil {
			return fmt.Errorf("accounts: user %q: %w", u.Username, ErrExists)
		}
		return store.PutJSON(tx, store.BucketUsers, []byte(u.Username), rec)
	})
	if err != nil {
		return User{}, err
	}
	slog.Info("user created", "user", u.Username, "roles", u.Roles)
	return u, nil
}

func validateUser(u *User) error {
	if !usernamePattern.MatchString(u.Username) {
		return &ValidationError{"username", "must match " + usernamePattern.String()}
	}
	switch {
	case !utf8.ValidString(u.DisplayName):
		return &ValidationError{"display_name", "must be valid UTF-8"}
	case utf8.RuneCountInString(u.DisplayName) > maxDisplayName:
		return &ValidationError{"display_name", fmt.Sprintf("must be at most %d characters", maxDisplayName)}
	case containsControl(u.DisplayName):
		return &ValidationError{"display_name", "must not contain control characters"}
	}
	roles := make([]string, 0, len(u.Roles))
	for _, r := range u.Roles {
		if !rolePattern.MatchString(r) {
			return &ValidationError{"roles", "each role must match " + rolePattern.String()}
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	u.Roles = roles
	return nil
}

func validatePassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < minPasswordRunes:
		return &ValidationError{"password", fmt.Sprintf("must be at least %d characters", minPasswordRunes)}
	case len(pw) > maxPasswordBytes:
		return &ValidationError{"password", fmt.Sprintf("must be at most %d bytes", maxPasswordBytes)}
	}
	return nil
}

func containsControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// GetUser returns the user with that username, or ErrNotFound.
func (a *Accounts) GetUser(name string) (User, error) {
	var rec userRecord
	err := a.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, err = getRecord(tx, name)
		return err
	})
	return rec.User, err
}

func getRecord(tx *bbolt.Tx, name string) (userRecord, error) {
	var rec userRecord
	if name == "" {
		return rec, fmt.Errorf("accounts: user %q: %w", name, ErrNotFound)
	}
	found, err := store.GetJSON(tx, store.BucketUsers, []byte(name), &rec)
	if err != nil {
		return userRecord{}, err
	}
	if !found {
		return userRecord{}, fmt.Errorf("accounts: user %q: %w", name, ErrNotFound)
	}
	if rec.Roles == nil {
		rec.Roles = []string{}
	}
	return rec, nil
}

// Authenticate checks username and password; unknown, wrong and disabled all yield ErrBadCredentials.
func (a *Accounts) Authenticate(username, password string) (User, error) {
	var rec userRecord
	err := a.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, err = getRecord(tx, username)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		// Spend the same argon2 work so timing does not reveal whether the user exists.
		_, _ = VerifyPassword(password, a.dummy())
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	ok, err := VerifyPassword(password, rec.PasswordHash)
	if err != nil {
		slog.Error("stored password hash is unusable", "user", username, "err", err)
		return User{}, fmt.Errorf("accounts: user %q: %w", username, err)
	}
	if !ok || rec.Disabled {
		return User{}, ErrBadCredentials
	}
	return rec.User, nil
}

// dummy returns a hash with the current parameters for timing equalisation.
func (a *Accounts) dummy() string {
	a.dummyOnce.Do(func() {
		h, err := HashPassword("tianyan-dummy-password", a.argon)
		if err != nil {
			// Parameters already validated by a successful CreateUser are the
			// common case; fall back to defaults otherwise.
			h, _ = HashPassword("tianyan-dummy-password", Argon2Params{})
		}
		a.dummyHash = h
	})
	return a.dummyHash
}

// randomToken returns n random bytes encoded as unpadded base64url.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("accounts: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
