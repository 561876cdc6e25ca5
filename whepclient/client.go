// Package whepclient is a WHEP viewer built on pion: it posts an SDP offer
// to any WHEP endpoint, receives the stream and measures what a viewer
// sees — time to first keyframe, RTP sequence gaps, frames. Tests and the
// whepbench command use it; it is not part of the server.
package whepclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// Exchange sends an offer and returns the answer and the session URL.
type Exchange func(ctx context.Context, offer string) (answer, location string, err error)

// Options configure a viewer.
type Options struct {
	// VideoCodecs to offer, in order ("H264", "H265", "VP8"). Default H264.
	VideoCodecs []string
	// Audio adds a recvonly audio section offering Opus, PCMU and PCMA.
	Audio bool
	// Interfaces limits ICE host candidates (e.g. "lo" in tests).
	Interfaces []string
	// OnAccessUnit receives each complete video access unit (Annex-B NAL units).
	OnAccessUnit func(au [][]byte, keyframe bool)
}

// Stats is what a viewer has seen so far.
type Stats struct {
	Start         time.Time
	FirstKeyframe time.Duration // 0 until one arrived
	FirstPacket   time.Duration
	Packets       uint64
	Bytes         uint64
	SeqGaps       uint64 // packets missing by sequence number
	Frames        uint64 // complete video access units
	Keyframes     uint64
	Codec         string
	AudioPackets  uint64
}

// Client is one viewer.
type Client struct {
	pc       *webrtc.PeerConnection
	location string
	token    string
	http     *http.Client

	mu    sync.Mutex
	stats Stats
	kf    chan struct{}
	kfOne sync.Once
	opts  Options
	wg    sync.WaitGroup
}

// HTTPExchange posts offers to a WHEP URL with an optional bearer token.
func HTTPExchange(endpoint, token string, hc *http.Client) Exchange {
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	return func(ctx context.Context, offer string) (string, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewBufferString(offer))
		if err != nil {
			return "", "", err
		}
		req.Header.Set("Content-Type", "application/sdp")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := hc.Do(req)
		if err != nil {
			return "", "", err
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if res.StatusCode != http.StatusCreated {
			return "", "", &HTTPError{Status: res.StatusCode, Body: string(body)}
		}
		loc := res.Header.Get("Location")
		if loc != "" {
			if base, err := url.Parse(endpoint); err == nil {
				if u, err := base.Parse(loc); err == nil {
					loc = u.String()
				}
			}
		}
		return string(body), loc, nil
	}
}

// HTTPError is a non-201 answer from a WHEP endpoint.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("WHEP answered %d: %s", e.Status, e.Body) }

func mediaEngine(opts Options) (*webrtc.MediaEngine, error) {
	me := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	pt := webrtc.PayloadType(96)
	codecsWanted := opts.VideoCodecs
	if len(codecsWanted) == 0 {
		codecsWanted = []string{"H264"}
	}
	for _, c := range codecsWanted {
		var caps []webrtc.RTPCodecCapability
		switch c {
		case "H264":
			caps = []webrtc.RTPCodecCapability{
				{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb},
				{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", RTCPFeedback: fb},
			}
		case "H265":
			caps = []webrtc.RTPCodecCapability{{MimeType: webrtc.MimeTypeH265, ClockRate: 90000, RTCPFeedback: fb}}
		case "VP8":
			caps = []webrtc.RTPCodecCapability{{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}}
		default:
			return nil, fmt.Errorf("unknown codec %s", c)
		}
		for _, cp := range caps {
			if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: cp, PayloadType: pt}, webrtc.RTPCodecTypeVideo); err != nil {
				return nil, err
			}
			pt++
		}
	}
	if opts.Audio {
		for _, a := range []struct {
			mime string
			rate uint32
			ch   uint16
			pt   webrtc.PayloadType
		}{{webrtc.MimeTypeOpus, 48000, 2, 111}, {webrtc.MimeTypePCMU, 8000, 1, 0}, {webrtc.MimeTypePCMA, 8000, 1, 8}} {
			if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: a.mime, ClockRate: a.rate, Channels: a.ch}, PayloadType: a.pt}, webrtc.RTPCodecTypeAudio); err != nil {
				return nil, err
			}
		}
	}
	return me, nil
}

// Connect negotiates through exchange and starts receiving.
func Connect(ctx context.Context, exchange Exchange, opts Options) (*Client, error) {
	me, err := mediaEngine(opts)
	if err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	if len(opts.Interfaces) > 0 {
		allowed := opts.Interfaces
		se.SetInterfaceFilter(func(n string) bool {
			for _, a := range allowed {
				if a == n {
					return true
				}
			}
			return false
		})
	}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	c := &Client{pc: pc, kf: make(chan struct{}), opts: opts}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		pc.Close()
		return nil, err
	}
	if opts.Audio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			pc.Close()
			return nil, err
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.readTrack(tr)
		}()
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		pc.Close()
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		pc.Close()
		return nil, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		pc.Close()
		return nil, ctx.Err()
	}
	c.mu.Lock()
	c.stats.Start = time.Now()
	c.mu.Unlock()
	answer, loc, err := exchange(ctx, pc.LocalDescription().SDP)
	if err != nil {
		pc.Close()
		return nil, err
	}
	c.location = loc
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		pc.Close()
		return nil, err
	}
	return c, nil
}

// ConnectHTTP connects to a WHEP URL.
func ConnectHTTP(ctx context.Context, endpoint, token string, opts Options) (*Client, error) {
	c, err := Connect(ctx, HTTPExchange(endpoint, token, nil), opts)
	if c != nil {
		c.token = token
		c.http = &http.Client{Timeout: 5 * time.Second}
	}
	return c, err
}

// Location is the session URL the server returned.
func (c *Client) Location() string { return c.location }

// Keyframe is closed when the first keyframe has arrived.
func (c *Client) Keyframe() <-chan struct{} { return c.kf }

// WaitKeyframe waits for the first keyframe.
func (c *Client) WaitKeyframe(ctx context.Context) error {
	select {
	case <-c.kf:
		return nil
	case <-ctx.Done():
		return errors.New("no keyframe before deadline")
	}
}

// Stats returns a snapshot.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// ConnectionState is the peer connection's state.
func (c *Client) ConnectionState() webrtc.PeerConnectionState { return c.pc.ConnectionState() }

// Close ends the session: DELETE on the session URL, then the peer connection.
func (c *Client) Close() {
	if c.http != nil && c.location != "" {
		if req, err := http.NewRequest(http.MethodDelete, c.location, nil); err == nil {
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			if res, err := c.http.Do(req); err == nil {
				res.Body.Close()
			}
		}
	}
	_ = c.pc.Close()
	c.wg.Wait()
}

func (c *Client) readTrack(tr *webrtc.TrackRemote) {
	mime := tr.Codec().MimeType
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	var depack interface {
		Unmarshal([]byte) ([]byte, error)
	}
	switch mime {
	case webrtc.MimeTypeH264:
		depack = &codecs.H264Packet{}
	case webrtc.MimeTypeH265:
		depack = &codecs.H265Depacketizer{}
	}
	var (
		haveSeq bool
		lastSeq uint16
		frame   []byte
	)
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		c.mu.Lock()
		if !video {
			c.stats.AudioPackets++
			c.mu.Unlock()
			continue
		}
		c.stats.Codec = mime
		if c.stats.Packets == 0 {
			c.stats.FirstPacket = now.Sub(c.stats.Start)
		}
		c.stats.Packets++
		c.stats.Bytes += uint64(len(pkt.Payload))
		if haveSeq {
			if d := pkt.SequenceNumber - lastSeq; d != 1 && d < 0x8000 {
				c.stats.SeqGaps += uint64(d - 1)
			}
		}
		haveSeq, lastSeq = true, pkt.SequenceNumber
		c.mu.Unlock()
		if depack == nil {
			continue
		}
		c.collect(pkt, depack, &frame, mime, now)
	}
}

func (c *Client) collect(pkt *rtp.Packet, depack interface{ Unmarshal([]byte) ([]byte, error) }, frame *[]byte, mime string, now time.Time) {
	b, err := depack.Unmarshal(pkt.Payload)
	if err == nil {
		*frame = append(*frame, b...)
	}
	if !pkt.Marker || len(*frame) == 0 {
		return
	}
	var au [][]byte
	var key bool
	if mime == webrtc.MimeTypeH264 {
		var a h264.AnnexB
		if a.Unmarshal(*frame) == nil {
			au = a
			key = h264.IsRandomAccess(au)
		}
	} else {
		var a h264.AnnexB
		if a.Unmarshal(*frame) == nil {
			au = a
			key = h265.IsRandomAccess(au)
		}
	}
	*frame = nil
	if au == nil {
		return
	}
	c.mu.Lock()
	c.stats.Frames++
	if key {
		c.stats.Keyframes++
		if c.stats.FirstKeyframe == 0 {
			c.stats.FirstKeyframe = now.Sub(c.stats.Start)
		}
	}
	c.mu.Unlock()
	if key {
		c.kfOne.Do(func() { close(c.kf) })
	}
	if c.opts.OnAccessUnit != nil && (key || c.Stats().Keyframes > 0) {
		c.opts.OnAccessUnit(au, key)
	}
}
