package streaming

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/tianyan/vms/whepclient"
)

// relayDemander plays the centre's agent registry for the stress test:
// asked for a point in its set, it starts a relay publishing into that
// point (retrying, as an agent does, until undemanded); Undemand stops it.
type relayDemander struct {
	url    func(id string) string
	relays map[string]bool // points that have an agent

	mu        sync.Mutex
	running   map[string]chan struct{}
	closed    bool
	wg        sync.WaitGroup
	demands   atomic.Int64
	undemands atomic.Int64
}

func (d *relayDemander) Demand(id string) bool {
	if !d.relays[id] {
		return false
	}
	d.demands.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.running[id] != nil {
		return !d.closed
	}
	stop := make(chan struct{})
	d.running[id] = stop
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.relay(id, stop)
	}()
	return true
}

func (d *relayDemander) Undemand(id string) {
	d.undemands.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if stop := d.running[id]; stop != nil {
		close(stop)
		delete(d.running, id)
	}
}

// relay publishes into id until stop, reconnecting when dropped.
func (d *relayDemander) relay(id string, stop chan struct{}) {
	for {
		if pub, err := newPublisher(d.url(id)); err == nil {
			select {
			case <-stop:
				pub.Close()
				return
			case <-pub.done:
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *relayDemander) close() {
	d.mu.Lock()
	d.closed = true
	for id, stop := range d.running {
		close(stop)
		delete(d.running, id)
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// readRTSP plays url for hold and counts the RTP packets received.
func readRTSP(url string, hold time.Duration) (int64, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return 0, err
	}
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second}
	if err := c.Start2(); err != nil {
		return 0, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return 0, err
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return 0, err
	}
	var n atomic.Int64
	c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { n.Add(1) })
	if _, err := c.Play(nil); err != nil {
		return 0, err
	}
	select {
	case <-time.After(hold):
	case <-waitErr(c):
	}
	return n.Load(), nil
}

func waitErr(c *gortsplib.Client) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Wait() }()
	return ch
}

// TestHubUnderRandomChurnClosesCleanly throws, for 30 s, random point
// creation, PATCH-like reconfiguration and DELETE, WebRTC viewers, bare
// Acquire/release, RTSP readers, encoders and relays publishing, idle
// expiries (a 20 ms grace) and stats at a hub with real cameras, and then
// closes it in the middle of all that. Close must return promptly, no
// camera may be pulled any more, and no goroutine may survive. Along the
// way: a reader holding a stream never sees it ended by idle, and an
// encoder nobody demanded is never disconnected.
func TestHubUnderRandomChurnClosesCleanly(t *testing.T) {
	duration := 30 * time.Second
	if testing.Short() {
		duration = 8 * time.Second
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %v", seed, duration)
	// Goroutines of earlier tests still winding down are not this test's.
	before := goleak.IgnoreCurrent()

	camA, camB := startCamera(t, "127.0.0.1:0"), startCamera(t, "127.0.0.1:0")
	toA, toB := startTCPCounter(t, camA.Addr()), startTCPCounter(t, camB.Addr())
	urlA := "rtsp://cam:campass@" + toA.Addr() + "/main"
	urlB := "rtsp://cam:campass@" + toB.Addr() + "/main"

	var srvAddr atomic.Value
	demander := &relayDemander{
		url:     func(id string) string { return fmt.Sprintf("rtsp://pub:secret-key@%s/%s", srvAddr.Load(), id) },
		relays:  map[string]bool{"p0": true, "p1": true, "p2": true, "relay": true},
		running: map[string]chan struct{}{},
	}
	hub := NewHub(HubConfig{Logger: testLogger(), IdleGrace: 20 * time.Millisecond, StartTimeout: 2 * time.Second,
		SourceReadTimeout: 2 * time.Second, Demander: demander})
	srv, err := NewRTSPServer(hub, RTSPServerConfig{Address: "127.0.0.1:0", Authorizer: keyAuthorizer{}, ReadTimeout: 3 * time.Second, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srvAddr.Store(srv.Addr())
	w, err := NewWebRTC(WebRTCConfig{ListenAddr: "127.0.0.1:0", Interfaces: []string{"lo"}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}

	// Stable points, never reconfigured: an on-demand camera, an encoder
	// publishing with on_demand false, a point publishers come and go on,
	// and a relayed point.
	hub.SetPoint("cam", SourceConfig{Type: SourceRTSP, URL: urlA, OnDemand: true})
	hub.SetPoint("enc", SourceConfig{Type: SourcePublish})
	hub.SetPoint("pub", SourceConfig{Type: SourcePublish, OnDemand: true})
	hub.SetPoint("relay", SourceConfig{Type: SourcePublish, OnDemand: true})
	encoder, err := startPublisher(t, fmt.Sprintf("rtsp://pub:secret-key@%s/enc", srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}

	configs := []SourceConfig{
		{Type: SourceRTSP, URL: urlA, OnDemand: true},
		{Type: SourceRTSP, URL: urlA},
		{Type: SourceRTSP, URL: urlB, OnDemand: true},
		{Type: SourceRTSP, URL: urlB},
		{Type: SourceRTSP, URL: "rtsp://127.0.0.1:1/dead", OnDemand: true},
		{Type: SourcePublish, OnDemand: true},
		{Type: SourcePublish},
	}
	churn := []string{"p0", "p1", "p2", "p3", "p4", "p5"}
	all := append([]string{"cam", "enc", "pub", "relay"}, churn...)

	stop := make(chan struct{})
	var workers sync.WaitGroup
	var failures sync.Map // what → message; reported after the workers stop
	fail := func(what string, format string, args ...any) {
		failures.LoadOrStore(what, fmt.Sprintf(format, args...))
	}
	var acquired, viewed, rtspRead, published atomic.Int64
	var closing atomic.Bool // set before Close, which ends every stream
	var nworkers uint64
	worker := func(n int, body func(r *rand.Rand)) {
		for range n {
			nworkers++
			workers.Add(1)
			r := rand.New(rand.NewPCG(seed, nworkers))
			go func() {
				defer workers.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					body(r)
				}
			}()
		}
	}
	sleep := func(r *rand.Rand, max time.Duration) {
		select {
		case <-stop:
		case <-time.After(time.Duration(r.Int64N(int64(max)))):
		}
	}
	// Acquire must answer within the start timeout (plus slack), whatever
	// happens to the point meanwhile.
	timedAcquire := func(id string) (*Stream, func(), error) {
		start := time.Now()
		s, release, err := hub.Acquire(context.Background(), id)
		if el := time.Since(start); el > hub.StartTimeout()+3*time.Second {
			fail("acquire-slow", "Acquire(%s) took %v", id, el)
		}
		return s, release, err
	}

	worker(2, func(r *rand.Rand) {
		id := churn[r.IntN(len(churn))]
		if r.IntN(4) == 0 {
			hub.RemovePoint(id)
		} else {
			hub.SetPoint(id, configs[r.IntN(len(configs))])
		}
		sleep(r, 150*time.Millisecond)
	})
	worker(3, func(r *rand.Rand) {
		id := all[r.IntN(len(all))]
		s, release, err := timedAcquire(id)
		if err != nil {
			sleep(r, 20*time.Millisecond)
			return
		}
		acquired.Add(1)
		sleep(r, 300*time.Millisecond)
		if id == "cam" || id == "enc" {
			// Nothing reconfigures these: only idle could end the
			// stream, and idle must not while a reader holds it.
			select {
			case <-s.Done():
				if !closing.Load() {
					fail("stale-idle-"+id, "%s: the stream ended while a reader held it", id)
				}
			default:
			}
		}
		release()
		// Sometimes come back just as the grace ends.
		if r.IntN(3) == 0 {
			time.Sleep(time.Duration(15+r.IntN(10)) * time.Millisecond)
		}
	})
	worker(2, func(r *rand.Rand) {
		id := all[r.IntN(len(all))]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := whepclient.Connect(ctx, func(ctx context.Context, offer string) (string, string, error) {
			s, release, err := timedAcquire(id)
			if err != nil {
				return "", "", err
			}
			sess, answer, err := w.NewSession(ctx, s, offer, SessionOptions{OnClose: func(*Session) { release() }})
			if err != nil {
				release()
				return "", "", err
			}
			return answer, sess.ID, nil
		}, whepclient.Options{Interfaces: []string{"lo"}})
		if err != nil {
			sleep(r, 50*time.Millisecond)
			return
		}
		viewed.Add(1)
		sleep(r, 700*time.Millisecond)
		c.Close()
	})
	worker(1, func(r *rand.Rand) {
		id := all[r.IntN(len(all))]
		if n, err := readRTSP(fmt.Sprintf("rtsp://pub:secret-key@%s/%s", srv.Addr(), id), time.Duration(r.IntN(500))*time.Millisecond); err == nil && n > 0 {
			rtspRead.Add(1)
		}
		sleep(r, 100*time.Millisecond)
	})
	worker(1, func(r *rand.Rand) {
		// Half the time a point that always takes publishers.
		id := "pub"
		if r.IntN(2) == 0 {
			id = churn[r.IntN(len(churn))]
		}
		pub, err := newPublisher(fmt.Sprintf("rtsp://pub:secret-key@%s/%s", srv.Addr(), id))
		if err != nil {
			sleep(r, 50*time.Millisecond)
			return
		}
		published.Add(1)
		sleep(r, 1500*time.Millisecond)
		pub.Close()
	})
	worker(1, func(r *rand.Rand) {
		for _, id := range all {
			_, _ = hub.Stats(id)
		}
		_ = hub.AllStats()
		sleep(r, 50*time.Millisecond)
	})

	time.Sleep(duration)
	if !encoder.connected() {
		fail("encoder", "the encoder nobody demanded was disconnected: %v", encoder.err)
	}

	// Close in the middle of everything.
	closing.Store(true)
	closed := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(closed)
		hub.Close()
	}()
	select {
	case <-closed:
		t.Logf("Hub.Close took %v under load", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("Hub.Close did not return within 10 s")
	}
	close(stop)
	workers.Wait()
	// After Close the hub answers at once, and refuses new points.
	if _, _, err := hub.Acquire(context.Background(), "cam"); !errors.Is(err, ErrHubClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
	hub.SetPoint("late", configs[0])
	if _, err := hub.Stats("late"); !errors.Is(err, ErrHubClosed) {
		t.Errorf("SetPoint after Close made a point: %v", err)
	}
	hub.Close()
	encoder.Close()
	demander.close()
	srv.Close()
	w.Close()
	failures.Range(func(_, msg any) bool {
		t.Error(msg)
		return true
	})
	t.Logf("acquired %d, WebRTC views %d, RTSP reads %d, publishes %d, relay demands %d, undemands %d",
		acquired.Load(), viewed.Load(), rtspRead.Load(), published.Load(), demander.demands.Load(), demander.undemands.Load())
	if acquired.Load() == 0 || viewed.Load() == 0 || rtspRead.Load() == 0 || published.Load() == 0 || demander.undemands.Load() == 0 {
		t.Error("the churn did not exercise every kind of client")
	}
	waitFor(t, 5*time.Second, "no camera connection left", func() bool { return toA.Open()+toB.Open() == 0 })
	toA.close()
	toB.close()
	camA.Close()
	camB.Close()
	goleak.VerifyNone(t, append(leakOptions(), before)...)
}
