package permissions

import (
	"sync"
	"time"
)

// PTZArbiter decides who steers a PTZ camera when several users try at
// once: a higher PTZ priority takes control; at equal priority the current
// holder keeps it until its lease lapses.
type PTZArbiter struct {
	lease time.Duration

	mu      sync.Mutex
	holders map[string]ptzHolder
}

type ptzHolder struct {
	user     string
	priority int
	until    time.Time
}

// NewPTZArbiter returns an arbiter whose leases last lease after each command.
func NewPTZArbiter(lease time.Duration) *PTZArbiter {
	if lease <= 0 {
		lease = 30 * time.Second
	}
	return &PTZArbiter{lease: lease, holders: map[string]ptzHolder{}}
}

// Acquire asks to steer point as user with priority. It returns whether the
// user holds control now, and otherwise who does.
func (a *PTZArbiter) Acquire(point, user string, priority int, now time.Time) (ok bool, holder string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, held := a.holders[point]
	if held && h.user != user && now.Before(h.until) && priority <= h.priority {
		return false, h.user
	}
	a.holders[point] = ptzHolder{user: user, priority: priority, until: now.Add(a.lease)}
	// Keep the table small: drop lapsed leases as we go.
	if len(a.holders) > 1024 {
		for p, x := range a.holders {
			if now.After(x.until) {
				delete(a.holders, p)
			}
		}
	}
	return true, user
}

// Release gives up control if user holds it.
func (a *PTZArbiter) Release(point, user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h, ok := a.holders[point]; ok && h.user == user {
		delete(a.holders, point)
	}
}
