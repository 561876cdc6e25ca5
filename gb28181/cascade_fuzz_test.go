package gb28181

import (
	"net"
	"strings"
	"testing"

	"github.com/tianyan/vms/gb28181/gbsdp"
)

// FuzzPlanMedia feeds arbitrary SDP to what reads a platform's INVITE and
// answers it: never a panic, and never a destination outside the
// platform's address and media networks.
func FuzzPlanMedia(f *testing.F) {
	for _, tr := range []gbsdp.Transport{gbsdp.UDP, gbsdp.TCPActive, gbsdp.TCPPassive} {
		f.Add(gbsdp.NewOffer(gbsdp.Offer{ID: testServerID, IP: "10.9.0.1", Port: 30000, Transport: tr, SSRC: "0440370001"}).Marshal())
	}
	f.Add(gbsdp.NewOffer(gbsdp.Offer{ID: testServerID, IP: "192.0.2.7", Port: 30000, Transport: gbsdp.UDP, SSRC: "1"}).Marshal())
	f.Add([]byte("v=0\r\no=x 0 0 IN IP4 10.9.0.1\r\ns=Playback\r\nc=IN IP4 10.9.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\ny=abc\r\n"))
	f.Add([]byte("v=0\nm=video 65536 TCP/RTP/AVP 96\na=setup:active\nc=IN IP6 ::1\n"))
	f.Add([]byte{0, 0xff, '\n', '='})
	l := &link{cfg: platformRecord{Platform: Platform{MediaNetworks: []string{"10.9.1.0/24"}}}, ip: net.ParseIP("10.9.0.1")}
	f.Fuzz(func(t *testing.T, body []byte) {
		plan, code, _ := l.planMedia(body)
		if code != 0 {
			return
		}
		if plan.transport != gbsdp.TCPPassive {
			host, _, err := net.SplitHostPort(plan.dest)
			if err != nil || !(host == "10.9.0.1" || strings.HasPrefix(host, "10.9.1.")) {
				t.Fatalf("accepted destination %q", plan.dest)
			}
		}
		if a, err := gbsdp.NewAnswer(plan.offer, gbsdp.Answer{ID: testServerID, IP: "10.0.0.2", Port: 9, SSRC: plan.offer.SSRC}); err == nil {
			_ = a.Marshal()
		}
	})
}
