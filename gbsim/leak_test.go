package gbsim

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tianyan/vms/gb28181/gbsdp"
)

func TestStoppedDeviceLeavesNoGoroutines(t *testing.T) {
	s := newTestServer(t)
	before := goleak.IgnoreCurrent()
	id := "34020000001320000040"
	d, err := NewDevice(baseConfig(s, "udp", id))
	if err != nil {
		t.Fatal(err)
	}
	d.cfg.Logger, d.log = discard(), discard()
	d.Start(t.Context())
	waitFor(t, "registered", 10*time.Second, d.Registered)
	c, code := s.invite(t, id, d.Channels()[0].ID, gbsdp.TCPActive, "0200000040")
	if code != 200 {
		t.Fatalf("INVITE %d", code)
	}
	c.frame(t, 5*time.Second)
	d.Stop() // mid-stream: the session, its sender and the SIP reader must all end
	c.stop()
	// The test platform's sipgo transactions linger on their own timers;
	// only the device's goroutines are under test here.
	err = goleak.Find(before)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if strings.Contains(line, "/gbsim/") && !strings.Contains(line, "_test.go") {
				t.Fatalf("device goroutine left after Stop:\n%v", err)
			}
		}
	}
}
