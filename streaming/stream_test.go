package streaming

import (
	"context"
	"testing"
	"time"
)

func TestSlowReaderSkipsToKeyframeWithoutStallingOthers(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	hub := NewHub(HubConfig{Logger: testLogger()})
	t.Cleanup(hub.Close)
	hub.SetPoint("cam1", SourceConfig{Type: SourceRTSP, URL: cam.URL("main"), OnDemand: true})
	stream, release, err := hub.Acquire(context.Background(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	slow, _ := stream.AddReader(8)
	defer slow.Close()
	fast, _ := stream.AddReader(8)
	defer fast.Close()

	// The fast reader drains for 3 s while the slow one reads nothing.
	var fastUnits, fastKeys int
	deadline := time.After(3 * time.Second)
drain:
	for {
		select {
		case u := <-fast.C():
			fastUnits++
			if u.Keyframe {
				fastKeys++
			}
		case <-deadline:
			break drain
		}
	}
	if fastUnits < 60 {
		t.Fatalf("fast reader got %d units in 3 s, want ~75 (25 fps)", fastUnits)
	}
	if fast.Dropped() != 0 {
		t.Fatalf("fast reader dropped %d units", fast.Dropped())
	}
	if slow.Dropped() == 0 {
		t.Fatal("slow reader overflowed but nothing was counted as dropped")
	}
	if fastKeys == 0 {
		t.Fatal("no keyframe in 3 s of a 2 s GOP")
	}

	// The slow reader's backlog is old; after it, the next unit must be a
	// keyframe so its decoder recovers at once.
	for range len(slow.C()) {
		<-slow.C()
	}
	select {
	case u := <-slow.C():
		if !u.Keyframe {
			t.Fatal("after overflow the slow reader resumed on a non-keyframe")
		}
	case <-time.After(4 * time.Second):
		t.Fatal("slow reader never resumed")
	}
}
