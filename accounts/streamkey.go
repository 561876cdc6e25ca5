package accounts

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

const streamKeyBytes = 24 // -> 32 base64url characters

// StreamKey returns the user's RTSP stream key, creating it on first use; ErrDisabled for disabled users.
//
// The key is the shared secret for RTSP Digest authentication, separate from
// the login password. Refusing disabled users makes Digest auth fail closed.
func (a *Accounts) StreamKey(username string) (string, error) {
	var (
		key      string
		disabled bool
		platform bool
	)
	err := a.db.View(func(tx *bbolt.Tx) error {
		rec, err := getRecord(tx, username)
		key, disabled, platform = rec.StreamKey, rec.Disabled, rec.IsPlatform()
		return err
	})
	if err != nil {
		return "", err
	}
	if platform {
		// RTSP Digest asks for the key of whoever knocks: a platform's
		// answer is a bad credential, like an unknown user's.
		return "", ErrBadCredentials
	}
	if disabled {
		return "", ErrDisabled
	}
	if key != "" {
		return key, nil
	}
	return a.setStreamKey(username, false)
}

// RotateStreamKey replaces the user's stream key with a fresh random one and returns it.
func (a *Accounts) RotateStreamKey(username string) (string, error) {
	key, err := a.setStreamKey(username, true)
	if err != nil {
		return "", err
	}
	slog.Info("stream key rotated", "user", username)
	return key, nil
}

// setStreamKey stores a new key; without force it keeps a key that a
// concurrent caller stored first, so StreamKey is stable under races.
func (a *Accounts) setStreamKey(username string, force bool) (string, error) {
	fresh, err := randomToken(streamKeyBytes)
	if err != nil {
		return "", err
	}
	var key string
	err = a.db.Update(func(tx *bbolt.Tx) error {
		rec, err := getRecord(tx, username)
		if err != nil {
			return err
		}
		if rec.IsPlatform() {
			return fmt.Errorf("accounts: user %q: %w", username, ErrPlatformAccount)
		}
		if !force && rec.Disabled {
			return ErrDisabled
		}
		if !force && rec.StreamKey != "" {
			key = rec.StreamKey
			return nil
		}
		rec.StreamKey = fresh
		key = fresh
		return store.PutJSON(tx, store.BucketUsers, []byte(username), rec)
	})
	if err != nil {
		return "", err
	}
	return key, nil
}

// VerifyStreamKey reports in constant time whether key is the stream key of an enabled user.
func (a *Accounts) VerifyStreamKey(username, key string) bool {
	var stored string
	ok := false
	err := a.db.View(func(tx *bbolt.Tx) error {
		rec, err := getRecord(tx, username)
		if err != nil {
			return err
		}
		stored = rec.StreamKey
		ok = !rec.Disabled && stored != "" && !rec.IsPlatform()
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		slog.Error("stream key lookup failed", "user", username, "err", err)
	}
	// Compare fixed-length digests so neither length nor existence shows in timing.
	want := sha256.Sum256([]byte(stored))
	got := sha256.Sum256([]byte(key))
	match := subtle.ConstantTimeCompare(want[:], got[:]) == 1
	return ok && match
}
