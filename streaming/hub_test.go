package streaming

import (
	"context"
	"errors"
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
