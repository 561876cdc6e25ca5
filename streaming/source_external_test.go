package streaming

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/whepclient"
)

// clipSource is an in-process source: it packetises the 640x360 clip's
// H.264 with gortsplib's encoder, in real time, as the GB/T 28181 source
// does with what it demuxes.
type clipSource struct {
	// failAfter makes the first run return an error after that many
	// frames (0: never).
	failAfter int
	// neverReady makes Run wait for its context without declaring media.
	neverReady bool

	runs    atomic.Int32
	running atomic.Int32
	// cancelled counts runs that ended because their context did.
	cancelled atomic.Int32
}

var errClipSourceFailed = errors.New("clip source: device went away")

func (s *clipSource) Run(ctx context.Context, out ExternalOutput) error {
	run := s.runs.Add(1)
	s.running.Add(1)
	defer s.running.Add(-1)
	if s.neverReady {
		<-ctx.Done()
		s.cancelled.Add(1)
		return ctx.Err()
	}
	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		return err
	}
	h := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.Params[0], PPS: clip.Params[1]}
	enc, err := h.CreateEncoder()
	if err != nil {
		return err
	}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{h}}
	if err := out.Ready(&description.Session{Medias: []*description.Media{media}}); err != nil {
		return err
	}
	tick := time.NewTicker(time.Second / time.Duration(clip.FPS))
	defer tick.Stop()
	var ts uint32
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			s.cancelled.Add(1)
			return ctx.Err()
		case <-tick.C:
		}
		if run == 1 && s.failAfter > 0 && n == s.failAfter {
			return errClipSourceFailed
		}
		pkts, err := enc.Encode(clip.AUs[n%len(clip.AUs)])
		if err != nil {
			return err
		}
		for _, pkt := range pkts {
			pkt.Timestamp = ts
			out.WriteRTP(media, pkt)
		}
		ts += uint32(90000 / clip.FPS)
	}
}

// sourceStates records OnSourceState calls.
type sourceStates struct {
	mu  sync.Mutex
	log []bool
}

func (s *sourceStates) record(_ string, up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, up)
}

func (s *sourceStates) get() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.log...)
}

func TestExternalSourceStartsWithFirstReaderAndIdleCancelsIt(t *testing.T) {
	var states sourceStates
	hub := NewHub(HubConfig{Logger: testLogger(), IdleGrace: 300 * time.Millisecond, OnSourceState: states.record})
	t.Cleanup(hub.Close)
	src := &clipSource{}
	hub.SetPoint("gb1", SourceConfig{Type: SourceExternal, External: src, OnDemand: true})
	time.Sleep(100 * time.Millisecond)
	if n := src.runs.Load(); n != 0 {
		t.Fatalf("on-demand source ran %d times before any reader", n)
	}
	w := newTestWebRTC(t)
	c := connectViewer(t, hub, w, "gb1", whepclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "25 frames", func() bool { return c.Stats().Frames >= 25 })
	if st := c.Stats(); st.SeqGaps != 0 {
		t.Fatalf("sequence gaps: %d", st.SeqGaps)
	}
	hs, err := hub.Stats("gb1")
	if err != nil {
		t.Fatal(err)
	}
	if hs.State != StateLive || hs.VideoCodec != CodecH264 || hs.Width != 640 || hs.Readers != 1 {
		t.Fatalf("stats: %+v", hs)
	}
	// A second SetPoint with the same source changes nothing.
	hub.SetPoint("gb1", SourceConfig{Type: SourceExternal, External: src, OnDemand: true})
	c.Close()
	waitFor(t, 5*time.Second, "idle grace to cancel the source", func() bool {
		st, _ := hub.Stats("gb1")
		return src.running.Load() == 0 && st.State == StateIdle
	})
	if src.runs.Load() != 1 || src.cancelled.Load() != 1 {
		t.Fatalf("runs %d, cancelled %d: want one run, ended by its context", src.runs.Load(), src.cancelled.Load())
	}
	if got := states.get(); len(got) != 1 || !got[0] {
		t.Fatalf("source states %v, want [up] (a stop on idle is not a loss)", got)
	}
}

func TestExternalSourceNeverReadyAnswersStartTimeout(t *testing.T) {
	hub := NewHub(HubConfig{Logger: testLogger(), StartTimeout: 300 * time.Millisecond, IdleGrace: 200 * time.Millisecond})
	t.Cleanup(hub.Close)
	src := &clipSource{neverReady: true}
	hub.SetPoint("gb1", SourceConfig{Type: SourceExternal, External: src, OnDemand: true})
	start := time.Now()
	_, _, err := hub.Acquire(context.Background(), "gb1")
	if !errors.Is(err, ErrStartTimeout) {
		t.Fatalf("Acquire: %v, want ErrStartTimeout", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("start timeout after %v", el)
	}
	// Nobody is waiting any more: the idle grace cancels the attempt.
	waitFor(t, 5*time.Second, "the waiting source to be cancelled", func() bool {
		return src.running.Load() == 0 && src.cancelled.Load() == 1
	})
}

func TestExternalSourceLostIsRestartedAndViewerStays(t *testing.T) {
	var states sourceStates
	hub := NewHub(HubConfig{Logger: testLogger(), OnSourceState: states.record})
	t.Cleanup(hub.Close)
	src := &clipSource{failAfter: 30}
	hub.SetPoint("gb1", SourceConfig{Type: SourceExternal, External: src, OnDemand: true})
	w := newTestWebRTC(t)
	c := connectViewer(t, hub, w, "gb1", whepclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a second run", func() bool { return src.runs.Load() >= 2 })
	before := c.Stats().Frames
	waitFor(t, 10*time.Second, "frames after the restart", func() bool { return c.Stats().Frames > before+25 })
	if st := c.Stats(); st.SeqGaps != 0 {
		t.Fatalf("viewer saw %d sequence gaps across the restart", st.SeqGaps)
	}
	waitFor(t, 5*time.Second, "up, down, up", func() bool {
		got := states.get()
		return len(got) >= 3 && got[0] && !got[1] && got[2]
	})
	if st, _ := hub.Stats("gb1"); st.State != StateLive {
		t.Fatalf("stats after restart: %+v", st)
	}
}

// A source removed or the hub closed while the source runs: its context
// ends and the hub waits for it (goleak in TestMain checks nothing
// survives).
func TestRemovingExternalPointCancelsItsSource(t *testing.T) {
	hub := NewHub(HubConfig{Logger: testLogger()})
	src := &clipSource{}
	hub.SetPoint("gb1", SourceConfig{Type: SourceExternal, External: src, OnDemand: false})
	waitFor(t, 5*time.Second, "an always-on source to start", func() bool {
		st, _ := hub.Stats("gb1")
		return st.State == StateLive
	})
	hub.RemovePoint("gb1")
	waitFor(t, 5*time.Second, "the source to stop", func() bool { return src.running.Load() == 0 })
	other := &clipSource{}
	hub.SetPoint("gb2", SourceConfig{Type: SourceExternal, External: other})
	waitFor(t, 5*time.Second, "the second source to run", func() bool { return other.running.Load() == 1 })
	closeWithin(t, hub, 5*time.Second)
	if other.running.Load() != 0 || other.cancelled.Load() != 1 {
		t.Fatal("Close returned with the source still running")
	}
}

// valueSource is an ExternalSource that is a non-comparable value: the
// hub must not panic comparing configurations holding it.
type valueSource struct{ tags []string }

func (valueSource) Run(ctx context.Context, _ ExternalOutput) error {
	<-ctx.Done()
	return nil
}

func TestSameConfigComparesExternalByIdentityWithoutPanicking(t *testing.T) {
	a, b := &clipSource{}, &clipSource{}
	cases := []struct {
		x, y SourceConfig
		same bool
	}{
		{SourceConfig{Type: SourceExternal, External: a}, SourceConfig{Type: SourceExternal, External: a}, true},
		{SourceConfig{Type: SourceExternal, External: a}, SourceConfig{Type: SourceExternal, External: b}, false},
		{SourceConfig{Type: SourceExternal, External: a}, SourceConfig{Type: SourceExternal}, false},
		{SourceConfig{Type: SourceRTSP, URL: "rtsp://x"}, SourceConfig{Type: SourceRTSP, URL: "rtsp://x"}, true},
		{SourceConfig{Type: SourceExternal, External: valueSource{}}, SourceConfig{Type: SourceExternal, External: valueSource{}}, false},
	}
	for i, c := range cases {
		if got := sameConfig(c.x, c.y); got != c.same {
			t.Errorf("case %d: sameConfig = %v, want %v", i, got, c.same)
		}
	}
}
