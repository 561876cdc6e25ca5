package streaming

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// maxGOPUnits bounds the instant-start cache; a camera with a longer GOP
// than this (12 s at 25 fps) makes joiners wait for the next keyframe.
const maxGOPUnits = 300

// Stream is the live media of one point: its tracks, the instant-start
// cache and the readers it fans out to. A Stream outlives camera reconnects
// as long as the camera comes back with the same codecs.
type Stream struct {
	PointID string
	// Tracks never change after the stream is created.
	Tracks []*Track

	log *slog.Logger

	mu        sync.Mutex
	procs     []processor
	timelines []timeline
	readers   map[*Reader]struct{}
	gop       []*Unit // video units from the last keyframe on
	closed    bool
	session   *sourceSession
	stats     streamCounters

	done chan struct{}
}

// sourceSession is one connection of a source: its description and the
// RTSP re-serve stream built from it.
type sourceSession struct {
	mediaTrack map[*description.Media]int
	rtsp       *gortsplib.ServerStream
}

type streamCounters struct {
	framesIn      uint64
	bytesIn       uint64
	lastKeyframe  time.Time
	winStart      time.Time
	winFrames     int
	winBytes      int
	fps           float64
	bitrate       float64
	decodeErrors  uint64
	sourceOnline  bool
	sourceChanged time.Time
}

func newStream(pointID string, tracks []*Track, log *slog.Logger) *Stream {
	s := &Stream{
		PointID:   pointID,
		Tracks:    tracks,
		log:       log,
		procs:     make([]processor, len(tracks)),
		timelines: make([]timeline, len(tracks)),
		readers:   map[*Reader]struct{}{},
		done:      make(chan struct{}),
	}
	for i, t := range tracks {
		s.procs[i] = newProcessor(t)
		s.timelines[i].clockRate = t.ClockRate
	}
	return s
}

// compatible reports whether a new source description carries the same
// tracks, so that readers can stay through a reconnect.
func (s *Stream) compatible(tracks []*Track) bool {
	if len(tracks) != len(s.Tracks) {
		return false
	}
	for i, t := range tracks {
		if t.Codec != s.Tracks[i].Codec || t.ClockRate != s.Tracks[i].ClockRate {
			return false
		}
	}
	return true
}

// attach switches the stream to a new source session whose tracks are
// compatible with the stream's.
func (s *Stream) attach(tracks []*Track, rtspStream *gortsplib.ServerStream) {
	sess := &sourceSession{mediaTrack: map[*description.Media]int{}, rtsp: rtspStream}
	for i, t := range tracks {
		sess.mediaTrack[t.media] = i
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if rtspStream != nil {
			rtspStream.Close()
		}
		return
	}
	old := s.session
	s.session = sess
	for i := range s.procs {
		s.procs[i].reset()
		s.timelines[i].rebase = true
		// New SPS/PPS may come in the new description.
		s.procs[i] = retarget(s.procs[i], tracks[i])
	}
	s.gop = nil
	s.stats.sourceOnline = true
	s.stats.sourceChanged = time.Now()
	if old != nil && old.rtsp != nil {
		old.rtsp.Close()
	}
}

// retarget keeps a processor's learned parameters but points it at a new
// session's format.
func retarget(p processor, t *Track) processor {
	switch p := p.(type) {
	case *h264Processor:
		if f, ok := t.format.(interface{ SafeParams() ([]byte, []byte) }); ok {
			if sps, pps := f.SafeParams(); sps != nil {
				p.setSPS(sps)
				p.pps = cloneBytes(pps)
			}
		}
		p.format = t.format.(*format.H264)
	case *h265Processor:
		p.format = t.format.(*format.H265)
	}
	return p
}

// detach marks the source as gone; readers stay and wait for it to return.
func (s *Stream) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != nil && s.session.rtsp != nil {
		s.session.rtsp.Close()
	}
	s.session = nil
	s.gop = nil
	s.stats.sourceOnline = false
	s.stats.sourceChanged = time.Now()
}

// rtspStream is the RTSP re-serve stream of the current source session.
func (s *Stream) rtspStream() *gortsplib.ServerStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil {
		return nil
	}
	return s.session.rtsp
}

// WriteRTP feeds one packet of the current source session into the stream.
func (s *Stream) writeRTP(medi *description.Media, pkt *rtp.Packet) {
	s.mu.Lock()
	sess := s.session
	if s.closed || sess == nil {
		s.mu.Unlock()
		return
	}
	idx, ok := sess.mediaTrack[medi]
	if !ok {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	u, err := s.procs[idx].process(pkt)
	if err != nil {
		s.stats.decodeErrors++
		if s.stats.decodeErrors%100 == 1 {
			s.log.Debug("cannot depacketize", "point", s.PointID, "codec", s.Tracks[idx].Codec, "err", err)
		}
	}
	if u != nil {
		u.Track = idx
		ts := s.timelines[idx].next(u.Timestamp, now)
		u.Timestamp = ts
		for _, q := range u.Packets {
			q.Timestamp = ts
		}
		s.account(u, now)
		s.fanOut(u)
	}
	s.mu.Unlock()

	if sess.rtsp != nil {
		_ = sess.rtsp.WritePacketRTP(medi, pkt)
	}
}

func (s *Stream) account(u *Unit, now time.Time) {
	st := &s.stats
	st.bytesIn += uint64(u.Bytes)
	if s.Tracks[u.Track].Kind != KindVideo {
		return
	}
	st.framesIn++
	if st.winStart.IsZero() {
		st.winStart = now
	}
	st.winFrames++
	st.winBytes += u.Bytes
	if el := now.Sub(st.winStart); el >= time.Second {
		st.fps = float64(st.winFrames) / el.Seconds()
		st.bitrate = float64(st.winBytes*8) / el.Seconds()
		st.winStart, st.winFrames, st.winBytes = now, 0, 0
	}
	if u.Keyframe {
		st.lastKeyframe = now
		// A fresh slice: readers may still hold the old one as a snapshot.
		s.gop = make([]*Unit, 0, 64)
	}
	if s.gop != nil {
		if len(s.gop) >= maxGOPUnits {
			s.gop = nil
		} else {
			s.gop = append(s.gop, u)
		}
	}
}

func (s *Stream) fanOut(u *Unit) {
	video := s.Tracks[u.Track].Kind == KindVideo
	for r := range s.readers {
		r.offer(u, video)
	}
}

// AddReader registers a reader with a bounded queue. It returns the units
// from the last keyframe on so the reader can start decoding at once.
func (s *Stream) AddReader(queue int) (*Reader, []*Unit) {
	r := &Reader{stream: s, ch: make(chan *Unit, queue), done: s.done}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return r, nil
	}
	snap := s.gop
	// Without a cached keyframe, the reader waits for the next one.
	r.skipping = len(snap) == 0
	s.readers[r] = struct{}{}
	return r, snap
}

// RemoveReader unregisters a reader.
func (s *Stream) RemoveReader(r *Reader) {
	s.mu.Lock()
	delete(s.readers, r)
	s.mu.Unlock()
}

// Done is closed when the stream ends for good.
func (s *Stream) Done() <-chan struct{} { return s.done }

func (s *Stream) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	sess := s.session
	s.session = nil
	s.readers = map[*Reader]struct{}{}
	s.gop = nil
	s.mu.Unlock()
	if sess != nil && sess.rtsp != nil {
		sess.rtsp.Close()
	}
	close(s.done)
}

// Stats is a snapshot of a stream's health.
type Stats struct {
	PointID          string   `json:"point_id"`
	State            string   `json:"state"`
	VideoCodec       string   `json:"video_codec,omitempty"`
	AudioCodec       string   `json:"audio_codec,omitempty"`
	Width            int      `json:"width,omitempty"`
	Height           int      `json:"height,omitempty"`
	FPS              float64  `json:"fps"`
	BitrateBps       float64  `json:"bitrate_bps"`
	Readers          int      `json:"readers"`
	KeyframeAgeMs    *int64   `json:"keyframe_age_ms"`
	FramesIn         uint64   `json:"frames_in"`
	BytesIn          uint64   `json:"bytes_in"`
	FramesDropped    uint64   `json:"frames_dropped"`
	SkippedTracks    []string `json:"skipped_tracks,omitempty"`
	SourceError      string   `json:"source_error,omitempty"`
	SourceOnlineSecs float64  `json:"source_online_secs,omitempty"`
}

func (s *Stream) fillStats(st *Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for i, t := range s.Tracks {
		if t.Kind == KindVideo {
			st.VideoCodec = t.Codec
			switch p := s.procs[i].(type) {
			case *h264Processor:
				st.Width, st.Height = p.width, p.height
			case *h265Processor:
				st.Width, st.Height = p.width, p.height
			}
		} else {
			st.AudioCodec = t.Codec
		}
	}
	st.FPS, st.BitrateBps = s.stats.fps, s.stats.bitrate
	// A stalled source must not show its last good rate forever.
	if !s.stats.winStart.IsZero() && now.Sub(s.stats.winStart) > 3*time.Second {
		st.FPS, st.BitrateBps = 0, 0
	}
	st.FramesIn, st.BytesIn = s.stats.framesIn, s.stats.bytesIn
	if !s.stats.lastKeyframe.IsZero() {
		age := now.Sub(s.stats.lastKeyframe).Milliseconds()
		st.KeyframeAgeMs = &age
	}
	for r := range s.readers {
		st.FramesDropped += r.dropped.Load()
	}
	if s.stats.sourceOnline {
		st.SourceOnlineSecs = now.Sub(s.stats.sourceChanged).Seconds()
	}
}

// Reader receives a stream's units through a bounded queue. When the queue
// overflows the reader skips to the next keyframe instead of stalling the
// source or other readers.
type Reader struct {
	stream *Stream
	ch     chan *Unit
	done   chan struct{}
	// skipping is touched only under stream.mu.
	skipping bool
	dropped  atomic.Uint64
}

// offer queues a unit without ever blocking; called under stream.mu.
func (r *Reader) offer(u *Unit, video bool) {
	if r.skipping {
		if !(video && u.Keyframe) {
			r.dropped.Add(1)
			return
		}
		r.skipping = false
	}
	select {
	case r.ch <- u:
	default:
		r.skipping = true
		r.dropped.Add(1)
	}
}

// C delivers the reader's units.
func (r *Reader) C() <-chan *Unit { return r.ch }

// Done is closed when the stream ends.
func (r *Reader) Done() <-chan struct{} { return r.done }

// Dropped counts units this reader lost to overflow.
func (r *Reader) Dropped() uint64 { return r.dropped.Load() }

// Close detaches the reader from its stream.
func (r *Reader) Close() { r.stream.RemoveReader(r) }
