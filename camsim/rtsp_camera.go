package camsim

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// RTSPCameraConfig configures a simulated camera's RTSP side.
type RTSPCameraConfig struct {
	// Address to listen on, e.g. "127.0.0.1:0".
	Address string
	// Profiles maps a path ("main", "sub") to a clip.
	Profiles map[string]*Clip
	// User and Pass, when set, are required (Basic or Digest).
	User, Pass string
	Logger     *slog.Logger
}

// RTSPCamera serves looping clips at rtsp://addr/{profile}.
type RTSPCamera struct {
	cfg     RTSPCameraConfig
	srv     *gortsplib.Server
	addr    string
	streams map[string]*profileStream

	// dropping refuses every connection (SetDropStream); rejecting fails
	// every credential check (SetRejectCredentials).
	dropping  atomic.Bool
	rejecting atomic.Bool

	mu     sync.Mutex
	closed bool
	// conns and sessions are tracked so that SetDropStream can close them.
	conns    map[*gortsplib.ServerConn]struct{}
	sessions map[*gortsplib.ServerSession]struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
}

type profileStream struct {
	clip   *Clip
	stream *gortsplib.ServerStream
	media  *description.Media
	enc    interface {
		Encode([][]byte) ([]*rtp.Packet, error)
	}
	// sync asks the loop to jump to the clip's next keyframe.
	sync chan struct{}
}

// StartRTSPCamera starts serving.
func StartRTSPCamera(cfg RTSPCameraConfig) (*RTSPCamera, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &RTSPCamera{cfg: cfg, streams: map[string]*profileStream{}, conns: map[*gortsplib.ServerConn]struct{}{},
		sessions: map[*gortsplib.ServerSession]struct{}{}, stop: make(chan struct{})}
	c.srv = &gortsplib.Server{
		Handler:      c,
		RTSPAddress:  cfg.Address,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				c.addr = ln.Addr().String()
			}
			return ln, err
		},
	}
	if err := c.srv.Start(); err != nil {
		return nil, err
	}
	for name, clip := range cfg.Profiles {
		ps, err := newProfileStream(c.srv, clip)
		if err != nil {
			c.srv.Close()
			return nil, err
		}
		c.streams[name] = ps
	}
	for _, ps := range c.streams {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.loop(ps)
		}()
	}
	return c, nil
}

func newProfileStream(srv *gortsplib.Server, clip *Clip) (*profileStream, error) {
	ps := &profileStream{clip: clip, sync: make(chan struct{}, 1)}
	var f format.Format
	switch clip.Codec {
	case "H264":
		h := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.Params[0], PPS: clip.Params[1]}
		enc, err := h.CreateEncoder()
		if err != nil {
			return nil, err
		}
		f, ps.enc = h, enc
	case "H265":
		h := &format.H265{PayloadTyp: 96, VPS: clip.Params[0], SPS: clip.Params[1], PPS: clip.Params[2]}
		enc, err := h.CreateEncoder()
		if err != nil {
			return nil, err
		}
		f, ps.enc = h, enc
	default:
		return nil, fmt.Errorf("unsupported clip codec %s", clip.Codec)
	}
	ps.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
	ps.stream = &gortsplib.ServerStream{Server: srv, Desc: &description.Session{Medias: []*description.Media{ps.media}}}
	if err := ps.stream.Initialize(); err != nil {
		return nil, err
	}
	return ps, nil
}

// loop writes the clip in real time, forever, with continuous timestamps.
// A sync request makes the next frame written the clip's next keyframe, the
// way an encoder forced to emit an IDR would.
func (c *RTSPCamera) loop(ps *profileStream) {
	period := time.Second / time.Duration(ps.clip.FPS)
	tick := time.NewTicker(period)
	defer tick.Stop()
	step := uint32(90000 / ps.clip.FPS)
	var ts uint32
	start := time.Now()
	pos := 0 // index in the clip of the frame written next
	for i := 0; ; i++ {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		select {
		case <-ps.sync:
			pos = ps.clip.nextKeyframe(pos - 1)
		default:
		}
		au := ps.clip.AUs[pos]
		pos = (pos + 1) % len(ps.clip.AUs)
		pkts, err := ps.enc.Encode(au)
		if err != nil {
			c.cfg.Logger.Error("camsim encode", "err", err)
			continue
		}
		ntp := start.Add(time.Duration(i) * period)
		for _, p := range pkts {
			p.Timestamp = ts
			_ = ps.stream.WritePacketRTPWithNTP(ps.media, p, ntp)
		}
		ts += step
	}
}

// SyncPoint makes the profile's next frame a keyframe (ONVIF
// SetSynchronizationPoint). It reports false for an unknown profile.
func (c *RTSPCamera) SyncPoint(profile string) bool {
	ps, ok := c.streams[profile]
	if !ok {
		return false
	}
	select {
	case ps.sync <- struct{}{}:
	default: // a request is already pending; one keyframe serves both
	}
	return true
}

// SetDropStream, when on, closes every RTSP connection and session and
// refuses new ones until it is turned off, like a camera whose streaming
// daemon died while its web side lives on.
func (c *RTSPCamera) SetDropStream(on bool) {
	c.dropping.Store(on)
	if !on {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ss := range c.sessions {
		ss.Close()
	}
	for sc := range c.conns {
		sc.Close()
	}
}

// SetRejectCredentials, when on, fails every credential check, as if the
// camera's password had been changed behind the system's back.
func (c *RTSPCamera) SetRejectCredentials(on bool) { c.rejecting.Store(on) }

// OnConnOpen implements gortsplib.ServerHandlerOnConnOpen.
func (c *RTSPCamera) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	c.mu.Lock()
	c.conns[ctx.Conn] = struct{}{}
	c.mu.Unlock()
	if c.dropping.Load() {
		ctx.Conn.Close()
	}
}

// OnConnClose implements gortsplib.ServerHandlerOnConnClose.
func (c *RTSPCamera) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	c.mu.Lock()
	delete(c.conns, ctx.Conn)
	c.mu.Unlock()
}

// OnSessionOpen implements gortsplib.ServerHandlerOnSessionOpen.
func (c *RTSPCamera) OnSessionOpen(ctx *gortsplib.ServerHandlerOnSessionOpenCtx) {
	c.mu.Lock()
	c.sessions[ctx.Session] = struct{}{}
	c.mu.Unlock()
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (c *RTSPCamera) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	c.mu.Lock()
	delete(c.sessions, ctx.Session)
	c.mu.Unlock()
}

// Addr is the camera's listening address.
func (c *RTSPCamera) Addr() string { return c.addr }

// URL is the RTSP URL of a profile, with credentials when configured.
func (c *RTSPCamera) URL(profile string) string {
	if c.cfg.User != "" {
		return fmt.Sprintf("rtsp://%s:%s@%s/%s", c.cfg.User, c.cfg.Pass, c.addr, profile)
	}
	return fmt.Sprintf("rtsp://%s/%s", c.addr, profile)
}

// Close stops the camera and drops its clients.
func (c *RTSPCamera) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.stop)
	c.mu.Unlock()
	c.wg.Wait()
	for _, ps := range c.streams {
		ps.stream.Close()
	}
	c.srv.Close()
}

func (c *RTSPCamera) lookup(ctxPath string, conn *gortsplib.ServerConn, req *base.Request) (*base.Response, *gortsplib.ServerStream, error) {
	if c.dropping.Load() {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	rejecting := c.rejecting.Load()
	if c.cfg.User != "" || rejecting {
		user := c.cfg.User
		if user == "" {
			user = "admin" // VerifyCredentials refuses an empty user and would never challenge
		}
		// Always verify, even when rejecting: it is what sets up the
		// Digest challenge sent to a client that came without credentials.
		ok := conn.VerifyCredentials(req, user, c.cfg.Pass)
		if !ok || rejecting {
			return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
		}
	}
	name := strings.Trim(ctxPath, "/")
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	ps, ok := c.streams[name]
	if !ok {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, ps.stream, nil
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (c *RTSPCamera) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return c.lookup(ctx.Path, ctx.Conn, ctx.Request)
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (c *RTSPCamera) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return c.lookup(ctx.Path, ctx.Conn, ctx.Request)
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (c *RTSPCamera) OnPlay(_ *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}
