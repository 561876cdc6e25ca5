package accounts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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

const sessionTokenBytes = 32

// maxTokenLen bounds presented tokens before hashing; real ones are far shorter.
const maxTokenLen = 256

// shortIDLen is the number of hex digits of a token hash shown as its ID.
const shortIDLen = 8

// sessionRecord is stored under hex(sha256(token)); the token itself is never stored.
type sessionRecord struct {
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// sessionKey is the storage key of a session or API token: hex(sha256(token)).
func sessionKey(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return []byte(hex.EncodeToString(sum[:]))
}

// shortID is the public ID of a stored token: the first hex digits of its key.
func shortID(key []byte) string {
	return string(key[:min(shortIDLen, len(key))])
}

func validShortID(id string) bool {
	if len(id) != shortIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Login authenticates the user and starts a session, returning its bearer token and expiry.
func (a *Accounts) Login(username, password string) (token string, expires time.Time, u User, err error) {
	u, err = a.Authenticate(username, password)
	if err != nil {
		return "", time.Time{}, User{}, err
	}
	token, err = randomToken(sessionTokenBytes)
	if err != nil {
		return "", time.Time{}, User{}, err
	}
	now := a.now().UTC()
	rec := sessionRecord{Username: u.Username, CreatedAt: now, ExpiresAt: now.Add(a.ttl)}
	var purged int
	err = a.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if purged, err = purgeExpired(tx, now); err != nil {
			return err
		}
		return store.PutJSON(tx, store.BucketSessions, sessionKey(token), rec)
	})
	if err != nil {
		return "", time.Time{}, User{}, err
	}
	slog.Info("session started", "user", u.Username, "expires", rec.ExpiresAt, "expired_sessions_purged", purged)
	return token, rec.ExpiresAt, u, nil
}

// purgeExpired deletes sessions past their expiry (and unreadable ones) so the bucket stays bounded.
func purgeExpired(tx *bbolt.Tx, now time.Time) (int, error) {
	b := tx.Bucket(store.BucketSessions)
	var stale [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		var rec sessionRecord
		if _, err := store.GetJSON(tx, store.BucketSessions, k, &rec); err != nil || !now.Before(rec.ExpiresAt) {
			stale = append(stale, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}

// SessionUser returns the user behind a login session token, or ErrNoSession; expired sessions are deleted.
//
// It does not accept API tokens; Resolve accepts both.
func (a *Accounts) SessionUser(token string) (User, error) {
	if token == "" || len(token) > maxTokenLen {
		return User{}, ErrNoSession
	}
	key := sessionKey(token)
	now := a.now()
	var (
		u    User
		drop bool
	)
	err := a.db.View(func(tx *bbolt.Tx) error {
		var err error
		u, drop, err = sessionUser(tx, key, now)
		return err
	})
	if drop {
		a.dropSession(key)
	}
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// sessionUser looks key up in the sessions bucket. drop reports a session
// that exists but is dead (expired, unreadable, user gone or disabled) and
// should be deleted; errNoSuchSession that there is no session under key.
func sessionUser(tx *bbolt.Tx, key []byte, now time.Time) (u User, drop bool, err error) {
	var s sessionRecord
	found, err := store.GetJSON(tx, store.BucketSessions, key, &s)
	if !found {
		return User{}, false, errNoSuchSession
	}
	if err != nil || !now.Before(s.ExpiresAt) {
		return User{}, true, ErrNoSession
	}
	rec, err := getRecord(tx, s.Username)
	if errors.Is(err, ErrNotFound) {
		return User{}, true, ErrNoSession
	}
	if err != nil {
		return User{}, false, err
	}
	if rec.Disabled || rec.IsPlatform() {
		// Drop it so re-enabling the user does not revive old sessions. A
		// platform account never has one; should one appear, it is dead.
		return User{}, true, ErrNoSession
	}
	return rec.User, false, nil
}

// errNoSuchSession is ErrNoSession for a key absent from the sessions bucket,
// so Resolve knows to look among API tokens next.
var errNoSuchSession = fmt.Errorf("accounts: %w", ErrNoSession)

func (a *Accounts) dropSession(key []byte) {
	if err := a.deleteSession(key); err != nil {
		slog.Warn("could not delete stale session", "err", err)
	}
}

// SessionInfo describes a login session without its token.
type SessionInfo struct {
	ID      string    `json:"id"` // first 8 hex digits of sha256(token): enough to show and revoke, useless to log in
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// ListSessions returns the user's live sessions, oldest first; ErrNotFound for an unknown user.
func (a *Accounts) ListSessions(username string) ([]SessionInfo, error) {
	now := a.now()
	out := []SessionInfo{}
	err := a.db.View(func(tx *bbolt.Tx) error {
		if _, err := getRecord(tx, username); err != nil {
			return err
		}
		return forEachSession(tx, username, func(key []byte, s sessionRecord) error {
			if now.Before(s.ExpiresAt) {
				out = append(out, SessionInfo{ID: shortID(key), Created: s.CreatedAt, Expires: s.ExpiresAt})
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(x, y SessionInfo) int {
		if c := x.Created.Compare(y.Created); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// RevokeSession ends the user's session with that ID (from ListSessions);
// ErrNoSession if there is none. The hooks run inside the same
// transaction; an error from one keeps the session.
func (a *Accounts) RevokeSession(username, id string, also ...store.TxHook) error {
	var n int
	err := a.db.Update(func(tx *bbolt.Tx) error {
		if _, err := getRecord(tx, username); err != nil {
			return err
		}
		if !validShortID(id) {
			return ErrNoSession
		}
		var err error
		n, err = deleteSessionsWhere(tx, username, func(key []byte) bool { return shortID(key) == id })
		if err == nil && n == 0 {
			return ErrNoSession
		}
		if err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
	if err != nil {
		return err
	}
	slog.Info("session revoked", "user", username, "session", id)
	return nil
}

// RevokeAllSessions ends every session of the user and returns how many
// there were. The hooks run inside the same transaction, shown that count;
// an error from one keeps the sessions.
func (a *Accounts) RevokeAllSessions(username string, also ...store.ResultHook[int]) (int, error) {
	var n int
	err := a.db.Update(func(tx *bbolt.Tx) error {
		if _, err := getRecord(tx, username); err != nil {
			return err
		}
		var err error
		if n, err = deleteUserSessions(tx, username); err != nil {
			return err
		}
		return store.RunResultHooks(tx, n, also)
	})
	if err != nil {
		return 0, err
	}
	slog.Info("all sessions revoked", "user", username, "sessions_revoked", n)
	return n, nil
}

// forEachSession calls fn for every readable session of username.
func forEachSession(tx *bbolt.Tx, username string, fn func(key []byte, s sessionRecord) error) error {
	return tx.Bucket(store.BucketSessions).ForEach(func(k, v []byte) error {
		var s sessionRecord
		if json.Unmarshal(v, &s) != nil || s.Username != username {
			return nil // unreadable sessions are purged by Login
		}
		return fn(k, s)
	})
}

func deleteUserSessions(tx *bbolt.Tx, username string) (int, error) {
	return deleteSessionsWhere(tx, username, func([]byte) bool { return true })
}

// deleteSessionsWhere deletes the sessions of username whose key satisfies match.
func deleteSessionsWhere(tx *bbolt.Tx, username string, match func(key []byte) bool) (int, error) {
	var doomed [][]byte
	err := forEachSession(tx, username, func(k []byte, _ sessionRecord) error {
		if match(k) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	b := tx.Bucket(store.BucketSessions)
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("accounts: delete session: %w", err)
		}
	}
	return len(doomed), nil
}

// Logout ends the session for token; logging out an unknown token is not an error.
func (a *Accounts) Logout(token string) error {
	if token == "" {
		return nil
	}
	return a.deleteSession(sessionKey(token))
}

func (a *Accounts) deleteSession(key []byte) error {
	err := a.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(store.BucketSessions).Delete(key)
	})
	if err != nil {
		return fmt.Errorf("accounts: delete session: %w", err)
	}
	return nil
}
