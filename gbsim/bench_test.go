package gbsim

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/tianyan/vms/gb28181/gbsdp"
	"github.com/tianyan/vms/gb28181/manscdp"
)

// BenchmarkInviteToKeyframe measures the device side of a cold start: the
// platform sends INVITE, ACK and IFameCmd at once and waits for the first
// keyframe out of the PS/RTP receiver (UDP, clip GOP 2 s). Reported: p50
// and max over b.N starts.
func BenchmarkInviteToKeyframe(b *testing.B) {
	s := newTestServer(b)
	id := "34020000001320000030"
	cfg := DeviceConfig{ID: id, Server: s.udp, ServerID: testServerID, Domain: testDomain, Password: testPassword,
		KeepaliveInterval: time.Minute, Logger: discard()}
	d := startDevice(b, cfg)
	waitFor(b, "registered", 10*time.Second, d.Registered)
	ch := d.Channels()[0]
	t := &testing.T{}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c, code := s.invite(t, id, ch.ID, gbsdp.UDP, "0200000030")
		if code != 200 {
			b.Fatalf("INVITE %d", code)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.sendMANSCDP(ctx, id, &manscdp.DeviceControl{Header: manscdp.Header{SN: i, DeviceID: ch.ID}, IFameCmd: manscdp.IFameSend}); err != nil {
			b.Fatal(err)
		}
		cancel()
		for {
			select {
			case f := <-c.frames:
				if !f.Key {
					continue
				}
			case <-time.After(5 * time.Second):
				b.Fatal("no keyframe")
			}
			break
		}
		lat = append(lat, time.Since(start))
		c.bye(t)
		c.stop()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "ms-p50")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "ms-max")
}
