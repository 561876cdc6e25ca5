// Package accounts owns the users of Tianyan VMS: their records, roles,
// argon2id password hashes, login sessions, API tokens for integrations,
// per-user RTSP stream keys and the in-memory login Throttle. It persists
// them in store.BucketUsers, BucketRoles, BucketSessions and BucketTokens.
//
// Accounts says who a caller is and which roles they hold; what a role may do
// is decided by permissions. It must never import web, gin, streaming,
// catalog or permissions, and must never log (or put into errors) passwords,
// password hashes, session or API tokens, or stream keys. Only the SHA-256
// of a session or API token is stored; stream keys are stored retrievably
// because RTSP Digest authentication needs the shared secret.
package accounts

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
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
	// ErrLastAdmin reports a change that would leave no enabled user holding the admin role.
	ErrLastAdmin = errors.New("would remove the last enabled admin")
	// ErrPlatformAccount reports an operation a platform account cannot take
	// part in (API tokens, stream keys, passwords): it never logs in.
	ErrPlatformAccount = errors.New("platform account")
)

// Account kinds (User.Kind).
const (
	// KindPerson is a person who logs in (the zero value).
	KindPerson = ""
	// KindPlatform is an upstream platform (GB/T 28181 级联): grants decide
	// what it sees and views, like anyone's, but it never logs in over HTTP
	// or RTSP, holds no password, session, API token or stream key, and
	// holds no built-in duty role. It acts only through the cascade, which
	// authenticates the platform itself.
	KindPlatform = "platform"
)

// RoleAdmin is the role that grants administrator rights.
const RoleAdmin = "admin"

// Built-in duty roles (separation of duties, 三员分立): what each may do is
// decided by permissions.CanSystem.
const (
	// RoleSysAdmin manages users, agents, points and regions; no grants, no audit.
	RoleSysAdmin = "sysadmin"
	// RoleSecAdmin manages grants and roles.
	RoleSecAdmin = "secadmin"
	// RoleAuditor reads and verifies the audit log.
	RoleAuditor = "auditor"
)

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
	// Kind is KindPerson ("") or KindPlatform; set at creation, never changed.
	Kind string `json:"kind"`
}

// IsPlatform reports whether u is an upstream platform's account.
func (u User) IsPlatform() bool {
	return u.Kind == KindPlatform
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
	// SeparationOfDuties refuses one account holding two of the duty roles
	// (sysadmin, secadmin, auditor); see DutyRoles.
	SeparationOfDuties bool
	// HashSlots bounds the argon2 computations running at once; 0 means two per GOMAXPROCS.
	HashSlots int
	// HashWait is how long a password check waits for a slot before failing
	// with ErrBusy; 0 means 2s. At most 8 callers per slot wait; more fail at once.
	HashWait time.Duration
}

// Accounts manages users, roles, sessions, API tokens and stream keys.
type Accounts struct {
	db    *store.DB
	ttl   time.Duration
	argon Argon2Params
	gate  *hashGate // every argon2 run goes through it
	now   func() time.Time
	// separate is Options.SeparationOfDuties.
	separate bool
	// usersChanged counts committed user creates, updates and deletes, so
	// a cache of who holds which duty knows when to look again.
	usersChanged atomic.Uint64

	dummyOnce sync.Once
	dummyHash string

	// touching holds the keys of API tokens whose LastUsed write is in flight,
	// so a burst of requests with one token costs one write, not one each.
	touchMu  sync.Mutex
	touching map[string]bool
}

// New returns Accounts backed by db.
func New(db *store.DB, opts Options) *Accounts {
	ttl := opts.SessionTTL
	if ttl <= 0 {
		ttl = defaultSessionTTL
	}
	return &Accounts{db: db, ttl: ttl, argon: opts.Argon.withDefaults(), gate: newHashGate(opts.HashSlots, opts.HashWait),
		now: time.Now, touching: map[string]bool{}, separate: opts.SeparationOfDuties}
}

// EnsureAdmin creates user "admin" when no enabled user holds the admin role, with password or, when empty, a generated one returned in generated.
//
// It looks for any enabled admin rather than for the username, so an
// administrator who deleted the bootstrap account does not see it come back,
// with a fresh password, at the next start.
func (a *Accounts) EnsureAdmin(password string) (generated string, created bool, err error) {
	var haveAdmin, nameTaken bool
	err = a.db.View(func(tx *bbolt.Tx) error {
		nameTaken = tx.Bucket(store.BucketUsers).Get([]byte(AdminUsername)) != nil
		return forEachUser(tx, func(rec userRecord) error {
			haveAdmin = haveAdmin || isEnabledAdmin(rec.User)
			return nil
		})
	})
	if err != nil {
		return "", false, err
	}
	if haveAdmin {
		return "", false, nil
	}
	if nameTaken {
		// Someone disabled or demoted it on purpose (outside this package's
		// rules); resetting it silently would undo that.
		slog.Warn("no enabled admin exists, and user admin exists but is not one; not bootstrapping", "user", AdminUsername)
		return "", false, nil
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
//
// Every role in u.Roles must exist (ListRoles); an unknown one is a
// *ValidationError on field "roles". The hooks run inside the same
// transaction, shown the user as stored; an error from one stores nothing.
func (a *Accounts) CreateUser(u User, password string, also ...store.ResultHook[User]) (User, error) {
	if err := validateUser(&u); err != nil {
		return User{}, err
	}
	var hash string
	if u.IsPlatform() {
		// No password at all: nothing to guess, nothing to leak.
		if password != "" {
			return User{}, &ValidationError{"password", "a platform account has no password: it never logs in"}
		}
	} else {
		if err := validatePassword(password); err != nil {
			return User{}, err
		}
		// Hash outside the write transaction: argon2 is deliberately slow.
		var err error
		if hash, err = a.hashPassword(password); err != nil {
			return User{}, err
		}
	}
	u.CreatedAt = a.now().UTC()
	rec := userRecord{User: u, PasswordHash: hash}
	err := a.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(store.BucketUsers).Get([]byte(u.Username)) != nil {
			return fmt.Errorf("accounts: user %q: %w", u.Username, ErrExists)
		}
		if err := checkRolesExist(tx, u.Roles); err != nil {
			return err
		}
		if err := a.checkSeparation(u.Username, u.Roles); err != nil {
			return err
		}
		if err := store.PutJSON(tx, store.BucketUsers, []byte(u.Username), rec); err != nil {
			return err
		}
		return store.RunResultHooks(tx, u, also)
	})
	if err != nil {
		return User{}, err
	}
	a.usersChanged.Add(1)
	slog.Info("user created", "user", u.Username, "roles", u.Roles)
	return u, nil
}

func validateUser(u *User) error {
	if !usernamePattern.MatchString(u.Username) {
		return &ValidationError{"username", "must match " + usernamePattern.String()}
	}
	if msg := validateText(u.DisplayName, maxDisplayName); msg != "" {
		return &ValidationError{"display_name", msg}
	}
	if u.Kind != KindPerson && u.Kind != KindPlatform {
		return &ValidationError{"kind", `must be "" (a person) or "platform"`}
	}
	roles, err := normalizeRoles(u.Roles)
	if err != nil {
		return err
	}
	if err := checkPlatformRoles(u.Kind, roles); err != nil {
		return err
	}
	u.Roles = roles
	return nil
}

// checkPlatformRoles refuses the built-in duty roles to a platform account:
// those give system actions and, for admin, every point regardless of
// grants, while a platform must see exactly what its grants say.
func checkPlatformRoles(kind string, roles []string) error {
	if kind != KindPlatform {
		return nil
	}
	for _, r := range roles {
		if IsBuiltInRole(r) {
			return &ValidationError{"roles", "a platform account cannot hold the built-in role " + r}
		}
	}
	return nil
}

// normalizeRoles checks role names and drops duplicates, keeping the first
// occurrence's order; it never returns nil.
func normalizeRoles(in []string) ([]string, error) {
	roles := make([]string, 0, len(in))
	for _, r := range in {
		if !rolePattern.MatchString(r) {
			return nil, &ValidationError{"roles", "each role must match " + rolePattern.String()}
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles, nil
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

// ListUsers returns every user sorted by username.
func (a *Accounts) ListUsers() ([]User, error) {
	users := []User{}
	err := a.db.View(func(tx *bbolt.Tx) error {
		return forEachUser(tx, func(rec userRecord) error {
			users = append(users, rec.User)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// bbolt iterates keys in byte order, which is username order already.
	return users, nil
}

// forEachUser calls fn with every stored user record in username order.
func forEachUser(tx *bbolt.Tx, fn func(userRecord) error) error {
	return tx.Bucket(store.BucketUsers).ForEach(func(k, v []byte) error {
		var rec userRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			// The value holds secrets: name the key only.
			return fmt.Errorf("accounts: decode user %q: %w", k, err)
		}
		if rec.Roles == nil {
			rec.Roles = []string{}
		}
		return fn(rec)
	})
}

// UserPatch lists what UpdateUser changes; nil fields stay as they are.
type UserPatch struct {
	DisplayName *string   `json:"display_name,omitempty"`
	Roles       *[]string `json:"roles,omitempty"`
	Disabled    *bool     `json:"disabled,omitempty"`
}

// UpdateUser applies p to the user and returns the result; disabling ends every session of the user.
//
// API tokens of a disabled user are kept but refused by Resolve until the
// user is enabled again (they stay visible and revocable in ListTokens).
// Disabling or removing the admin role from the last enabled admin fails
// with ErrLastAdmin; unknown roles are a *ValidationError on "roles". The
// hooks run inside the same transaction, shown the user as stored; an
// error from one changes nothing.
func (a *Accounts) UpdateUser(name string, p UserPatch, also ...store.ResultHook[User]) (User, error) {
	if p.DisplayName != nil {
		if msg := validateText(*p.DisplayName, maxDisplayName); msg != "" {
			return User{}, &ValidationError{"display_name", msg}
		}
	}
	var roles []string
	if p.Roles != nil {
		var err error
		if roles, err = normalizeRoles(*p.Roles); err != nil {
			return User{}, err
		}
	}
	var (
		rec     userRecord
		revoked int
	)
	err := a.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if rec, err = getRecord(tx, name); err != nil {
			return err
		}
		wasAdmin := isEnabledAdmin(rec.User)
		if p.DisplayName != nil {
			rec.DisplayName = *p.DisplayName
		}
		if p.Roles != nil {
			if err := checkPlatformRoles(rec.Kind, roles); err != nil {
				return err
			}
			if err := checkRolesExist(tx, roles); err != nil {
				return err
			}
			if err := a.checkSeparation(name, roles); err != nil {
				return err
			}
			rec.Roles = roles
		}
		if p.Disabled != nil {
			rec.Disabled = *p.Disabled
		}
		if wasAdmin && !isEnabledAdmin(rec.User) {
			if err := requireOtherAdmin(tx, name); err != nil {
				return err
			}
		}
		if rec.Disabled {
			if revoked, err = deleteUserSessions(tx, name); err != nil {
				return err
			}
		}
		if err := store.PutJSON(tx, store.BucketUsers, []byte(name), rec); err != nil {
			return err
		}
		return store.RunResultHooks(tx, rec.User, also)
	})
	if err != nil {
		return User{}, err
	}
	a.usersChanged.Add(1)
	slog.Info("user updated", "user", name, "roles", rec.Roles, "disabled", rec.Disabled, "sessions_revoked", revoked)
	return rec.User, nil
}

// DeleteUser removes the user with their sessions and API tokens;
// ErrLastAdmin for the last enabled admin. The hooks run inside the same
// transaction (a caller removes what refers to the user there); an error
// from one keeps the user.
func (a *Accounts) DeleteUser(name string, also ...store.TxHook) error {
	var sessions, tokens int
	err := a.db.Update(func(tx *bbolt.Tx) error {
		rec, err := getRecord(tx, name)
		if err != nil {
			return err
		}
		if isEnabledAdmin(rec.User) {
			if err := requireOtherAdmin(tx, name); err != nil {
				return err
			}
		}
		if sessions, err = deleteUserSessions(tx, name); err != nil {
			return err
		}
		if tokens, err = deleteUserTokens(tx, name); err != nil {
			return err
		}
		if err := tx.Bucket(store.BucketUsers).Delete([]byte(name)); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
	if err != nil {
		return err
	}
	a.usersChanged.Add(1)
	slog.Info("user deleted", "user", name, "sessions_revoked", sessions, "tokens_revoked", tokens)
	return nil
}

func isEnabledAdmin(u User) bool {
	return !u.Disabled && u.IsAdmin()
}

// requireOtherAdmin fails with ErrLastAdmin unless an enabled admin other than name exists.
func requireOtherAdmin(tx *bbolt.Tx, name string) error {
	errFound := errors.New("found")
	err := forEachUser(tx, func(rec userRecord) error {
		if rec.Username != name && isEnabledAdmin(rec.User) {
			return errFound // stop early
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("accounts: user %q: %w", name, ErrLastAdmin)
}

// ChangePassword replaces the user's password after checking the old one, and ends all their sessions and API tokens.
//
// A wrong old password, an unknown or a disabled user all yield
// ErrBadCredentials, as in Authenticate; callers should throttle it like a
// login. The caller's own session ends too: the client logs in again. The
// hooks run inside the transaction that stores the new password; an error
// from one keeps the old password and the sessions.
func (a *Accounts) ChangePassword(name, oldPassword, newPassword string, also ...store.TxHook) error {
	if err := validatePassword(newPassword); err != nil {
		return err
	}
	rec, err := a.checkPassword(name, oldPassword)
	if err != nil {
		return err
	}
	hash, err := a.hashPassword(newPassword)
	if err != nil {
		return err
	}
	revoked, tokens, err := a.setPassword(name, hash, rec.PasswordHash, also)
	if err != nil {
		return err
	}
	slog.Info("password changed", "user", name, "sessions_revoked", revoked, "tokens_revoked", tokens)
	return nil
}

// ResetPassword sets the user's password without the old one (an admin
// action) and ends all their sessions and API tokens. The hooks run inside
// the same transaction; an error from one changes nothing.
func (a *Accounts) ResetPassword(name, newPassword string, also ...store.TxHook) error {
	if err := validatePassword(newPassword); err != nil {
		return err
	}
	hash, err := a.hashPassword(newPassword)
	if err != nil {
		return err
	}
	revoked, tokens, err := a.setPassword(name, hash, "", also)
	if err != nil {
		return err
	}
	slog.Info("password reset", "user", name, "sessions_revoked", revoked, "tokens_revoked", tokens)
	return nil
}

// setPassword stores hash and deletes the user's sessions and API tokens: a
// password change is how an owner says "whoever had my credentials must stop
// now", and a token minted with a stolen password would outlive it otherwise.
// With a non-empty expect, it fails with ErrBadCredentials if the stored hash
// is no longer the one the old password was checked against (a concurrent
// change won). The hooks run last, in the same transaction.
func (a *Accounts) setPassword(name, hash, expect string, also []store.TxHook) (revoked, tokens int, err error) {
	err = a.db.Update(func(tx *bbolt.Tx) error {
		rec, err := getRecord(tx, name)
		if err != nil {
			return err
		}
		if rec.IsPlatform() {
			return fmt.Errorf("accounts: user %q: %w", name, ErrPlatformAccount)
		}
		if expect != "" && rec.PasswordHash != expect {
			return ErrBadCredentials
		}
		rec.PasswordHash = hash
		if revoked, err = deleteUserSessions(tx, name); err != nil {
			return err
		}
		if tokens, err = deleteUserTokens(tx, name); err != nil {
			return err
		}
		if err := store.PutJSON(tx, store.BucketUsers, []byte(name), rec); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
	return revoked, tokens, err
}

// Authenticate checks username and password; unknown, wrong and disabled all yield ErrBadCredentials.
func (a *Accounts) Authenticate(username, password string) (User, error) {
	rec, err := a.checkPassword(username, password)
	if err != nil {
		return User{}, err
	}
	return rec.User, nil
}

// checkPassword returns the stored record of an enabled user whose password is pw.
//
// The argon2 work runs under the gate: ErrBusy when no slot frees up in time.
func (a *Accounts) checkPassword(username, pw string) (userRecord, error) {
	var rec userRecord
	err := a.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, err = getRecord(tx, username)
		return err
	})
	unknown := errors.Is(err, ErrNotFound)
	if err != nil && !unknown {
		return userRecord{}, err
	}
	// A platform account never logs in: treated exactly as an unknown user
	// (the same dummy argon2 run, the same answer), so neither timing nor
	// the answer says whether the name is a platform's or what it would take.
	unknown = unknown || rec.IsPlatform()
	var ok bool
	gerr := a.gate.run(func() {
		if unknown {
			// Spend the same argon2 work so timing does not reveal whether the user exists.
			_, _ = a.verifyPassword(pw, a.dummy())
			return
		}
		ok, err = a.verifyPassword(pw, rec.PasswordHash)
	})
	switch {
	case gerr != nil:
		return userRecord{}, gerr
	case unknown:
		return userRecord{}, ErrBadCredentials
	case err != nil:
		slog.Error("stored password hash is unusable", "user", username, "err", err)
		return userRecord{}, fmt.Errorf("accounts: user %q: %w", username, err)
	case !ok || rec.Disabled:
		return userRecord{}, ErrBadCredentials
	}
	return rec, nil
}

// dummy returns a hash with the current parameters for timing equalisation.
// The first call computes it, inside the caller's gate slot.
func (a *Accounts) dummy() string {
	a.dummyOnce.Do(func() {
		a.gate.runs.Add(1)
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
