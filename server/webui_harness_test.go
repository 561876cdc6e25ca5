package server

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tianyan/vms/internal/browsertest"
)

// uiBrowser is a headless Debian Chromium driving the real web app. Every
// console.error and uncaught exception of the page fails the test.
type uiBrowser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	jsErrs   []string
	logMsgs  []string
	requests []string // every URL the page asked for

	width, height int64
	mobile        bool
}

// newUIBrowser starts Chromium with a width×height viewport (mobile
// emulation when mobile) and stops it when the test ends.
func newUIBrowser(t *testing.T, width, height int64, mobile bool) *uiBrowser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	bctx, bcancel := browsertest.Start(ctx, t, chromedp.WindowSize(int(width), int(height)))
	b := &uiBrowser{t: t, ctx: bctx, width: width, height: height, mobile: mobile}
	b.report()
	t.Cleanup(func() { bcancel(); cancel() })
	b.attach()
	return b
}

// incognito opens a tab in a fresh browser context of the same Chromium:
// no cookies, storage or cache shared with b, as another person's browser.
// Its errors and requests are checked like b's.
func (b *uiBrowser) incognito() *uiBrowser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	nb := &uiBrowser{t: b.t, ctx: ctx, width: b.width, height: b.height, mobile: b.mobile}
	nb.report()
	b.t.Cleanup(cancel)
	nb.attach()
	return nb
}

// report fails the test, when it ends, for every console error, uncaught
// exception and request off 127.0.0.1 of the tab. Registered before the
// browser's own cleanup, it runs after the browser is gone (LIFO).
func (b *uiBrowser) report() {
	t := b.t
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.jsErrs {
			t.Errorf("browser: %s", e)
		}
		// The app runs on a private network: it must never reach out.
		for _, r := range b.requests {
			u, err := url.Parse(r)
			if err != nil || (u.Scheme != "data" && u.Scheme != "blob" && u.Hostname() != "127.0.0.1") {
				t.Errorf("browser requested %s, which is not on 127.0.0.1", r)
			}
		}
		if t.Failed() {
			for _, e := range b.logMsgs {
				t.Logf("browser log: %s", e)
			}
		}
	})
}

// attach starts the tab, collects its console errors, exceptions and
// requests for report, and sets the viewport.
func (b *uiBrowser) attach() {
	t := b.t
	t.Helper()
	if err := chromedp.Listen(b.ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				b.jsErrs = append(b.jsErrs, "console.error: "+uiConsoleArgs(e.Args))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			b.jsErrs = append(b.jsErrs, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, e.Request.URL)
		case *cdplog.EventEntryAdded:
			// Network log entries (the 401 before login, a 404 probe of an
			// optional endpoint) are expected; shown only on failure.
			if e.Entry != nil && e.Entry.Source == cdplog.EntrySourceSecurity && e.Entry.Level == cdplog.EntryLevelError {
				// A Content-Security-Policy violation: the app broke its own policy.
				b.jsErrs = append(b.jsErrs, "security: "+e.Entry.Text)
			}
			if e.Entry != nil {
				b.logMsgs = append(b.logMsgs, fmt.Sprintf("%s %s: %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	opts := []chromedp.EmulateViewportOption{}
	if b.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	b.do("set viewport", 10*time.Second, chromedp.EmulateViewport(b.width, b.height, opts...))
}

func uiConsoleArgs(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case a.Description != "":
			parts = append(parts, a.Description)
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// do runs actions within d or fails the test.
func (b *uiBrowser) do(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates js (awaiting a promise) and decodes its value into T.
func uiEval[T any](b *uiBrowser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitJS waits until the expression is truthy.
func (b *uiBrowser) waitJS(what, js string, d time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out after %v waiting for %s (%s; last error %v)", d, what, js, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves the viewport to testout/name.png.
func (b *uiBrowser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "testout"))
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// login fills the app's login form and waits for the app to leave it.
func (b *uiBrowser) login(user, pass string) {
	b.t.Helper()
	b.do("log in through the form", 15*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#u")),
		chromedp.SendKeys(chromedp.CSS("#u"), user),
		chromedp.SendKeys(chromedp.CSS("#p"), pass),
		chromedp.Click(chromedp.CSS("#login button")),
	)
	b.waitJS("the app past the login form", `!document.querySelector("#login") && document.querySelector("#logout")`, 10*time.Second)
}

// requested reports how many requests the page sent to URLs with prefix.
func (b *uiBrowser) requested(prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range b.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

// frames reads totalVideoFrames of the video matched by selector.
func (b *uiBrowser) frames(selector string) int {
	b.t.Helper()
	return uiEval[int](b, fmt.Sprintf(`(document.querySelector(%q)?.getVideoPlaybackQuality().totalVideoFrames) || 0`, selector))
}
