package accounts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

const sessionTokenBytes = 32

// sessionRecord is stored under hex(sha256(token)); the token itself is never stored.
type sessionRecord struct {
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func sessionKey(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return []byte(hex.EncodeToString(sum[:]))
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

// SessionUser returns the user behind a session token, or ErrNoSession; expired sessions are deleted.
func (a *Accounts) SessionUser(token string) (User, error) {
	if token == "" {
		return User{}, ErrNoSession
	}
	key := sessionKey(token)
	now := a.now()
	var (
		u    User
		drop bool
	)
	err := a.db.View(func(tx *bbolt.Tx) error {
		var s sessionRecord
		found, err := store.GetJSON(tx, store.BucketSessions, key, &s)
		if !found {
			return ErrNoSession
		}
		if err != nil || !now.Before(s.ExpiresAt) {
			drop = true
			return ErrNoSession
		}
		rec, err := getRecord(tx, s.Username)
		if errors.Is(err, ErrNotFound) {
			drop = true
			return ErrNoSession
		}
		if err != nil {
			return err
		}
		if rec.Disabled {
			// Drop it so re-enabling the user does not revive old sessions.
			drop = true
			return ErrNoSession
		}
		u = rec.User
		return nil
	})
	if drop {
		if derr := a.deleteSession(key); derr != nil {
			slog.Warn("could not delete stale session", "err", derr)
		}
	}
	if err != nil {
		return User{}, err
	}
	return u, nil
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
