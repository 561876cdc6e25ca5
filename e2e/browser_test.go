package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/internal/browsertest"
)

// browser is a headless Debian Chromium driven over DevTools.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	jsErrors []string
}

// startBrowser launches Chromium; it is closed when the test ends. A
// missing Chromium fails the test: skipping would count an unrun check as
// a pass.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	ctx, cancel := browsertest.Start(context.Background(), t, chromedp.WindowSize(360, 740))
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			b.mu.Lock()
			b.jsErrors = append(b.jsErrors, e.ExceptionDetails.Text)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// step runs actions with a 30 s bound.
func (b *browser) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// openPoint logs in through the UI's form and opens the point's player.
func (b *browser) openPoint(base, user, password, pointID string) {
	b.t.Helper()
	b.step("log in and open point "+pointID,
		chromedp.Navigate(base+"/#/p/"+pointID),
		chromedp.WaitVisible(chromedp.CSS("#u")),
		chromedp.SendKeys(chromedp.CSS("#u"), user),
		chromedp.SendKeys(chromedp.CSS("#p"), password),
		chromedp.Click(chromedp.CSS("#login button")),
		chromedp.WaitVisible(chromedp.CSS("#video")))
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// frames is how many frames the player's <video> has decoded.
func (b *browser) frames() int {
	return eval[int](b, `document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames`)
}

// playerState is the state the player shows (live, reconnecting, camOffline …).
func (b *browser) playerState() string {
	return eval[string](b, `document.getElementById('status')?.dataset.state || ''`)
}

// session is the player's current WHEP session URL.
func (b *browser) session() string {
	return eval[string](b, `document.getElementById('video').dataset.session || ''`)
}

func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.jsErrors...)
}
