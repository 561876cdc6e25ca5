package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/streaming"
)

// fakeHub hands out streams, or fails as told, and counts what it lent.
type fakeHub struct {
	mu       sync.Mutex
	err      error
	acquired []string
	released int
}

func (f *fakeHub) Acquire(_ context.Context, id string) (*streaming.Stream, func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acquired = append(f.acquired, id)
	if f.err != nil {
		return nil, nil, f.err
	}
	return &streaming.Stream{PointID: id}, func() { f.mu.Lock(); f.released++; f.mu.Unlock() }, nil
}

func (f *fakeHub) Stats(id string) (streaming.Stats, error) {
	return streaming.Stats{}, streaming.ErrUnknownPoint
}

func (f *fakeHub) StartTimeout() time.Duration { return 7 * time.Second }

// fakeRTC makes no sessions: NewSession fails as told; Session finds the
// sessions a test put there.
type fakeRTC struct {
	err      error
	offers   int
	sessions map[string]*streaming.Session
}

func (f *fakeRTC) NewSession(_ context.Context, _ *streaming.Stream, _ string, _ streaming.SessionOptions) (*streaming.Session, string, error) {
	f.offers++
	return nil, "", f.err
}

func (f *fakeRTC) Session(id string) (*streaming.Session, bool) {
	s, ok := f.sessions[id]
	return s, ok
}

func (f *fakeRTC) ICEServers() []webrtc.ICEServer { return nil }

// fakePresence says which agents are online.
type fakePresence map[string]bool

func (f fakePresence) Online(id string) bool { return f[id] }

// fakeLimits grants view slots or refuses them, and counts the slots held.
type fakeLimits struct {
	mu      sync.Mutex
	refuse  error
	held    int
	reserve int
}

func (f *fakeLimits) Reserve(_, _ string) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserve++
	if f.refuse != nil {
		return nil, f.refuse
	}
	f.held++
	var once sync.Once
	return func() { once.Do(func() { f.mu.Lock(); f.held--; f.mu.Unlock() }) }, nil
}

// offer is a real browser-like SDP offer (pion's), receiving H.264 video.
func offer(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

type whepFixture struct {
	hub    *fakeHub
	rtc    *fakeRTC
	limits *fakeLimits
	audit  *fakeAudit
	s      *Server
}

func newWHEPFixture(t *testing.T) *whepFixture {
	f := &whepFixture{hub: &fakeHub{}, rtc: &fakeRTC{}, limits: &fakeLimits{}, audit: &fakeAudit{}}
	decide := &fakeDecider{t: t, system: map[string][]permissions.SystemAction{"sys": {permissions.ManageUsers}}}
	f.s = &Server{streams: &streamHandler{hub: f.hub, rtc: f.rtc, limits: f.limits, decide: decide,
		agents: fakePresence{"agent-up": true}, trail: f.audit.trail(), log: quiet}}
	return f
}

// cam is a point with a main stream only.
var cam = catalog.Point{ID: "cam-1", Name: "Cam", Main: catalog.Source{Type: catalog.SourcePublish}}

func TestWHEPAnswersEachWayAViewCannotStart(t *testing.T) {
	sdp := offer(t)
	for _, tc := range []struct {
		name           string
		agent          string // the point's edge agent
		hubErr, rtcErr error
		status         int
		code, message  string
	}{
		{name: "the camera did not start", hubErr: streaming.ErrStartTimeout, status: 504, code: "start_timeout", message: "within 7s"},
		{name: "nobody publishes", hubErr: streaming.ErrNotPublishing, status: 503, code: "not_publishing"},
		{name: "the camera's agent is offline", agent: "agent-down", hubErr: streaming.ErrNotPublishing, status: 503, code: "agent_offline"},
		{name: "the camera's agent is online but not publishing", agent: "agent-up", hubErr: streaming.ErrNotPublishing, status: 503, code: "not_publishing"},
		{name: "the hub does not know the point", hubErr: streaming.ErrUnknownPoint, status: 404, code: "not_found"},
		{name: "the hub is closing", hubErr: errors.New("hub closed"), status: 503, code: "unavailable"},
		{name: "no codec in common", rtcErr: &streaming.CodecError{Camera: "H265", Offered: []string{"H264"}}, status: 422, code: "codec_unsupported", message: "H265"},
		{name: "an offer WebRTC refuses", rtcErr: streaming.ErrBadOffer, status: 400, code: "bad_offer"},
		{name: "WebRTC fails", rtcErr: errors.New("no port"), status: 500, code: "webrtc_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newWHEPFixture(t)
			f.hub.err, f.rtc.err = tc.hubErr, tc.rtcErr
			p := cam
			p.Agent = tc.agent
			a := call(route(t, f.s, "POST /api/v1/points/:id/whep", as("street").on(p)), "POST", "/api/v1/points/cam-1/whep", sdp, "application/sdp")
			a.want(t, tc.status, tc.code)
			if !strings.Contains(a.Body.String(), tc.message) {
				t.Fatalf("message %s; want it to say %q", a.Body, tc.message)
			}
			// The slot and the stream go back; nothing is recorded as a view.
			if f.limits.held != 0 || len(f.hub.acquired) != 1 || f.hub.acquired[0] != "cam-1" {
				t.Fatalf("slots held %d, acquired %v", f.limits.held, f.hub.acquired)
			}
			if tc.hubErr == nil && f.hub.released != 1 {
				t.Fatalf("the stream was released %d times", f.hub.released)
			}
			if tc.hubErr != nil && f.rtc.offers != 0 {
				t.Fatal("a session was negotiated without a stream")
			}
			if len(f.audit.records) != 0 {
				t.Fatalf("records %v", f.audit.standalone())
			}
		})
	}
}

func TestWHEPBeyondTheViewCapIsRefusedBeforeTheCameraIsAsked(t *testing.T) {
	f := newWHEPFixture(t)
	f.limits.refuse = &streaming.LimitError{Scope: "user", Limit: 2}
	a := call(route(t, f.s, "POST /api/v1/points/:id/whep", as("street").on(cam)), "POST", "/api/v1/points/cam-1/whep", offer(t), "application/sdp")
	a.want(t, http.StatusTooManyRequests, "too_many_views")
	if len(f.hub.acquired) != 0 {
		t.Fatalf("the camera was asked: %v", f.hub.acquired)
	}
	r := f.audit.records
	if len(r) != 1 || r[0].Action != "view.refused" || r[0].User != "street" || r[0].Point != "cam-1" ||
		r[0].Detail["scope"] != "user" || r[0].Detail["limit"] != "2" || r[0].Detail["via"] != "webrtc" {
		t.Fatalf("records %+v", r)
	}
}

func TestWHEPRefusesWhatIsNotAnOfferBeforeTakingASlot(t *testing.T) {
	f := newWHEPFixture(t)
	h := route(t, f.s, "POST /api/v1/points/:id/whep", as("street").on(cam))
	call(h, "POST", "/api/v1/points/cam-1/whep", offer(t), "application/json").want(t, http.StatusUnsupportedMediaType, "bad_content_type")
	call(h, "POST", "/api/v1/points/cam-1/whep?profile=hd", offer(t), "application/sdp").want(t, http.StatusBadRequest, "bad_profile")
	call(h, "POST", "/api/v1/points/cam-1/whep", "v=0 not an offer", "application/sdp").want(t, http.StatusBadRequest, "bad_offer")
	if f.limits.reserve != 0 || len(f.hub.acquired) != 0 {
		t.Fatalf("reserved %d slots, acquired %v", f.limits.reserve, f.hub.acquired)
	}
	// A point without a sub stream serves its main one, and says so.
	f.hub.err = streaming.ErrNotPublishing
	a := call(h, "POST", "/api/v1/points/cam-1/whep?profile=sub", offer(t), "application/sdp")
	if a.Header().Get("X-Tianyan-Profile") != streaming.ProfileMain || f.hub.acquired[0] != "cam-1" {
		t.Fatalf("profile %q, acquired %v", a.Header().Get("X-Tianyan-Profile"), f.hub.acquired)
	}
}

func TestWHEPSessionsAreTheirViewersOwn(t *testing.T) {
	f := newWHEPFixture(t)
	f.rtc.sessions = map[string]*streaming.Session{
		"s1": {ID: "s1", PointID: "cam-1", User: "street"},
		"s2": {ID: "s2", PointID: streaming.PathKey("cam-1", streaming.ProfileSub), User: "street"},
	}
	patch := func(who, url string) answer {
		return call(route(t, f.s, "PATCH /api/v1/points/:id/whep/:session", as(who)), "PATCH", url, "")
	}
	a := patch("street", "/api/v1/points/cam-1/whep/s1")
	a.want(t, http.StatusMethodNotAllowed, "no_trickle")
	if a.Header().Get("Allow") != http.MethodDelete {
		t.Fatalf("Allow %q", a.Header().Get("Allow"))
	}
	patch("street", "/api/v1/points/cam-1/whep/s2").want(t, http.StatusMethodNotAllowed, "no_trickle") // its sub stream
	patch("other", "/api/v1/points/cam-1/whep/s1").want(t, http.StatusNotFound, "not_found")
	patch("street", "/api/v1/points/cam-2/whep/s1").want(t, http.StatusNotFound, "not_found")
	patch("street", "/api/v1/points/cam-1/whep/s9").want(t, http.StatusNotFound, "not_found")
	// Who manages users may end anyone's view.
	patch("sys", "/api/v1/points/cam-1/whep/s1").want(t, http.StatusMethodNotAllowed, "no_trickle")
}
