// Package browsertest starts the real browser the tests drive: Debian's
// headless Chromium through chromedp, with the flags this closed network
// needs (no background networking, loopback WebRTC, real local ICE
// addresses instead of mDNS names). Every browser test starts it here, so
// a flag learned once is learned for all.
//
// It is for tests only and must never be imported by production code.
package browsertest

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium is where Debian installs the browser (apt-get install chromium).
const Chromium = "/usr/bin/chromium"

// Options returns the allocator options for a headless Chromium with a
// fresh profile in a temporary directory of t, plus extra.
func Options(t testing.TB, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		t.Fatalf("chromium is required for this test (apt-get install chromium): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
	}
	return append(opts, extra...)
}

// Start launches Chromium under ctx and opens its first tab. The returned
// cancel closes the browser; call it before t's temporary directories are
// removed (a t.Cleanup registered after Start does that).
func Start(ctx context.Context, t testing.TB, extra ...chromedp.ExecAllocatorOption) (tab context.Context, cancel func()) {
	t.Helper()
	alloc, acancel := chromedp.NewExecAllocator(ctx, Options(t, extra...)...)
	tab, tcancel := chromedp.NewContext(alloc)
	return tab, func() { tcancel(); acancel() }
}
