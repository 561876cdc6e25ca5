package server

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
)

// rtspGuess sends one DESCRIBE with Basic credentials on a fresh connection
// from local (nil: any loopback address) and returns the answer's status.
func rtspGuess(addr string, local net.IP, user, pw string) (int, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))
	req := "DESCRIBE rtsp://" + addr + "/p1 RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic " + cred + "\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "RTSP/1.0" {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	return strconv.Atoi(f[1])
}

// viaRTSP keeps the records that came through the RTSP door.
func viaRTSP(recs []audit.Record) []audit.Record {
	var out []audit.Record
	for _, r := range recs {
		if r.Detail["via"] == "rtsp" {
			out = append(out, r)
		}
	}
	return out
}

func TestWrongBasicPasswordsOverRTSPAreThrottledAndAudited(t *testing.T) {
	// The production throttle: backoff after 3 failures, lock after 10.
	a := startApp(t)
	before := a.Accounts.PasswordHashes()
	start := time.Now()
	for i := range 40 {
		st, err := rtspGuess(a.RTSP.Addr(), nil, "admin", fmt.Sprintf("guess-%d", i))
		if err != nil || st != int(base.StatusUnauthorized) {
			t.Fatalf("guess %d: status %d, %v; want 401", i, st, err)
		}
	}
	elapsed := time.Since(start)
	fails := viaRTSP(a.audited("login.fail"))
	throttled := viaRTSP(a.audited("login.throttled"))
	t.Logf("40 wrong Basic passwords in %v: %d checked and failed, %d throttled", elapsed, len(fails), len(throttled))
	if len(fails)+len(throttled) != 40 || len(fails) < 3 || len(fails) > 10 {
		t.Fatalf("audit: %d login.fail + %d login.throttled via rtsp; want 40 in all, 3 to 10 of them checked", len(fails), len(throttled))
	}
	for _, r := range append(fails, throttled...) {
		if r.User != "admin" || r.ClientIP != "127.0.0.1" || r.Detail["method"] != "basic" {
			t.Fatalf("record %+v lacks the user, address or method", r)
		}
	}
	// Only the checked guesses cost a hash.
	if n := a.Accounts.PasswordHashes() - before; n != uint64(len(fails)) {
		t.Fatalf("%d argon2 runs for %d checked guesses", n, len(fails))
	}
	// One throttle: the guesses over RTSP slow the HTTP login down too.
	res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", loginBody("admin", adminPassword))
	if res.Status != http.StatusTooManyRequests {
		t.Fatalf("HTTP login after RTSP guesses: %s, want 429", res)
	}
}

func TestWrongStreamKeyOverDigestCountsAsAFailedLogin(t *testing.T) {
	a := startApp(t)
	_, err := readRTSP(t, "rtsp://admin:not-the-key@"+a.RTSP.Addr()+"/p1", false)
	wantRTSPStatus(t, err, base.StatusUnauthorized)
	fails := viaRTSP(a.audited("login.fail"))
	if len(fails) != 1 || fails[0].User != "admin" || fails[0].Detail["method"] != "digest" {
		t.Fatalf("login.fail via rtsp: %+v", fails)
	}
}

func TestAUserLockedOutOfHTTPLoginIsRefusedOverRTSPWithoutAHash(t *testing.T) {
	a := throttledApp(t, accounts.ThrottleConfig{
		PerUser:   accounts.ThrottleLimit{Failures: 4, Window: time.Hour, Lockout: time.Hour},
		PerIP:     accounts.ThrottleLimit{Failures: 1000, Window: time.Hour, Lockout: time.Hour},
		SlowAfter: 1000,
	})
	a.createUser("water", "water-pass-123")
	key := a.streamKeyOf("water", "water-pass-123")
	for range 4 {
		wantError(t, a.do(http.MethodPost, "/api/v1/auth/login", "", "", loginBody("water", "wrong-password")), http.StatusUnauthorized)
	}
	if len(a.audited("login.locked")) != 1 {
		t.Fatal("four wrong HTTP logins did not lock water")
	}

	before := a.Accounts.PasswordHashes()
	// The right password over Basic, and the right stream key over Basic
	// and over Digest: all refused while the lock holds.
	for _, pw := range []string{"water-pass-123", key} {
		if st, err := rtspGuess(a.RTSP.Addr(), nil, "water", pw); err != nil || st != int(base.StatusUnauthorized) {
			t.Fatalf("locked user over RTSP Basic: status %d, %v; want 401", st, err)
		}
	}
	_, err := readRTSP(t, "rtsp://water:"+key+"@"+a.RTSP.Addr()+"/p1", false)
	wantRTSPStatus(t, err, base.StatusUnauthorized)
	if n := a.Accounts.PasswordHashes() - before; n != 0 {
		t.Fatalf("%d argon2 runs for a locked user", n)
	}
	throttled := viaRTSP(a.audited("login.throttled"))
	if len(throttled) != 3 {
		t.Fatalf("login.throttled via rtsp: %d records, want 3", len(throttled))
	}
	for _, r := range throttled {
		if r.User != "water" || r.Detail["locked"] != "true" || r.ClientIP != "127.0.0.1" {
			t.Fatalf("record %+v", r)
		}
	}
	if n := len(viaRTSP(a.audited("login.fail"))); n != 0 {
		t.Fatalf("refused attempts counted as %d failures", n)
	}
}

// streamKeyOf logs in as user and returns their stream key.
func (a *testApp) streamKeyOf(user, pw string) string {
	a.t.Helper()
	res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", loginBody(user, pw))
	var login struct {
		Token string `json:"token"`
	}
	decodeInto(a.t, res, &login)
	res = a.do(http.MethodGet, "/api/v1/me/stream-key", login.Token, "", nil)
	var out struct {
		Key string `json:"stream_key"`
	}
	decodeInto(a.t, res, &out)
	if out.Key == "" {
		a.t.Fatalf("no stream key for %s: %s", user, res)
	}
	return out.Key
}

// vmRSS reads this process's resident set size from /proc.
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		panic(err) // Linux only, like the rest of these tests
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || len(f) != 2 || f[1] != "kB" {
				panic("VmRSS line " + line)
			}
			return kb << 10
		}
	}
	panic("no VmRSS in /proc/self/status")
}

// goMemory is the memory the Go runtime holds from the OS (mapped minus
// released): RSS without the race detector's shadow memory.
func goMemory() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

// memPeak samples a memory figure until stopped and keeps the highest.
type memPeak struct {
	read       func() int64
	before     int64
	peak       atomic.Int64
	stop, done chan struct{}
}

func watchMemory(read func() int64) *memPeak {
	m := &memPeak{read: read, before: read(), stop: make(chan struct{}), done: make(chan struct{})}
	m.peak.Store(m.before)
	go func() {
		defer close(m.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
				if v := m.read(); v > m.peak.Load() {
					m.peak.Store(v)
				}
			}
		}
	}()
	return m
}

func (m *memPeak) finish() {
	close(m.stop)
	<-m.done
}

func (m *memPeak) growth() int64 { return m.peak.Load() - m.before }

// TestRTSPGuessFloodKeepsMemoryBoundedAndIsThrottled is the door "32
// parallel connections ran 172 argon2 checks and grew RSS 97 → 831 MB":
// 64 guessers, each from its own loopback address so the per-address lock
// does not end the flood early, half spraying fresh usernames and half
// hammering admin, for 10 s against production argon2 parameters.
func TestRTSPGuessFloodKeepsMemoryBoundedAndIsThrottled(t *testing.T) {
	cfg := testConfig(t)
	cfg.Argon = accounts.Argon2Params{} // production cost: 19 MiB per check
	a := startAppWith(t, cfg)

	runtime.GC()
	hashesBefore := a.Accounts.PasswordHashes()
	rss, gomem := watchMemory(vmRSS), watchMemory(goMemory)

	const guessers = 64
	var answers, unauthorized, errs atomic.Int64
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	for g := range guessers {
		wg.Go(func() {
			local := net.IPv4(127, 0, 1, byte(10+g))
			for i := 0; time.Now().Before(deadline); i++ {
				user := "admin"
				if g%2 == 1 {
					user = fmt.Sprintf("spray-%d-%d", g, i)
				}
				st, err := rtspGuess(a.RTSP.Addr(), local, user, fmt.Sprintf("guess-%d-%d", g, i))
				if err != nil {
					errs.Add(1)
					continue
				}
				answers.Add(1)
				if st == int(base.StatusUnauthorized) {
					unauthorized.Add(1)
				}
			}
		})
	}
	wg.Wait()
	rss.finish()
	gomem.finish()
	rssEnd := vmRSS()
	runtime.GC()
	rssAfterGC := vmRSS()

	hashes := a.Accounts.PasswordHashes() - hashesBefore
	fails := len(viaRTSP(a.audited("login.fail")))
	throttled := viaRTSP(a.audited("login.throttled"))
	busy := 0
	for _, r := range throttled {
		if r.Detail["busy"] == "true" {
			busy++
		}
	}
	const mb = 1 << 20
	t.Logf("flood: %d guessers, %d answers (%d 401), %d connection errors; %d argon2 runs, %d login.fail, %d login.throttled (%d busy), %d login.locked",
		guessers, answers.Load(), unauthorized.Load(), errs.Load(), hashes, fails, len(throttled), busy, len(viaRTSP(a.audited("login.locked"))))
	t.Logf("RSS before %d MB, peak %d MB (+%d MB), at the end %d MB, after GC %d MB; Go runtime memory before %d MB, peak +%d MB (race detector: %v)",
		rss.before/mb, rss.peak.Load()/mb, rss.growth()/mb, rssEnd/mb, rssAfterGC/mb, gomem.before/mb, gomem.growth()/mb, floodUnderRace)

	if g := gomem.growth(); g >= 100*mb {
		t.Errorf("the Go runtime's memory grew %d MB under the flood, want under 100 MB", g/mb)
	}
	if g := rss.growth(); g >= 100*mb && !floodUnderRace {
		t.Errorf("RSS grew %d MB under the flood, want under 100 MB", g/mb)
	}
	if answers.Load() < guessers || unauthorized.Load() != answers.Load() {
		t.Errorf("%d answers, %d of them 401: every guess must be answered 401", answers.Load(), unauthorized.Load())
	}
	if e := errs.Load(); e > answers.Load()/100 {
		t.Errorf("%d guesses got no answer (of %d)", e, answers.Load()+e)
	}
	if len(throttled) == 0 || fails+len(throttled) != int(answers.Load()) {
		t.Errorf("audit: %d login.fail + %d login.throttled via rtsp for %d answered guesses", fails, len(throttled), answers.Load())
	}
	// Every failure was one hash (plus, once, the dummy hash that unknown
	// usernames are checked against); nothing else (throttled, busy) cost one.
	if hashes != uint64(fails) && hashes != uint64(fails)+1 {
		t.Errorf("%d argon2 runs for %d checked guesses", hashes, fails)
	}
}
