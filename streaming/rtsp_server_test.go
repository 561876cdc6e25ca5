package streaming

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/whepclient"
)

// keyAuthorizer lets user "pub" in with the secret "secret-key".
type keyAuthorizer struct{}

func (keyAuthorizer) AuthenticateRTSP(c *RTSPCredentials) (string, error) {
	if c.Username == "pub" && c.VerifySecret("secret-key") {
		return c.Username, nil
	}
	return "", ErrUnauthenticated
}

func (keyAuthorizer) AuthorizeRTSP(user, action, pointID string) error { return nil }

func startRTSPServer(t *testing.T, hub *Hub) *RTSPServer {
	t.Helper()
	s, err := NewRTSPServer(hub, RTSPServerConfig{Address: "127.0.0.1:0", Authorizer: keyAuthorizer{}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// publishWithFFmpeg pushes the 640x360 clip plus an audio track.
func publishWithFFmpeg(t *testing.T, url string, audioArgs ...string) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is required (CI installs it):", err)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-framerate", "25",
		"-i", "../camsim/clips/h264_640x360_25.h264",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-map", "1:a", "-c:v", "copy"}
	args = append(args, audioArgs...)
	args = append(args, "-f", "rtsp", "-rtsp_transport", "tcp", url)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if testing.Verbose() && stderr.Len() > 0 {
			t.Log("ffmpeg:", stderr.String())
		}
	})
}

func TestPublishedAudioPassesThroughToWebRTC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		codec string
	}{
		{"PCMA", []string{"-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"}, CodecPCMA},
		{"PCMU", []string{"-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"}, CodecPCMU},
		{"Opus", []string{"-c:a", "libopus", "-ar", "48000", "-ac", "2", "-b:a", "32k"}, CodecOpus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := NewHub(HubConfig{Logger: testLogger(), StartTimeout: 15 * time.Second})
			t.Cleanup(hub.Close)
			srv := startRTSPServer(t, hub)
			w := newTestWebRTC(t)
			hub.SetPoint("pub1", SourceConfig{Type: SourcePublish, OnDemand: true})
			publishWithFFmpeg(t, fmt.Sprintf("rtsp://pub:secret-key@%s/pub1", srv.Addr()), tc.args...)
			waitFor(t, 15*time.Second, "publisher", func() bool {
				st, _ := hub.Stats("pub1")
				return st.State == StateLive
			})
			c := connectViewer(t, hub, w, "pub1", whepclient.Options{Audio: true})
			waitFor(t, 10*time.Second, "audio and video", func() bool {
				st := c.Stats()
				return st.AudioPackets > 20 && st.Keyframes > 0
			})
			st, _ := hub.Stats("pub1")
			if st.AudioCodec != tc.codec {
				t.Fatalf("audio codec %q, want %q", st.AudioCodec, tc.codec)
			}
		})
	}
}

func TestAACAudioIsSkippedWithReasonAndVideoStillPlays(t *testing.T) {
	hub := NewHub(HubConfig{Logger: testLogger(), StartTimeout: 15 * time.Second})
	t.Cleanup(hub.Close)
	srv := startRTSPServer(t, hub)
	w := newTestWebRTC(t)
	hub.SetPoint("pub1", SourceConfig{Type: SourcePublish, OnDemand: true})
	publishWithFFmpeg(t, fmt.Sprintf("rtsp://pub:secret-key@%s/pub1", srv.Addr()), "-c:a", "aac", "-b:a", "64k")
	waitFor(t, 15*time.Second, "publisher", func() bool {
		st, _ := hub.Stats("pub1")
		return st.State == StateLive
	})
	st, _ := hub.Stats("pub1")
	if st.AudioCodec != "" || !slices.ContainsFunc(st.SkippedTracks, func(s string) bool { return strings.Contains(s, "AAC") }) {
		t.Fatalf("AAC not reported as skipped: %+v", st)
	}
	c := connectViewer(t, hub, w, "pub1", whepclient.Options{Audio: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitKeyframe(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPublishWithWrongKeyIsRefused(t *testing.T) {
	hub := NewHub(HubConfig{Logger: testLogger()})
	t.Cleanup(hub.Close)
	srv := startRTSPServer(t, hub)
	hub.SetPoint("pub1", SourceConfig{Type: SourcePublish, OnDemand: true})
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-framerate", "25", "-t", "1",
		"-i", "../camsim/clips/h264_640x360_25.h264", "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
		fmt.Sprintf("rtsp://pub:wrong@%s/pub1", srv.Addr()))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ffmpeg published with a wrong key: %s", out)
	}
	if st, _ := hub.Stats("pub1"); st.State != StateIdle {
		t.Fatalf("point state %s after refused publish", st.State)
	}
}
