package gbsim

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gb28181/gbsdp"
	"github.com/tianyan/vms/gb28181/manscdp"
	"github.com/tianyan/vms/gb28181/media"
	"github.com/tianyan/vms/gb28181/ps"
)

// call is one INVITE the test platform made, with its receiver running.
type call struct {
	s       *testServer
	devID   string
	invite  *sip.Request
	answer  *sip.Response
	sdp     *gbsdp.Session
	frames  chan ps.Frame
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	runErr  error
	offered string // y= in the offer
}

// invite offers channel chID of device devID a stream with the platform on
// side tr, and returns once the device answered 200 and the ACK is sent.
func (s *testServer) invite(t *testing.T, devID, chID string, tr gbsdp.Transport, y string) (*call, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	rcv, err := media.Listen(ctx, media.ReceiverConfig{Transport: media.Transport(tr), Bind: "127.0.0.1",
		SSRC: 0, ReadTimeout: 10 * time.Second, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	offer := gbsdp.NewOffer(gbsdp.Offer{ID: testServerID, IP: "127.0.0.1", Port: rcv.Port(), Transport: tr, SSRC: y})
	req, res, err := s.request(ctx, devID, chID, sip.INVITE, "application/sdp", offer.Marshal())
	if err != nil {
		rcv.Close()
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		rcv.Close()
		cancel()
		return nil, res.StatusCode
	}
	c := &call{s: s, devID: devID, invite: req, answer: res, frames: make(chan ps.Frame, 4096), cancel: cancel, offered: y}
	c.sdp, err = gbsdp.Parse(res.Body())
	if err != nil {
		t.Fatal(err)
	}
	s.ack(t, req, res)
	if tr == gbsdp.TCPActive {
		v := c.sdp.Video()
		if err := rcv.Connect(ctx, net.JoinHostPort(c.sdp.MediaAddr(v), strconv.Itoa(v.Port))); err != nil {
			t.Fatal(err)
		}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runErr = rcv.Run(ctx, func(f ps.Frame) {
			select {
			case c.frames <- f:
			default:
			}
		})
	}()
	t.Cleanup(c.stop)
	return c, 200
}

func (c *call) stop() {
	c.cancel()
	c.wg.Wait()
}

func (s *testServer) ack(t *testing.T, req *sip.Request, res *sip.Response) {
	t.Helper()
	ack := sip.NewRequest(sip.ACK, req.Recipient)
	ack.AppendHeader(sip.HeaderClone(req.From()))
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(req.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
	ack.SetDestination(req.Destination())
	ack.SetTransport(req.Transport())
	ack.SetBody(nil)
	if err := s.client.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
}

func (c *call) bye(t *testing.T) {
	t.Helper()
	bye := sip.NewRequest(sip.BYE, c.invite.Recipient)
	bye.AppendHeader(sip.HeaderClone(c.invite.From()))
	bye.AppendHeader(sip.HeaderClone(c.answer.To()))
	bye.AppendHeader(sip.HeaderClone(c.invite.CallID()))
	bye.AppendHeader(&sip.CSeqHeader{SeqNo: c.invite.CSeq().SeqNo + 1, MethodName: sip.BYE})
	bye.SetDestination(c.invite.Destination())
	bye.SetTransport(c.invite.Transport())
	bye.SetBody(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.s.client.Do(ctx, bye)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("BYE: %v %v", res, err)
	}
}

func (c *call) frame(t *testing.T, timeout time.Duration) ps.Frame {
	t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-time.After(timeout):
		t.Fatalf("no frame within %v (receiver: %v)", timeout, c.runErr)
	}
	return ps.Frame{}
}

func TestInviteStreamsPSOverUDPAndTCPBothWays(t *testing.T) {
	for _, tr := range []gbsdp.Transport{gbsdp.UDP, gbsdp.TCPPassive, gbsdp.TCPActive} {
		t.Run(string(tr), func(t *testing.T) {
			s := newTestServer(t)
			id := "34020000001320000011"
			d := startDevice(t, baseConfig(s, "udp", id))
			waitFor(t, "registered", 10*time.Second, d.Registered)
			ch := d.Channels()[0]
			y, _ := gbsdp.SSRC(false, testDomain, 7)
			c, code := s.invite(t, id, ch.ID, tr, y)
			if code != 200 {
				t.Fatalf("INVITE answered %d", code)
			}
			if got := c.sdp.Video().Transport(); got != tr.Peer() {
				t.Fatalf("answer transport %s, want %s", got, tr.Peer())
			}
			if c.sdp.SSRC != y {
				t.Fatalf("answer y=%s, want %s", c.sdp.SSRC, y)
			}
			var last int64
			keys := 0
			// 2.5 s of a 2 s GOP: at least one keyframe, PTS rising by 3600.
			for i := 0; i < 62; i++ {
				f := c.frame(t, 5*time.Second)
				if f.Type != ps.H264 || len(f.Data) == 0 {
					t.Fatalf("frame %d: %+v", i, f.Type)
				}
				if last != 0 && f.PTS-last != 3600 {
					t.Fatalf("PTS step %d", f.PTS-last)
				}
				last = f.PTS
				if f.Key {
					keys++
				}
			}
			if keys == 0 {
				t.Fatal("no keyframe in 62 frames of a 50-frame GOP")
			}
			ss := d.Sessions()
			if len(ss) != 1 || ss[0].Transport != string(tr.Peer()) || ss[0].Frames < 60 { // the count lags the wire by a frame
				t.Fatalf("sessions %+v", ss)
			}
			if want, _ := gbsdp.ParseSSRC(y); ss[0].SSRC != want {
				t.Fatalf("SSRC %d, want %d", ss[0].SSRC, want)
			}
			c.bye(t)
			if n := len(d.Sessions()); n != 0 {
				t.Fatalf("%d sessions after BYE", n)
			}
		})
	}
}

func TestIFameCmdMakesTheNextFrameAKeyframe(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000012"
	d := startDevice(t, baseConfig(s, "udp", id))
	waitFor(t, "registered", 10*time.Second, d.Registered)
	ch := d.Channels()[0]
	c, code := s.invite(t, id, ch.ID, gbsdp.UDP, "0200000012")
	if code != 200 {
		t.Fatalf("INVITE %d", code)
	}
	// Sync on a natural keyframe, then move 5 frames on: the next natural
	// one is 45 frames away, so a keyframe within 3 frames of the command
	// can only be the command's doing.
	for !c.frame(t, 5*time.Second).Key {
	}
	for i := 0; i < 5; i++ {
		if c.frame(t, 5*time.Second).Key {
			t.Fatal("GOP shorter than expected")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.sendMANSCDP(ctx, id, &manscdp.DeviceControl{Header: manscdp.Header{SN: 1, DeviceID: ch.ID}, IFameCmd: manscdp.IFameSend}); err != nil {
		t.Fatal(err)
	}
	// Frames that arrived while the command was on its way do not count;
	// after them a keyframe must come within 3.
	expectKeySoon(t, c, len(c.frames))
	if ch.KeyframeRequests() != 1 {
		t.Fatalf("keyframe requests %d", ch.KeyframeRequests())
	}
}

func TestTCPOnlyDeviceRefusesUDPOffersAndAnswersTCP(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000013"
	cfg := baseConfig(s, "udp", id)
	cfg.Faults.TCPOnly = true
	d := startDevice(t, cfg)
	waitFor(t, "registered", 10*time.Second, d.Registered)
	ch := d.Channels()[0]
	if _, code := s.invite(t, id, ch.ID, gbsdp.UDP, "0200000013"); code != 488 {
		t.Fatalf("UDP offer answered %d, want 488", code)
	}
	c, code := s.invite(t, id, ch.ID, gbsdp.TCPPassive, "0200000014")
	if code != 200 {
		t.Fatalf("TCP offer answered %d", code)
	}
	c.frame(t, 5*time.Second)
	if st := d.Stats(); st.Refused != 1 || st.Invites != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSSRCMismatchDeviceAnswersAndSendsItsOwnSSRC(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000014"
	cfg := baseConfig(s, "udp", id)
	cfg.Faults.IgnoreSSRC = true
	d := startDevice(t, cfg)
	waitFor(t, "registered", 10*time.Second, d.Registered)
	ch := d.Channels()[0]
	c, code := s.invite(t, id, ch.ID, gbsdp.UDP, "0200000015")
	if code != 200 {
		t.Fatalf("INVITE %d", code)
	}
	if c.sdp.SSRC == "0200000015" {
		t.Fatal("device echoed y= despite IgnoreSSRC")
	}
	own, err := gbsdp.ParseSSRC(c.sdp.SSRC)
	if err != nil {
		t.Fatal(err)
	}
	c.frame(t, 5*time.Second) // the receiver learns the unexpected SSRC
	if ss := d.Sessions(); len(ss) != 1 || ss[0].SSRC != own {
		t.Fatalf("sessions %+v, want SSRC %d", ss, own)
	}
}

func TestInviteForUnknownChannelIs404AndRebootDropsStreams(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001180000015"
	cfg := baseConfig(s, "udp", id)
	cfg.NVR, cfg.NumChannels = true, 2
	d := startDevice(t, cfg)
	waitFor(t, "registered", 10*time.Second, d.Registered)
	if _, code := s.invite(t, id, "34020000001319999999", gbsdp.UDP, "0200000016"); code != 404 {
		t.Fatalf("unknown channel answered %d", code)
	}
	c, code := s.invite(t, id, d.Channels()[1].ID, gbsdp.UDP, "0200000017")
	if code != 200 {
		t.Fatalf("INVITE %d", code)
	}
	c.frame(t, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.sendMANSCDP(ctx, id, &manscdp.DeviceControl{Header: manscdp.Header{SN: 1, DeviceID: id}, TeleBoot: manscdp.TeleBootBoot}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "streams dropped", 5*time.Second, func() bool { return len(d.Sessions()) == 0 })
	waitFor(t, "registered after reboot", 15*time.Second, func() bool { return d.Registered() && d.Stats().Registrations >= 2 })
}

func TestIFameCmdRightAfterTheAnswerStartsTheStreamOnAKeyframe(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000016"
	d := startDevice(t, baseConfig(s, "udp", id))
	waitFor(t, "registered", 10*time.Second, d.Registered)
	ch := d.Channels()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// As a platform does on a cold start: the command follows the ACK at
	// once, before the device's stream has sent anything.
	c, code := s.invite(t, id, ch.ID, gbsdp.UDP, "0200000016")
	if code != 200 {
		t.Fatalf("INVITE %d", code)
	}
	if err := s.sendMANSCDP(ctx, id, &manscdp.DeviceControl{Header: manscdp.Header{SN: 1, DeviceID: ch.ID}, IFameCmd: manscdp.IFameSend}); err != nil {
		t.Fatal(err)
	}
	// The device starts mid-GOP (a 2 s GOP: 49 of 50 positions are not
	// keyframes); only the command brings a keyframe so soon.
	expectKeySoon(t, c, len(c.frames))
}

// expectKeySoon reads frames until a keyframe: the first inFlight (sent
// before the command's 200 was back) may be anything, then at most 3
// more non-key frames may come (the device's next tick, the receiver's
// one-frame reassembly delay).
func expectKeySoon(t *testing.T, c *call, inFlight int) {
	t.Helper()
	for i := 0; ; i++ {
		if c.frame(t, 5*time.Second).Key {
			return
		}
		if i >= inFlight+3 {
			t.Fatalf("no keyframe within %d frames of IFameCmd (%d in flight)", i+1, inFlight)
		}
	}
}

func TestH265ClipWithAudioArrivesAsBothStreams(t *testing.T) {
	s := newTestServer(t)
	id := "34020000001320000017"
	cfg := baseConfig(s, "tcp", id)
	cfg.Clip, cfg.Audio = camsim.ClipH265Sub, true
	d := startDevice(t, cfg)
	waitFor(t, "registered", 10*time.Second, d.Registered)
	c, code := s.invite(t, id, d.Channels()[0].ID, gbsdp.TCPPassive, "0200000017")
	if code != 200 {
		t.Fatalf("INVITE %d", code)
	}
	var video, audio int
	for video < 10 || audio < 10 {
		f := c.frame(t, 5*time.Second)
		switch f.Type {
		case ps.H265:
			video++
		case ps.G711A:
			audio++
			if len(f.Data) != 320 {
				t.Fatalf("audio frame of %d bytes", len(f.Data))
			}
		default:
			t.Fatalf("frame type %#x", f.Type)
		}
	}
}
