package accounts

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// ThrottleLimit locks a key for Lockout once it collects Failures failed attempts within Window.
type ThrottleLimit struct {
	Failures int
	Window   time.Duration
	Lockout  time.Duration
}

// ThrottleConfig configures a Throttle; zero fields take DefaultThrottleConfig's values.
type ThrottleConfig struct {
	PerUser ThrottleLimit // failures against one username, from anywhere
	PerIP   ThrottleLimit // failures from one client address, against any username
	// SlowAfter is the number of failures against a username after which each
	// further attempt must wait SlowBase*2^(n-SlowAfter) since the last one, capped at SlowMax.
	SlowAfter int
	SlowBase  time.Duration
	SlowMax   time.Duration
	// MaxKeys bounds the usernames plus addresses remembered; beyond it the least recently failing are forgotten.
	MaxKeys int
}

// DefaultThrottleConfig returns 10 failures per user or 30 per IP in 15 minutes lock for 15 minutes; backoff 1s·2^(n-3) after 3, capped at 30s; 100k keys.
func DefaultThrottleConfig() ThrottleConfig {
	return ThrottleConfig{
		PerUser:   ThrottleLimit{Failures: 10, Window: 15 * time.Minute, Lockout: 15 * time.Minute},
		PerIP:     ThrottleLimit{Failures: 30, Window: 15 * time.Minute, Lockout: 15 * time.Minute},
		SlowAfter: 3,
		SlowBase:  time.Second,
		SlowMax:   30 * time.Second,
		MaxKeys:   100_000,
	}
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	d := DefaultThrottleConfig()
	c.PerUser = c.PerUser.withDefaults(d.PerUser)
	c.PerIP = c.PerIP.withDefaults(d.PerIP)
	if c.SlowAfter <= 0 {
		c.SlowAfter = d.SlowAfter
	}
	if c.SlowBase <= 0 {
		c.SlowBase = d.SlowBase
	}
	if c.SlowMax <= 0 {
		c.SlowMax = d.SlowMax
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = d.MaxKeys
	}
	return c
}

func (l ThrottleLimit) withDefaults(d ThrottleLimit) ThrottleLimit {
	if l.Failures <= 0 {
		l.Failures = d.Failures
	}
	if l.Window <= 0 {
		l.Window = d.Window
	}
	if l.Lockout <= 0 {
		l.Lockout = d.Lockout
	}
	return l
}

// maxThrottleKeyLen bounds the memory one key may take; longer names and
// addresses are remembered by their SHA-256.
const maxThrottleKeyLen = 64

// Throttle slows down and then locks out repeated failed logins, per username and per client IP.
//
// It lives in memory only, on purpose: a restart clearing every lock is an
// acceptable loss, whereas persistent lockouts would let anyone who can
// guess a username keep that user locked out across restarts (a denial of
// service that outlives the attack). Memory is bounded by MaxKeys.
//
// Callers take the clock explicitly so tests need no sleeping. The flow for
// one attempt is: Check (refuse without checking the password if it says to
// wait or is locked), then Failure or Success.
type Throttle struct {
	cfg ThrottleConfig

	mu       sync.Mutex
	entries  map[string]*throttleEntry
	lru      list.List // of *throttleEntry; front failed most recently
	warnedAt time.Time // last "throttle full" warning, to keep the log quiet under attack
}

type throttleEntry struct {
	key         string
	perUser     bool
	failures    int
	first       time.Time // start of the current window
	last        time.Time // latest failure
	lockedUntil time.Time // zero while not locked
	elem        *list.Element
}

// NewThrottle returns an empty Throttle.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	return &Throttle{cfg: cfg.withDefaults(), entries: map[string]*throttleEntry{}}
}

func (t *Throttle) limit(e *throttleEntry) ThrottleLimit {
	if e.perUser {
		return t.cfg.PerUser
	}
	return t.cfg.PerIP
}

// live reports whether e still means anything at now: a lock in force, or
// an open window. An expired lock starts over from zero failures.
func (t *Throttle) live(e *throttleEntry, now time.Time) bool {
	if !e.lockedUntil.IsZero() {
		return now.Before(e.lockedUntil)
	}
	return now.Sub(e.first) < t.limit(e).Window
}

// Check reports how long the next attempt for user from ip must wait, and whether either is locked out.
//
// A positive wait with locked false is the backoff after SlowAfter failures;
// with locked true it is the time until the lock lifts. A refused attempt is
// not a failure: do not call Failure for it.
func (t *Throttle) Check(user, ip string, now time.Time) (wait time.Duration, locked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ue *throttleEntry
	for _, k := range throttleKeys(user, ip) {
		e := t.entries[k.key]
		if e == nil || !t.live(e, now) {
			continue
		}
		if e.perUser {
			ue = e
		}
		if now.Before(e.lockedUntil) {
			locked = true
			wait = max(wait, e.lockedUntil.Sub(now))
		}
	}
	if locked || ue == nil || ue.failures < t.cfg.SlowAfter {
		return wait, locked
	}
	return max(0, ue.last.Add(t.backoff(ue.failures)).Sub(now)), false
}

// backoff is SlowBase*2^(n-SlowAfter), capped at SlowMax.
func (t *Throttle) backoff(n int) time.Duration {
	d := t.cfg.SlowBase
	for i := t.cfg.SlowAfter; i < n && d < t.cfg.SlowMax; i++ {
		d *= 2
	}
	return min(d, t.cfg.SlowMax)
}

// Failure records a failed attempt for user from ip and reports whether either is now locked out.
func (t *Throttle) Failure(user, ip string, now time.Time) (locked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.evictStale(now)
	for _, k := range throttleKeys(user, ip) {
		e := t.entries[k.key]
		if e == nil {
			e = t.insert(k, now)
		} else if !t.live(e, now) {
			*e = throttleEntry{key: e.key, perUser: e.perUser, first: now, elem: e.elem}
		}
		e.last = now
		t.lru.MoveToFront(e.elem)
		if now.Before(e.lockedUntil) {
			// Attempts during a lock do not extend it: the caller should not
			// have tried, and extending would let anyone prolong a lockout.
			locked = true
			continue
		}
		e.failures++
		if lim := t.limit(e); e.failures >= lim.Failures {
			e.lockedUntil = now.Add(lim.Lockout)
			locked = true
			slog.Warn("login locked out", "user", user, "ip", ip, "per_user", e.perUser,
				"failures", e.failures, "until", e.lockedUntil)
		}
	}
	return locked
}

// Success forgets the failures against user after a successful login.
//
// The failures from ip are kept (ip is accepted for symmetry with Failure):
// one account the attacker owns must not launder a password spray against
// others from the same address.
func (t *Throttle) Success(user, ip string) {
	_ = ip
	k := userThrottleKey(user)
	if k == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.entries[k]; e != nil {
		t.lru.Remove(e.elem)
		delete(t.entries, k)
	}
}

type throttleKey struct {
	key     string
	perUser bool
}

// throttleKeys returns the user's key and the address's key; empty inputs give none.
func throttleKeys(user, ip string) []throttleKey {
	out := make([]throttleKey, 0, 2)
	if k := userThrottleKey(user); k != "" {
		out = append(out, throttleKey{k, true})
	}
	if ip != "" {
		out = append(out, throttleKey{"i\x00" + boundKey(ip), false})
	}
	return out
}

// userThrottleKey folds case, so "Alice" and "alice" share one budget.
func userThrottleKey(user string) string {
	if user == "" {
		return ""
	}
	return "u\x00" + boundKey(strings.ToLower(user))
}

func boundKey(s string) string {
	if len(s) <= maxThrottleKeyLen {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(sum[:])
}

// insert adds a fresh entry, forgetting the least recently failing one if full.
func (t *Throttle) insert(k throttleKey, now time.Time) *throttleEntry {
	if len(t.entries) >= t.cfg.MaxKeys {
		t.removeBack()
		if now.Sub(t.warnedAt) >= time.Minute {
			t.warnedAt = now
			slog.Warn("login throttle full; forgetting the least recently failing keys", "max_keys", t.cfg.MaxKeys)
		}
	}
	e := &throttleEntry{key: k.key, perUser: k.perUser, first: now}
	e.elem = t.lru.PushFront(e)
	t.entries[k.key] = e
	return e
}

// evictStale drops entries from the least recently failing end while they
// are dead. An entry whose last failure is older than both Window and
// Lockout is dead, so the back of the list is always where the dead are.
func (t *Throttle) evictStale(now time.Time) {
	for el := t.lru.Back(); el != nil; el = t.lru.Back() {
		if t.live(el.Value.(*throttleEntry), now) {
			return
		}
		t.removeBack()
	}
}

func (t *Throttle) removeBack() {
	if el := t.lru.Back(); el != nil {
		delete(t.entries, el.Value.(*throttleEntry).key)
		t.lru.Remove(el)
	}
}

// size returns the number of remembered keys (for tests).
func (t *Throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
