package gb28181

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gb28181/manscdp"
	"github.com/tianyan/vms/gb28181/media"
	"github.com/tianyan/vms/gb28181/ps"
)

// liveDevice is a GB/T 28181 camera for the live tests, made of a real
// sipgo stack and a real PS/RTP sender: it answers INVITE with an SDP of
// its own, sends the clip (25 fps, 2 s GOP, starting mid-GOP) after the
// ACK, jumps to a keyframe on IFameCmd, records PTZCmd, answers BYE and
// can send one. Faults are switched by its fields before the test plays.
type liveDevice struct {
	t         testing.TB
	id        string
	channel   string
	transport string // SIP transport
	server    string
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	cli       *sipgo.Client
	udp       *net.UDPConn
	localPort int
	clip      *camsim.Clip

	// Faults, set by the options given to newLiveDevice.
	refuseUDP bool        // 488 to a UDP offer
	answerTCP bool        // answers a UDP offer with TCP media (then refuses UDP)
	otherSSRC uint32      // sends with this SSRC whatever was offered
	noMedia   bool        // answers INVITE but never sends
	noAnswer  bool        // never answers INVITE (a device rebooting)
	deafOnce  bool        // ignores the first IFameCmd
	silent    atomic.Bool // acknowledges queries but never answers them

	answers sync.WaitGroup // query answers being sent; Add only under mu while !closing
	closing bool           // guarded by mu: close has begun, no new answers

	invites   atomic.Int32
	acks      atomic.Int32
	byes      atomic.Int32
	keyframes atomic.Int32

	mu     sync.Mutex
	offers []string
	calls  map[string]*deviceCall
	ptz    []manscdp.PTZ
}

// deviceCall is one call the device answered.
type deviceCall struct {
	invite *sip.Request
	tag    string
	offer  sdpLines
	cancel context.CancelFunc
	done   chan struct{}
	kfNow  atomic.Bool
}

// stop ends the call's media, if it was sent, and waits for the sender.
// Calls leave d.calls before they are stopped, so no ACK starts media
// afterwards.
func (c *deviceCall) stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

func newLiveDevice(t testing.TB, s *Server, id, channel, transport string, faults ...func(*liveDevice)) *liveDevice {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(id),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quietLogger())),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quietLogger())))
	if err != nil {
		t.Fatal(err)
	}
	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	d := &liveDevice{t: t, id: id, channel: channel, transport: transport, ua: ua, server: s.UDPAddr().String(),
		clip: clip, calls: map[string]*deviceCall{}}
	if transport == "TCP" {
		d.server = s.TCPAddr().String()
	}
	for _, f := range faults {
		f(d)
	}
	d.srv, _ = sipgo.NewServer(ua, sipgo.WithServerLogger(quietLogger()))
	d.cli, _ = sipgo.NewClient(ua, sipgo.WithClientLogger(quietLogger()))
	d.srv.OnInvite(d.onInvite)
	d.srv.OnAck(d.onAck)
	d.srv.OnBye(d.onBye)
	d.srv.OnMessage(d.onMessage)
	if transport == "UDP" {
		d.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		d.localPort = d.udp.LocalAddr().(*net.UDPAddr).Port
		go d.srv.ServeUDP(d.udp)
		if err := waitUDPListener(ua.TransportLayer(), d.udp.LocalAddr().String()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(d.close)
	return d
}

// register makes the device known to s as a REGISTER would (through a
// keepalive over its own transport, so s learns its real source address).
func (d *liveDevice) register(s *Server) {
	d.t.Helper()
	learned := make(chan Peer, 1)
	s.HandleCmd("Keepalive", func(_ context.Context, r *Request) {
		select {
		case learned <- r.Peer():
		default:
		}
		r.Respond(200, "OK", nil)
	})
	res := d.do(d.request(sip.MESSAGE, ContentTypeMANSCDP, []byte(keepaliveBody(d.id, 1))))
	if res.StatusCode != 200 {
		d.t.Fatalf("keepalive: %d", res.StatusCode)
	}
	peer := <-learned
	s.Devices().Update(d.id, true, func(dev *Device) DeviceEventKind {
		dev.Addr, dev.Transport, dev.Online, dev.RegisteredAt = peer.Addr, peer.Transport, true, time.Now()
		return DeviceRegistered
	})
}

func (d *liveDevice) close() {
	d.mu.Lock()
	calls := d.calls
	d.calls = map[string]*deviceCall{}
	d.closing = true
	d.mu.Unlock()
	for _, c := range calls {
		c.stop()
	}
	d.answers.Wait()
	if d.udp != nil {
		d.udp.Close()
	}
	d.ua.Close()
}

// request builds a request from the device to the server.
func (d *liveDevice) request(method sip.RequestMethod, contentType string, body []byte) *sip.Request {
	host, portStr, _ := net.SplitHostPort(d.server)
	port, _ := strconv.Atoi(portStr)
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: testServerID, Host: host, Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: d.id[:10]}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: testServerID, Host: testDomain}, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: "127.0.0.1", Port: d.localPort}})
	if body != nil {
		ct := sip.ContentTypeHeader(contentType)
		req.AppendHeader(&ct)
	}
	req.SetBody(body)
	d.route(req)
	return req
}

func (d *liveDevice) route(req *sip.Request) {
	req.SetTransport(d.transport)
	req.SetDestination(d.server)
	if d.udp != nil {
		req.Laddr = sip.Addr{IP: net.IPv4(127, 0, 0, 1), Port: d.localPort}
	}
}

func (d *liveDevice) do(req *sip.Request) *sip.Response {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := d.cli.Do(ctx, req)
	if err != nil {
		d.t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

func (d *liveDevice) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	d.invites.Add(1)
	if d.noAnswer {
		return
	}
	offer := parseSDPLines(req.Body())
	d.mu.Lock()
	d.offers = append(d.offers, string(req.Body()))
	d.mu.Unlock()
	if !offer.tcp() && d.refuseUDP {
		tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	tag := sip.GenerateTagN(10)
	c := &deviceCall{invite: req, tag: tag, offer: offer, done: make(chan struct{})}
	// The answer: PS on the offered port; our own SSRC if told to.
	ssrc := offer.get("y")
	if d.otherSSRC != 0 {
		ssrc = fmt.Sprintf("%010d", d.otherSSRC)
	}
	proto := "RTP/AVP"
	setup := ""
	if offer.tcp() || d.answerTCP {
		proto = "TCP/RTP/AVP"
		setup = "a=setup:active\r\na=connection:new\r\n"
	}
	answer := fmt.Sprintf("v=0\r\no=%s 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video 15060 %s 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n%sy=%s\r\nf=\r\n", d.channel, proto, setup, ssrc)
	res := sip.NewResponseFromRequest(req, 200, "OK", []byte(answer))
	res.To().Params.Add("tag", tag)
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.channel, Host: "127.0.0.1", Port: d.localPort}})
	ct := sip.ContentTypeHeader("application/sdp")
	res.AppendHeader(&ct)
	d.mu.Lock()
	d.calls[req.CallID().Value()] = c
	d.mu.Unlock()
	tx.Respond(res)
}

func (d *liveDevice) onAck(req *sip.Request, _ sip.ServerTransaction) {
	d.acks.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls[req.CallID().Value()]
	if c == nil || c.cancel != nil || d.noMedia || (d.answerTCP && !c.offer.tcp()) {
		return // no media (or TCP promised to a UDP offer: the server must re-INVITE)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		d.send(ctx, c)
	}()
}

func (d *liveDevice) onBye(req *sip.Request, tx sip.ServerTransaction) {
	d.byes.Add(1)
	d.mu.Lock()
	c := d.calls[req.CallID().Value()]
	delete(d.calls, req.CallID().Value())
	d.mu.Unlock()
	if c == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call Does Not Exist", nil))
		return
	}
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	c.stop()
}

func (d *liveDevice) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	m, err := manscdp.Parse(req.Body())
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	// Commands are taken before the 200, so a test that got the 200
	// finds them recorded.
	if ctl, ok := m.Body.(*manscdp.DeviceControl); ok {
		// A deaf device counts the first request and does nothing.
		if ctl.IFameCmd != "" && (d.keyframes.Add(1) > 1 || !d.deafOnce) {
			d.mu.Lock()
			for _, c := range d.calls {
				c.kfNow.Store(true)
			}
			d.mu.Unlock()
		}
		if ctl.PTZCmd != "" {
			if p, err := manscdp.DecodePTZ(ctl.PTZCmd); err == nil {
				d.mu.Lock()
				d.ptz = append(d.ptz, p)
				d.mu.Unlock()
			}
		}
	}
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	var answer any
	h := manscdp.Header{CmdType: m.CmdType, SN: m.SN, DeviceID: m.DeviceID}
	switch m.Body.(type) {
	case *manscdp.DeviceInfoQuery:
		answer = &manscdp.DeviceInfoResponse{Header: h, DeviceName: "测试摄像机", Result: manscdp.ResultOK, Manufacturer: "Tianyan-Test",
			Model: "GB-1", Firmware: "1.0", Channel: 1}
	case *manscdp.DeviceStatusQuery:
		answer = &manscdp.DeviceStatusResponse{Header: h, Result: manscdp.ResultOK, Online: "ONLINE", Status: "OK"}
	}
	if answer == nil || d.silent.Load() {
		return
	}
	// Answered in a MESSAGE of its own, as devices do, in GB2312.
	body, err := manscdp.Marshal(answer, "GB2312")
	if err != nil {
		d.t.Errorf("marshal the answer: %v", err)
		return
	}
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return
	}
	d.answers.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.answers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := d.cli.Do(ctx, d.request(sip.MESSAGE, ContentTypeMANSCDP, body)); err != nil {
			d.t.Errorf("device answer: %v", err)
		}
	}()
}

// ptzCommands is what PTZCmds the device received, in order.
func (d *liveDevice) ptzCommands() []manscdp.PTZ {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]manscdp.PTZ(nil), d.ptz...)
}

func (d *liveDevice) lastOffer() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.offers) == 0 {
		return ""
	}
	return d.offers[len(d.offers)-1]
}

func (d *liveDevice) openCalls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// hangUp sends the device's own BYE for every call it has.
func (d *liveDevice) hangUp() {
	d.t.Helper()
	d.mu.Lock()
	calls := d.calls
	d.calls = map[string]*deviceCall{}
	d.mu.Unlock()
	for _, c := range calls {
		c.stop()
		inv := c.invite
		target := inv.Recipient
		if ct := inv.Contact(); ct != nil {
			target = ct.Address
		}
		bye := sip.NewRequest(sip.BYE, *target.Clone())
		from := &sip.FromHeader{Address: inv.To().Address, Params: sip.NewParams()}
		from.Params.Add("tag", c.tag)
		bye.AppendHeader(from)
		to := &sip.ToHeader{Address: inv.From().Address, Params: inv.From().Params.Clone()}
		bye.AppendHeader(to)
		bye.AppendHeader(sip.HeaderClone(inv.CallID()))
		bye.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.BYE})
		d.route(bye)
		if res := d.do(bye); res.StatusCode != 200 {
			d.t.Errorf("device BYE answered %d", res.StatusCode)
		}
	}
}

// send plays the clip to the offer's address until ctx ends: 25 fps from
// the middle of a GOP, jumping to the next keyframe on IFameCmd.
func (d *liveDevice) send(ctx context.Context, c *deviceCall) {
	ssrc := uint32(0)
	if v, err := strconv.ParseUint(c.offer.get("y"), 10, 32); err == nil {
		ssrc = uint32(v)
	}
	if d.otherSSRC != 0 {
		ssrc = d.otherSSRC
	}
	tr := media.UDP
	if c.offer.tcp() {
		tr = media.TCPActive // our side dials the receiver, which listens
	}
	snd, err := media.Dial(ctx, media.SenderConfig{Transport: tr, Remote: c.offer.addr(), LocalBind: "127.0.0.1", SSRC: ssrc, PayloadType: 96})
	if err != nil {
		if ctx.Err() == nil {
			d.t.Errorf("device media: %v", err)
		}
		return
	}
	defer snd.Close()
	clip := d.clip
	gop := clip.GOPLength()
	i := clip.Keyframes[0] + gop/2 // mid-GOP: a cold viewer would wait a second without IFameCmd
	pts := int64(90000)
	tick := time.NewTicker(time.Second / time.Duration(clip.FPS))
	defer tick.Stop()
	for {
		if c.kfNow.Swap(false) {
			i = nextKeyframe(clip, i)
		}
		au := clip.AUs[i%len(clip.AUs)]
		key := isKeyframeIndex(clip, i%len(clip.AUs))
		var buf bytes.Buffer
		if key {
			for _, p := range clip.Params {
				buf.Write([]byte{0, 0, 0, 1})
				buf.Write(p)
			}
		}
		for _, n := range au {
			buf.Write([]byte{0, 0, 0, 1})
			buf.Write(n)
		}
		if err := snd.WriteFrame(ps.Frame{Type: ps.H264, PTS: pts, DTS: pts, Data: buf.Bytes(), Key: key}); err != nil {
			return
		}
		i++
		pts += 90000 / int64(clip.FPS)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func nextKeyframe(c *camsim.Clip, i int) int {
	pos := i % len(c.AUs)
	for _, k := range c.Keyframes {
		if k >= pos {
			return i - pos + k
		}
	}
	return i - pos + len(c.AUs) + c.Keyframes[0]
}

func isKeyframeIndex(c *camsim.Clip, i int) bool {
	for _, k := range c.Keyframes {
		if k == i {
			return true
		}
	}
	return false
}

// sdpLines is an SDP read line by line, as a device would.
type sdpLines []string

func parseSDPLines(b []byte) sdpLines {
	var out sdpLines
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// get is the value of the first "k=" line.
func (s sdpLines) get(k string) string {
	for _, l := range s {
		if strings.HasPrefix(l, k+"=") {
			return l[len(k)+1:]
		}
	}
	return ""
}

func (s sdpLines) has(line string) bool {
	for _, l := range s {
		if l == line {
			return true
		}
	}
	return false
}

func (s sdpLines) tcp() bool { return strings.Contains(s.get("m"), "TCP/RTP/AVP") }

// addr is where the offer wants media: c= host, m= port.
func (s sdpLines) addr() string {
	c := strings.Fields(s.get("c"))
	m := strings.Fields(s.get("m"))
	if len(c) < 3 || len(m) < 2 {
		return ""
	}
	return net.JoinHostPort(c[2], m[1])
}
