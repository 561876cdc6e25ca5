package accounts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// API token errors; match them with errors.Is.
var (
	// ErrNoToken reports that the user has no API token with that ID.
	ErrNoToken = errors.New("no such API token")
	// ErrTooManyTokens reports that the user already holds MaxTokensPerUser live API tokens.
	ErrTooManyTokens = errors.New("too many API tokens")
)

// APITokenPrefix starts every API token, so leaked tokens are easy to recognise and scan for.
const APITokenPrefix = "tyk_"

// MaxTokensPerUser bounds the live API tokens one user may hold.
const MaxTokensPerUser = 50

const (
	apiTokenBytes = 32
	maxTokenName  = 64
	// lastUsedEvery is how stale LastUsed may get before Resolve writes it:
	// authenticating a request stays a read-only transaction in the common case.
	lastUsedEvery = time.Minute
)

// tokenRecord is stored under hex(sha256(token)); the token itself is never stored.
type tokenRecord struct {
	Username  string    `json:"username"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`
}

// TokenInfo describes an API token without the token itself.
type TokenInfo struct {
	ID       string    `json:"id"` // first 8 hex digits of sha256(token), unique per user
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`   // zero: never expires
	LastUsed time.Time `json:"last_used,omitzero"` // zero: never used; at most a minute stale
}

func (t tokenRecord) info(key []byte) TokenInfo {
	return TokenInfo{ID: shortID(key), Name: t.Name, Created: t.CreatedAt, Expires: t.ExpiresAt, LastUsed: t.LastUsed}
}

func (t tokenRecord) expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// errIDTaken makes CreateToken draw a new token whose ID is unique for the user.
var errIDTaken = errors.New("token id taken")

// CreateToken issues an API token for an integration acting as username; a zero expires never expires.
//
// The token ("tyk_" + 32 random bytes base64url) is returned once and only its
// SHA-256 is stored. The user's expired tokens are purged on the way. The
// hooks run inside the same transaction, shown the token's info (never the
// token); an error from one stores nothing.
func (a *Accounts) CreateToken(username, name string, expires time.Time, also ...store.ResultHook[TokenInfo]) (token string, info TokenInfo, err error) {
	if name == "" {
		return "", TokenInfo{}, &ValidationError{"name", "must not be empty"}
	}
	if msg := validateText(name, maxTokenName); msg != "" {
		return "", TokenInfo{}, &ValidationError{"name", msg}
	}
	now := a.now().UTC()
	if !expires.IsZero() && !expires.After(now) {
		return "", TokenInfo{}, &ValidationError{"expires", "must be in the future"}
	}
	rec := tokenRecord{Username: username, Name: name, CreatedAt: now, ExpiresAt: expires.UTC()}
	var purged int
	for range 4 {
		raw, err := randomToken(apiTokenBytes)
		if err != nil {
			return "", TokenInfo{}, err
		}
		token = APITokenPrefix + raw
		key := sessionKey(token)
		err = a.db.Update(func(tx *bbolt.Tx) error {
			u, err := getRecord(tx, username)
			if err != nil {
				return err
			}
			if u.Disabled {
				return fmt.Errorf("accounts: user %q: %w", username, ErrDisabled)
			}
			if u.IsPlatform() {
				return fmt.Errorf("accounts: user %q: %w", username, ErrPlatformAccount)
			}
			if purged, err = deleteTokensWhere(tx, username, func(_ []byte, t tokenRecord) bool { return t.expired(now) }); err != nil {
				return err
			}
			live := 0
			err = forEachToken(tx, username, func(k []byte, _ tokenRecord) error {
				live++
				if shortID(k) == shortID(key) {
					return errIDTaken
				}
				return nil
			})
			if err != nil {
				return err
			}
			if live >= MaxTokensPerUser {
				return fmt.Errorf("accounts: user %q: %w", username, ErrTooManyTokens)
			}
			if err := store.PutJSON(tx, store.BucketTokens, key, rec); err != nil {
				return err
			}
			return store.RunResultHooks(tx, rec.info(key), also)
		})
		if errors.Is(err, errIDTaken) {
			continue
		}
		if err != nil {
			return "", TokenInfo{}, err
		}
		info = rec.info(key)
		slog.Info("api token created", "user", username, "token_id", info.ID, "name", name,
			"expires", rec.ExpiresAt, "expired_tokens_purged", purged)
		return token, info, nil
	}
	return "", TokenInfo{}, errors.New("accounts: could not draw a token with a unique ID")
}

// ListTokens returns the user's API tokens, oldest first, including expired ones not yet purged.
func (a *Accounts) ListTokens(username string) ([]TokenInfo, error) {
	out := []TokenInfo{}
	err := a.db.View(func(tx *bbolt.Tx) error {
		if _, err := getRecord(tx, username); err != nil {
			return err
		}
		return forEachToken(tx, username, func(k []byte, t tokenRecord) error {
			out = append(out, t.info(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(x, y TokenInfo) int {
		if c := x.Created.Compare(y.Created); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// RevokeToken deletes the user's API token with that ID; ErrNoToken if
// there is none. The hooks run inside the same transaction; an error from
// one keeps the token.
func (a *Accounts) RevokeToken(username, id string, also ...store.TxHook) error {
	err := a.db.Update(func(tx *bbolt.Tx) error {
		if _, err := getRecord(tx, username); err != nil {
			return err
		}
		if !validShortID(id) {
			return ErrNoToken
		}
		n, err := deleteTokensWhere(tx, username, func(k []byte, _ tokenRecord) bool { return shortID(k) == id })
		if err == nil && n == 0 {
			return ErrNoToken
		}
		if err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
	if err != nil {
		return err
	}
	slog.Info("api token revoked", "user", username, "token_id", id)
	return nil
}

// Resolve returns the user behind a bearer token: a login session is tried first, then an API token.
//
// Unknown, expired and revoked tokens, and tokens of missing or disabled
// users, all yield ErrNoSession. Dead sessions are deleted as in SessionUser;
// API tokens are only ever deleted by RevokeToken, DeleteUser, a change or
// reset of the owner's password, or expiry purging, so a re-enabled user's
// integrations work again.
func (a *Accounts) Resolve(token string) (User, error) {
	if token == "" || len(token) > maxTokenLen {
		return User{}, ErrNoSession
	}
	key := sessionKey(token)
	now := a.now()
	var (
		u           User
		dropSession bool
		touch       bool
	)
	err := a.db.View(func(tx *bbolt.Tx) error {
		var err error
		u, dropSession, err = sessionUser(tx, key, now)
		if !errors.Is(err, errNoSuchSession) {
			return err
		}
		u, touch, err = tokenUser(tx, key, now)
		return err
	})
	if dropSession {
		a.dropSession(key)
	}
	if err != nil {
		return User{}, err
	}
	if touch {
		a.touchToken(key, now)
	}
	return u, nil
}

// tokenUser looks key up among API tokens; touch reports that LastUsed is stale.
func tokenUser(tx *bbolt.Tx, key []byte, now time.Time) (u User, touch bool, err error) {
	var t tokenRecord
	found, err := store.GetJSON(tx, store.BucketTokens, key, &t)
	if !found || err != nil || t.expired(now) {
		return User{}, false, ErrNoSession
	}
	rec, err := getRecord(tx, t.Username)
	if errors.Is(err, ErrNotFound) {
		return User{}, false, ErrNoSession
	}
	if err != nil {
		return User{}, false, err
	}
	if rec.Disabled || rec.IsPlatform() {
		return User{}, false, ErrNoSession
	}
	return rec.User, lastUsedStale(t.LastUsed, now), nil
}

// lastUsedStale reports whether LastUsed should be rewritten; a LastUsed in
// the future (the clock stepped back) counts as stale so it heals at once.
func lastUsedStale(last, now time.Time) bool {
	d := now.Sub(last)
	return last.IsZero() || d >= lastUsedEvery || d < 0
}

// errUnchanged rolls back a write transaction that found nothing to do,
// sparing the commit's fsync.
var errUnchanged = errors.New("unchanged")

// touchToken records that the token was used at now. Concurrent requests
// with the same token share one write; failures are logged, never fatal to
// the request.
func (a *Accounts) touchToken(key []byte, now time.Time) {
	k := string(key)
	a.touchMu.Lock()
	if a.touching[k] {
		a.touchMu.Unlock()
		return
	}
	a.touching[k] = true
	a.touchMu.Unlock()
	defer func() {
		a.touchMu.Lock()
		delete(a.touching, k)
		a.touchMu.Unlock()
	}()

	err := a.db.Update(func(tx *bbolt.Tx) error {
		var t tokenRecord
		found, err := store.GetJSON(tx, store.BucketTokens, key, &t)
		if err != nil {
			return err
		}
		if !found || !lastUsedStale(t.LastUsed, now) {
			return errUnchanged // revoked meanwhile, or another request wrote it
		}
		t.LastUsed = now.UTC()
		return store.PutJSON(tx, store.BucketTokens, key, t)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		slog.Warn("could not record api token use", "token_id", shortID(key), "err", err)
	}
}

// forEachToken calls fn for every readable API token of username.
func forEachToken(tx *bbolt.Tx, username string, fn func(key []byte, t tokenRecord) error) error {
	return tx.Bucket(store.BucketTokens).ForEach(func(k, v []byte) error {
		var t tokenRecord
		if json.Unmarshal(v, &t) != nil || t.Username != username {
			return nil
		}
		return fn(k, t)
	})
}

func deleteUserTokens(tx *bbolt.Tx, username string) (int, error) {
	return deleteTokensWhere(tx, username, func([]byte, tokenRecord) bool { return true })
}

// deleteTokensWhere deletes the API tokens of username that satisfy match.
func deleteTokensWhere(tx *bbolt.Tx, username string, match func(key []byte, t tokenRecord) bool) (int, error) {
	var doomed [][]byte
	err := forEachToken(tx, username, func(k []byte, t tokenRecord) error {
		if match(k, t) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	b := tx.Bucket(store.BucketTokens)
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("accounts: delete api token: %w", err)
		}
	}
	return len(doomed), nil
}
