package agents_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/edge"
	"github.com/tianyan/vms/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger is quiet unless VMS_TEST_LOG is set; counting, when given,
// counts the records whose message is one of its keys (and keeps them).
func testLogger(t testing.TB, counting map[string]*atomic.Int64) *slog.Logger {
	return testLoggerKeeping(t, counting, nil)
}

func testLoggerKeeping(t testing.TB, counting map[string]*atomic.Int64, kept *keptRecords) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if os.Getenv("VMS_TEST_LOG") != "" {
		h = slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	if counting != nil {
		h = countingHandler{Handler: h, counts: counting, kept: kept}
	}
	return slog.New(h)
}

// keptRecords are the counted records, as "message key=value …".
type keptRecords struct {
	mu    sync.Mutex
	lines []string
}

func (k *keptRecords) all() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.lines...)
}

type countingHandler struct {
	slog.Handler
	counts map[string]*atomic.Int64
	kept   *keptRecords
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if c := h.counts[r.Message]; c != nil {
		c.Add(1)
		if h.kept != nil {
			line := r.Message
			r.Attrs(func(a slog.Attr) bool {
				line += " " + a.String()
				return true
			})
			h.kept.mu.Lock()
			h.kept.lines = append(h.kept.lines, line)
			h.kept.mu.Unlock()
		}
	}
	if h.Handler.Enabled(ctx, r.Level) {
		return h.Handler.Handle(ctx, r)
	}
	return nil
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{Handler: h.Handler.WithAttrs(as), counts: h.counts, kept: h.kept}
}

func (h countingHandler) WithGroup(g string) slog.Handler {
	return countingHandler{Handler: h.Handler.WithGroup(g), counts: h.counts, kept: h.kept}
}

// centre is the agents registry behind a real HTTP server on loopback,
// answering agents at agentlink.ConnectPath as the web layer does.
type centre struct {
	t     *testing.T
	Reg   *agents.Registry
	URL   string // http://host:port
	links atomic.Int64
	srv   *http.Server
	done  chan struct{}
}

// startCentre opens a registry on a fresh store with opts and serves it.
func startCentre(t *testing.T, opts agents.Options) *centre {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t, nil)
	}
	c := &centre{t: t, Reg: agents.New(db, opts), done: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.URL = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+agentlink.ConnectPath, func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		a, err := c.Reg.Authenticate(id, secret)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.links.Add(1)
		_ = c.Reg.Serve(context.WithoutCancel(r.Context()), conn, a, "rtsp://127.0.0.1:1")
	})
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(c.done)
		_ = c.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		c.Reg.Close()
		_ = c.srv.Close()
		<-c.done
		_ = db.Close()
	})
	return c
}

// enroll creates and enrolls an agent; its credentials dial server.
func (c *centre) enroll(server string) edge.Credentials {
	c.t.Helper()
	a, code, _, err := c.Reg.Create("test LAN", "", "admin")
	if err != nil {
		c.t.Fatal(err)
	}
	creds, err := c.Reg.Enroll(code, "test-host")
	if err != nil || creds.AgentID != a.ID {
		c.t.Fatalf("enroll: %+v %v", creds, err)
	}
	return edge.Credentials{Server: server, AgentID: creds.AgentID, Secret: creds.Secret}
}

// fieldAgent is a real edge agent running against a centre.
type fieldAgent struct {
	*edge.Agent
	ID     string
	linkUp *atomic.Int64 // "control link up" log records
	kept   *keptRecords  // link up and down records
	stop   func()
}

// runAgent starts an edge agent with the given intervals; it is stopped
// when the test ends (or by stop).
func runAgent(t *testing.T, creds edge.Credentials, keepalive, health time.Duration) *fieldAgent {
	t.Helper()
	up, kept := &atomic.Int64{}, &keptRecords{}
	log := testLoggerKeeping(t, map[string]*atomic.Int64{"control link up": up, "control link down, reconnecting": {}}, kept)
	// The test's cameras are on loopback, outside an agent's default networks.
	nets, err := cameranet.Parse("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	a := edge.New(edge.Config{Credentials: creds, Cameras: edge.NewCameraBook("", log), CameraNetworks: nets,
		KeepaliveInterval: keepalive, HealthInterval: health, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("edge agent did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return &fieldAgent{Agent: a, ID: creds.AgentID, linkUp: up, kept: kept, stop: stop}
}

// waitFor polls cond until it holds or d passes, and says how long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("gave up after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// linkProxy stands for the network between agent and centre: a TCP relay
// on loopback that can drop every byte while both ends keep their
// connections (a partition: writes succeed, nothing arrives), or close
// every connection at once.
type linkProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	dropping bool
	conns    map[net.Conn]bool
	accepted int
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, target string) *linkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{ln: ln, target: strings.TrimPrefix(target, "http://"), conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

// URL is what the agent dials.
func (p *linkProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *linkProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.dropping
		if !refuse {
			p.accepted++
		}
		p.mu.Unlock()
		if refuse {
			// The network is down: nobody gets through.
			_ = in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst, or drops what it reads while the proxy drops.
func (p *linkProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		// A partitioned network carries no FIN either: one side giving up
		// must not tell the other. The far end stays open until heal or
		// cut closes it.
		p.mu.Lock()
		partitioned := p.dropping
		delete(p.conns, src)
		if !partitioned {
			delete(p.conns, dst)
		}
		p.mu.Unlock()
		_ = src.Close()
		if !partitioned {
			_ = dst.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			drop := p.dropping
			p.mu.Unlock()
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// partition drops every byte from now on, and refuses new connections.
func (p *linkProxy) partition() {
	p.mu.Lock()
	p.dropping = true
	p.mu.Unlock()
}

// heal ends a partition: the connections that lost bytes are closed (their
// streams are broken) and new ones pass.
func (p *linkProxy) heal() {
	p.cut()
	p.mu.Lock()
	p.dropping = false
	p.mu.Unlock()
}

// cut closes every connection through the proxy at once.
func (p *linkProxy) cut() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// connections is how many connections the proxy has passed.
func (p *linkProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// stateLog records what the registry says about points, in order.
type stateLog struct {
	mu  sync.Mutex
	log []string // "point=state"
}

func (s *stateLog) health(point string, online bool) {
	st := "offline"
	if online {
		st = "online"
	}
	s.add(point, st)
}

func (s *stateLog) states(points []string, state string) {
	for _, p := range points {
		s.add(p, state)
	}
}

func (s *stateLog) add(point, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.log); n > 0 && s.log[n-1] == point+"="+state {
		return // repeated reports say nothing new
	}
	s.log = append(s.log, point+"="+state)
}

func (s *stateLog) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) == 0 {
		return ""
	}
	return s.log[len(s.log)-1]
}

func (s *stateLog) seen(entry string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.log {
		if e == entry {
			return true
		}
	}
	return false
}

func (s *stateLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log, " → ")
}

// cameraPort is a listening TCP port standing for a camera's RTSP port:
// the agent's health check of an idle camera is a TCP connect. close
// makes the camera unreachable.
func cameraPort(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = ln.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}
