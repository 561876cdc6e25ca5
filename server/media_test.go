package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/whepclient"
)

// clipPath is the raw H.264 clip camsim embeds, as a file for ffmpeg.
// Tests run in the package directory.
var clipPath = filepath.Join("..", "camsim", "clips", camsim.ClipH264Sub)

// --- WHEP -----------------------------------------------------------------

func TestWHEPViewerGetsContinuousH264AndStatsShowIt(t *testing.T) {
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	// ConnectHTTP succeeds only on 201 Created with an SDP answer.
	c := a.connectViewer("cam", whepclient.Options{})
	loc := regexp.MustCompile(`^` + regexp.QuoteMeta(a.HTTPURL()) + `/api/v1/points/cam/whep/[0-9a-f]{32}$`)
	if !loc.MatchString(c.Location()) {
		t.Fatalf("Location %q is not a session URL of point cam", c.Location())
	}
	waitKeyframe(t, c, 10*time.Second)
	waitFor(t, 8*time.Second, "50 frames", func() bool { return c.Stats().Frames >= 50 })
	if st := c.Stats(); st.SeqGaps != 0 || st.Codec != "video/H264" {
		t.Fatalf("viewer saw %d sequence gaps, codec %q", st.SeqGaps, st.Codec)
	}

	st := a.stats("cam")
	if st.State != "live" || st.VideoCodec != "H264" || st.Width != 640 || st.Height != 360 || st.Readers != 1 {
		t.Fatalf("stats %+v, want live H264 640x360 with 1 reader", st)
	}
	if st.FPS < 20 || st.FPS > 30 {
		t.Fatalf("stats fps %.1f, want ~25", st.FPS)
	}
	if m := a.admin(http.MethodGet, "/metrics", nil); !bytes.Contains(m.Body, []byte("\ntianyan_webrtc_sessions 1\n")) {
		t.Fatalf("metrics do not count the session:\n%s", m.Body)
	}

	res := a.admin(http.MethodDelete, c.Location(), nil)
	if res.Status != http.StatusOK {
		t.Fatalf("DELETE session: %s", res)
	}
	waitFor(t, 5*time.Second, "readers back to 0", func() bool { return a.stats("cam").Readers == 0 })
	if n := a.WebRTC.SessionCount(); n != 0 {
		t.Fatalf("%d sessions after DELETE", n)
	}
	wantError(t, a.admin(http.MethodDelete, c.Location(), nil), http.StatusNotFound)
}

// minimalOffer is a syntactically valid recvonly H.264 offer.
const minimalOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n" +
	"a=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\n" +
	"a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n"

func TestWHEPRejectsBadRequests(t *testing.T) {
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	t.Run("UnknownPointIs404", func(t *testing.T) {
		res := a.do(http.MethodPost, "/api/v1/points/nope/whep", a.token, "application/sdp", minimalOffer)
		wantError(t, res, http.StatusNotFound)
	})
	t.Run("ContentTypeOtherThanSDPIs415", func(t *testing.T) {
		for _, ct := range []string{"", "text/plain", "application/json"} {
			res := a.do(http.MethodPost, "/api/v1/points/cam/whep", a.token, ct, minimalOffer)
			wantError(t, res, http.StatusUnsupportedMediaType)
		}
	})
	t.Run("GarbageOfferIs400", func(t *testing.T) {
		for _, body := range []string{"hello", "v=0\r\nthis is not sdp\r\n", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"} {
			res := a.do(http.MethodPost, "/api/v1/points/cam/whep", a.token, "application/sdp", body)
			if e := wantError(t, res, http.StatusBadRequest); e.Code != "bad_offer" {
				t.Fatalf("offer %q: code %q", body, e.Code)
			}
		}
		waitFor(t, 5*time.Second, "rejected offers to release the stream", func() bool { return a.stats("cam").Readers == 0 })
	})
}

func TestWHEPH264OnlyViewerOfH265CameraIs422NamingBothCodecs(t *testing.T) {
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH265Sub)
	a.createPoint("hevc", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	_, err := a.tryViewer("hevc", whepclient.Options{VideoCodecs: []string{"H264"}})
	status, body := whepStatus(t, err)
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d (%s), want 422", status, body)
	}
	var e struct {
		Error apiErr `json:"error"`
	}
	decodeInto(t, response{Body: []byte(body)}, &e)
	if e.Error.Code != "codec_unsupported" || !strings.Contains(e.Error.Message, "H265") || !strings.Contains(e.Error.Message, "H264") {
		t.Fatalf("error %+v should be codec_unsupported and name the camera's H265 and the offered H264", e.Error)
	}
	waitFor(t, 5*time.Second, "refused viewer to release the stream", func() bool { return a.stats("hevc").Readers == 0 })

	c := a.connectViewer("hevc", whepclient.Options{VideoCodecs: []string{"H265"}})
	waitKeyframe(t, c, 10*time.Second)
	if st := c.Stats(); st.Codec != "video/H265" || st.SeqGaps != 0 {
		t.Fatalf("H265 viewer: codec %q, %d gaps", st.Codec, st.SeqGaps)
	}
	if st := a.stats("hevc"); st.VideoCodec != "H265" || st.Width != 640 || st.Height != 360 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWHEPFramesDecodeWithFFmpeg(t *testing.T) {
	ffmpeg, ffprobe := requireTool(t, "ffmpeg"), requireTool(t, "ffprobe")
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	var rec annexBRecorder
	c := a.connectViewer("cam", whepclient.Options{OnAccessUnit: rec.add})
	waitKeyframe(t, c, 10*time.Second)
	waitFor(t, 8*time.Second, "60 access units", func() bool { return rec.count() >= 60 })
	c.Close()

	file := decodesCleanly(t, ffmpeg, rec.bytes(), "viewer.h264", "what the viewer received")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	var w, h, frames int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%d,%d,%d", &w, &h, &frames); err != nil {
		t.Fatalf("ffprobe output %q: %v", out, err)
	}
	if w != 640 || h != 360 || frames < 40 {
		t.Fatalf("ffprobe decoded %d frames at %dx%d, want >= 40 at 640x360", frames, w, h)
	}
}

// annexBRecorder keeps the H.264 access units a WHEP viewer receives as one Annex-B stream.
type annexBRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
	aus int
}

// add is the viewer's OnAccessUnit.
func (r *annexBRecorder) add(au [][]byte, _ bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, nalu := range au {
		r.buf.Write([]byte{0, 0, 0, 1})
		r.buf.Write(nalu)
	}
	r.aus++
}

func (r *annexBRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.aus
}

func (r *annexBRecorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// decodesCleanly writes the H.264 stream raw to a file called name and fails t unless ffmpeg
// decodes it without a word; what names the stream in the failure. It returns the file.
func decodesCleanly(t *testing.T, ffmpeg string, raw []byte, name, what string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-f", "h264", "-i", file, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("ffmpeg could not decode %s cleanly (err %v):\n%s", what, err, out)
	}
	return file
}

func TestWHEPOnPublishPointWithoutPublisherIs503(t *testing.T) {
	a := startApp(t)
	a.createPoint("push", map[string]string{"type": "publish"})
	_, err := a.tryViewer("push", whepclient.Options{})
	status, body := whepStatus(t, err)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "not_publishing") {
		t.Fatalf("status %d %s, want 503 not_publishing", status, body)
	}
}

func TestWHEPOfUnreachableCameraIs504WithinStartTimeout(t *testing.T) {
	a := startApp(t)
	a.createPoint("dead", map[string]string{"type": "rtsp", "url": fmt.Sprintf("rtsp://127.0.0.1:%d/main", freePort(t))})
	start := time.Now()
	_, err := a.tryViewer("dead", whepclient.Options{})
	el := time.Since(start)
	status, body := whepStatus(t, err)
	if status != http.StatusGatewayTimeout || !strings.Contains(body, "start_timeout") {
		t.Fatalf("status %d %s, want 504 start_timeout", status, body)
	}
	// StartTimeout is 3 s.
	if el < 2500*time.Millisecond || el > 6*time.Second {
		t.Fatalf("504 after %v, want about the 3 s start timeout", el)
	}
	if st := a.stats("dead"); st.SourceError == "" {
		t.Fatalf("stats of a dead camera carry no source error: %+v", st)
	}
}

// --- RTSP publish (ffmpeg) ------------------------------------------------

// streamKey reads admin's RTSP stream key.
func (a *testApp) streamKey() string {
	a.t.Helper()
	res := a.admin(http.MethodGet, "/api/v1/me/stream-key", nil)
	if res.Status != http.StatusOK {
		a.t.Fatalf("stream key: %s", res)
	}
	var out struct {
		Username  string `json:"username"`
		StreamKey string `json:"stream_key"`
	}
	decodeInto(a.t, res, &out)
	if out.Username != "admin" || len(out.StreamKey) < 20 {
		a.t.Fatalf("stream key answer %s", res.Body)
	}
	return out.StreamKey
}

// ffmpegProcess is a running ffmpeg, killed when the test ends.
type ffmpegProcess struct {
	stderr *syncBuffer
	done   chan struct{}
	err    error // valid once done is closed
}

// startFFmpegPublisher loops the 640x360 clip in real time to url over RTSP/TCP.
func startFFmpegPublisher(t *testing.T, url string) *ffmpegProcess {
	t.Helper()
	ffmpeg := requireTool(t, "ffmpeg")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "warning",
		"-re", "-stream_loop", "-1", "-fflags", "+genpts", "-framerate", "25", "-f", "h264", "-i", clipPath,
		"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	p := &ffmpegProcess{stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting ffmpeg: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("ffmpeg output:\n%s", p.stderr)
		}
	})
	return p
}

func TestFFmpegPublishingWithStreamKeyIsWatchableOverWHEP(t *testing.T) {
	a := startApp(t)
	a.createPoint("push", map[string]string{"type": "publish"})
	ff := startFFmpegPublisher(t, fmt.Sprintf("rtsp://admin:%s@%s/push", a.streamKey(), a.RTSP.Addr()))

	waitFor(t, 10*time.Second, "the publisher to go live", func() bool {
		select {
		case <-ff.done:
			t.Fatalf("ffmpeg exited (%v):\n%s", ff.err, ff.stderr)
		default:
		}
		return a.stats("push").State == "live"
	})
	c := a.connectViewer("push", whepclient.Options{})
	waitKeyframe(t, c, 10*time.Second)
	waitFor(t, 8*time.Second, "25 frames", func() bool { return c.Stats().Frames >= 25 })
	if st := a.stats("push"); st.VideoCodec != "H264" || st.Width != 640 || st.Height != 360 {
		t.Fatalf("stats of the published point %+v", st)
	}
}

func TestFFmpegPublishingWithWrongKeyIsRefused(t *testing.T) {
	a := startApp(t)
	a.createPoint("push", map[string]string{"type": "publish"})
	ff := startFFmpegPublisher(t, fmt.Sprintf("rtsp://admin:%s@%s/push", "wrong-key-0123456789abcdefghij", a.RTSP.Addr()))
	select {
	case <-ff.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("ffmpeg still running with a wrong key:\n%s", ff.stderr)
	}
	if ff.err == nil {
		t.Fatalf("ffmpeg exited 0 with a wrong stream key:\n%s", ff.stderr)
	}
	if out := ff.stderr.String(); !strings.Contains(out, "401") {
		t.Fatalf("ffmpeg failed (%v) but not with 401:\n%s", ff.err, out)
	}
	if st := a.stats("push"); st.State != "idle" || st.FramesIn != 0 || st.VideoCodec != "" {
		t.Fatalf("refused publisher left a stream: %+v", st)
	}
	_, err := a.tryViewer("push", whepclient.Options{})
	if status, body := whepStatus(t, err); status != http.StatusServiceUnavailable {
		t.Fatalf("WHEP after refused publish: %d %s, want 503", status, body)
	}
}

// --- RTSP read (gortsplib client) -----------------------------------------

// rtspReader is a gortsplib client reading one point.
type rtspReader struct {
	client  *gortsplib.Client
	desc    *description.Session
	packets atomic.Int64
}

// readRTSP runs DESCRIBE/SETUP/PLAY on rawURL over TCP. With basic set, every
// request carries Basic credentials from the URL; otherwise gortsplib answers
// the server's challenge itself and prefers Digest.
func readRTSP(t *testing.T, rawURL string, basic bool) (*rtspReader, error) {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.TransportTCP
	r := &rtspReader{client: &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}}
	if basic && u.User != nil {
		pass, _ := u.User.Password()
		hdr := "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))
		r.client.OnRequest = func(req *base.Request) { req.Header["Authorization"] = base.HeaderValue{hdr} }
		// Without credentials in the URL gortsplib never answers a
		// challenge itself (it would pick Digest, and retry on a
		// connection the server closes after wrong credentials).
		u.User = nil
	}
	if err := r.client.Start2(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.client.Close)
	r.desc, _, err = r.client.Describe(u)
	if err != nil {
		return nil, err
	}
	if err := r.client.SetupAll(r.desc.BaseURL, r.desc.Medias); err != nil {
		return nil, err
	}
	r.client.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { r.packets.Add(1) })
	if _, err := r.client.Play(nil); err != nil {
		return nil, err
	}
	return r, nil
}

func wantRTSPStatus(t *testing.T, err error, code base.StatusCode) {
	t.Helper()
	var bad liberrors.ErrClientBadStatusCode
	if !errors.As(err, &bad) || bad.Code != code {
		t.Fatalf("RTSP error %v, want status %d", err, code)
	}
}

func TestRTSPReadWithPasswordOverBasicReceivesRTP(t *testing.T) {
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	r, err := readRTSP(t, "rtsp://admin:"+adminPassword+"@"+a.RTSP.Addr()+"/cam", true)
	if err != nil {
		t.Fatalf("RTSP read with the admin password: %v", err)
	}
	if len(r.desc.Medias) != 1 || r.desc.Medias[0].Formats[0].Codec() != "H264" {
		t.Fatalf("described medias %+v", r.desc.Medias)
	}
	waitFor(t, 10*time.Second, "100 RTP packets", func() bool { return r.packets.Load() >= 100 })
	if st := a.stats("cam"); st.Readers != 1 {
		t.Fatalf("an RTSP reader should count as a reader: %+v", st)
	}
}

func TestRTSPReadWithStreamKeyOverDigestReceivesRTP(t *testing.T) {
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	r, err := readRTSP(t, "rtsp://admin:"+a.streamKey()+"@"+a.RTSP.Addr()+"/cam", false)
	if err != nil {
		t.Fatalf("RTSP read with the stream key: %v", err)
	}
	waitFor(t, 10*time.Second, "100 RTP packets", func() bool { return r.packets.Load() >= 100 })
}

func TestRTSPReadWithWrongPasswordIs401(t *testing.T) {
	a := startApp(t)
	cam := startCamera(t, camsim.ClipH264Sub)
	a.createPoint("cam", map[string]string{"type": "rtsp", "url": cam.URL("main")})

	_, err := readRTSP(t, "rtsp://admin:not-the-password@"+a.RTSP.Addr()+"/cam", true)
	wantRTSPStatus(t, err, base.StatusUnauthorized)
	_, err = readRTSP(t, "rtsp://admin:not-the-key@"+a.RTSP.Addr()+"/cam", false)
	wantRTSPStatus(t, err, base.StatusUnauthorized)
	_, err = readRTSP(t, "rtsp://"+a.RTSP.Addr()+"/cam", false)
	wantRTSPStatus(t, err, base.StatusUnauthorized)
	if st := a.stats("cam"); st.State != "idle" {
		t.Fatalf("refused readers started the camera: %+v", st)
	}
}

func TestRTSPReadOfUnknownPointIs404(t *testing.T) {
	a := startApp(t)
	_, err := readRTSP(t, "rtsp://admin:"+adminPassword+"@"+a.RTSP.Addr()+"/nope", true)
	wantRTSPStatus(t, err, base.StatusNotFound)
}

// --- GStreamer camera -----------------------------------------------------

// gstPython finds a python3 that has GStreamer's RTSP server bindings
// (a pyenv python3 on PATH often lacks the Debian python3-gi).
func gstPython(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	probe := "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); from gi.repository import Gst, GstRtspServer"
	for _, p := range candidates {
		if exec.Command(p, "-c", probe).Run() == nil {
			return p
		}
	}
	t.Fatalf("no python3 with python3-gi and gir1.2-gst-rtsp-server-1.0 among %v (CI installs them)", candidates)
	return ""
}

// startGstCamera runs testdata/gst_rtsp_camera.py and returns its RTSP URL.
func startGstCamera(t *testing.T) string {
	t.Helper()
	py := gstPython(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "gst_rtsp_camera.py"), "0")
	stdin, err := cmd.StdinPipe() // the camera exits when this closes
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting the GStreamer camera: %v", err)
	}
	done := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- port
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		stdin.Close()
		cancel()
		<-done
		if t.Failed() {
			t.Logf("GStreamer camera stderr:\n%s", stderr)
		}
	})
	select {
	case port := <-ready:
		if _, err := strconv.Atoi(port); err != nil {
			t.Fatalf("camera said ready %q", port)
		}
		return "rtsp://127.0.0.1:" + port + "/cam"
	case <-done:
		t.Fatalf("GStreamer camera exited before it was ready:\n%s", stderr)
	case <-time.After(15 * time.Second):
		t.Fatalf("GStreamer camera not ready after 15 s:\n%s", stderr)
	}
	return ""
}

func TestGStreamerCameraIsWatchableOverWHEP(t *testing.T) {
	camURL := startGstCamera(t)
	a := startApp(t)
	a.createPoint("gst", map[string]string{"type": "rtsp", "url": camURL})

	c := a.connectViewer("gst", whepclient.Options{})
	waitKeyframe(t, c, 10*time.Second)
	waitFor(t, 8*time.Second, "25 frames", func() bool { return c.Stats().Frames >= 25 })
	if st := c.Stats(); st.SeqGaps != 0 {
		t.Fatalf("viewer saw %d sequence gaps", st.SeqGaps)
	}
	if st := a.stats("gst"); st.VideoCodec != "H264" || st.Width != 640 || st.Height != 360 {
		t.Fatalf("stats %+v", st)
	}
}
