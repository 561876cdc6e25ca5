package server

import (
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/pion/webrtc/v4"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/camsim"
)

// Concurrent views (WHEP sessions and RTSP reads together) are capped per
// user and per client address: WHEP beyond a cap is 429, RTSP 453, both
// audited as view.refused reason=cap.

// whepOffer is a browser-like recvonly H.264 offer, made once by pion; the
// server answers each POST of it with a session of its own.
func whepOffer(t *testing.T) string {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// postOffer sends offer to point's WHEP endpoint with token.
func (a *testApp) postOffer(token, point, offer string) response {
	a.t.Helper()
	return a.do(http.MethodPost, "/api/v1/points/"+point+"/whep", token, "application/sdp", offer)
}

// refusals counts view.refused records of user via via for scope.
func (a *testApp) refusals(user, via, scope string) int {
	n := 0
	for _, r := range a.audited("view.refused") {
		if r.User == user && r.Detail["via"] == via && r.Detail["reason"] == "cap" && r.Detail["scope"] == scope {
			n++
		}
	}
	return n
}

// settledGoroutines waits for the goroutine count to stop falling and
// returns it, after dropping the test's idle HTTP connections.
func (a *testApp) settledGoroutines() int {
	a.http.CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

func TestOneUserIsRefused429BeyondTheDefaultViewCapAndSlotsComeBack(t *testing.T) {
	a, login := grantsFixture(t)
	grantWaterReservoirs(a)
	offer := whepOffer(t)
	baseline := a.settledGoroutines()

	// One real viewer and 31 offers still negotiating fill the cap of 32:
	// of 40 offers at once, 31 are answered and 9 refused.
	viewer := viewAs(t, a, login, "res1")
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		sessions []string
		refused  int
	)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := a.postOffer(login, "res1", offer)
			mu.Lock()
			defer mu.Unlock()
			switch res.Status {
			case http.StatusCreated:
				sessions = append(sessions, res.Header.Get("Location"))
			case http.StatusTooManyRequests:
				refused++
			default:
				t.Errorf("offer: %s", res)
			}
		}()
	}
	wg.Wait()
	if len(sessions) != 31 || refused != 9 {
		t.Fatalf("40 offers at once beside one view: %d answered, %d refused; want 31 and 9", len(sessions), refused)
	}
	res := a.postOffer(login, "res1", offer)
	if e := wantError(t, res, http.StatusTooManyRequests); e.Code != "too_many_views" || !strings.Contains(e.Message, "32") {
		t.Fatalf("33rd offer: %s", res)
	}
	// RTSP reads share the cap.
	_, err := readRTSP(t, "rtsp://water:water-pass-123@"+a.RTSP.Addr()+"/res1", true)
	wantRTSPStatus(t, err, base.StatusNotEnoughBandwidth)
	waitFor(t, 5*time.Second, "both refusals audited", func() bool {
		return a.refusals("water", "webrtc", "user") == 10 && a.refusals("water", "rtsp", "user") == 1
	})
	if n := a.WebRTC.SessionCount(); n != 32 {
		t.Fatalf("%d WebRTC sessions, want 32", n)
	}

	// Closing a view frees its slot: the next offer is answered.
	viewer.Close()
	waitFor(t, 5*time.Second, "the closed view's slot back", func() bool {
		res := a.postOffer(login, "res1", offer)
		if res.Status == http.StatusCreated {
			sessions = append(sessions, res.Header.Get("Location"))
			return true
		}
		return false
	})
	res = a.postOffer(login, "res1", offer)
	wantError(t, res, http.StatusTooManyRequests)

	for _, loc := range sessions {
		if res := a.do(http.MethodDelete, loc, login, "", nil); res.Status != http.StatusOK {
			t.Fatalf("DELETE %s: %s", loc, res)
		}
	}
	if n := a.WebRTC.SessionCount(); n != 0 {
		t.Fatalf("%d WebRTC sessions after all closed", n)
	}
	// Every slot is back: 32 more offers are answered.
	for i := range 32 {
		res := a.postOffer(login, "res1", offer)
		if res.Status != http.StatusCreated {
			t.Fatalf("offer %d after all closed: %s", i+1, res)
		}
		if res := a.do(http.MethodDelete, res.Header.Get("Location"), login, "", nil); res.Status != http.StatusOK {
			t.Fatalf("DELETE: %s", res)
		}
	}

	// The sessions' goroutines, and the camera's after the idle grace, are
	// gone. The slack allows for runtime and pion timers winding down.
	var now int
	waitFor(t, 15*time.Second, "goroutines back to the baseline", func() bool {
		now = a.settledGoroutines()
		return now <= baseline+2
	})
	t.Logf("goroutines: %d before, %d after 65 WHEP sessions (one a real viewer)", baseline, now)
}

// capsFixture: an app with small caps, a camera point, and two admins (who
// see every point) logged in from the same address.
func capsFixture(t *testing.T, perUser, perIP int) (a *testApp, ann, bob string) {
	cfg := testConfig(t)
	cfg.MaxViewsPerUser, cfg.MaxViewsPerIP = perUser, perIP
	a = startAppWith(t, cfg)
	cam := startCamera(t, camsim.ClipH264Sub)
	a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})
	a.createUser("ann", "ann-pass-1234", "admin")
	a.createUser("bob", "bob-pass-1234", "admin")
	return a, a.loginAs("ann", "ann-pass-1234"), a.loginAs("bob", "bob-pass-1234")
}

func TestViewCapsCountWHEPAndRTSPTogetherPerUserAndPerAddress(t *testing.T) {
	a, ann, bob := capsFixture(t, 3, 5)
	offer := whepOffer(t)
	rtspAs := func(user, pass string) (*rtspReader, error) {
		return readRTSP(t, "rtsp://"+user+":"+pass+"@"+a.RTSP.Addr()+"/cam", true)
	}

	// ann: two RTSP reads and one WHEP offer fill her cap of 3.
	r1, err := rtspAs("ann", "ann-pass-1234")
	if err != nil {
		t.Fatalf("ann's first RTSP read: %v", err)
	}
	if _, err := rtspAs("ann", "ann-pass-1234"); err != nil {
		t.Fatalf("ann's second RTSP read: %v", err)
	}
	if res := a.postOffer(ann, "cam", offer); res.Status != http.StatusCreated {
		t.Fatalf("ann's WHEP offer: %s", res)
	}
	_, err = rtspAs("ann", "ann-pass-1234")
	wantRTSPStatus(t, err, base.StatusNotEnoughBandwidth)
	wantError(t, a.postOffer(ann, "cam", offer), http.StatusTooManyRequests)

	// A reader that leaves gives its slot back.
	ended := readerEnded(r1)
	r1.client.Close()
	<-ended
	waitFor(t, 5*time.Second, "ann's first reader gone", func() bool {
		n := 0
		for _, s := range a.RTSP.Sessions() {
			if s.User == "ann" {
				n++
			}
		}
		return n == 1
	})
	if _, err := rtspAs("ann", "ann-pass-1234"); err != nil {
		t.Fatalf("ann's RTSP read after one of hers ended: %v", err)
	}

	// bob shares ann's address: 3 of its 5 slots are ann's.
	for i := range 2 {
		if res := a.postOffer(bob, "cam", offer); res.Status != http.StatusCreated {
			t.Fatalf("bob's offer %d: %s", i+1, res)
		}
	}
	res := a.postOffer(bob, "cam", offer)
	if e := wantError(t, res, http.StatusTooManyRequests); !strings.Contains(e.Message, "5") {
		t.Fatalf("bob's third offer: %s", res)
	}
	_, err = rtspAs("bob", "bob-pass-1234")
	wantRTSPStatus(t, err, base.StatusNotEnoughBandwidth)

	waitFor(t, 5*time.Second, "every refusal audited with its scope", func() bool {
		return a.refusals("ann", "rtsp", "user") == 1 && a.refusals("ann", "webrtc", "user") == 1 &&
			a.refusals("bob", "webrtc", "ip") == 1 && a.refusals("bob", "rtsp", "ip") == 1
	})
	recs, _, err := a.Audit.Query(audit.Filter{Action: "view.refused", User: "bob", Limit: 1})
	if err != nil || len(recs) != 1 || recs[0].Point != "cam" || recs[0].ClientIP != "127.0.0.1" || recs[0].Detail["limit"] != "5" {
		t.Fatalf("bob's refusal record: %+v, %v", recs, err)
	}
}
