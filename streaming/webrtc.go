package streaming

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// WebRTCConfig configures the WebRTC side of the server.
type WebRTCConfig struct {
	// ListenAddr is one port for every session: UDP (ICE over a UDP mux) and
	// ICE-TCP on the same number. Default ":8189".
	ListenAddr string
	// PublicIPs are advertised as host candidates (NAT 1:1).
	PublicIPs []string
	// ICEServers (STUN/TURN) are used for gathering and offered to clients.
	ICEServers []webrtc.ICEServer
	// Interfaces, when set, limits host candidates to these interfaces.
	Interfaces []string
	// QueueUnits bounds each viewer's queue (default 256 units, ~5 s of video).
	QueueUnits int
	// GatherTimeout bounds ICE gathering per session (default 3 s).
	GatherTimeout time.Duration
	Logger        *slog.Logger
}

// WebRTC serves WHEP sessions from Streams.
type WebRTC struct {
	cfg     WebRTCConfig
	log     *slog.Logger
	udpConn net.PacketConn
	tcpLn   net.Listener
	udpMux  ice.UDPMux
	tcpMux  ice.TCPMux
	setting webrtc.SettingEngine

	mu       sync.Mutex
	sessions map[string]*Session
	closed   bool
	wg       sync.WaitGroup
}

// NewWebRTC opens the shared ICE port.
func NewWebRTC(cfg WebRTCConfig) (*WebRTC, error) {
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":8189"
	}
	if cfg.QueueUnits <= 0 {
		cfg.QueueUnits = 256
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var (
		udpConn net.PacketConn
		tcpLn   net.Listener
	)
	for attempt := 1; ; attempt++ {
		var err error
		udpConn, err = net.ListenPacket("udp", cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("webrtc udp: %w", err)
		}
		// ICE-TCP on the same port number as the UDP mux.
		tcpAddr := net.JoinHostPort(hostOf(cfg.ListenAddr), fmt.Sprint(udpConn.LocalAddr().(*net.UDPAddr).Port))
		tcpLn, err = net.Listen("tcp", tcpAddr)
		if err == nil {
			break
		}
		udpConn.Close()
		// A random UDP port (":0") may be taken for TCP: draw another.
		if _, port, _ := net.SplitHostPort(cfg.ListenAddr); port != "0" || attempt == 20 {
			return nil, fmt.Errorf("webrtc tcp: %w", err)
		}
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	w := &WebRTC{
		cfg:      cfg,
		log:      cfg.Logger,
		udpConn:  udpConn,
		tcpLn:    tcpLn,
		udpMux:   webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), newBatchConn(udpConn)),
		tcpMux:   webrtc.NewICETCPMux(lf.NewLogger("tcpmux"), tcpLn, 64),
		sessions: map[string]*Session{},
	}
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEUDPMux(w.udpMux)
	se.SetICETCPMux(w.tcpMux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	if len(cfg.Interfaces) > 0 {
		allowed := append([]string(nil), cfg.Interfaces...)
		se.SetInterfaceFilter(func(name string) bool {
			for _, a := range allowed {
				if a == name {
					return true
				}
			}
			return false
		})
	}
	w.setting = se
	return w, nil
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// Port is the ICE port (UDP and TCP).
func (w *WebRTC) Port() int { return w.udpConn.LocalAddr().(*net.UDPAddr).Port }

// ICEServers are the STUN/TURN servers to offer clients (WHEP Link headers).
func (w *WebRTC) ICEServers() []webrtc.ICEServer { return w.cfg.ICEServers }

// Close ends every session and the shared port.
func (w *WebRTC) Close() {
	w.mu.Lock()
	w.closed = true
	ss := make([]*Session, 0, len(w.sessions))
	for _, s := range w.sessions {
		ss = append(ss, s)
	}
	w.mu.Unlock()
	for _, s := range ss {
		s.End(EndShutdown)
	}
	w.wg.Wait()
	w.udpMux.Close()
	w.tcpMux.Close()
	w.udpConn.Close()
	w.tcpLn.Close()
}

// Session returns a live session by ID.
func (w *WebRTC) Session(id string) (*Session, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.sessions[id]
	return s, ok
}

// SessionCount is the number of live sessions.
func (w *WebRTC) SessionCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sessions)
}

// CodecError says the browser cannot take what the camera sends.
type CodecError struct {
	Camera  string
	Offered []string
}

func (e *CodecError) Error() string {
	return fmt.Sprintf("the camera sends %s video, but this browser offered only %s", e.Camera, strings.Join(e.Offered, ", "))
}

// ErrBadOffer wraps problems with the client's SDP offer.
var ErrBadOffer = errors.New("bad SDP offer")

// SessionOptions are per-session details for logs and the owner.
type SessionOptions struct {
	// User and ClientIP label the session in logs and stats.
	User     string
	ClientIP string
	// Credential names, without revealing it, what the viewer proved to
	// open the session (its login session or API token), so the owner can
	// end the session when that credential ends.
	Credential string
	// OnClose runs once when the session ends, for any reason.
	OnClose func(*Session)
}

// NewSession answers a WHEP offer for stream. The session starts sending
// once ICE connects, beginning with the cached GOP for an instant picture.
func (w *WebRTC) NewSession(ctx context.Context, stream *Stream, offer string, opts SessionOptions) (*Session, string, error) {
	o, err := parseOffer(offer)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	plan, err := planCodecs(stream, o)
	if err != nil {
		return nil, "", err
	}

	me := &webrtc.MediaEngine{}
	for _, c := range plan {
		if err := me.RegisterCodec(c.params, c.kind); err != nil {
			return nil, "", err
		}
	}
	// NACKs are answered by the session's own retransmitter, not pion's
	// responder, which would keep a copy of every packet per viewer.
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, "", err
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(w.setting))
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: w.cfg.ICEServers})
	if err != nil {
		return nil, "", err
	}

	s := &Session{
		ID:         newSessionID(),
		PointID:    stream.PointID,
		User:       opts.User,
		ClientIP:   opts.ClientIP,
		Credential: opts.Credential,
		Created:    time.Now(),
		w:          w,
		pc:         pc,
		stream:     stream,
		onClose:    opts.OnClose,
		tracks:     make([]*webrtc.TrackLocalStaticRTP, len(stream.Tracks)),
		rtx:        make([]*retransmitter, len(stream.Tracks)),
		done:       make(chan struct{}),
	}
	fail := func(err error) (*Session, string, error) {
		_ = pc.Close()
		return nil, "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	// The session's goroutines start only once it is registered below.
	var rtcpReaders []func()
	for _, c := range plan {
		tr, err := webrtc.NewTrackLocalStaticRTP(c.params.RTPCodecCapability, c.kind.String(), "tianyan-"+stream.PointID)
		if err != nil {
			return fail(err)
		}
		sender, err := pc.AddTrack(tr)
		if err != nil {
			return fail(err)
		}
		s.tracks[c.track] = tr
		rt := &retransmitter{}
		s.rtx[c.track] = rt
		// Reading RTCP drives retransmission and the report interceptors.
		rtcpReaders = append(rtcpReaders, func() {
			for {
				pkts, _, err := sender.ReadRTCP()
				if err != nil {
					return
				}
				if n := rt.handleRTCP(pkts, tr); n > 0 {
					s.mu.Lock()
					s.resent += uint64(n)
					s.mu.Unlock()
				}
			}
		})
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-time.After(w.cfg.GatherTimeout):
	case <-ctx.Done():
		return fail(ctx.Err())
	}

	// Every goroutine of the session is counted here, under w.mu while
	// the WebRTC is open: Close sets closed under w.mu before it waits, so
	// no Add can race its Wait (pion's callbacks only signal).
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return fail(ErrHubClosed)
	}
	w.sessions[s.ID] = s
	w.wg.Add(len(rtcpReaders) + 2)
	w.mu.Unlock()
	for _, read := range rtcpReaders {
		go func() {
			defer w.wg.Done()
			read()
		}()
	}

	connected, ended := make(chan struct{}), make(chan struct{})
	var connectedOnce, endedOnce sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			connectedOnce.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			endedOnce.Do(func() { close(ended) })
		}
	})
	go func() {
		defer w.wg.Done()
		select {
		case <-connected:
			s.send()
		case <-s.done:
		}
	}()
	// The session's watcher ends it when ICE fails, when the stream ends,
	// and when ICE never connects, so it cannot hold the stream forever.
	go func() {
		defer w.wg.Done()
		t := time.NewTimer(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
					s.End(EndICETimeout)
					return
				}
			case <-ended:
				s.End(EndDisconnected)
				return
			case <-stream.Done():
				s.End(EndSourceGone)
				return
			case <-s.done:
				return
			}
		}
	}()
	return s, pc.LocalDescription().SDP, nil
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// burstPacing spaces the cached GOP's frames on a join: ~50 frames go out
// in ~100 ms instead of one burst of several hundred packets.
const burstPacing = 2 * time.Millisecond

// Session is one WebRTC viewer.
type Session struct {
	ID       string
	PointID  string
	User     string
	ClientIP string
	// Credential is SessionOptions.Credential.
	Credential string
	Created    time.Time

	w       *WebRTC
	pc      *webrtc.PeerConnection
	stream  *Stream
	tracks  []*webrtc.TrackLocalStaticRTP
	rtx     []*retransmitter
	onClose func(*Session)

	closeOnce sync.Once
	done      chan struct{}
	endReason string // set once, before done is closed

	mu        sync.Mutex
	reader    *Reader
	firstSent time.Time
	packets   uint64
	bytes     uint64
	resent    uint64
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Why a WebRTC session or an RTSP session ended, as EndReason reports it
// (owners add their own, such as a revoked grant or credential).
const (
	// EndClosed: the owner closed it (a WHEP DELETE, the server stopping).
	EndClosed = "closed"
	// EndDisconnected: the viewer's connection failed or closed.
	EndDisconnected = "disconnected"
	// EndICETimeout: ICE never connected.
	EndICETimeout = "ice_timeout"
	// EndSourceGone: the stream being watched ended.
	EndSourceGone = "source_ended"
	// EndShutdown: the server is stopping.
	EndShutdown = "shutdown"
)

// EndReason says why the session ended; "" while it runs.
func (s *Session) EndReason() string {
	select {
	case <-s.done:
		return s.endReason
	default:
		return ""
	}
}

// Close ends the session; it is safe to call more than once.
func (s *Session) Close() { s.End(EndClosed) }

// End ends the session for reason (one of the End… constants or the
// owner's own); the first reason given is the one EndReason reports.
func (s *Session) End(reason string) {
	s.closeOnce.Do(func() {
		s.endReason = reason
		close(s.done)
		_ = s.pc.Close()
		s.w.mu.Lock()
		delete(s.w.sessions, s.ID)
		s.w.mu.Unlock()
		if s.onClose != nil {
			s.onClose(s)
		}
	})
}

// SessionStats describes a session for the API.
type SessionStats struct {
	ID       string    `json:"id"`
	PointID  string    `json:"point_id"`
	User     string    `json:"user"`
	Created  time.Time `json:"created"`
	State    string    `json:"state"`
	Packets  uint64    `json:"packets_sent"`
	Bytes    uint64    `json:"bytes_sent"`
	Dropped  uint64    `json:"units_dropped"`
	Resent   uint64    `json:"packets_resent"`
	Duration float64   `json:"duration_secs"`
}

// Stats reports what the session has sent.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SessionStats{ID: s.ID, PointID: s.PointID, User: s.User, Created: s.Created,
		State: s.pc.ConnectionState().String(), Packets: s.packets, Bytes: s.bytes, Resent: s.resent,
		Duration: time.Since(s.Created).Seconds()}
	if s.reader != nil {
		st.Dropped = s.reader.Dropped()
	}
	return st
}

// send is the session's writer: cached GOP first, then live units.
func (s *Session) send() {
	r, snap := s.stream.AddReader(s.w.cfg.QueueUnits)
	defer r.Close()
	s.mu.Lock()
	s.reader = r
	s.mu.Unlock()

	seq := make([]uint16, len(s.tracks))
	for i := range seq {
		var b [2]byte
		_, _ = rand.Read(b[:])
		seq[i] = uint16(b[0])<<8 | uint16(b[1])
	}
	var out webrtcPacket
	write := func(u *Unit, ts uint32) bool {
		tr := s.tracks[u.Track]
		if tr == nil {
			return true
		}
		rt := s.rtx[u.Track]
		n := 0
		for _, p := range u.Packets {
			out.Header = p.Header
			out.Header.SequenceNumber = seq[u.Track]
			out.Header.Timestamp = ts
			out.Payload = p.Payload
			rt.remember(p, seq[u.Track], ts)
			seq[u.Track]++
			if err := tr.WriteRTP(&out.Packet); err != nil {
				return false
			}
			n += len(p.Payload) + 12
		}
		s.mu.Lock()
		s.packets += uint64(len(u.Packets))
		s.bytes += uint64(n)
		s.mu.Unlock()
		return true
	}

	// The cached GOP goes out at once, its timestamps squeezed just below
	// live so the browser decodes through it without adding delay.
	if len(snap) > 0 {
		last := snap[len(snap)-1].Timestamp
		for i, u := range snap {
			if !write(u, last-uint32(len(snap)-1-i)) {
				return
			}
			// The keyframe goes at once; the rest of the GOP is paced so
			// a 2 s burst does not overflow the viewer's socket buffer.
			select {
			case <-time.After(burstPacing):
			case <-s.done:
				return
			}
		}
	}
	for {
		select {
		case u := <-r.C():
			if !write(u, u.Timestamp) {
				return
			}
		case <-r.Done():
			return
		case <-s.done:
			return
		}
	}
}

// Sessions lists the live sessions.
func (w *WebRTC) Sessions() []*Session {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*Session, 0, len(w.sessions))
	for _, s := range w.sessions {
		out = append(out, s)
	}
	return out
}
