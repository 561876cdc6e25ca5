package camsim

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
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

	mu     sync.Mutex
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

type profileStream struct {
	clip   *Clip
	stream *gortsplib.ServerStream
	media  *description.Media
	enc    interface {
		Encode([][]byte) ([]*rtp.Packet, error)
	}
}

// StartRTSPCamera starts serving.
func StartRTSPCamera(cfg RTSPCameraConfig) (*RTSPCamera, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &RTSPCamera{cfg: cfg, streams: map[string]*profileStream{}, stop: make(chan struct{})}
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
	ps := &profileStream{clip: clip}
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
func (c *RTSPCamera) loop(ps *profileStream) {
	period := time.Second / time.Duration(ps.clip.FPS)
	tick := time.NewTicker(period)
	defer tick.Stop()
	step := uint32(90000 / ps.clip.FPS)
	var ts uint32
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		au := ps.clip.AUs[i%len(ps.clip.AUs)]
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
	if c.cfg.User != "" && !conn.VerifyCredentials(req, c.cfg.User, c.cfg.Pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
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
