package streaming

import (
	"errors"
	"fmt"
	"sync"
)

// Default caps on concurrent views (WHEP sessions plus RTSP reads).
const (
	// DefaultMaxViewsPerUser: two 16-tile IOC walls per account.
	DefaultMaxViewsPerUser = 32
	// DefaultMaxViewsPerIP: four full walls behind one address (an IOC room
	// behind NAT) before one address is refused.
	DefaultMaxViewsPerIP = 64
)

// ErrTooManyViews reports that a cap on concurrent views is reached; the
// error is a *LimitError naming which.
var ErrTooManyViews = errors.New("too many concurrent views")

// LimitError says which cap refused a view.
type LimitError struct {
	// Scope is "user" or "ip".
	Scope string
	// Limit is the cap that was reached.
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("too many concurrent views for this %s (at most %d)", e.Scope, e.Limit)
}

// Is makes errors.Is(err, ErrTooManyViews) hold.
func (e *LimitError) Is(target error) bool { return target == ErrTooManyViews }

// ViewLimits caps concurrent views per user and per client address. A view
// holds its slot from before the expensive work (starting a camera,
// negotiating WebRTC) until it ends, so offers still negotiating count too.
// Slots are taken and given back once per view, never per packet.
type ViewLimits struct {
	perUser, perIP int

	mu    sync.Mutex
	users map[string]int
	ips   map[string]int
}

// NewViewLimits caps views at perUser per user and perIP per client
// address; zero or less takes the defaults.
func NewViewLimits(perUser, perIP int) *ViewLimits {
	if perUser <= 0 {
		perUser = DefaultMaxViewsPerUser
	}
	if perIP <= 0 {
		perIP = DefaultMaxViewsPerIP
	}
	return &ViewLimits{perUser: perUser, perIP: perIP, users: map[string]int{}, ips: map[string]int{}}
}

// Reserve takes a slot for a view by user from ip, or fails with a
// *LimitError. release gives it back; calling it more than once is safe. A
// nil *ViewLimits caps nothing.
func (l *ViewLimits) Reserve(user, ip string) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users[user] >= l.perUser {
		return nil, &LimitError{Scope: "user", Limit: l.perUser}
	}
	if l.ips[ip] >= l.perIP {
		return nil, &LimitError{Scope: "ip", Limit: l.perIP}
	}
	l.users[user]++
	l.ips[ip]++
	var once sync.Once
	return func() { once.Do(func() { l.give(user, ip) }) }, nil
}

func (l *ViewLimits) give(user, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Forget keys at zero so addresses seen once do not pile up.
	if l.users[user]--; l.users[user] <= 0 {
		delete(l.users, user)
	}
	if l.ips[ip]--; l.ips[ip] <= 0 {
		delete(l.ips, ip)
	}
}

// Views reports the slots held now by user and by ip.
func (l *ViewLimits) Views(user, ip string) (byUser, byIP int) {
	if l == nil {
		return 0, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.users[user], l.ips[ip]
}
