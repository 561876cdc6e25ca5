package accounts

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

func TestHashPasswordWithZeroParamsUsesProductionDefaults(t *testing.T) {
	enc, err := HashPassword("correct horse", Argon2Params{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("encoded = %q, want argon2id v=19 m=19456,t=2,p=1", enc)
	}
	parts := strings.Split(enc, "$")
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("salt %d bytes (%v), key %d bytes (%v); want 16 and 32", len(salt), err1, len(key), err2)
	}
	if ok, err := VerifyPassword("correct horse", enc); !ok || err != nil {
		t.Fatalf("VerifyPassword = %v, %v", ok, err)
	}
}

func TestDefaultArgon2ParamsMatchPolicy(t *testing.T) {
	want := Argon2Params{Time: 2, MemoryKiB: 19456, Threads: 1, SaltLen: 16, KeyLen: 32}
	if got := DefaultArgon2Params(); got != want {
		t.Fatalf("DefaultArgon2Params = %+v, want %+v", got, want)
	}
}

func TestVerifyPasswordWithWrongPasswordFails(t *testing.T) {
	enc, err := HashPassword("s3cret-pass", cheap)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"s3cret-pasS", "s3cret-pas", "", "s3cret-pass "} {
		if ok, err := VerifyPassword(pw, enc); ok || err != nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}

func TestHashPasswordUsesAFreshSaltEachTime(t *testing.T) {
	a, _ := HashPassword("same-password", cheap)
	b, _ := HashPassword("same-password", cheap)
	if a == b {
		t.Fatal("two hashes of the same password are identical")
	}
}

func TestVerifyPasswordAcceptsHashesFromOtherArgon2idImplementations(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("password"), salt, 3, 32, 2, 24)
	enc := fmt.Sprintf("$argon2id$v=19$m=32,t=3,p=2$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	if ok, err := VerifyPassword("password", enc); !ok || err != nil {
		t.Fatalf("VerifyPassword = %v, %v", ok, err)
	}
}

func TestHashPasswordRejectsOutOfRangeParams(t *testing.T) {
	for _, p := range []Argon2Params{
		{Time: 65, MemoryKiB: 64, Threads: 1},
		{Time: 1, MemoryKiB: 7, Threads: 1},
		{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 4},
		{Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 8},
	} {
		if _, err := HashPassword("password", p); err == nil {
			t.Errorf("HashPassword with %+v succeeded", p)
		}
	}
}

func TestVerifyPasswordOfMalformedHashFails(t *testing.T) {
	good, err := HashPassword("password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", alg, v, params, salt, hash
	with := func(i int, s string) string {
		p := append([]string(nil), parts...)
		p[i] = s
		return strings.Join(p, "$")
	}
	for name, enc := range map[string]string{
		"empty":             "",
		"bcrypt":            "$2a$10$abcdefghijklmnopqrstuu",
		"argon2i":           with(1, "argon2i"),
		"version 16":        with(2, "v=16"),
		"missing version":   strings.Join(append(parts[:2:2], parts[3:]...), "$"),
		"params reordered":  with(3, "t=1,m=64,p=1"),
		"param missing":     with(3, "m=64,t=1"),
		"extra param":       with(3, "m=64,t=1,p=1,k=2"),
		"leading zero":      with(3, "m=064,t=1,p=1"),
		"sign":              with(3, "m=+64,t=1,p=1"),
		"huge memory":       with(3, "m=4294967295,t=1,p=1"),
		"zero time":         with(3, "m=64,t=0,p=1"),
		"zero threads":      with(3, "m=64,t=1,p=0"),
		"too many threads":  with(3, "m=4096,t=1,p=256"),
		"memory too small":  with(3, "m=7,t=1,p=1"),
		"padded salt":       with(4, parts[4]+"=="),
		"salt with newline": with(4, parts[4][:4]+"\n"+parts[4][4:]),
		"url-safe salt":     with(4, strings.NewReplacer("+", "-", "/", "_").Replace(parts[4])+"-_"),
		"short salt":        with(4, "YWJj"),
		"empty hash":        with(5, ""),
		"short hash":        with(5, "YWJjZGVm"),
		"trailing field":    good + "$",
		"leading text":      "x" + good,
	} {
		ok, err := VerifyPassword("password", enc)
		if err == nil || ok {
			t.Errorf("%s: VerifyPassword(%q) = %v, %v; want error", name, enc, ok, err)
		}
	}
}

func FuzzVerifyPassword(f *testing.F) {
	good, err := HashPassword("password", cheap)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("password", good)
	f.Add("password", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("", "$argon2id$v=19$m=4294967295,t=4294967295,p=255$$")
	f.Add("x", "$argon2id$$$$$")
	f.Add("x", "")
	f.Fuzz(func(t *testing.T, pw, enc string) {
		p, _, _, err := parsePHC(enc)
		if err != nil {
			if ok, verr := VerifyPassword(pw, enc); ok || verr == nil {
				t.Fatalf("parse failed (%v) but VerifyPassword = %v, %v", err, ok, verr)
			}
			return
		}
		// Only run the full (memory-hard) verification for cheap parameters
		// so the fuzzer explores parsing instead of allocating gigabytes.
		if p.MemoryKiB > 1024 || p.Time > 4 {
			return
		}
		if _, err := VerifyPassword(pw, enc); err != nil {
			t.Fatalf("parse succeeded but VerifyPassword failed: %v", err)
		}
	})
}

func TestTheHashGateNeverRunsMoreThanItsSlotsAtOnce(t *testing.T) {
	g := newHashGate(3, 10*time.Second)
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	// 20 callers: more than the slots, fewer than slots plus the queue.
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			errs <- g.run(func() {
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(2 * time.Millisecond)
				running.Add(-1)
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Fatalf("peak concurrency %d, want at most the 3 slots (and more than one)", p)
	}
}

func TestTheHashGateBoundsItsQueueOfWaiters(t *testing.T) {
	g := newHashGate(1, time.Minute)
	hold, held := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = g.run(func() { close(held); <-hold }) })
	<-held
	results := make(chan error, g.maxWait)
	for range g.maxWait {
		wg.Go(func() { results <- g.run(func() {}) })
	}
	for deadline := time.Now().Add(10 * time.Second); g.waiters.Load() < g.maxWait; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters queued, want %d", g.waiters.Load(), g.maxWait)
		}
	}
	// The queue is full: one more is refused at once, not after the minute.
	start := time.Now()
	if err := g.run(func() { t.Error("ran past a full queue") }); !errors.Is(err, ErrBusy) {
		t.Fatalf("run with a full queue: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refusal took %v", d)
	}
	close(hold)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Fatalf("queued waiter: %v", err)
		}
	}
}

func TestAPasswordCheckThatGetsNoSlotFailsBusyWithoutHashing(t *testing.T) {
	f := newFixture(t, Options{HashSlots: 1, HashWait: 50 * time.Millisecond})
	f.mustCreate(t, "alice", "wonderland-42")
	before := f.a.PasswordHashes()
	f.a.gate.slots <- struct{}{} // a flood holds the only slot
	start := time.Now()
	for _, user := range []string{"alice", "ghost"} {
		if _, err := f.a.Authenticate(user, "wonderland-42"); !errors.Is(err, ErrBusy) {
			t.Fatalf("Authenticate(%s) with no free slot: %v, want ErrBusy", user, err)
		}
	}
	if err := f.a.ChangePassword("alice", "wonderland-42", "looking-glass-7"); !errors.Is(err, ErrBusy) {
		t.Fatalf("ChangePassword with no free slot: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("three refusals in %v: they did not wait for a slot", d)
	}
	if n := f.a.PasswordHashes() - before; n != 0 {
		t.Fatalf("%d argon2 runs without a slot", n)
	}
	<-f.a.gate.slots
	if _, err := f.a.Authenticate("alice", "wonderland-42"); err != nil {
		t.Fatalf("Authenticate with the slot free: %v", err)
	}
	if n := f.a.PasswordHashes() - before; n != 1 {
		t.Fatalf("%d argon2 runs for one check, want 1", n)
	}
}
