// Package backoff is the jittered exponential backoff every reconnecting
// loop of Tianyan uses (camera pulls, edge relays, the agent's link), so
// they all behave alike: wait between half and all of the current delay,
// double it up to Max, and start over after an attempt that lasted.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff hands out the waits between attempts. The zero value is not
// usable; set Min and Max.
type Backoff struct {
	Min, Max time.Duration
	// ResetAfter: an attempt that ran at least this long was a success,
	// and the delay starts again from Min.
	ResetAfter time.Duration

	cur time.Duration
}

// Next returns how long to wait after an attempt that ran for ran.
func (b *Backoff) Next(ran time.Duration) time.Duration {
	if b.cur == 0 || (b.ResetAfter > 0 && ran >= b.ResetAfter) {
		b.cur = b.Min
	}
	wait := b.cur/2 + rand.N(b.cur/2+1)
	b.cur = min(b.cur*2, b.Max)
	return wait
}
