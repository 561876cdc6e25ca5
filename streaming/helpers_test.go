package streaming

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/whepclient"
)

func testLogger() *slog.Logger {
	if os.Getenv("VMS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startCamera starts a simulated camera with the 640x360 H.264 clip at /main.
func startCamera(t testing.TB, addr string) *camsim.RTSPCamera {
	t.Helper()
	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{
		Address:  addr,
		Profiles: map[string]*camsim.Clip{"main": clip},
		User:     "cam", Pass: "campass",
		Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

func newTestWebRTC(t *testing.T) *WebRTC {
	t.Helper()
	w, err := NewWebRTC(WebRTCConfig{ListenAddr: "127.0.0.1:0", Interfaces: []string{"lo"}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// inProcessExchange answers offers straight from the hub, no HTTP.
func inProcessExchange(hub *Hub, w *WebRTC, point string, releases chan<- func()) whepclient.Exchange {
	return func(ctx context.Context, offer string) (string, string, error) {
		stream, release, err := hub.Acquire(ctx, point)
		if err != nil {
			return "", "", err
		}
		s, answer, err := w.NewSession(ctx, stream, offer, SessionOptions{OnClose: func(*Session) { release() }})
		if err != nil {
			release()
			return "", "", err
		}
		_ = releases
		return answer, s.ID, nil
	}
}

func connectViewer(t *testing.T, hub *Hub, w *WebRTC, point string, opts whepclient.Options) *whepclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts.Interfaces = []string{"lo"}
	c, err := whepclient.Connect(ctx, inProcessExchange(hub, w, point, nil), opts)
	if err != nil {
		t.Fatalf("connect viewer: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// testPublisher pushes the 640x360 clip to the RTSP server with a real
// gortsplib client, in real time, as an encoder or an edge relay would.
type testPublisher struct {
	c    *gortsplib.Client
	stop chan struct{}
	done chan struct{} // closed when the connection has ended
	err  error         // why it ended; read after done
}

// startPublisher announces at url (which carries the credentials) and
// publishes until Close (at the latest when the test ends) or until the
// server drops it.
func startPublisher(t testing.TB, url string) (*testPublisher, error) {
	t.Helper()
	p, err := newPublisher(url)
	if err != nil {
		return nil, err
	}
	t.Cleanup(p.Close)
	return p, nil
}

// newPublisher is startPublisher for goroutines other than the test's;
// the caller must Close it.
func newPublisher(url string) (*testPublisher, error) {
	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		return nil, err
	}
	h := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.Params[0], PPS: clip.Params[1]}
	enc, err := h.CreateEncoder()
	if err != nil {
		return nil, err
	}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{h}}
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Transport: &tcp, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	if err := c.StartRecording(url, &description.Session{Medias: []*description.Media{media}}); err != nil {
		return nil, err
	}
	p := &testPublisher{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		p.err = c.Wait()
	}()
	go func() {
		defer close(p.done)
		tick := time.NewTicker(time.Second / time.Duration(clip.FPS))
		defer tick.Stop()
		var ts uint32
		for pos := 0; ; pos = (pos + 1) % len(clip.AUs) {
			select {
			case <-p.stop:
				c.Close()
				<-waited
				return
			case <-waited:
				return
			case <-tick.C:
			}
			pkts, err := enc.Encode(clip.AUs[pos])
			if err != nil {
				continue
			}
			for _, pkt := range pkts {
				pkt.Timestamp = ts
				_ = c.WritePacketRTP(media, pkt)
			}
			ts += uint32(90000 / clip.FPS)
		}
	}()
	return p, nil
}

// Close stops publishing and waits for the connection to end.
func (p *testPublisher) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// connected reports whether the server has not dropped the publisher.
func (p *testPublisher) connected() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// tcpCounter forwards TCP connections to a target and counts the ones
// open, so a test can see from the camera's side whether anyone is still
// pulling it.
type tcpCounter struct {
	ln     net.Listener
	target string
	open   atomic.Int64
	total  atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startTCPCounter(t testing.TB, target string) *tcpCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc := &tcpCounter{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	tc.wg.Add(1)
	go tc.serve()
	t.Cleanup(tc.close)
	return tc
}

// Addr is where to connect instead of the target.
func (tc *tcpCounter) Addr() string { return tc.ln.Addr().String() }

// Open is the number of connections open through the counter now.
func (tc *tcpCounter) Open() int { return int(tc.open.Load()) }

func (tc *tcpCounter) track(c net.Conn) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.conns == nil {
		return false
	}
	tc.conns[c] = struct{}{}
	return true
}

func (tc *tcpCounter) serve() {
	defer tc.wg.Done()
	for {
		in, err := tc.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", tc.target, 2*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		if !tc.track(in) || !tc.track(out) {
			in.Close()
			out.Close()
			return
		}
		tc.open.Add(1)
		tc.total.Add(1)
		tc.wg.Add(1)
		go func() {
			defer tc.wg.Done()
			var pipes sync.WaitGroup
			pipes.Add(2)
			pipe := func(dst, src net.Conn) {
				defer pipes.Done()
				_, _ = io.Copy(dst, src)
				// Either side ending ends both, as a real socket would.
				in.Close()
				out.Close()
			}
			go pipe(out, in)
			go pipe(in, out)
			pipes.Wait()
			tc.open.Add(-1)
			tc.mu.Lock()
			if tc.conns != nil {
				delete(tc.conns, in)
				delete(tc.conns, out)
			}
			tc.mu.Unlock()
		}()
	}
}

func (tc *tcpCounter) close() {
	tc.ln.Close()
	tc.mu.Lock()
	for c := range tc.conns {
		c.Close()
	}
	tc.conns = nil
	tc.mu.Unlock()
	tc.wg.Wait()
}
