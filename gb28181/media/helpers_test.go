package media

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gb28181/ps"
)

// clipFrames returns the first n access units of the 640x360 H.264 clip
// as Annex-B frames at 25 fps.
func clipFrames(t testing.TB, n int) []ps.Frame {
	t.Helper()
	c, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[int]bool{}
	for _, k := range c.Keyframes {
		keys[k] = true
	}
	out := make([]ps.Frame, 0, n)
	for i := range n {
		au := c.AUs[i%len(c.AUs)]
		var b []byte
		for _, nalu := range au {
			b = append(append(b, 0, 0, 0, 1), nalu...)
		}
		ts := int64(i * 3600)
		out = append(out, ps.Frame{Type: ps.H264, PTS: ts, DTS: ts, Data: b, Key: keys[i%len(c.AUs)]})
	}
	return out
}

// collector gathers what a Receiver emits, for checks from the test.
type collector struct {
	mu     sync.Mutex
	frames []ps.Frame
	more   chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) emit(f ps.Frame) {
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// wait returns the frames once n arrived, failing after a generous bound.
func (c *collector) wait(t *testing.T, n int) []ps.Frame {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]ps.Frame(nil), c.frames...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("got %d frames, want %d", len(got), n)
		}
	}
}

// runReceiver runs r until the test ends; the returned channel gives
// Run's result.
func runReceiver(t *testing.T, r *Receiver, emit func(ps.Frame)) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, emit) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		r.Close()
	})
	return done
}

func assertFrames(t *testing.T, want, got []ps.Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Type != w.Type || g.PTS != w.PTS || g.Key != w.Key || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("frame %d: got %v pts %d key %v len %d, want %v pts %d key %v len %d",
				i, g.Type, g.PTS, g.Key, len(g.Data), w.Type, w.PTS, w.Key, len(w.Data))
		}
	}
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// testWriter drops log output (tests assert behaviour, not log lines).
type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { return len(p), nil }
