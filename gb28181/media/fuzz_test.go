package media

import (
	"bytes"
	"testing"

	"github.com/tianyan/vms/gb28181/ps"
)

// FuzzRTP4571 reads arbitrary bytes as an RFC 4571 TCP stream into a
// receiver's packet path: no panic, no packet longer than its frame, and
// the reader ends (EOF or a framing error) instead of looping.
func FuzzRTP4571(f *testing.F) {
	frames := clipFrames(f, 3)
	dev := &rawRTP{ssrc: 7, mux: ps.NewMuxer(ps.H264, ps.G711A)}
	var good []byte
	for _, fr := range frames {
		fr.Data = fr.Data[:min(len(fr.Data), 3000)]
		for _, p := range dev.packets(fr) {
			good = appendFrame(good, p)
		}
	}
	f.Add(good)
	f.Add(good[:700])
	f.Add(append([]byte{0, 0, 0, 0, 0x05, 0xdc, 0x80}, good...))
	f.Add([]byte{0, 12, 0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7})
	f.Add([]byte{0, 16, 0xb0, 0xe0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 9, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Receiver{cfg: ReceiverConfig{Transport: TCPPassive}, log: testLogger(), demux: ps.NewDemuxer()}
		fr := newFrameReader(bytes.NewReader(data))
		for range len(data) + 1 {
			pkt, err := fr.next()
			if err != nil {
				return
			}
			if len(pkt) > len(data) {
				t.Fatalf("packet of %d bytes from %d", len(pkt), len(data))
			}
			r.packet(pkt, func(ps.Frame) {})
		}
		t.Fatal("reader did not end")
	})
}
