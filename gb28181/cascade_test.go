package gb28181

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/gb28181/gbsdp"
	"github.com/tianyan/vms/gb28181/manscdp"
	"github.com/tianyan/vms/gb28181/ps"
	"github.com/tianyan/vms/streaming"
)

// The lower platform (us) registers to an upper one: both are real
// gb28181 Servers on loopback, the upper with the downstream REGISTER and
// keepalive handling every device meets.
const (
	lowerID    = "44030700002000000777"
	pointIn1   = "44030700001320000001" // granted, street 001
	pointIn2   = "44030700001320000002" // granted, street 002
	pointOut   = "44030700001320000003" // not granted
	cityAcct   = "city"
	upperPass  = "secret-12345"
	testUnit   = 100 * time.Millisecond // one stored "second" in these tests
	keepaliveN = 5                      // stored keepalive interval: 5 units = 500 ms
)

// grantBook is the injected access: which points each account may view,
// changeable while the test runs (a grant withdrawn).
type grantBook struct {
	mu     sync.Mutex
	points []catalog.Point
	grants map[string]map[string]bool // account → point IDs
}

func (g *grantBook) PointsVisibleTo(account string) []catalog.Point {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []catalog.Point
	for _, p := range g.points {
		if g.grants[account][p.ID] {
			out = append(out, p)
		}
	}
	return out
}

func (g *grantBook) CanView(account, id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.grants[account][id]
}

func (g *grantBook) revoke(account, id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.grants[account], id)
}

type lowerFixture struct {
	hub     *streaming.Hub
	upper   *Server
	lower   *Server
	cascade *Cascade
	store   *PlatformStore
	access  *grantBook
	audit   *audit.Log
}

func f64(v float64) *float64 { return &v }

// newLower starts the lower platform with an upstream platform config
// pointing at upper over transport, a camera behind pointIn1, and grants
// for pointIn1 and pointIn2 only.
func newLower(t testing.TB, upper *Server, transport string) *lowerFixture {
	t.Helper()
	db, al := openTestDB(t)
	lower := newTestServer(t, func(c *Config) {
		c.ID, c.DB, c.Audit = lowerID, db, al
		if os.Getenv("GB_DEBUG") != "" {
			c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	})
	cam := startTestCamera(t)
	hub := streaming.NewHub(streaming.HubConfig{IdleGrace: time.Second, StartTimeout: 5 * time.Second, Logger: quietLogger()})
	t.Cleanup(hub.Close)
	hub.SetPoint(pointIn1, streaming.SourceConfig{Type: streaming.SourceRTSP, URL: cam.URL("main"), OnDemand: true})
	hub.SetPoint(pointOut, streaming.SourceConfig{Type: streaming.SourceRTSP, URL: cam.URL("main"), OnDemand: true})
	access := &grantBook{
		points: []catalog.Point{
			{ID: pointIn1, Name: "南头水库大坝", Region: "440307001", Lat: f64(22.53), Lon: f64(113.92), PTZ: true, Status: catalog.Status{State: catalog.StateOnline}},
			{ID: pointIn2, Name: "河道二号", Region: "440307002"},
			{ID: pointOut, Name: "学校门口", Region: "440307001"},
		},
		grants: map[string]map[string]bool{cityAcct: {pointIn1: true, pointIn2: true}},
	}
	ps := NewPlatformStore(db)
	addr := upper.UDPAddr().String()
	if transport == "tcp" {
		addr = upper.TCPAddr().String()
	}
	if _, err := ps.Create(Platform{ID: upper.Config().ID, Address: addr, Transport: transport, Keepalive: keepaliveN, Expiry: 60,
		Account: cityAcct, Enabled: true}, upperPass); err != nil {
		t.Fatal(err)
	}
	c := NewCascade(lower, ps, CascadeConfig{Access: access, Streams: hub, Audit: al, RecheckInterval: 200 * time.Millisecond,
		MediaTimeout: 5 * time.Second, Logger: quietLogger()})
	c.unit = testUnit
	c.Start()
	t.Cleanup(c.Close)
	return &lowerFixture{hub: hub, upper: upper, lower: lower, cascade: c, store: ps, access: access, audit: al}
}

func startTestCamera(t testing.TB) *camsim.RTSPCamera {
	t.Helper()
	return startClipCamera(t, camsim.ClipH264Sub)
}

func startClipCamera(t testing.TB, name string) *camsim.RTSPCamera {
	t.Helper()
	clip, err := camsim.LoadClip(name)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{Address: "127.0.0.1:0", Profiles: map[string]*camsim.Clip{"main": clip},
		Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *lowerFixture) waitRegistered(t *testing.T) {
	t.Helper()
	eventually(t, 10*time.Second, "the upper to see the lower registered and online", func() bool {
		d, ok := f.upper.Devices().Get(lowerID)
		return ok && d.Online && f.cascade.Status(f.upper.Config().ID).Registered
	})
}

// queryCatalog asks the lower for its catalog from the upper and collects
// every page until SumNum items came.
func (f *lowerFixture) queryCatalog(t *testing.T) (items []manscdp.Item, pages int) {
	t.Helper()
	sn := NextSN()
	var mu sync.Mutex
	sum := -1
	cancel := f.upper.Expect(lowerID, "Catalog", sn, func(r *Request) {
		m, err := manscdp.Parse(r.Body())
		if err != nil {
			t.Errorf("catalog page: %v", err)
			return
		}
		res := m.Body.(*manscdp.CatalogResponse)
		mu.Lock()
		defer mu.Unlock()
		sum = res.SumNum
		pages++
		items = append(items, res.DeviceList.Items...)
	})
	defer cancel()
	body, err := manscdp.Marshal(&manscdp.CatalogQuery{Header: manscdp.Header{CmdType: manscdp.CmdCatalog, SN: sn, DeviceID: lowerID}}, "")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := f.upper.DevicePeer(lowerID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.upper.SendMANSCDP(context.Background(), peer, "", body); err != nil {
		t.Fatalf("catalog query: %v", err)
	}
	eventually(t, 5*time.Second, "every catalog page", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return sum >= 0 && len(items) >= sum
	})
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(items), pages
}

func TestLowerRegistersUpwardAndListsExactlyTheGrantedPoints(t *testing.T) {
	for _, tp := range []string{"udp", "tcp"} {
		t.Run(tp, func(t *testing.T) {
			upper := newTestServer(t, nil)
			f := newLower(t, upper, tp)
			f.waitRegistered(t)
			st := f.cascade.Status(upper.Config().ID)
			if st.RegisteredAt.IsZero() || st.LastError != "" {
				t.Errorf("status %+v", st)
			}
			items, _ := f.queryCatalog(t)
			var ids []string
			for _, it := range items {
				ids = append(ids, it.DeviceID)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, []string{pointIn1, pointIn2}) {
				t.Fatalf("catalog lists %v, want exactly the granted %v", ids, []string{pointIn1, pointIn2})
			}
			for _, it := range items {
				if it.ParentID != lowerID || it.Parental != 0 {
					t.Errorf("%s: parent %q/%d", it.DeviceID, it.ParentID, it.Parental)
				}
				if it.DeviceID == pointIn1 && (it.CivilCode != "440307001" || it.Longitude != 113.92 || it.Latitude != 22.53 ||
					it.Status != manscdp.StatusOn || it.Name != "南头水库大坝" || it.Info == nil || it.Info.PTZType != manscdp.PTZTypeDome) {
					t.Errorf("item %+v", it)
				}
				if it.DeviceID == pointIn2 && (it.CivilCode != "440307002" || it.Status != manscdp.StatusOff) {
					t.Errorf("item %+v", it)
				}
			}
			// The registration is audited just after its state turns registered.
			eventually(t, 5*time.Second, "registration upward audited", func() bool {
				return len(auditActions(t, f.audit, "gb.upstream.register")) > 0
			})
		})
	}
}

func TestCatalogAnswerIsPagedWithSumNum(t *testing.T) {
	upper := newTestServer(t, nil)
	f := newLower(t, upper, "tcp")
	f.access.mu.Lock()
	for i := range 10 {
		id := "4403070000132000" + strconv.Itoa(1000+i)
		f.access.points = append(f.access.points, catalog.Point{ID: id, Name: "p" + id, Region: "440307001"})
		f.access.grants[cityAcct][id] = true
	}
	f.access.mu.Unlock()
	f.waitRegistered(t)
	items, pages := f.queryCatalog(t)
	if len(items) != 12 || pages != 3 {
		t.Fatalf("%d items in %d pages, want 12 in 3 (4 a page over TCP)", len(items), pages)
	}
}

// invite sends an INVITE for point from the upper with offer; it returns
// the final response and, for a 2xx, sends the ACK.
func invite(t *testing.T, upper *Server, point string, offer *gbsdp.Session) (*sip.Request, *sip.Response) {
	t.Helper()
	peer, err := upper.DevicePeer(lowerID)
	if err != nil {
		t.Fatal(err)
	}
	req, err := upper.NewRequest(sip.INVITE, peer, point, ContentTypeSDP, offer.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := upper.Do(ctx, req)
	if err != nil {
		t.Fatalf("INVITE: %v", err)
	}
	if res.IsSuccess() {
		ack := inDialog(upper, req, res, sip.ACK)
		upper.Route(ack, peer)
		if err := upper.Write(ack); err != nil {
			t.Fatalf("ACK: %v", err)
		}
	}
	return req, res
}

// inDialog builds the ACK (same CSeq) or BYE (next CSeq) of the dialog
// req/res set up, as the upper's side.
func inDialog(s *Server, req *sip.Request, res *sip.Response, method sip.RequestMethod) *sip.Request {
	target := req.Recipient
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	out := sip.NewRequest(method, target)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: req.Transport(), Host: "127.0.0.1", Port: s.LocalPort(), Params: sip.NewParams()}
	via.Params.Add("rport", "")
	via.Params.Add("branch", sip.GenerateBranchN(16))
	out.AppendHeader(via)
	f, to := req.From(), res.To()
	out.AppendHeader(&sip.FromHeader{DisplayName: f.DisplayName, Address: f.Address, Params: f.Params.Clone()})
	out.AppendHeader(&sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params.Clone()})
	cid := *req.CallID()
	out.AppendHeader(&cid)
	seq := req.CSeq().SeqNo
	if method != sip.ACK {
		seq++
	}
	out.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	out.AppendHeader(&mf)
	out.SetBody(nil) // Content-Length: 0, which TCP needs to find the end
	return out
}

func playOffer(port int, tr gbsdp.Transport) *gbsdp.Session {
	return gbsdp.NewOffer(gbsdp.Offer{ID: testServerID, IP: "127.0.0.1", Port: port, Transport: tr, SSRC: "0440370001"})
}

// frames counts the video frames (and keyframes) of one codec demuxed from PS over RTP.
type frames struct {
	mu         sync.Mutex
	typ        ps.StreamType
	n, key     int
	ssrcs      map[uint32]bool
	demux      *ps.Demuxer
	feedErrors int
}

func newFrames() *frames {
	return &frames{typ: ps.H264, ssrcs: map[uint32]bool{}, demux: ps.NewDemuxer()}
}

func (f *frames) rtp(b []byte) {
	var p rtp.Packet
	if p.Unmarshal(b) != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ssrcs[p.SSRC] = true
	if err := f.demux.Feed(p.Payload, func(fr ps.Frame) {
		if fr.Type == f.typ {
			f.n++
			if fr.Key {
				f.key++
			}
		}
	}); err != nil {
		f.feedErrors++
	}
}

func (f *frames) counts() (n, key int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.key
}

// readTCP reads RFC 4571 frames from conn into f until it fails.
func (f *frames) readTCP(conn net.Conn) {
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return
		}
		b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(conn, b); err != nil {
			return
		}
		f.rtp(b)
	}
}

func TestUpperPlaysAGrantedPointAsPSOverRTPInEveryTransport(t *testing.T) {
	for _, sipTransport := range []string{"udp", "tcp"} {
		t.Run("sip-"+sipTransport, func(t *testing.T) { testUpperPlays(t, sipTransport) })
	}
}

func testUpperPlays(t *testing.T, sipTransport string) {
	upper := newTestServer(t, nil)
	f := newLower(t, upper, sipTransport)
	f.waitRegistered(t)
	for _, tr := range []gbsdp.Transport{gbsdp.UDP, gbsdp.TCPPassive, gbsdp.TCPActive} {
		t.Run(string(tr), func(t *testing.T) {
			got := newFrames()
			var offer *gbsdp.Session
			var dialTo func(answer *gbsdp.Session)
			switch tr {
			case gbsdp.UDP:
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pc.Close() })
				go func() {
					buf := make([]byte, 2048)
					for {
						n, _, err := pc.ReadFrom(buf)
						if err != nil {
							return
						}
						got.rtp(buf[:n])
					}
				}()
				offer = playOffer(pc.LocalAddr().(*net.UDPAddr).Port, tr)
			case gbsdp.TCPPassive: // the upper listens, the lower dials
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go func() {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					defer conn.Close()
					got.readTCP(conn)
				}()
				offer = playOffer(ln.Addr().(*net.TCPAddr).Port, tr)
			case gbsdp.TCPActive: // the upper dials where the answer says
				offer = playOffer(9, tr)
				dialTo = func(a *gbsdp.Session) {
					m := a.Video()
					if m == nil || m.Transport() != gbsdp.TCPPassive {
						t.Fatalf("answer to an active offer is not passive: %s", a.Marshal())
					}
					conn, err := net.DialTimeout("tcp", net.JoinHostPort(a.MediaAddr(m), strconv.Itoa(m.Port)), 5*time.Second)
					if err != nil {
						t.Fatalf("dial the lower's media port: %v", err)
					}
					t.Cleanup(func() { conn.Close() })
					go got.readTCP(conn)
				}
			}
			req, res := invite(t, upper, pointIn1, offer)
			if res.StatusCode != 200 {
				t.Fatalf("INVITE answered %d %s", res.StatusCode, res.Reason)
			}
			answer, err := gbsdp.Parse(res.Body())
			if err != nil {
				t.Fatalf("answer SDP: %v", err)
			}
			if answer.SSRC != "0440370001" {
				t.Errorf("answer y=%q, want the offer's echoed", answer.SSRC)
			}
			if dialTo != nil {
				dialTo(answer)
			}
			eventually(t, 10*time.Second, "50 H.264 frames with a keyframe", func() bool { n, key := got.counts(); return n >= 50 && key >= 1 })
			got.mu.Lock()
			ssrcs := got.ssrcs
			got.mu.Unlock()
			if len(ssrcs) != 1 || !ssrcs[440370001] {
				t.Errorf("RTP SSRCs %v, want only 440370001 (y=)", ssrcs)
			}
			if st := f.cascade.Status(upper.Config().ID); st.Views != 1 {
				t.Errorf("status shows %d views", st.Views)
			}
			// BYE from the upper ends the view, audited with the platform account as actor.
			bye := inDialog(upper, req, res, sip.BYE)
			peer, _ := upper.DevicePeer(lowerID)
			upper.Route(bye, peer)
			before := len(auditActions(t, f.audit, "view.stop"))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if br, err := upper.Do(ctx, bye); err != nil || br.StatusCode != 200 {
				t.Fatalf("BYE: %v %v", br, err)
			}
			eventually(t, 5*time.Second, "the view to end, audited", func() bool {
				return f.cascade.Status(upper.Config().ID).Views == 0 && len(auditActions(t, f.audit, "view.stop")) > before
			})
			stops := auditActions(t, f.audit, "view.stop")
			if len(stops) != before+1 || stops[0].User != cityAcct || stops[0].Point != pointIn1 || stops[0].Detail["reason"] != "bye" ||
				stops[0].Detail["via"] != "gb28181" {
				t.Errorf("view.stop records %+v", stops)
			}
		})
	}
	starts := auditActions(t, f.audit, "view.start")
	if len(starts) != 3 || starts[0].User != cityAcct {
		t.Errorf("view.start records %+v", starts)
	}
}

func TestInviteForAPointNotGrantedIs403(t *testing.T) {
	upper := newTestServer(t, nil)
	f := newLower(t, upper, "udp")
	f.waitRegistered(t)
	for _, id := range []string{pointOut, "44030700001320009999"} {
		_, res := invite(t, upper, id, playOffer(30000, gbsdp.UDP))
		if res.StatusCode != 403 {
			t.Errorf("INVITE for %s answered %d, want 403", id, res.StatusCode)
		}
	}
	refused := auditActions(t, f.audit, "view.refused")
	if len(refused) != 2 || refused[0].User != cityAcct || refused[0].Detail["reason"] != "no_grant" {
		t.Errorf("view.refused records %+v", refused)
	}
	if n := len(auditActions(t, f.audit, "view.start")); n != 0 {
		t.Errorf("%d views started", n)
	}
}

func TestInviteNamingAMediaAddressOutsideThePlatformIs403(t *testing.T) {
	upper := newTestServer(t, nil)
	f := newLower(t, upper, "udp")
	f.waitRegistered(t)
	offer := gbsdp.NewOffer(gbsdp.Offer{ID: testServerID, IP: "127.0.0.2", Port: 30000, Transport: gbsdp.UDP, SSRC: "0440370001"})
	if _, res := invite(t, upper, pointIn1, offer); res.StatusCode != 403 {
		t.Fatalf("INVITE sending media to 127.0.0.2 answered %d, want 403", res.StatusCode)
	}
	// Listed as one of the platform's media networks, it is allowed.
	nets := []string{"127.0.0.2/32"}
	if _, err := f.store.Update(upper.Config().ID, PlatformPatch{MediaNetworks: &nets}); err != nil {
		t.Fatal(err)
	}
	f.waitRegistered(t)
	eventually(t, 5*time.Second, "the new configuration", func() bool {
		l := f.cascade.link(upper.Config().ID)
		return l != nil && len(l.cfg.MediaNetworks) == 1 && l.registered()
	})
	if _, res := invite(t, upper, pointIn1, offer); res.StatusCode != 200 {
		t.Fatalf("INVITE to a listed media network answered %d", res.StatusCode)
	}
}

// upstreamUDPView has an upper platform, which counts the BYEs it gets, view pointIn1 of a
// registered lower over UDP, and waits for the media to flow to its counting RTP socket.
func upstreamUDPView(t *testing.T) (f *lowerFixture, byes, packets *atomic.Int32) {
	t.Helper()
	upper := newTestServer(t, nil)
	byes, packets = new(atomic.Int32), new(atomic.Int32)
	upper.Handle(sip.BYE, func(_ context.Context, r *Request) {
		byes.Add(1)
		r.Respond(200, "OK", nil)
	})
	f = newLower(t, upper, "udp")
	f.waitRegistered(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			packets.Add(1)
		}
	}()
	if _, res := invite(t, upper, pointIn1, playOffer(pc.LocalAddr().(*net.UDPAddr).Port, gbsdp.UDP)); res.StatusCode != 200 {
		t.Fatalf("INVITE answered %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "media", func() bool { return packets.Load() > 20 })
	return f, byes, packets
}

func TestRevokingTheGrantEndsTheUpstreamViewWithBye(t *testing.T) {
	f, byes, packets := upstreamUDPView(t)
	f.access.revoke(cityAcct, pointIn1)
	eventually(t, 5*time.Second, "our BYE after the grant went", func() bool { return byes.Load() == 1 })
	// The BYE goes out before the view's end is audited.
	eventually(t, 5*time.Second, "view.stop audited", func() bool { return len(auditActions(t, f.audit, "view.stop")) > 0 })
	stops := auditActions(t, f.audit, "view.stop")
	if len(stops) != 1 || stops[0].Detail["reason"] != "access_revoked" || stops[0].User != cityAcct {
		t.Fatalf("view.stop %+v", stops)
	}
	n := packets.Load()
	time.Sleep(500 * time.Millisecond)
	if packets.Load()-n > 2 {
		t.Errorf("media kept flowing after the view ended: %d more packets", packets.Load()-n)
	}
}

func TestIdleRegistrationStaysUpOverManyKeepaliveIntervals(t *testing.T) {
	upper := newTestServer(t, func(c *Config) { c.KeepaliveInterval = keepaliveN * testUnit })
	f := newLower(t, upper, "udp")
	f.waitRegistered(t)
	first := f.cascade.Status(upper.Config().ID)
	seen, _ := upper.Devices().Get(lowerID)
	// Ten intervals of nothing but keepalives (and one refresh: the upper
	// grants 60 units, we register again at 45).
	deadline := time.Now().Add(10 * keepaliveN * testUnit)
	for time.Now().Before(deadline) {
		if d, ok := upper.Devices().Get(lowerID); !ok || !d.Online {
			t.Fatal("the upper lost the lower while idle")
		}
		if !f.cascade.Status(upper.Config().ID).Registered {
			t.Fatal("the lower lost its registration while idle")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if now, _ := upper.Devices().Get(lowerID); !now.RegisteredAt.After(seen.RegisteredAt) {
		t.Error("no REGISTER refresh before the registration ran out")
	}
	st := f.cascade.Status(upper.Config().ID)
	if !st.RegisteredAt.Equal(first.RegisteredAt) || st.LastKeepalive.IsZero() || !st.LastKeepalive.After(first.RegisteredAt) {
		t.Errorf("status moved: first %+v now %+v", first, st)
	}
}

func TestLowerRegistersAgainWhenTheUpperComesBack(t *testing.T) {
	upper := newTestServer(t, nil)
	addr := upper.UDPAddr().String()
	f := newLower(t, upper, "udp")
	f.waitRegistered(t)
	upper.Close()
	eventually(t, 10*time.Second, "the lower to notice the upper is gone", func() bool {
		st := f.cascade.Status(testServerID)
		return !st.Registered && st.LastError != ""
	})
	back := newTestServer(t, func(c *Config) { c.Listen = addr })
	eventually(t, 40*time.Second, "the lower to register to the upper again", func() bool {
		d, ok := back.Devices().Get(lowerID)
		return ok && d.Online && f.cascade.Status(testServerID).Registered
	})
	if n := len(auditActions(t, f.audit, "gb.upstream.lost")); n != 1 {
		t.Errorf("%d gb.upstream.lost records, want 1", n)
	}
}

func TestRequestClaimingThePlatformFromAnotherAddressIsRefused(t *testing.T) {
	upper := newTestServer(t, nil)
	f := newLower(t, upper, "udp")
	f.waitRegistered(t)
	// Forge the platform's From from another address of ours.
	l := f.cascade.link(testServerID)
	l.mu.Lock()
	l.ip = net.ParseIP("127.0.0.9")
	l.mu.Unlock()
	_, res := invite(t, upper, pointIn1, playOffer(30000, gbsdp.UDP))
	if res.StatusCode != 403 {
		t.Fatalf("INVITE from an address not the platform's answered %d, want 403", res.StatusCode)
	}
}

func TestUpperWithCatalogSyncGetsExactlyTheGrantedPointsAsChannelsOfTheLower(t *testing.T) {
	db, al := openTestDB(t)
	cat, err := catalog.New(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateRegion(catalog.Region{Code: "440307", Name: "district"}); err != nil {
		t.Fatal(err)
	}
	upper := newTestServer(t, func(c *Config) { c.DB, c.Audit, c.Catalog = db, al, cat })
	f := newLower(t, upper, "udp")
	f.waitRegistered(t)
	eventually(t, 15*time.Second, "the upper's catalog sync to store the lower's channels", func() bool {
		_, e1 := cat.Get(pointIn1)
		_, e2 := cat.Get(pointIn2)
		return e1 == nil && e2 == nil
	})
	if _, err := cat.Get(pointOut); err == nil {
		t.Fatal("the upper got a point the platform account may not view")
	}
	p, _ := cat.Get(pointIn1)
	if p.Main.Type != catalog.SourceGB28181 || p.Main.Device != lowerID || p.Name != "南头水库大坝" || p.Lat == nil || *p.Lat != 22.53 || !p.PTZ {
		t.Errorf("upper's point %+v", p)
	}
	if p.Region != "440307001" {
		t.Errorf("upper's point region %q, want the civil code 440307001", p.Region)
	}
}

func TestMalformedRequestsFromThePlatformAreRefusedWithoutHarm(t *testing.T) {
	upper := newTestServer(t, nil)
	f := newLower(t, upper, "udp")
	f.waitRegistered(t)
	peer, err := upper.DevicePeer(lowerID)
	if err != nil {
		t.Fatal(err)
	}
	send := func(method sip.RequestMethod, target, ct string, body []byte) int {
		req, err := upper.NewRequest(method, peer, target, ct, body)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := upper.Do(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return int(res.StatusCode)
	}
	for _, body := range []string{"", "v=0\r\n", "\x00\xff garbage", "v=0\r\nm=video 99999999 RTP/AVP 96\r\n"} {
		if code := send(sip.INVITE, pointIn1, ContentTypeSDP, []byte(body)); code < 400 {
			t.Errorf("INVITE with SDP %q answered %d", body, code)
		}
	}
	if code := send(sip.MESSAGE, "", ContentTypeMANSCDP, []byte("<?xml version=\"1.0\"?><Query><CmdType>Catalog</CmdType><SN>x")); code != 400 {
		t.Errorf("truncated query answered %d, want 400", code)
	}
	// Still answering afterwards.
	if items, _ := f.queryCatalog(t); len(items) != 2 {
		t.Errorf("catalog after garbage: %d items", len(items))
	}
	if n := len(auditActions(t, f.audit, "view.start")); n != 0 {
		t.Errorf("%d views started from garbage", n)
	}
}

func TestH265PointGoesUpwardAsH265InPS(t *testing.T) {
	upper := newTestServer(t, nil)
	f := newLower(t, upper, "udp")
	cam := startClipCamera(t, camsim.ClipH265Sub)
	const h265Point = "44030700001320000265"
	f.hub.SetPoint(h265Point, streaming.SourceConfig{Type: streaming.SourceRTSP, URL: cam.URL("main"), OnDemand: true})
	f.access.mu.Lock()
	f.access.points = append(f.access.points, catalog.Point{ID: h265Point, Name: "H.265", Region: "440307001"})
	f.access.grants[cityAcct][h265Point] = true
	f.access.mu.Unlock()
	f.waitRegistered(t)
	got := newFrames()
	got.typ = ps.H265
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got.rtp(buf[:n])
		}
	}()
	if _, res := invite(t, upper, h265Point, playOffer(pc.LocalAddr().(*net.UDPAddr).Port, gbsdp.UDP)); res.StatusCode != 200 {
		t.Fatalf("INVITE answered %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "25 H.265 frames with a keyframe", func() bool { n, key := got.counts(); return n >= 25 && key >= 1 })
}

func TestPlatformBeyondItsViewCapIsBusy(t *testing.T) {
	upper := newTestServer(t, nil)
	f := newLower(t, upper, "udp")
	f.cascade.cfg.MaxViewsPerPlatform = 1
	f.waitRegistered(t)
	if _, res := invite(t, upper, pointIn1, playOffer(30000, gbsdp.UDP)); res.StatusCode != 200 {
		t.Fatalf("first INVITE answered %d", res.StatusCode)
	}
	if _, res := invite(t, upper, pointIn1, playOffer(30002, gbsdp.UDP)); res.StatusCode != 486 {
		t.Fatalf("INVITE beyond the cap answered %d, want 486", res.StatusCode)
	}
	refused := auditActions(t, f.audit, "view.refused")
	if len(refused) != 1 || refused[0].Detail["reason"] != "cap" {
		t.Errorf("view.refused %+v", refused)
	}
}

func TestRegisterUpwardAnswersAProxyChallenge(t *testing.T) {
	upper := newTestServer(t, nil)
	chal := &digest.Challenge{Realm: "city", Nonce: "n0nce-407", Algorithm: "MD5"}
	var accepted atomic.Int32
	upper.Handle(sip.REGISTER, func(_ context.Context, r *Request) {
		h := r.SIP.GetHeader("Proxy-Authorization")
		if h == nil {
			r.Respond(407, "Proxy Authentication Required", nil, sip.NewHeader("Proxy-Authenticate", chal.String()))
			return
		}
		cred, err := digest.ParseCredentials(h.Value())
		if err != nil {
			r.Respond(400, "Bad Request", nil)
			return
		}
		want, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: cred.URI, Username: lowerID, Password: upperPass})
		if err != nil || cred.Username != lowerID || cred.Response != want.Response {
			r.Respond(403, "Forbidden", nil)
			return
		}
		accepted.Add(1)
		exp := sip.ExpiresHeader(60)
		r.Respond(200, "OK", nil, &exp)
	})
	upper.HandleCmd("Keepalive", func(_ context.Context, r *Request) { r.Respond(200, "OK", nil) })
	f := newLower(t, upper, "udp")
	eventually(t, 10*time.Second, "registered through a 407", func() bool {
		return accepted.Load() >= 1 && f.cascade.Status(upper.Config().ID).Registered
	})
	// A wrong password is an error the admin page shows, and retried with backoff.
	wrong := "not-the-password"
	if _, err := f.store.Update(upper.Config().ID, PlatformPatch{Password: &wrong}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the refusal shown", func() bool {
		st := f.cascade.Status(upper.Config().ID)
		return !st.Registered && strings.Contains(st.LastError, "403")
	})
	if strings.Contains(f.cascade.Status(upper.Config().ID).LastError, wrong) {
		t.Error("the status shows the password")
	}
}

// query sends a MANSCDP query from the upper and returns the lower's answer.
func (f *lowerFixture) query(t *testing.T, cmd manscdp.CmdType, target string, q any) manscdp.Message {
	t.Helper()
	sn := NextSN()
	got := make(chan manscdp.Message, 1)
	cancel := f.upper.Expect(lowerID, string(cmd), sn, func(r *Request) {
		if m, err := manscdp.Parse(r.Body()); err == nil {
			select {
			case got <- m:
			default:
			}
		}
	})
	defer cancel()
	switch q := q.(type) {
	case *manscdp.DeviceInfoQuery:
		q.Header = manscdp.Header{CmdType: cmd, SN: sn, DeviceID: target}
	case *manscdp.DeviceStatusQuery:
		q.Header = manscdp.Header{CmdType: cmd, SN: sn, DeviceID: target}
	}
	body, err := manscdp.Marshal(q, "")
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := f.upper.DevicePeer(lowerID)
	if err := f.upper.SendMANSCDP(context.Background(), peer, target, body); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s answer", cmd)
	}
	return manscdp.Message{}
}

func TestDeviceInfoAndStatusAreAnsweredWithinTheGrants(t *testing.T) {
	upper := newTestServer(t, nil)
	f := newLower(t, upper, "udp")
	f.waitRegistered(t)
	info := f.query(t, manscdp.CmdDeviceInfo, lowerID, &manscdp.DeviceInfoQuery{}).Body.(*manscdp.DeviceInfoResponse)
	if info.Result != manscdp.ResultOK || info.DeviceID != lowerID || info.Channel != 2 {
		t.Errorf("our DeviceInfo %+v, want 2 channels (the granted ones)", info)
	}
	info = f.query(t, manscdp.CmdDeviceInfo, pointIn1, &manscdp.DeviceInfoQuery{}).Body.(*manscdp.DeviceInfoResponse)
	if info.Result != manscdp.ResultOK || info.DeviceName != "南头水库大坝" {
		t.Errorf("a granted channel's DeviceInfo %+v", info)
	}
	info = f.query(t, manscdp.CmdDeviceInfo, pointOut, &manscdp.DeviceInfoQuery{}).Body.(*manscdp.DeviceInfoResponse)
	if info.Result != manscdp.ResultError || info.DeviceName != "" {
		t.Errorf("an ungranted channel's DeviceInfo tells %+v", info)
	}
	st := f.query(t, manscdp.CmdDeviceStatus, pointIn1, &manscdp.DeviceStatusQuery{}).Body.(*manscdp.DeviceStatusResponse)
	if st.Result != manscdp.ResultOK || st.Online != "ONLINE" {
		t.Errorf("a granted online channel's status %+v", st)
	}
	st = f.query(t, manscdp.CmdDeviceStatus, pointIn2, &manscdp.DeviceStatusQuery{}).Body.(*manscdp.DeviceStatusResponse)
	if st.Online != "OFFLINE" {
		t.Errorf("a granted offline channel's status %+v", st)
	}
	st = f.query(t, manscdp.CmdDeviceStatus, pointOut, &manscdp.DeviceStatusQuery{}).Body.(*manscdp.DeviceStatusResponse)
	if st.Result != manscdp.ResultError {
		t.Errorf("an ungranted channel's status %+v", st)
	}
}

func TestStreamEndingEndsTheUpstreamViewWithBye(t *testing.T) {
	f, byes, _ := upstreamUDPView(t)
	f.hub.RemovePoint(pointIn1) // the point is gone from the hub: its stream ends
	eventually(t, 5*time.Second, "our BYE when the stream ended", func() bool { return byes.Load() == 1 })
	eventually(t, 5*time.Second, "view.stop audited", func() bool { return len(auditActions(t, f.audit, "view.stop")) > 0 })
	stops := auditActions(t, f.audit, "view.stop")
	if len(stops) != 1 || stops[0].Detail["reason"] != "stream_ended" {
		t.Fatalf("view.stop %+v", stops)
	}
}
