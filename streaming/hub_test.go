package streaming

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianyan/vms/whepclient"
)

func TestViewerOfPulledCameraGetsKeyframeAndContinuousSequence(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	hub := NewHub(HubConfig{Logger: testLogger(), IdleGrace: time.Second})
	t.Cleanup(hub.Close)
	hub.SetPoint("cam1", SourceConfig{Type: SourceRTSP, URL: cam.URL("main"), OnDemand: true})
	w := newTestWebRTC(t)

	c := connectViewer(t, hub, w, "cam1", whepclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "50 frames", func() bool { return c.Stats().Frames >= 50 })
	st := c.Stats()
	if st.SeqGaps != 0 {
		t.Fatalf("sequence gaps: %d", st.SeqGaps)
	}
	hs, err := hub.Stats("cam1")
	if err != nil {
		t.Fatal(err)
	}
	if hs.VideoCodec != CodecH264 || hs.Width != 640 || hs.Height != 360 || hs.Readers != 1 {
		t.Fatalf("stats: %+v", hs)
	}
	if hs.FPS < 20 || hs.FPS > 30 {
		t.Fatalf("fps %v, want ~25", hs.FPS)
	}
}

func TestJoiningViewerGetsCachedKeyframeAtOnce(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	hub := NewHub(HubConfig{Logger: testLogger()})
	t.Cleanup(hub.Close)
	hub.SetPoint("cam1", SourceConfig{Type: SourceRTSP, URL: cam.URL("main"), OnDemand: false})
	w := newTestWebRTC(t)
	waitFor(t, 10*time.Second, "stream with a keyframe", func() bool {
		st, _ := hub.Stats("cam1")
		return st.KeyframeAgeMs != nil
	})
	// Join in the middle of a GOP: the next keyframe is up to 2 s away.
	time.Sleep(700 * time.Millisecond)
	c := connectViewer(t, hub, w, "cam1", whepclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	// Generous bound for a loaded CI box; well under the GOP wait it replaces.
	if ttfk := c.Stats().FirstKeyframe; ttfk > 1200*time.Millisecond {
		t.Fatalf("first keyframe after %v; the cache should make it immediate", ttfk)
	}
}

func TestOnDemandSourceStartsWithViewerAndStopsAfterIdleGrace(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	hub := NewHub(HubConfig{Logger: testLogger(), IdleGrace: 300 * time.Millisecond})
	t.Cleanup(hub.Close)
	hub.SetPoint("cam1", SourceConfig{Type: SourceRTSP, URL: cam.URL("main"), OnDemand: true})
	if st, _ := hub.Stats("cam1"); st.State != StateIdle {
		t.Fatalf("before any viewer: state %s, want idle", st.State)
	}
	w := newTestWebRTC(t)
	c := connectViewer(t, hub, w, "cam1", whepclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := hub.Stats("cam1"); st.State != StateLive {
		t.Fatalf("with a viewer: state %s, want live", st.State)
	}
	c.Close()
	waitFor(t, 5*time.Second, "idle stop", func() bool {
		st, _ := hub.Stats("cam1")
		return st.State == StateIdle
	})
}

func TestViewersArrivingTogetherShareOneStart(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	hub := NewHub(HubConfig{Logger: testLogger()})
	t.Cleanup(hub.Close)
	hub.SetPoint("cam1", SourceConfig{Type: SourceRTSP, URL: cam.URL("main"), OnDemand: true})
	streams := make(chan *Stream, 5)
	for range 5 {
		go func() {
			s, release, err := hub.Acquire(context.Background(), "cam1")
			if err != nil {
				streams <- nil
				return
			}
			defer release()
			streams <- s
		}()
	}
	var first *Stream
	for range 5 {
		s := <-streams
		if s == nil {
			t.Fatal("acquire failed")
		}
		if first == nil {
			first = s
		} else if s != first {
			t.Fatal("concurrent viewers got different upstreams")
		}
	}
}

func TestUnreachableCameraAnswersStartTimeout(t *testing.T) {
	hub := NewHub(HubConfig{Logger: testLogger(), StartTimeout: 500 * time.Millisecond})
	t.Cleanup(hub.Close)
	// Nothing listens on this port.
	hub.SetPoint("dead", SourceConfig{Type: SourceRTSP, URL: "rtsp://127.0.0.1:1/none", OnDemand: true})
	start := time.Now()
	_, _, err := hub.Acquire(context.Background(), "dead")
	if !errors.Is(err, ErrStartTimeout) {
		t.Fatalf("err = %v, want ErrStartTimeout", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("start timeout took %v", el)
	}
	if _, _, err := hub.Acquire(context.Background(), "nope"); !errors.Is(err, ErrUnknownPoint) {
		t.Fatalf("unknown point: %v", err)
	}
}

func TestViewerStaysThroughCameraLossAndReconnect(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	addr := cam.Addr()
	hub := NewHub(HubConfig{Logger: testLogger(), SourceReadTimeout: time.Second})
	t.Cleanup(hub.Close)
	hub.SetPoint("cam1", SourceConfig{Type: SourceRTSP, URL: cam.URL("main"), OnDemand: true})
	w := newTestWebRTC(t)
	c := connectViewer(t, hub, w, "cam1", whepclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	cam.Close()
	waitFor(t, 5*time.Second, "source reported lost", func() bool {
		st, _ := hub.Stats("cam1")
		return st.State == StateWaiting
	})
	before := c.Stats().Frames
	startCamera(t, addr)
	waitFor(t, 20*time.Second, "frames after reconnect", func() bool {
		return c.Stats().Frames > before+25
	})
	if st := c.Stats(); st.SeqGaps != 0 {
		t.Fatalf("viewer saw %d sequence gaps across the reconnect", st.SeqGaps)
	}
}

// recordingDemander stands in for the centre's agent registry: it answers
// Demand with ok and counts the calls.
type recordingDemander struct {
	ok       bool
	demands  atomic.Int64
	undemand atomic.Int64
	demanded chan string // gets the point of every Demand, if set
}

func (d *recordingDemander) Demand(id string) bool {
	d.demands.Add(1)
	if d.demanded != nil {
		select {
		case d.demanded <- id:
		default:
		}
	}
	return d.ok
}

func (d *recordingDemander) Undemand(string) { d.undemand.Add(1) }

// publisherSession returns the one recording publisher of point.
func publisherSession(t *testing.T, srv *RTSPServer, point string) (RTSPSession, bool) {
	t.Helper()
	var found []RTSPSession
	for _, s := range srv.Sessions() {
		if s.Publisher && s.PointID == point {
			found = append(found, s)
		}
	}
	if len(found) > 1 {
		t.Fatalf("%d publishers on %s", len(found), point)
	}
	if len(found) == 0 {
		return RTSPSession{}, false
	}
	return found[0], true
}

// An encoder publishing into a point is not a relay the centre asked for:
// nobody could ask it back, so a viewer leaving must never disconnect it,
// whether or not the point is on demand (the centre's Demander answers
// false for any point without an agent).
func TestPublisherNobodyDemandedKeepsPublishingWithNoViewer(t *testing.T) {
	const grace = 150 * time.Millisecond
	for _, onDemand := range []bool{false, true} {
		t.Run(fmt.Sprintf("on_demand=%v", onDemand), func(t *testing.T) {
			d := &recordingDemander{ok: false}
			hub := NewHub(HubConfig{Logger: testLogger(), IdleGrace: grace, StartTimeout: 15 * time.Second, Demander: d})
			t.Cleanup(hub.Close)
			srv := startRTSPServer(t, hub)
			w := newTestWebRTC(t)
			hub.SetPoint("enc", SourceConfig{Type: SourcePublish, OnDemand: onDemand})
			publishWithFFmpeg(t, fmt.Sprintf("rtsp://pub:secret-key@%s/enc", srv.Addr()))
			var pub RTSPSession
			waitFor(t, 15*time.Second, "publisher recording", func() bool {
				var ok bool
				pub, ok = publisherSession(t, srv, "enc")
				st, _ := hub.Stats("enc")
				return ok && st.State == StateLive
			})

			// A viewer comes for a second and goes.
			c := connectViewer(t, hub, w, "enc", whepclient.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.WaitKeyframe(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			c.Close()
			waitFor(t, 5*time.Second, "viewer gone", func() bool {
				st, _ := hub.Stats("enc")
				return st.Readers == 0
			})

			// Many idle grace periods with nobody watching.
			time.Sleep(20 * grace)
			now, ok := publisherSession(t, srv, "enc")
			if !ok || !now.Started.Equal(pub.Started) {
				t.Fatalf("publisher was disconnected after its viewer left (still there: %v)", ok)
			}
			st, _ := hub.Stats("enc")
			if st.State != StateLive || st.SourceOnlineSecs < (20*grace).Seconds() {
				t.Fatalf("stream not live since the publisher came: %+v", st)
			}
			if n := d.undemand.Load(); n != 0 {
				t.Fatalf("Undemand called %d times for a point nobody demanded", n)
			}

			// A new viewer still gets the picture at once.
			c2 := connectViewer(t, hub, w, "enc", whepclient.Options{})
			if err := c2.WaitKeyframe(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "frames", func() bool { return c2.Stats().Frames >= 25 })
		})
	}
}

// A relay the centre demanded is the one publisher idle may stop: after
// the last reader's grace it is disconnected and undemanded, and the next
// reader demands it again.
func TestDemandedRelayStopsAfterIdleGraceAndIsDemandedAgain(t *testing.T) {
	const grace = 200 * time.Millisecond
	d := &recordingDemander{ok: true, demanded: make(chan string, 1)}
	hub := NewHub(HubConfig{Logger: testLogger(), IdleGrace: grace, StartTimeout: 10 * time.Second, Demander: d})
	t.Cleanup(hub.Close)
	srv := startRTSPServer(t, hub)
	hub.SetPoint("relay", SourceConfig{Type: SourcePublish, OnDemand: true})
	url := fmt.Sprintf("rtsp://pub:secret-key@%s/relay", srv.Addr())

	for round := int64(1); round <= 2; round++ {
		acquired, leave := make(chan error, 1), make(chan struct{})
		go func() {
			_, release, err := hub.Acquire(context.Background(), "relay")
			acquired <- err
			if err == nil {
				<-leave
				release()
			}
		}()
		select {
		case <-d.demanded:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the waiting reader did not demand a relay", round)
		}
		// The relay the centre asked for arrives and the reader gets it.
		pub, err := startPublisher(t, url)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-acquired; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// While the reader holds the stream, the relay stays.
		time.Sleep(5 * grace)
		if !pub.connected() {
			t.Fatalf("round %d: relay dropped while a reader held it", round)
		}
		close(leave)
		waitFor(t, 20*grace, "demanded relay stopped after the idle grace", func() bool { return !pub.connected() })
		waitFor(t, 5*time.Second, "relay undemanded", func() bool { return d.undemand.Load() == round })
		if st, _ := hub.Stats("relay"); st.State != StateIdle {
			t.Fatalf("round %d: state %s after idle, want idle", round, st.State)
		}
	}
	if n := d.demands.Load(); n != 2 {
		t.Fatalf("Demand called %d times, want once per cold start", n)
	}
}

// A PATCH (SetPoint with a new source) racing a DELETE (RemovePoint) or
// shutdown (Close) must never leave a puller connected to the camera, and
// Close must return.
func TestReconfigureRacingRemoveOrCloseLeavesNoPuller(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	// Two ways to the same camera, so that the two configurations differ.
	a, b := startTCPCounter(t, cam.Addr()), startTCPCounter(t, cam.Addr())
	urlA := "rtsp://cam:campass@" + a.Addr() + "/main"
	urlB := "rtsp://cam:campass@" + b.Addr() + "/main"
	open := func() int { return a.Open() + b.Open() }

	hub := NewHub(HubConfig{Logger: testLogger()})
	for i := range 200 {
		id := fmt.Sprint("p", i)
		hub.SetPoint(id, SourceConfig{Type: SourceRTSP, URL: urlA})
		done := make(chan struct{})
		go func() {
			defer close(done)
			hub.SetPoint(id, SourceConfig{Type: SourceRTSP, URL: urlB})
		}()
		hub.RemovePoint(id)
		<-done
		if i%2 == 1 {
			// Let some pullers get as far as playing before the race.
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Every point was removed, so nothing may pull any more (a racing
	// SetPoint either came first and was removed, or came after the
	// removal and re-created the point; remove those).
	for i := range 200 {
		hub.RemovePoint(fmt.Sprint("p", i))
	}
	waitFor(t, 10*time.Second, "camera connections closed after RemovePoint", func() bool { return open() == 0 })
	closeWithin(t, hub, 10*time.Second)

	for i := range 100 {
		hub := NewHub(HubConfig{Logger: testLogger()})
		hub.SetPoint("p", SourceConfig{Type: SourceRTSP, URL: urlA})
		if i%2 == 1 {
			time.Sleep(20 * time.Millisecond)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			hub.SetPoint("p", SourceConfig{Type: SourceRTSP, URL: urlB})
			hub.SetPoint("q", SourceConfig{Type: SourceRTSP, URL: urlB})
		}()
		closeWithin(t, hub, 10*time.Second)
		<-done
	}
	waitFor(t, 10*time.Second, "camera connections closed after Close", func() bool { return open() == 0 })
}

// closeWithin fails the test if hub.Close does not return in time.
func closeWithin(t *testing.T, hub *Hub, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		hub.Close()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Hub.Close did not return within %v", d)
	}
}
