package server

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gb28181"
	"github.com/tianyan/vms/gb28181/gbsdp"
	"github.com/tianyan/vms/gb28181/media"
	"github.com/tianyan/vms/gb28181/ps"
	"github.com/tianyan/vms/streaming"
	"github.com/tianyan/vms/whepclient"
)

// The cascade between two whole servers: the lower one (a district) ingests
// a camera over RTSP and registers upward; the upper one (the city) runs
// the downstream side of gb28181 with its catalog sync. Both have their own
// bbolt, accounts, grants, hub and SIP port.
const (
	e2eUpperID   = "44030000002000000001"
	e2eLowerID   = "44030700002000000001"
	e2eDomain    = "4403000000"
	e2eLowerDom  = "4403070000"
	e2eIn1       = "44030700001320000001" // reservoir, behind the camera
	e2eIn2       = "44030700001320000002" // reservoir
	e2eOut       = "44030700001320000003" // school: not granted
	e2eUpperPass = "city-register-pass"
)

// startSIP starts a GB/T 28181 server for a; upper ones sync catalogs into a's points.
func startSIP(t *testing.T, a *testApp, id, domain, password string, upper bool) *gb28181.Server {
	t.Helper()
	cfg := gb28181.Config{ID: id, Domain: domain, Listen: "127.0.0.1:0", Password: password, DB: a.DB, Audit: a.Audit,
		KeepaliveInterval: 5 * time.Second, RequestTimeout: 3 * time.Second, Logger: testLogger()}
	if upper {
		cfg.Catalog = a.Catalog
	}
	s, err := gb28181.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startSIPApp starts a whole server with its GB/T 28181 side on, as
// `vms serve --sip 127.0.0.1:0 --sip-id id --sip-domain domain` would.
func startSIPApp(t *testing.T, id, domain, password string) *testApp {
	t.Helper()
	cfg := testConfig(t)
	// A cold cascade is two on-demand starts in a row (the lower's camera,
	// then the upper's INVITE), on a shared box: a generous bound.
	cfg.StartTimeout = 15 * time.Second
	cfg.SIPAddr, cfg.SIPID, cfg.SIPDomain, cfg.SIPPassword = "127.0.0.1:0", id, domain, password
	cfg.SIPKeepalive = 5 * time.Second
	return startAppWith(t, cfg)
}

func TestSecondServerAsUpperPlatformListsOnlyGrantedPointsAndPlaysOneThroughTheCascade(t *testing.T) {
	lower := startSIPApp(t, e2eLowerID, e2eLowerDom, "")
	cam := startCamera(t, camsim.ClipH264Sub)
	for id, cat := range map[string]string{e2eIn1: "reservoir", e2eIn2: "reservoir", e2eOut: "school"} {
		src := map[string]string{"type": "publish"}
		if id == e2eIn1 {
			src = map[string]string{"type": "rtsp", "url": cam.URL("main")}
		}
		res := lower.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": id, "name": "点位 " + id, "category": cat, "main": src})
		if res.Status != http.StatusCreated {
			t.Fatalf("point %s: %s", id, res)
		}
	}
	if res := lower.admin(http.MethodPost, "/api/v1/users", map[string]any{"username": "city", "kind": "platform"}); res.Status != http.StatusCreated {
		t.Fatalf("platform account: %s", res)
	}
	lower.grant(map[string]any{"user": "city", "categories": []string{"reservoir"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}})

	upper := startSIPApp(t, e2eUpperID, e2eDomain, e2eUpperPass)
	upperSIP := upper.GB
	res := lower.admin(http.MethodPost, "/api/v1/gb/platforms", map[string]any{"id": e2eUpperID, "name": "市级平台",
		"address": upper.SIPAddr(), "transport": "udp", "password": e2eUpperPass, "account": "city",
		"keepalive_interval_s": 5, "enabled": true})
	if res.Status != http.StatusCreated {
		t.Fatalf("upstream platform: %s", res)
	}
	waitFor(t, 10*time.Second, "the upper to see the lower online", func() bool {
		d, ok := upperSIP.Devices().Get(e2eLowerID)
		return ok && d.Online && lower.Cascade.Status(e2eUpperID).Registered
	})
	var st struct {
		Items []struct {
			ID     string
			Status gb28181.PlatformStatus
		}
	}
	decodeInto(t, lower.admin(http.MethodGet, "/api/v1/gb/platforms", nil), &st)
	if len(st.Items) != 1 || !st.Items[0].Status.Registered {
		t.Fatalf("lower's platform list %+v", st.Items)
	}
	// The upper lists exactly the granted points, as channels of the lower.
	waitFor(t, 15*time.Second, "the upper's catalog to hold the lower's granted points", func() bool {
		_, e1 := upper.Catalog.Get(e2eIn1)
		_, e2 := upper.Catalog.Get(e2eIn2)
		return e1 == nil && e2 == nil
	})
	if _, err := upper.Catalog.Get(e2eOut); err == nil {
		t.Fatal("the upper holds a point the platform account may not view")
	}
	var listed listJSON[struct{ ID string }]
	decodeInto(t, upper.admin(http.MethodGet, "/api/v1/points?limit=100", nil), &listed)
	if len(listed.Items) != 2 {
		t.Errorf("the upper lists %+v, want the two granted points", listed.Items)
	}

	// INVITE for the ungranted point: 403.
	peer, err := upperSIP.DevicePeer(e2eLowerID)
	if err != nil {
		t.Fatal(err)
	}
	offer := gbsdp.NewOffer(gbsdp.Offer{ID: e2eUpperID, IP: "127.0.0.1", Port: 30000, Transport: gbsdp.UDP, SSRC: "0000000042"})
	req, err := upperSIP.NewRequest(sip.INVITE, peer, e2eOut, gb28181.ContentTypeSDP, offer.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res, err := upperSIP.Do(ictx, req); err != nil || res.StatusCode != 403 {
		t.Fatalf("INVITE for the ungranted point: %v %v, want 403", res, err)
	}

	// The upper plays the camera's point the way it plays any GB channel:
	// its live source INVITEs the lower, and a WHEP viewer decodes it.
	live := gb28181.NewLive(upperSIP, gb28181.LiveConfig{MediaBind: "127.0.0.1", Logger: testLogger()})
	t.Cleanup(live.Close)
	upper.Hub.SetPoint(e2eIn1, streaming.SourceConfig{Type: streaming.SourceExternal, External: live.Source(e2eLowerID, e2eIn1), OnDemand: true})
	viewer := upper.connectViewer(e2eIn1, whepclient.Options{})
	waitKeyframe(t, viewer, 20*time.Second)
	waitFor(t, 10*time.Second, "25 decoded frames through the cascade", func() bool { return viewer.Stats().Frames >= 25 })
	if s := upper.stats(e2eIn1); s.VideoCodec != "H264" || s.Width != 640 || s.Height != 360 {
		t.Errorf("upper's stream of the cascaded point %+v", s)
	}
	if starts := lower.audited("view.start"); len(starts) != 1 || starts[0].User != "city" || starts[0].Point != e2eIn1 ||
		starts[0].Detail["via"] != "gb28181" {
		t.Errorf("lower's view.start %+v", starts)
	}
	// The grant goes: the lower ends the view itself within the recheck.
	var grants listJSON[struct{ ID string }]
	decodeInto(t, lower.admin(http.MethodGet, "/api/v1/grants", nil), &grants)
	for _, g := range grants.Items {
		if res := lower.admin(http.MethodDelete, "/api/v1/grants/"+g.ID, nil); res.Status != http.StatusNoContent {
			t.Fatalf("delete grant: %s", res)
		}
	}
	waitFor(t, 5*time.Second, "the view to end with the grant", func() bool {
		stops := lower.audited("view.stop")
		return len(stops) == 1 && stops[0].Detail["reason"] == "access_revoked" && stops[0].User == "city"
	})
}

// dialogRequest builds the ACK or BYE of the dialog req/res set up.
func dialogRequest(s *gb28181.Server, req *sip.Request, res *sip.Response, method sip.RequestMethod) *sip.Request {
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

func TestCascadeSendsAPublishedPointsG711AudioWithItsVideo(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	lower := startApp(t)
	res := lower.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": e2eIn1, "name": "有声点位", "category": "reservoir",
		"main": map[string]string{"type": "publish"}})
	if res.Status != http.StatusCreated {
		t.Fatalf("point: %s", res)
	}
	ctx, stopFF := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "warning",
		// Both generated, so neither loops and stalls the other's interleaving.
		"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000",
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50", "-bf", "0",
		"-pix_fmt", "yuv420p", "-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1",
		"-f", "rtsp", "-rtsp_transport", "tcp", fmt.Sprintf("rtsp://admin:%s@%s/%s", lower.streamKey(), lower.RTSP.Addr(), e2eIn1))
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopFF(); _ = cmd.Wait() })
	waitFor(t, 15*time.Second, "the publisher with audio", func() bool {
		var st struct {
			State      string `json:"state"`
			AudioCodec string `json:"audio_codec"`
		}
		decodeInto(t, lower.admin(http.MethodGet, "/api/v1/points/"+e2eIn1+"/stats", nil), &st)
		return st.State == "live" && st.AudioCodec == "PCMA"
	})

	if res := lower.admin(http.MethodPost, "/api/v1/users", map[string]any{"username": "city", "kind": "platform"}); res.Status != http.StatusCreated {
		t.Fatalf("platform account: %s", res)
	}
	lower.grant(map[string]any{"user": "city", "categories": []string{"reservoir"}, "regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}})
	lowerSIP := startSIP(t, lower, e2eLowerID, e2eLowerDom, "", false)
	lower.startCascade(lowerSIP, lower.decider)
	t.Cleanup(lower.Cascade.Close)
	upperSIP := startSIP(t, lower, e2eUpperID, e2eDomain, e2eUpperPass, false)
	if res := lower.admin(http.MethodPost, "/api/v1/gb/platforms", map[string]any{"id": e2eUpperID, "address": upperSIP.TCPAddr().String(),
		"transport": "tcp", "password": e2eUpperPass, "account": "city", "keepalive_interval_s": 5, "enabled": true}); res.Status != http.StatusCreated {
		t.Fatalf("platform: %s", res)
	}
	waitFor(t, 10*time.Second, "registered", func() bool { return lower.Cascade.Status(e2eUpperID).Registered })

	rcv, err := media.Listen(context.Background(), media.ReceiverConfig{Transport: media.TCPPassive, Bind: "127.0.0.1", SSRC: 42,
		ReadTimeout: 10 * time.Second, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	var mu sync.Mutex
	counts := map[ps.StreamType]int{}
	var lastV, lastA int64
	rctx, stop := context.WithCancel(context.Background())
	defer stop()
	go rcv.Run(rctx, func(f ps.Frame) {
		mu.Lock()
		defer mu.Unlock()
		counts[f.Type]++
		if f.Type == ps.H264 {
			lastV = f.PTS
		} else {
			lastA = f.PTS
		}
	})
	peer, err := upperSIP.DevicePeer(e2eLowerID)
	if err != nil {
		t.Fatal(err)
	}
	offer := gbsdp.NewOffer(gbsdp.Offer{ID: e2eUpperID, IP: "127.0.0.1", Port: rcv.Port(), Transport: gbsdp.TCPPassive, SSRC: "0000000042"})
	req, err := upperSIP.NewRequest(sip.INVITE, peer, e2eIn1, gb28181.ContentTypeSDP, offer.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := upperSIP.Do(ictx, req)
	if err != nil || ok.StatusCode != 200 {
		t.Fatalf("INVITE: %v %v", ok, err)
	}
	ack := dialogRequest(upperSIP, req, ok, sip.ACK)
	upperSIP.Route(ack, peer)
	if err := upperSIP.Write(ack); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "video and G.711 audio frames in the PS", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return counts[ps.H264] >= 50 && counts[ps.G711A] >= 50
	})
	mu.Lock()
	skew := time.Duration(lastV-lastA) * time.Second / 90000
	mu.Unlock()
	if skew < -time.Second || skew > time.Second {
		t.Errorf("audio and video PTS %v apart", skew)
	}
	t.Logf("frames %v, latest video−audio PTS %v", counts, skew)
}
