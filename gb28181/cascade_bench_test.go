package gb28181

import (
	"context"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/gb28181/gbsdp"
	"github.com/tianyan/vms/gb28181/ps"
)

// BenchmarkCascadeInviteToFirstKeyframe measures what the city waits for:
// from its INVITE (sent over UDP SIP, media over UDP) to the first H.264
// keyframe demuxed from our PS, with the point's stream already running in
// the hub (another viewer keeps it warm) — the cascade's own cost. Reports
// p50 and max in ms.
func BenchmarkCascadeInviteToFirstKeyframe(b *testing.B) {
	upper := newTestServer(b, nil)
	f := newLower(b, upper, "udp")
	eventually(b, 10*time.Second, "registered", func() bool {
		d, ok := upper.Devices().Get(lowerID)
		return ok && d.Online && f.cascade.Status(upper.Config().ID).Registered
	})
	// Keep the stream warm, as a point someone watches already is.
	warm, release, err := f.hub.Acquire(context.Background(), pointIn1)
	if err != nil {
		b.Fatal(err)
	}
	defer release()
	_ = warm
	peer, err := upper.DevicePeer(lowerID)
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		key := make(chan struct{}, 1)
		go func() {
			d := ps.NewDemuxer()
			buf := make([]byte, 2048)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				var p rtpPayload
				if !p.parse(buf[:n]) {
					continue
				}
				_ = d.Feed(p.payload, func(fr ps.Frame) {
					if fr.Key {
						select {
						case key <- struct{}{}:
						default:
						}
					}
				})
			}
		}()
		start := time.Now()
		offer := gbsdp.NewOffer(gbsdp.Offer{ID: testServerID, IP: "127.0.0.1", Port: pc.LocalAddr().(*net.UDPAddr).Port, Transport: gbsdp.UDP, SSRC: "0440370001"})
		req, err := upper.NewRequest(sip.INVITE, peer, pointIn1, ContentTypeSDP, offer.Marshal())
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := upper.Do(ctx, req)
		cancel()
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("INVITE: %v %v", res, err)
		}
		ack := inDialog(upper, req, res, sip.ACK)
		upper.Route(ack, peer)
		if err := upper.Write(ack); err != nil {
			b.Fatal(err)
		}
		select {
		case <-key:
			lat = append(lat, time.Since(start))
		case <-time.After(10 * time.Second):
			b.Fatal("no keyframe")
		}
		bye := inDialog(upper, req, res, sip.BYE)
		upper.Route(bye, peer)
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = upper.Do(ctx, bye)
		cancel()
		pc.Close()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// rtpPayload is the payload of an RTP packet without extensions or CSRCs
// (what our sender writes).
type rtpPayload struct{ payload []byte }

func (p *rtpPayload) parse(b []byte) bool {
	if len(b) < 12 || b[0]>>6 != 2 {
		return false
	}
	p.payload = b[12:]
	return true
}
