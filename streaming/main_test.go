package streaming

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// goroutine the hub, its paths, pullers, the RTSP server and WebRTC
// sessions start must have been stopped by their owners.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOptions()...)
}

// leakOptions lists the only goroutines allowed to survive: background
// workers of libraries that start them once per process and never stop
// them. There are none today — gortsplib, pion and camsim stop everything
// on Close — so any survivor is ours. Add an IgnoreTopFunction here only
// for such a library worker, with the reason beside it.
func leakOptions() []goleak.Option {
	return nil
}
