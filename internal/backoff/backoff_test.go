package backoff

import (
	"testing"
	"time"
)

func TestNextDoublesWithJitterAndResetsAfterALongAttempt(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond, ResetAfter: 10 * time.Second}
	for i, cur := range []time.Duration{100, 200, 400, 800, 800} {
		cur *= time.Millisecond
		if w := b.Next(0); w < cur/2 || w > cur {
			t.Fatalf("attempt %d: wait %v outside [%v, %v]", i, w, cur/2, cur)
		}
	}
	if w := b.Next(time.Minute); w > 100*time.Millisecond {
		t.Fatalf("after a long attempt the wait is %v, want ≤ Min", w)
	}
}
