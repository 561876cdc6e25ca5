package accounts

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func TestDefaultThrottleConfigMatchesPolicy(t *testing.T) {
	c := DefaultThrottleConfig()
	if c.PerUser != (ThrottleLimit{10, 15 * time.Minute, 15 * time.Minute}) ||
		c.PerIP != (ThrottleLimit{30, 15 * time.Minute, 15 * time.Minute}) ||
		c.SlowAfter != 3 || c.SlowBase != time.Second || c.SlowMax != 30*time.Second || c.MaxKeys != 100_000 {
		t.Fatalf("DefaultThrottleConfig = %+v", c)
	}
	if got := NewThrottle(ThrottleConfig{}).cfg; got != c {
		t.Errorf("zero config became %+v, want the defaults", got)
	}
}

func TestThrottleLetsTheFirstThreeFailuresRetryAtOnce(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	for i := range 2 {
		th.Failure("alice", "192.0.2.1", t0)
		if wait, locked := th.Check("alice", "192.0.2.1", t0); wait != 0 || locked {
			t.Fatalf("after %d failures: wait %v locked %v", i+1, wait, locked)
		}
	}
}

func TestThrottleBacksOffExponentiallyAfterThreeFailuresUpToThirtySeconds(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	now := t0
	want := []time.Duration{0, 0, 1, 2, 4, 8, 16, 30, 30} // seconds, after failure n = 1..9
	for i, w := range want {
		if locked := th.Failure("alice", "192.0.2.1", now); locked {
			t.Fatalf("locked after %d failures", i+1)
		}
		wait, locked := th.Check("alice", "192.0.2.1", now)
		if wait != w*time.Second || locked {
			t.Fatalf("after %d failures: wait %v locked %v, want %v", i+1, wait, locked, w*time.Second)
		}
		if w > 0 {
			// Half-way through the wait, the remainder is asked for.
			if wait, _ := th.Check("alice", "192.0.2.1", now.Add(wait/2)); wait != w*time.Second/2 {
				t.Fatalf("half-way after %d failures: wait %v", i+1, wait)
			}
		}
		now = now.Add(w * time.Second)
		if wait, _ := th.Check("alice", "192.0.2.1", now); wait != 0 {
			t.Fatalf("after waiting %v: still wait %v", w, wait)
		}
	}
}

func TestThrottleBackoffFollowsTheUsernameAcrossAddresses(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	for i := range 3 {
		th.Failure("alice", fmt.Sprintf("192.0.2.%d", i), t0)
	}
	if wait, _ := th.Check("alice", "198.51.100.7", t0); wait != time.Second {
		t.Errorf("alice from a new address: wait %v, want 1s", wait)
	}
	if wait, locked := th.Check("bob", "192.0.2.0", t0); wait != 0 || locked {
		t.Errorf("bob from a used address: wait %v locked %v, want free", wait, locked)
	}
}

func TestTenFailuresAgainstOneUserLockItForFifteenMinutesFromAnywhere(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	now := t0
	for i := range 10 {
		locked := th.Failure("alice", fmt.Sprintf("192.0.2.%d", i), now)
		if locked != (i == 9) {
			t.Fatalf("failure %d: locked %v", i+1, locked)
		}
		now = now.Add(time.Minute) // past any backoff
	}
	lockedAt := now.Add(-time.Minute)
	wait, locked := th.Check("alice", "203.0.113.5", now)
	if !locked || wait != lockedAt.Add(15*time.Minute).Sub(now) {
		t.Fatalf("Check = %v, %v; want locked until %v", wait, locked, lockedAt.Add(15*time.Minute))
	}
	if wait, locked := th.Check("bob", "192.0.2.3", now); wait != 0 || locked {
		t.Errorf("bob caught in alice's lock: %v %v", wait, locked)
	}
	// Attempts during the lock do not extend it.
	th.Failure("alice", "192.0.2.1", now.Add(10*time.Minute))
	unlock := lockedAt.Add(15 * time.Minute)
	if _, locked := th.Check("alice", "192.0.2.1", unlock.Add(-time.Nanosecond)); !locked {
		t.Error("unlocked early")
	}
	if wait, locked := th.Check("alice", "192.0.2.1", unlock); wait != 0 || locked {
		t.Errorf("at unlock: wait %v locked %v, want a clean slate", wait, locked)
	}
	if locked := th.Failure("alice", "192.0.2.1", unlock); locked {
		t.Error("the first failure after a lock locked again")
	}
}

func TestThirtyFailuresFromOneAddressLockItForEveryUsername(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	for i := range 30 {
		locked := th.Failure(fmt.Sprintf("user%d", i), "192.0.2.1", t0)
		if locked != (i == 29) {
			t.Fatalf("failure %d: locked %v", i+1, locked)
		}
	}
	if wait, locked := th.Check("brand-new", "192.0.2.1", t0.Add(time.Minute)); !locked || wait != 14*time.Minute {
		t.Errorf("Check = %v, %v; want locked 14m more", wait, locked)
	}
	if _, locked := th.Check("user0", "192.0.2.2", t0); locked {
		t.Error("a user of the spray is locked from another address")
	}
}

func TestFailuresOlderThanTheWindowAreForgotten(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	for range 9 {
		th.Failure("alice", "", t0)
	}
	if locked := th.Failure("alice", "", t0.Add(15*time.Minute)); locked {
		t.Fatal("failures from a closed window counted")
	}
	if wait, locked := th.Check("alice", "", t0.Add(15*time.Minute)); wait != 0 || locked {
		t.Errorf("fresh window: wait %v locked %v", wait, locked)
	}
}

func TestSuccessClearsTheUserButNotTheAddress(t *testing.T) {
	th := NewThrottle(ThrottleConfig{PerIP: ThrottleLimit{Failures: 10}})
	for i := range 4 {
		th.Failure("alice", "192.0.2.1", t0)
		th.Failure(fmt.Sprintf("victim%d", i), "192.0.2.1", t0)
	}
	th.Success("alice", "192.0.2.1")
	if wait, locked := th.Check("alice", "192.0.2.1", t0); wait != 0 || locked {
		t.Errorf("alice after success: wait %v locked %v", wait, locked)
	}
	if locked := th.Failure("victim8", "192.0.2.1", t0); locked {
		t.Fatal("locked after 9 failures from the address")
	}
	if locked := th.Failure("victim9", "192.0.2.1", t0); !locked {
		t.Error("a successful login reset the address's failures")
	}
}

func TestThrottleFoldsUsernameCase(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	for _, u := range []string{"alice", "Alice", "ALICE"} {
		th.Failure(u, "", t0)
	}
	if wait, _ := th.Check("aLiCe", "", t0); wait != time.Second {
		t.Errorf("wait %v, want 1s: case variants must share a budget", wait)
	}
}

func TestThrottleMemoryIsBoundedByMaxKeysAndStaleEntriesAreEvicted(t *testing.T) {
	th := NewThrottle(ThrottleConfig{MaxKeys: 50})
	for i := range 1000 {
		th.Failure(fmt.Sprintf("user%d", i)+strings.Repeat("x", 1000), fmt.Sprintf("10.0.%d.%d", i/256, i%256), t0)
		if n := th.size(); n > 50 {
			t.Fatalf("%d keys remembered, cap 50", n)
		}
	}
	for e := th.lru.Front(); e != nil; e = e.Next() {
		if k := e.Value.(*throttleEntry).key; len(k) > 2+maxThrottleKeyLen+1 {
			t.Fatalf("key of %d bytes kept", len(k))
		}
	}
	// Once the window and any lock have passed, the next failure sweeps the rest.
	th.Failure("late", "192.0.2.1", t0.Add(16*time.Minute))
	if n := th.size(); n != 2 {
		t.Errorf("%d keys after everything went stale, want the 2 fresh ones", n)
	}
}

func TestThrottleIgnoresEmptyUserAndAddress(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	th.Failure("", "", t0)
	th.Success("", "")
	if wait, locked := th.Check("", "", t0); wait != 0 || locked || th.size() != 0 {
		t.Errorf("wait %v locked %v size %d", wait, locked, th.size())
	}
}

func TestThrottleIsSafeForConcurrentUse(t *testing.T) {
	th := NewThrottle(ThrottleConfig{MaxKeys: 64})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				user, ip := fmt.Sprintf("u%d", i%40), fmt.Sprintf("10.0.0.%d", g)
				now := t0.Add(time.Duration(i) * time.Second)
				th.Check(user, ip, now)
				th.Failure(user, ip, now)
				if i%7 == 0 {
					th.Success(user, ip)
				}
			}
		})
	}
	wg.Wait()
	if n := th.size(); n > 64 {
		t.Errorf("%d keys, cap 64", n)
	}
}
