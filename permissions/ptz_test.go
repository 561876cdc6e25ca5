package permissions

import (
	"testing"
	"time"
)

func TestPTZHigherPriorityTakesOverAndEqualPriorityWaitsForLease(t *testing.T) {
	a := NewPTZArbiter(10 * time.Second)
	t0 := time.Unix(1000, 0)
	if ok, _ := a.Acquire("p1", "duty", 5, t0); !ok {
		t.Fatal("first user should get control")
	}
	if ok, who := a.Acquire("p1", "peer", 5, t0.Add(time.Second)); ok || who != "duty" {
		t.Fatalf("equal priority took over (ok=%v holder=%s)", ok, who)
	}
	if ok, _ := a.Acquire("p1", "duty", 5, t0.Add(2*time.Second)); !ok {
		t.Fatal("holder must keep control and extend its lease")
	}
	if ok, _ := a.Acquire("p1", "peer", 5, t0.Add(11*time.Second)); ok {
		t.Fatal("lease was extended at t+2s; peer must still wait at t+11s")
	}
	if ok, _ := a.Acquire("p1", "peer", 5, t0.Add(13*time.Second)); !ok {
		t.Fatal("after the lease lapses an equal-priority user gets control")
	}
	if ok, _ := a.Acquire("p1", "leader", 9, t0.Add(14*time.Second)); !ok {
		t.Fatal("higher priority must take over at once")
	}
	if ok, who := a.Acquire("p1", "peer", 5, t0.Add(15*time.Second)); ok || who != "leader" {
		t.Fatal("lower priority must not take back control")
	}
	a.Release("p1", "leader")
	if ok, _ := a.Acquire("p1", "peer", 1, t0.Add(16*time.Second)); !ok {
		t.Fatal("released control must be free")
	}
}
