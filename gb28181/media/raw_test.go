package media

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gb28181/ps"
)

// A device that answered the offer's H264/98 sends RFC 6184 RTP, not PS:
// the Receiver configured for it hands out the same access units.
func TestRawH264OverRTPIsDepacketized(t *testing.T) {
	r, err := Listen(context.Background(), ReceiverConfig{Transport: UDP, Bind: "127.0.0.1", Payload: ps.H264, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runReceiver(t, r, col.emit)
	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := (&format.H264{PayloadTyp: 98, PacketizationMode: 1}).CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: r.Port()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 60
	for i := range n {
		pkts, err := enc.Encode(clip.AUs[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			p.Timestamp = uint32(i * 3600)
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	got := col.wait(t, n)
	keys := map[int]bool{}
	for _, k := range clip.Keyframes {
		keys[k] = true
	}
	for i := range n {
		want, _ := h264.AnnexB(clip.AUs[i]).Marshal()
		if got[i].Type != ps.H264 || got[i].PTS != int64(i*3600) || string(got[i].Data) != string(want) {
			t.Fatalf("frame %d: type %v pts %d len %d, want pts %d len %d", i, got[i].Type, got[i].PTS, len(got[i].Data), i*3600, len(want))
		}
		if got[i].Key != keys[i] {
			t.Fatalf("frame %d: key %v", i, got[i].Key)
		}
	}
}
