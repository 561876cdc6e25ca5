package gb28181

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/gb28181/gbsdp"
	"github.com/tianyan/vms/gb28181/manscdp"
	"github.com/tianyan/vms/gb28181/media"
	"github.com/tianyan/vms/gb28181/ps"
	"github.com/tianyan/vms/streaming"
)

// Media transports a device may be configured for.
const (
	MediaUDP = "udp"
	MediaTCP = "tcp" // TCP, the device connects to us (we are passive)
)

// onlinePoll is how often a source waiting for its device looks again: a
// device that restarts is played again this long after it registers.
const onlinePoll = 200 * time.Millisecond

// LiveConfig configures live media from devices' channels.
type LiveConfig struct {
	// MediaBind is the local IP RTP receivers listen on ("" = every address).
	MediaBind string
	// MediaHost is the address written into the SDP offer for devices to
	// send RTP to; "" uses the address our SIP traffic to the device
	// leaves from.
	MediaHost string
	// Transport is the media transport used for devices without their own
	// (Device.StreamTransport): MediaUDP or MediaTCP; default MediaUDP.
	Transport string
	// ReadTimeout is how long media may stop before the call is dropped and
	// the hub tries again (default 5 s).
	ReadTimeout time.Duration
	Logger      *slog.Logger
}

// Live plays devices' channels: each channel is a streaming.ExternalSource
// (Source) that INVITEs the device when the hub starts it and BYEs when
// the hub stops it. It also steers PTZ and asks devices for their info and
// status (ptz.go, query.go). One Live per Server; it answers the devices'
// BYEs.
type Live struct {
	srv *Server
	cfg LiveConfig
	log *slog.Logger

	calls    callTable
	seq      atomic.Uint32 // SSRC sequence
	ptzStops ptzStops

	mu      sync.Mutex
	sources map[string]*ChannelSource
	// tcpOnly remembers devices that refused UDP or answered with TCP,
	// so later calls offer TCP at once.
	tcpOnly map[string]bool
}

// NewLive makes the live part of srv and takes the devices' BYEs.
func NewLive(srv *Server, cfg LiveConfig) *Live {
	if cfg.Logger == nil {
		cfg.Logger = srv.Logger()
	}
	if cfg.Transport == "" {
		cfg.Transport = MediaUDP
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	l := &Live{srv: srv, cfg: cfg, log: cfg.Logger, sources: map[string]*ChannelSource{}, tcpOnly: map[string]bool{}}
	// A random start keeps two servers (or a restart) from reusing the
	// same SSRCs towards one device.
	l.seq.Store(uint32(time.Now().UnixNano() % 10000))
	srv.Handle(sip.BYE, l.onBye)
	srv.Devices().OnChange(l.deviceChanged)
	return l
}

// Source is the hub source of a device's channel. The same channel
// always gets the same *ChannelSource: the hub compares sources by
// identity, and a catalog resync must not restart a playing stream.
func (l *Live) Source(deviceID, channelID string) *ChannelSource {
	k := deviceID + "/" + channelID
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sources[k]
	if s == nil {
		s = &ChannelSource{live: l, device: deviceID, channel: channelID}
		l.sources[k] = s
	}
	return s
}

// Close cancels pending PTZ stops. Calls end with their sources (the
// hub stops them) and the Server.
func (l *Live) Close() { l.ptzStops.close() }

// Calls is the number of live calls open (for tests and metrics).
func (l *Live) Calls() int { return l.calls.len() }

// ChannelSource is one GB channel as a streaming.ExternalSource.
type ChannelSource struct {
	live            *Live
	device, channel string
	frames          atomic.Uint64
}

var _ streaming.ExternalSource = (*ChannelSource)(nil)

// Device is the ID of the device the channel belongs to.
func (c *ChannelSource) Device() string { return c.device }

// Channel is the channel's ID (the point's).
func (c *ChannelSource) Channel() string { return c.channel }

// Frames counts the video frames this source has handed to the hub.
func (c *ChannelSource) Frames() uint64 { return c.frames.Load() }

// Run plays the channel until ctx ends (nil: the hub stopped it, BYE
// sent) or the call is lost (an error: the device sent BYE, stopped
// sending media, or refused; the hub tries again). A device that is not
// registered is waited for, so a viewer waiting through a device restart
// is served as soon as it registers again.
func (c *ChannelSource) Run(ctx context.Context, out streaming.ExternalOutput) error {
	l := c.live
	peer, ok := l.waitOnline(ctx, c.device)
	if !ok {
		return nil
	}
	tcp := l.wantTCP(c.device)
	sess, err := l.play(ctx, peer, c.channel, tcp)
	if err != nil && !tcp && ctx.Err() == nil && (refusedTransport(err) || errors.Is(err, errAnsweredTCP)) {
		l.log.Info("gb28181: device refused UDP media, offering TCP", "device", c.device, "channel", c.channel, "err", err)
		l.setTCPOnly(c.device)
		sess, err = l.play(ctx, peer, c.channel, true)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer sess.close()
	// A keyframe now rather than at the end of the device's GOP. Sent
	// after the ACK, in parallel with the media starting; Run waits for
	// it (at most the request timeout, less once ctx ends).
	var kf sync.WaitGroup
	defer kf.Wait()
	kf.Go(func() { l.requestKeyframe(ctx, peer, c.channel) })

	feed := newLiveFeed(out)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var feedErr error
	errc := make(chan error, 1)
	go func() {
		errc <- sess.recv.Run(rctx, func(fr ps.Frame) {
			if feedErr != nil {
				return
			}
			if err := feed.feed(fr); err != nil {
				feedErr = err
				cancel()
				return
			}
			if fr.Type == ps.H264 || fr.Type == ps.H265 {
				c.frames.Add(1)
			}
		})
	}()
	select {
	case <-ctx.Done():
		cancel()
		<-errc
		return nil
	case <-sess.call.ended:
		cancel()
		<-errc
		return errDeviceBye
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		if feedErr != nil {
			return feedErr
		}
		if err == nil {
			err = errors.New("media ended")
		}
		return fmt.Errorf("media from the device: %w", err)
	}
}

// errAnsweredTCP: we offered UDP and the device answered with TCP.
var errAnsweredTCP = errors.New("the device answered UDP with TCP media")

// liveSession is a call with its media receiver.
type liveSession struct {
	l    *Live
	call *liveCall
	recv *media.Receiver
}

func (s *liveSession) close() {
	s.l.bye(s.call)
	s.recv.Close()
}

// play opens a receiver, INVITEs the device to send to it and checks the
// answer.
func (l *Live) play(ctx context.Context, peer Peer, channel string, tcp bool) (*liveSession, error) {
	ssrc := l.newSSRC()
	transport := media.UDP
	if tcp {
		transport = media.TCPPassive
	}
	recv, err := media.Listen(ctx, media.ReceiverConfig{Transport: transport, Bind: l.cfg.MediaBind,
		SSRC: ssrcValue(ssrc), ExpectSSRC: true, ReadTimeout: l.cfg.ReadTimeout, Logger: l.log})
	if err != nil {
		return nil, fmt.Errorf("open the media receiver: %w", err)
	}
	host := l.cfg.MediaHost
	if host == "" {
		host = l.srv.LocalHost(peer.Addr)
	}
	role := gbsdp.UDP
	if tcp {
		role = gbsdp.TCPPassive
	}
	offer := gbsdp.NewOffer(gbsdp.Offer{ID: l.srv.Config().ID, IP: host, Port: recv.Port(), Transport: role, SSRC: ssrc,
		URI: channel + ":0"})
	call, err := l.invite(ctx, inviteRequest{peer: peer, channel: channel, ssrc: ssrc, sdp: offer.Marshal()})
	if err != nil {
		recv.Close()
		return nil, err
	}
	sess := &liveSession{l: l, call: call, recv: recv}
	ans, err := gbsdp.Parse(call.answer)
	if err != nil || ans.Video() == nil {
		// Some devices answer with an SDP we cannot read and send anyway:
		// the receiver takes what comes.
		l.log.Debug("gb28181: unreadable SDP answer", "device", peer.ID, "channel", channel, "err", err)
		return sess, nil
	}
	v := ans.Video()
	switch {
	case !tcp && v.TCP():
		sess.close()
		return nil, errAnsweredTCP
	case tcp && v.Transport() == gbsdp.TCPPassive:
		// The device listens rather than dials (it ignored our
		// setup:passive): dial it.
		addr := net.JoinHostPort(ans.MediaAddr(v), strconv.Itoa(v.Port))
		if err := l.dialMedia(ctx, sess, addr, ssrc); err != nil {
			sess.close()
			return nil, err
		}
	}
	if ans.SSRC != "" && ans.SSRC != ssrc {
		// The device chose its own SSRC. The receiver follows the first
		// stream it sees whatever y= said (devices also answer one and
		// send another), so this is only worth a note.
		l.log.Debug("gb28181: device answered another SSRC", "device", peer.ID, "channel", channel, "offered", ssrc, "answered", ans.SSRC)
	}
	return sess, nil
}

// dialMedia replaces a session's listening receiver with one that dials
// the device at addr.
func (l *Live) dialMedia(ctx context.Context, sess *liveSession, addr, ssrc string) error {
	recv, err := media.Listen(ctx, media.ReceiverConfig{Transport: media.TCPActive, Bind: l.cfg.MediaBind,
		SSRC: ssrcValue(ssrc), ExpectSSRC: true, ReadTimeout: l.cfg.ReadTimeout, Logger: l.log})
	if err != nil {
		return fmt.Errorf("open the media receiver: %w", err)
	}
	if err := recv.Connect(ctx, addr); err != nil {
		recv.Close()
		return fmt.Errorf("connect to the device's media at %s: %w", addr, err)
	}
	sess.recv.Close()
	sess.recv = recv
	return nil
}

// requestKeyframe sends DeviceControl IFameCmd for a channel. Best effort:
// a device that ignores it still starts at its next keyframe.
func (l *Live) requestKeyframe(ctx context.Context, peer Peer, channel string) {
	ctx, cancel := context.WithTimeout(ctx, l.srv.Config().RequestTimeout)
	defer cancel()
	ctl := &manscdp.DeviceControl{Header: manscdp.Header{CmdType: manscdp.CmdDeviceControl, SN: NextSN(), DeviceID: channel},
		IFameCmd: manscdp.IFameSend}
	if err := l.control(ctx, peer, ctl); err != nil {
		l.log.Debug("gb28181: keyframe request not taken", "device", peer.ID, "channel", channel, "err", err)
	}
}

// waitOnline waits until the device is registered and online, or ctx ends.
func (l *Live) waitOnline(ctx context.Context, deviceID string) (Peer, bool) {
	t := time.NewTicker(onlinePoll)
	defer t.Stop()
	for {
		if p, ok := l.devicePeer(deviceID); ok {
			return p, true
		}
		select {
		case <-ctx.Done():
			return Peer{}, false
		case <-t.C:
		}
	}
}

func (l *Live) wantTCP(deviceID string) bool {
	l.mu.Lock()
	only := l.tcpOnly[deviceID]
	l.mu.Unlock()
	if only {
		return true
	}
	t := ""
	if d, ok := l.srv.Devices().Get(deviceID); ok {
		t = d.StreamTransport
	}
	if t == "" {
		t = l.cfg.Transport
	}
	return strings.EqualFold(t, MediaTCP)
}

func (l *Live) setTCPOnly(deviceID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tcpOnly[deviceID] = true
}

// newSSRC makes a live SSRC (GB/T 28181 §9.2.1): "0" for live, digits
// 4–8 of our SIP domain, then a 4-digit sequence unique among our calls.
func (l *Live) newSSRC() string {
	n := int(l.seq.Add(1))
	y, err := gbsdp.SSRC(false, l.srv.Config().Domain, n)
	if err != nil {
		// Not reached: New checks that the domain is 10 digits.
		return fmt.Sprintf("0%09d", n%10000)
	}
	return y
}

// ssrcValue is the number a 10-digit decimal SSRC stands for (0 if it is
// not one).
func ssrcValue(s string) uint32 {
	var v uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0
		}
		v = v*10 + uint64(s[i]-'0')
		if v > 0xffffffff {
			return 0
		}
	}
	return uint32(v)
}

// devicePeer is where to reach a device that is registered and online.
func (l *Live) devicePeer(deviceID string) (Peer, bool) {
	d, ok := l.srv.Devices().Get(deviceID)
	if !ok || !d.Online || d.Addr == "" {
		return Peer{}, false
	}
	return d.Peer(), true
}

// deviceChanged ends the calls of a device that registered anew (it
// restarted, or its address changed) or unregistered: those calls are
// dead whatever the device said last, and their sources should start
// again at once rather than wait for the media read timeout. A device
// that only missed keepalives keeps its calls: media that still flows is
// worth more than a heartbeat, and media that stops ends the call anyway.
func (l *Live) deviceChanged(ev DeviceEvent) {
	switch ev.Kind {
	case DeviceRegistered, DeviceUnregistered:
	default:
		return
	}
	for _, c := range l.calls.ofDevice(ev.Device.ID) {
		if ev.Kind == DeviceRegistered && c.peer.Addr == ev.Device.Addr && c.peer.Transport == ev.Device.Transport && !c.olderThan(ev.Device.RegisteredAt) {
			continue // a call made after this registration
		}
		l.log.Info("gb28181: device re-registered or left; ending its live call", "device", ev.Device.ID, "channel", c.channel, "event", ev.Kind.String())
		c.markEnded()
	}
}

// control sends a DeviceControl to a device (or one of its channels).
func (l *Live) control(ctx context.Context, peer Peer, ctl *manscdp.DeviceControl) error {
	body, err := manscdp.Marshal(ctl, bodyCharset)
	if err != nil {
		return err
	}
	return l.srv.SendMANSCDP(ctx, peer, ctl.DeviceID, body)
}

// bodyCharset is the encoding of the MANSCDP bodies we send: GB2312, as
// the standard says; every device reads it, and ours are ASCII anyway
// except for names.
const bodyCharset = "GB2312"
