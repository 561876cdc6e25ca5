package media

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/tianyan/vms/gb28181/ps"
)

// sendAll writes frames paced like a (fast) camera, so a UDP burst never
// overruns the loopback socket.
func sendAll(t *testing.T, s *Sender, frames []ps.Frame) {
	t.Helper()
	for _, f := range frames {
		if err := s.WriteFrame(f); err != nil {
			t.Errorf("write: %v", err)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Each of the three transports, with a Receiver on one side and a Sender
// on the other, over loopback sockets: every frame arrives whole.
func TestFramesCrossEveryTransport(t *testing.T) {
	cases := []struct {
		name     string
		recv     Transport
		send     Transport
		audio    bool
		expected bool
	}{
		{"udp", UDP, UDP, true, true},
		{"receiver listens, sender dials", TCPPassive, TCPActive, true, false},
		{"sender listens, receiver dials", TCPActive, TCPPassive, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, err := Listen(ctx, ReceiverConfig{Transport: tc.recv, Bind: "127.0.0.1", SSRC: 1234, ExpectSSRC: tc.expected, Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			var s *Sender
			scfg := SenderConfig{Transport: tc.send, SSRC: 1234, LocalBind: "127.0.0.1", Logger: testLogger()}
			if tc.send == TCPPassive {
				s, err = NewSender(ctx, scfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Connect(ctx, "127.0.0.1:"+strconv.Itoa(s.Port())); err != nil {
					t.Fatal(err)
				}
				if r.Port() == 0 {
					t.Fatal("connected receiver has no port")
				}
			} else {
				scfg.Remote = "127.0.0.1:" + strconv.Itoa(r.Port())
				s, err = Dial(ctx, scfg)
				if err != nil {
					t.Fatal(err)
				}
			}
			defer s.Close()
			col := newCollector()
			runReceiver(t, r, col.emit)

			video := clipFrames(t, 120)
			var all []ps.Frame
			for _, f := range video {
				if tc.audio {
					all = append(all, ps.Frame{Type: ps.G711A, PTS: f.PTS, DTS: f.PTS, Data: make([]byte, 320)})
				}
				all = append(all, f)
			}
			sendAll(t, s, all)
			got := col.wait(t, len(all))
			assertFrames(t, all, got)
		})
	}
}

// rawRTP sends hand-made RTP packets over UDP.
type rawRTP struct {
	conn *net.UDPConn
	seq  uint16
	ssrc uint32
	mux  *ps.Muxer
}

func newRawRTP(t *testing.T, port int, ssrc uint32) *rawRTP {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawRTP{conn: c, ssrc: ssrc, mux: ps.NewMuxer(ps.H264, 0), seq: uint16(ssrc)}
}

// packets packetises one frame into RTP packets (the Sender's layout).
func (p *rawRTP) packets(f ps.Frame) [][]byte {
	pack := p.mux.Video(f.PTS, f.DTS, f.Data, f.Key)
	var out [][]byte
	for len(pack) > 0 {
		n := min(len(pack), maxPayload)
		b := appendRTPHeader(nil, 96, n == len(pack), p.seq, uint32(f.PTS), p.ssrc)
		out = append(out, append(b, pack[:n]...))
		p.seq++
		pack = pack[n:]
	}
	return out
}

func (p *rawRTP) send(t *testing.T, pkts [][]byte) {
	t.Helper()
	for _, b := range pkts {
		if _, err := p.conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Millisecond)
}

// A device that ignores the y= SSRC is followed; a second stream sent to
// the same port at the same time is ignored.
func TestSSRCMismatchIsLearnedAndASecondStreamIgnored(t *testing.T) {
	r, err := Listen(context.Background(), ReceiverConfig{Transport: UDP, Bind: "127.0.0.1", SSRC: 1111, ExpectSSRC: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runReceiver(t, r, col.emit)
	device := newRawRTP(t, r.Port(), 2222)
	stray := newRawRTP(t, r.Port(), 3333)
	frames := clipFrames(t, 60)
	for i, f := range frames {
		device.send(t, device.packets(f))
		g := f
		g.Data = append([]byte{0, 0, 0, 1, 0x09, 0xf0}, f.Data...) // different bytes
		stray.send(t, stray.packets(g))
		if i == 0 {
			time.Sleep(20 * time.Millisecond) // the device's stream is first
		}
	}
	got := col.wait(t, len(frames))
	time.Sleep(50 * time.Millisecond)
	col.mu.Lock()
	n := len(col.frames)
	col.mu.Unlock()
	if n != len(frames) {
		t.Fatalf("%d frames out, want %d: the stray stream got in", n, len(frames))
	}
	assertFrames(t, frames, got)
}

// Packets shuffled within a few places come out as the original frames.
func TestReorderedPacketsAreResequenced(t *testing.T) {
	r, err := Listen(context.Background(), ReceiverConfig{Transport: UDP, Bind: "127.0.0.1", SSRC: 5, ExpectSSRC: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runReceiver(t, r, col.emit)
	dev := newRawRTP(t, r.Port(), 5)
	frames := clipFrames(t, 80)
	var pkts [][]byte
	for _, f := range frames {
		pkts = append(pkts, dev.packets(f)...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// The first packet seen starts the sequence; shuffle after it.
	for i := 1; i+4 <= len(pkts); i += 4 {
		rng.Shuffle(4, func(a, b int) { pkts[i+a], pkts[i+b] = pkts[i+b], pkts[i+a] })
	}
	for i := 0; i < len(pkts); i += 8 {
		dev.send(t, pkts[i:min(i+8, len(pkts))])
	}
	// The last frame ends at its marker only if the last packets came in
	// order; send one more frame to close it either way.
	dev.send(t, dev.packets(frames[0]))
	got := col.wait(t, len(frames))
	assertFrames(t, frames, got[:len(frames)])
}

// A lost packet costs its frame only: the frames after it are whole.
func TestLostPacketDropsOnlyItsFrame(t *testing.T) {
	r, err := Listen(context.Background(), ReceiverConfig{Transport: UDP, Bind: "127.0.0.1", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runReceiver(t, r, col.emit)
	dev := newRawRTP(t, r.Port(), 9)
	frames := clipFrames(t, 60)
	var want []ps.Frame
	lostAt := -1
	for i, f := range frames {
		pkts := dev.packets(f)
		if lostAt < 0 && i > 5 && len(pkts) >= 3 {
			lostAt = i
			pkts = append(pkts[:1], pkts[2:]...) // its second packet is lost
		} else {
			want = append(want, f)
		}
		dev.send(t, pkts)
	}
	if lostAt < 0 {
		t.Fatal("no frame of three packets to lose one of")
	}
	got := col.wait(t, len(want))
	assertFrames(t, want, got)
}

func TestNoPacketsEndsRunWithReadTimeout(t *testing.T) {
	for _, tr := range []Transport{UDP, TCPPassive, TCPActive} {
		t.Run(string(tr), func(t *testing.T) {
			r, err := Listen(context.Background(), ReceiverConfig{Transport: tr, Bind: "127.0.0.1", ReadTimeout: 200 * time.Millisecond, Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			start := time.Now()
			err = r.Run(context.Background(), func(ps.Frame) {})
			if !errors.Is(err, ErrReadTimeout) {
				t.Fatalf("Run: %v, want ErrReadTimeout", err)
			}
			if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
				t.Fatalf("timed out after %v", d)
			}
		})
	}
}

// The Run context ends a Receiver blocked on each kind of socket.
func TestCancelStopsRun(t *testing.T) {
	for _, tr := range []Transport{UDP, TCPPassive, TCPActive} {
		t.Run(string(tr), func(t *testing.T) {
			r, err := Listen(context.Background(), ReceiverConfig{Transport: tr, Bind: "127.0.0.1", Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx, func(ps.Frame) {}) }()
			time.Sleep(20 * time.Millisecond)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run after cancel: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run ignored its context")
			}
		})
	}
}

// A passive Sender whose peer never connects fails its writes after the
// connect timeout.
func TestPassiveSenderGivesUpWithoutPeer(t *testing.T) {
	s, err := NewSender(context.Background(), SenderConfig{Transport: TCPPassive, LocalBind: "127.0.0.1", ConnectTimeout: 150 * time.Millisecond, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	err = s.WriteFrame(clipFrames(t, 1)[0])
	if !errors.Is(err, ErrNotConnected) {
		t.Fatalf("WriteFrame: %v, want ErrNotConnected", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port()), time.Second); err == nil {
		t.Fatal("the listener is still open after the timeout")
	}
}

// A device that wrote half a packet into its TCP stream costs the frame
// it broke; the framing finds the next packet and the frames after it are
// whole.
func TestTCPBrokenPacketCostsOneFrame(t *testing.T) {
	r, err := Listen(context.Background(), ReceiverConfig{Transport: TCPPassive, Bind: "127.0.0.1", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runReceiver(t, r, col.emit)
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dev := &rawRTP{ssrc: 7, mux: ps.NewMuxer(ps.H264, 0)}
	frames := clipFrames(t, 60)
	var want []ps.Frame
	brokenAt := -1
	for i, f := range frames {
		var b []byte
		pkts := dev.packets(f)
		for j, p := range pkts {
			if brokenAt < 0 && i > 5 && j == 1 && len(pkts) >= 5 {
				// The length of a whole packet, half of it written.
				b = append(b, byte(len(p)>>8), byte(len(p)))
				b = append(b, p[:len(p)/2]...)
				brokenAt = i
				continue
			}
			b = appendFrame(b, p)
		}
		if i != brokenAt {
			want = append(want, f)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if brokenAt < 0 {
		t.Fatal("no frame to break")
	}
	got := col.wait(t, len(want))
	assertFrames(t, want, got)
}

// A device that restarts mid-session reconnects to the passive receiver
// with a new SSRC and sequence: the frames after it come through.
func TestPassiveReceiverTakesADeviceThatReconnects(t *testing.T) {
	ctx := context.Background()
	r, err := Listen(ctx, ReceiverConfig{Transport: TCPPassive, Bind: "127.0.0.1", SSRC: 100, ExpectSSRC: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runReceiver(t, r, col.emit)
	frames := clipFrames(t, 100)
	for i, part := range [][]ps.Frame{frames[:50], frames[50:]} {
		s, err := Dial(ctx, SenderConfig{Transport: TCPActive, Remote: "127.0.0.1:" + strconv.Itoa(r.Port()), SSRC: uint32(100 + i), Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		sendAll(t, s, part)
		col.wait(t, 50*(i+1))
		s.Close()
	}
	assertFrames(t, frames, col.wait(t, len(frames)))
}

// A UDP peer that is not listening yet (ICMP port unreachable) is no error:
// the platform may open its port after answering.
func TestUDPSenderToAClosedPortKeepsGoing(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	s, err := Dial(context.Background(), SenderConfig{Transport: UDP, Remote: addr, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range clipFrames(t, 10) {
		if err := s.WriteFrame(f); err != nil {
			t.Fatalf("WriteFrame: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}
