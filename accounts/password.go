package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters; zero fields take the production defaults.
type Argon2Params struct {
	Time      uint32 // iterations (t)
	MemoryKiB uint32 // memory in KiB (m)
	Threads   uint8  // parallelism (p)
	SaltLen   uint32 // salt length in bytes
	KeyLen    uint32 // derived key length in bytes
}

// DefaultArgon2Params returns the production parameters: t=2, m=19456 KiB, p=1, 16-byte salt, 32-byte key.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Time: 2, MemoryKiB: 19456, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Limits accepted when hashing or parsing; they bound the work a stored hash can demand.
const (
	maxTime      = 64
	maxMemoryKiB = 4 << 20 // 4 GiB
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

func (p Argon2Params) withDefaults() Argon2Params {
	d := DefaultArgon2Params()
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = d.MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	return p
}

func (p Argon2Params) check() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2 time %d out of range [1,%d]", p.Time, maxTime)
	case p.Threads < 1:
		return errors.New("argon2 threads must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2 memory %d KiB out of range [%d,%d]", p.MemoryKiB, 8*uint32(p.Threads), maxMemoryKiB)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("argon2 salt length %d out of range [%d,%d]", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("argon2 key length %d out of range [%d,%d]", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// HashPassword hashes pw with argon2id and returns a PHC string
// "$argon2id$v=19$m=...,t=...,p=...$salt$hash" (unpadded standard base64).
func HashPassword(pw string, p Argon2Params) (string, error) {
	p = p.withDefaults()
	if err := p.check(); err != nil {
		return "", fmt.Errorf("accounts: hash password: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("accounts: hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches the PHC-encoded argon2id hash; a malformed hash is an error.
func VerifyPassword(pw, encoded string) (bool, error) {
	p, salt, key, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// ErrBusy reports that a password could not be checked or hashed because
// every argon2 slot stayed taken for the whole wait: the server is flooded.
// Treat it like a throttled attempt (refuse, ask to retry later), never as a
// wrong password.
var ErrBusy = errors.New("accounts: too many password checks in progress")

// hashGate runs argon2 under a semaphore. Each run holds Argon2Params.MemoryKiB
// (19 MiB by default) for tens of milliseconds, so unbounded concurrency
// turns a flood of guesses into a flood of memory; with a gate, memory is
// bounded by slots×MemoryKiB and the CPU stays saturated but no more.
type hashGate struct {
	slots   chan struct{}
	wait    time.Duration
	waiters atomic.Int64 // callers waiting for a slot now
	maxWait int64        // beyond this many waiters, fail at once
	runs    atomic.Uint64
}

// defaultHashWait is how long a caller waits for an argon2 slot: long enough
// to ride out a burst of honest logins, short enough that a flood's queue
// drains instead of growing.
const defaultHashWait = 2 * time.Second

// newHashGate returns a gate of slots runs (0: two per GOMAXPROCS) and a
// wait (0: defaultHashWait).
func newHashGate(slots int, wait time.Duration) *hashGate {
	if slots <= 0 {
		// argon2 with p=1 is one core's work; two per core keeps every core
		// busy while a run's goroutine is between steps, without piling up
		// memory that no core is working on.
		slots = 2 * runtime.GOMAXPROCS(0)
	}
	if wait <= 0 {
		wait = defaultHashWait
	}
	return &hashGate{slots: make(chan struct{}, slots), wait: wait, maxWait: int64(8 * slots)}
}

// run calls fn holding a slot, or returns ErrBusy when none frees up within
// the wait or the queue of waiters is already full.
func (g *hashGate) run(fn func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		if g.waiters.Add(1) > g.maxWait {
			g.waiters.Add(-1)
			return ErrBusy
		}
		t := time.NewTimer(g.wait)
		select {
		case g.slots <- struct{}{}:
			t.Stop()
			g.waiters.Add(-1)
		case <-t.C:
			g.waiters.Add(-1)
			return ErrBusy
		}
	}
	defer func() { <-g.slots }()
	fn()
	// Under contention, collect before handing the slot on. The run's
	// memory is garbage now; left to the GC's own pace, a flood stacks up
	// GOGC% more garbage on top of what the slots hold (measured: +176 MB
	// instead of +74 MB for 64 RTSP guessers on two cores), and the next
	// run reuses the pages this collection frees. A lone login never pays.
	if len(g.slots) > 1 || g.waiters.Load() > 0 {
		runtime.GC()
	}
	return nil
}

// PasswordHashes returns how many argon2 computations (password checks and
// new hashes) these Accounts have run: a metric, and the proof in tests that a
// refused attempt cost no hash.
func (a *Accounts) PasswordHashes() uint64 { return a.gate.runs.Load() }

// hashPassword is HashPassword with a's parameters, under the gate.
func (a *Accounts) hashPassword(pw string) (hash string, err error) {
	if gerr := a.gate.run(func() {
		a.gate.runs.Add(1)
		hash, err = HashPassword(pw, a.argon)
	}); gerr != nil {
		return "", gerr
	}
	return hash, err
}

// verifyPassword is VerifyPassword under a slot the caller already holds.
func (a *Accounts) verifyPassword(pw, encoded string) (bool, error) {
	a.gate.runs.Add(1)
	return VerifyPassword(pw, encoded)
}

// errMalformedHash is wrapped by every parse failure; messages never include the input.
var errMalformedHash = errors.New("accounts: malformed password hash")

func malformed(what string) error {
	return fmt.Errorf("%w: %s", errMalformedHash, what)
}

// parsePHC strictly parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
func parsePHC(encoded string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, malformed("want 5 $-separated fields")
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, malformed("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, malformed("unsupported version")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, nil, nil, malformed("want m,t,p parameters")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return p, nil, nil, malformed("want m,t,p parameters in order")
		}
		n, ok := parseDecimal(v)
		if !ok {
			return p, nil, nil, malformed("bad " + name + " parameter")
		}
		vals[i] = n
	}
	if vals[2] > 255 || vals[0] > maxMemoryKiB || vals[1] > maxTime {
		return p, nil, nil, malformed("parameter out of range")
	}
	salt, ok := decodeB64(parts[4])
	if !ok {
		return p, nil, nil, malformed("bad salt encoding")
	}
	key, ok := decodeB64(parts[5])
	if !ok {
		return p, nil, nil, malformed("bad hash encoding")
	}
	p = Argon2Params{
		MemoryKiB: uint32(vals[0]),
		Time:      uint32(vals[1]),
		Threads:   uint8(vals[2]),
		SaltLen:   uint32(len(salt)),
		KeyLen:    uint32(len(key)),
	}
	if err := p.check(); err != nil {
		return Argon2Params{}, nil, nil, malformed(err.Error())
	}
	return p, salt, key, nil
}

// parseDecimal accepts only canonical unsigned decimals: no sign, no leading zeros, at most 10 digits.
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// decodeB64 decodes unpadded standard base64, rejecting anything the
// standard decoder would silently tolerate (newlines, padding, stray bits).
func decodeB64(s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, false
		}
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}
