package streaming

import (
	"errors"
	"sync"
	"testing"
)

func TestViewLimitsRefuseBeyondEachCapAndGiveSlotsBack(t *testing.T) {
	l := NewViewLimits(3, 4)
	var held []func()
	for range 3 {
		release, err := l.Reserve("ann", "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	_, err := l.Reserve("ann", "10.0.0.2")
	var lim *LimitError
	if !errors.As(err, &lim) || lim.Scope != "user" || lim.Limit != 3 || !errors.Is(err, ErrTooManyViews) {
		t.Fatalf("4th view of ann: %v, want the user cap of 3", err)
	}
	// Another user at the same address fills the address.
	release, err := l.Reserve("bob", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve("cy", "10.0.0.1"); !errors.As(err, &lim) || lim.Scope != "ip" || lim.Limit != 4 {
		t.Fatalf("5th view from 10.0.0.1: %v, want the address cap of 4", err)
	}
	// Releasing twice gives back one slot, not two.
	release()
	release()
	if u, ip := l.Views("bob", "10.0.0.1"); u != 0 || ip != 3 {
		t.Fatalf("after bob left: bob %d, address %d; want 0 and 3", u, ip)
	}
	held[0]()
	if _, err := l.Reserve("ann", "10.0.0.1"); err != nil {
		t.Fatalf("ann after closing one of her views: %v", err)
	}
	if len(l.users) != 1 || len(l.ips) != 1 {
		t.Fatalf("keys at zero kept: users %v, ips %v", l.users, l.ips)
	}
}

func TestViewLimitsHoldUnderConcurrentReservations(t *testing.T) {
	l := NewViewLimits(10, 100)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted []func()
	)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if release, err := l.Reserve("ann", "10.0.0.1"); err == nil {
				mu.Lock()
				granted = append(granted, release)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(granted) != 10 {
		t.Fatalf("%d of 50 concurrent reservations granted, want 10", len(granted))
	}
	for _, r := range granted {
		r()
	}
	if u, ip := l.Views("ann", "10.0.0.1"); u != 0 || ip != 0 {
		t.Fatalf("slots leaked: %d, %d", u, ip)
	}
}

func TestNilViewLimitsCapNothing(t *testing.T) {
	var l *ViewLimits
	release, err := l.Reserve("ann", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	release()
}
