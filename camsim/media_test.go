package camsim

import (
	"errors"
	"net/http"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

type profileIn struct {
	Token                     string `xml:"token,attr"`
	Name                      string
	VideoEncoderConfiguration struct {
		Encoding    string
		Resolution  struct{ Width, Height int }
		RateControl struct{ FrameRateLimit, BitrateLimit int }
		H264        *struct {
			GovLength   int
			H264Profile string
		}
	}
	PTZConfiguration *struct {
		Token     string `xml:"token,attr"`
		NodeToken string
	}
}

func getProfiles(t *testing.T, c *soapClient) []profileIn {
	t.Helper()
	var resp struct{ Profiles []profileIn }
	c.mustCall(`<trt:GetProfiles/>`, &resp)
	return resp.Profiles
}

func streamURI(t *testing.T, c *soapClient, profile string) string {
	t.Helper()
	var resp struct {
		MediaUri struct {
			Uri                 string
			InvalidAfterConnect bool
		}
	}
	c.mustCall(`<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>`+
		`<trt:ProfileToken>`+profile+`</trt:ProfileToken></trt:GetStreamUri>`, &resp)
	return resp.MediaUri.Uri
}

func TestProfilesStreamWhatTheyAdvertise(t *testing.T) {
	cam := startCam(t, authedConfig())
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
	profiles := getProfiles(t, c)
	if len(profiles) != 2 || profiles[0].Token != "main" || profiles[1].Token != "sub" {
		t.Fatalf("profiles %+v, want main and sub", profiles)
	}
	want := map[string][2]int{"main": {1280, 720}, "sub": {640, 360}}
	for _, p := range profiles {
		vec := p.VideoEncoderConfiguration
		size := [2]int{vec.Resolution.Width, vec.Resolution.Height}
		if vec.Encoding != "H264" || size != want[p.Token] || vec.RateControl.FrameRateLimit != 25 ||
			vec.RateControl.BitrateLimit <= 0 || vec.H264 == nil || vec.H264.GovLength != 50 {
			t.Errorf("profile %s: encoder %+v", p.Token, vec)
		}
		if p.PTZConfiguration != nil {
			t.Errorf("profile %s of a fixed camera has a PTZ configuration", p.Token)
		}

		uri := streamURI(t, c, p.Token)
		if uri != cam.RTSPURL(p.Token) {
			t.Errorf("GetStreamUri(%s) = %q, want %q", p.Token, uri, cam.RTSPURL(p.Token))
		}
		r, err := openReader(t, uri, testUser, testPass, nil)
		if err != nil {
			t.Fatalf("reading %s: %v", uri, err)
		}
		// Read up to and including a keyframe: its in-band SPS carries the
		// resolution the stream really has.
		var sps []byte
		for n := 1; sps == nil; n++ {
			if n > 60 {
				t.Fatalf("%s: no SPS in 60 frames", uri)
			}
			frames := r.waitFrames(t, n)
			sps = frames[n-1].sps
		}
		w, h := spsSize(t, r.codec, sps)
		if [2]int{w, h} != size {
			t.Errorf("%s: stream is %dx%d, profile says %v", uri, w, h, size)
		}
	}
}

func TestH265SubProfileIsReportedAndStreamedAsH265(t *testing.T) {
	cfg := authedConfig()
	cfg.Sub = ClipH265Sub
	cam := startCam(t, cfg)
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
	sub := getProfiles(t, c)[1]
	if sub.VideoEncoderConfiguration.Encoding != "H265" || sub.VideoEncoderConfiguration.H264 != nil {
		t.Fatalf("sub profile %+v, want H265", sub.VideoEncoderConfiguration)
	}
	r, err := openReader(t, streamURI(t, c, "sub"), testUser, testPass, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.codec != "H265" {
		t.Fatalf("stream codec %s", r.codec)
	}
	r.waitFrames(t, 3)
}

func TestRTSPWantsTheCamerasCredentials(t *testing.T) {
	cam := startCam(t, authedConfig())
	_, err := openReader(t, cam.RTSPURL("main"), "", "", nil)
	wantRTSPStatus(t, err, base.StatusUnauthorized)
	_, err = openReader(t, cam.RTSPURL("main"), testUser, "wrong", nil)
	if err == nil {
		t.Fatal("wrong RTSP password accepted")
	}
}

func wantRTSPStatus(t *testing.T, err error, code base.StatusCode) {
	t.Helper()
	var bad liberrors.ErrClientBadStatusCode
	if !errors.As(err, &bad) || bad.Code != code {
		t.Fatalf("RTSP error %v, want status %d", err, code)
	}
}

func TestGetStreamUriForUnknownProfileFaults(t *testing.T) {
	cam := startCam(t, authedConfig())
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
	status, body := c.call(`<trt:GetStreamUri><trt:ProfileToken>third</trt:ProfileToken></trt:GetStreamUri>`)
	wantFault(t, status, body, http.StatusBadRequest, "ter:InvalidArgVal", "ter:NoProfile")
}

// TestSetSynchronizationPointMakesTheNextFrameAKeyframe reads past a natural
// keyframe, asks for a sync point, and checks that a keyframe follows
// within the frames already in flight, long before the GOP would bring one.
func TestSetSynchronizationPointMakesTheNextFrameAKeyframe(t *testing.T) {
	cam := startCam(t, authedConfig())
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
	gop := cam.Clip("main").GOPLength()
	r, err := openReader(t, cam.RTSPURL("main"), testUser, testPass, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := -1
	for n := 1; first < 0 || n < first+6; n++ {
		frames := r.waitFrames(t, n)
		if first < 0 && frames[n-1].key {
			first = n - 1
		}
	}
	mark := len(r.waitFrames(t, 0))
	c.mustCall(`<trt:SetSynchronizationPoint><trt:ProfileToken>main</trt:ProfileToken></trt:SetSynchronizationPoint>`, &struct{}{})

	// The loop writes the keyframe at its next tick; at most a frame or two
	// written before the request can still be on the way.
	frames := r.waitFrames(t, mark+4)
	next := -1
	for i := first + 1; i < len(frames); i++ {
		if frames[i].key {
			next = i
			break
		}
	}
	if next < mark || next > mark+3 {
		t.Fatalf("keyframes at %d and %d, sync requested at frame %d: want one within 3 frames of the request", first, next, mark)
	}
	if next-first >= gop {
		t.Fatalf("keyframe %d frames after the last, as the GOP (%d) would bring anyway", next-first, gop)
	}
	if frames[next].sps == nil {
		t.Error("the sync keyframe carries no SPS; a new reader could not start on it")
	}
}
