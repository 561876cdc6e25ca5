package accounts

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// Errors CheckCredential returns besides ErrNoSession, ErrNoToken,
// ErrNotFound and ErrDisabled; match them with errors.Is.
var (
	// ErrStreamKeyRotated reports that the stream key a stream was opened with has been replaced.
	ErrStreamKeyRotated = errors.New("stream key rotated")
	// ErrPasswordChanged reports that the password a stream was opened with has been changed.
	ErrPasswordChanged = errors.New("password changed")
	// ErrBadCredential reports a Credential this package did not make.
	ErrBadCredential = errors.New("unrecognised credential")
)

// Credential names the secret a live stream was opened with — a login
// session, an API token, a stream key or a password — without holding it,
// so the stream can be ended once that secret stops being valid. It holds
// only a SHA-256 (for bearer tokens the same hash the store is keyed by);
// it still belongs in memory only, never in logs or answers.
type Credential string

// Credential kinds, the prefix of every Credential.
const (
	credSession   = "session:"
	credToken     = "token:"
	credStreamKey = "streamkey:"
	credPassword  = "password:"
)

// fingerprint is what a Credential keeps of a stream key or password hash.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// BearerCredential names the login session or API token a request
// authenticated with (the bearer token or session cookie).
func BearerCredential(token string) Credential {
	if token == "" || len(token) > maxTokenLen {
		return ""
	}
	// The prefix only picks the reason given when the token is gone:
	// CheckCredential looks in both places, as Resolve does.
	if strings.HasPrefix(token, APITokenPrefix) {
		return Credential(credToken + string(sessionKey(token)))
	}
	return Credential(credSession + string(sessionKey(token)))
}

// RTSPCredential names the credential an RTSP client presents for username:
// its stream key when the Basic password is the stream key or when Digest is
// used (Digest can only prove the stream key), else its login password. It
// verifies nothing; ask it before authenticating, so that a credential
// changed in between names the old one and the stream ends, rather than the
// new one. An unknown user yields "".
func (a *Accounts) RTSPCredential(username, basicPassword string, basic bool) Credential {
	var rec userRecord
	err := a.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, err = getRecord(tx, username)
		return err
	})
	if err != nil || rec.IsPlatform() {
		return ""
	}
	if !basic {
		return Credential(credStreamKey + fingerprint(rec.StreamKey))
	}
	// Compare fixed-length digests so the key's length does not show in timing.
	key, given := sha256.Sum256([]byte(rec.StreamKey)), sha256.Sum256([]byte(basicPassword))
	if rec.StreamKey != "" && subtle.ConstantTimeCompare(key[:], given[:]) == 1 {
		return Credential(credStreamKey + fingerprint(rec.StreamKey))
	}
	return Credential(credPassword + fingerprint(rec.PasswordHash))
}

// CheckCredential reports whether c, a credential username opened a stream
// with, still admits username: nil if so, else why not — ErrNoSession (the
// login session ended: logout, revoked, expired, password changed),
// ErrNoToken (the API token was revoked or expired), ErrStreamKeyRotated,
// ErrPasswordChanged, ErrDisabled or ErrNotFound (the user was deleted). It
// is one read transaction, cheap enough to run for every live stream every
// few seconds.
func (a *Accounts) CheckCredential(username string, c Credential) error {
	now := a.now()
	return a.db.View(func(tx *bbolt.Tx) error {
		rec, err := getRecord(tx, username)
		if err != nil {
			return err
		}
		if rec.Disabled {
			return fmt.Errorf("accounts: user %q: %w", username, ErrDisabled)
		}
		if rec.IsPlatform() {
			// Nothing can have opened a stream as a platform account.
			return ErrBadCredential
		}
		switch s := string(c); {
		case strings.HasPrefix(s, credSession):
			return checkBearer(tx, username, []byte(strings.TrimPrefix(s, credSession)), ErrNoSession, now)
		case strings.HasPrefix(s, credToken):
			return checkBearer(tx, username, []byte(strings.TrimPrefix(s, credToken)), ErrNoToken, now)
		case strings.HasPrefix(s, credStreamKey):
			if rec.StreamKey == "" || !sameFingerprint(strings.TrimPrefix(s, credStreamKey), rec.StreamKey) {
				return ErrStreamKeyRotated
			}
			return nil
		case strings.HasPrefix(s, credPassword):
			if !sameFingerprint(strings.TrimPrefix(s, credPassword), rec.PasswordHash) {
				return ErrPasswordChanged
			}
			return nil
		}
		return ErrBadCredential
	})
}

func sameFingerprint(fp, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(fp), []byte(fingerprint(secret))) == 1
}

// checkBearer looks key up as Resolve does: login sessions first, then API
// tokens; gone reports a key found in neither. It never deletes: the next
// request with a dead session does that.
func checkBearer(tx *bbolt.Tx, username string, key []byte, gone error, now time.Time) error {
	var s sessionRecord
	if found, err := store.GetJSON(tx, store.BucketSessions, key, &s); found {
		if err != nil || s.Username != username || !now.Before(s.ExpiresAt) {
			return ErrNoSession
		}
		return nil
	}
	var t tokenRecord
	if found, err := store.GetJSON(tx, store.BucketTokens, key, &t); found {
		if err != nil || t.Username != username || t.expired(now) {
			return ErrNoToken
		}
		return nil
	}
	return gone
}
