package gb28181

import (
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtplpcm"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/gb28181/ps"
	"github.com/tianyan/vms/streaming"
)

// Payload types of the session a GB channel announces to the hub. They
// are ours (the hub re-serves them over RTSP and WebRTC), not the device's.
const (
	feedVideoPT = 96
	// feedAudioWaitFrames is how many video frames after the first
	// keyframe the feed waits for a G.711 frame before it announces a
	// video-only session: devices interleave audio every few tens of
	// milliseconds when they have it at all, and a session cannot gain a
	// track later without ending its readers.
	feedAudioWaitFrames = 2
	// feedMaxPending bounds the frames held before the session is
	// announced (a keyframe plus the audio wait, with audio between).
	feedMaxPending = 64
	// rtpPayloadMax keeps packets under a 1500-byte MTU with headers and
	// SRTP overhead to spare.
	rtpPayloadMax = 1200
)

// errNoVideo is what a channel whose stream never carries a playable
// video keyframe ends with.
var errNoVideo = errors.New("the device's stream carries no H.264 or H.265 video")

// liveFeed turns the access units demuxed from a GB channel's PS stream
// into RTP for the hub: it waits for the first video keyframe with its
// parameter sets (a session described without them cannot be re-served
// over RTSP), announces the session once, then packetises every frame with
// gortsplib's encoders. It is used by one goroutine, the receiver's.
type liveFeed struct {
	out streaming.ExternalOutput

	ready   bool
	pending []ps.Frame // held until ready: the first keyframe onwards
	// videoAfterKey counts video frames held after the first keyframe.
	videoAfterKey int
	audioType     ps.StreamType // 0 until a G.711 frame is seen

	// Parameter sets seen before the session started.
	seenVPS, seenSPS, seenPPS []byte

	videoType  ps.StreamType
	videoMedia *description.Media
	h264Format *format.H264
	h265Format *format.H265
	h264Enc    *rtph264.Encoder
	h265Enc    *rtph265.Encoder

	audioMedia *description.Media
	audioEnc   *rtplpcm.Encoder
}

func newLiveFeed(out streaming.ExternalOutput) *liveFeed {
	return &liveFeed{out: out}
}

// feed takes one demuxed frame. An error means the session could not be
// announced: the source has failed.
func (f *liveFeed) feed(fr ps.Frame) error {
	if f.ready {
		f.write(fr)
		return nil
	}
	switch fr.Type {
	case ps.H264, ps.H265:
		if len(f.pending) == 0 {
			if !f.startsSession(&fr) {
				return nil // wait for a keyframe whose parameter sets are known
			}
			f.videoType = fr.Type
		} else if fr.Type != f.videoType {
			return nil
		} else {
			f.videoAfterKey++
		}
	case ps.G711A, ps.G711U:
		if f.audioType == 0 {
			f.audioType = fr.Type
		}
		if len(f.pending) == 0 {
			return nil // audio before the first keyframe is of no use to a viewer
		}
	default:
		return nil
	}
	if len(f.pending) < feedMaxPending {
		// ps.Demuxer hands each frame's Data over for good: no copy.
		f.pending = append(f.pending, fr)
	}
	if f.audioType == 0 && f.videoAfterKey < feedAudioWaitFrames {
		return nil
	}
	if err := f.announce(); err != nil {
		return err
	}
	for _, p := range f.pending {
		f.write(p)
	}
	f.pending = nil
	return nil
}

// startsSession reports whether fr is a video keyframe whose parameter
// sets are known, from the frame itself or from earlier frames (some
// devices send SPS and PPS in packs of their own), and keeps them. A
// keyframe that lacked them in-band gets them prepended, so the first
// access unit a viewer sees decodes on its own.
func (f *liveFeed) startsSession(fr *ps.Frame) bool {
	nalus, err := splitAnnexB(fr.Data)
	if err != nil {
		return false
	}
	inBand := f.noteSeen(fr.Type, nalus)
	switch fr.Type {
	case ps.H264:
		if f.seenSPS == nil || f.seenPPS == nil || !h264.IsRandomAccess(nalus) {
			return false
		}
		f.h264Format = &format.H264{PayloadTyp: feedVideoPT, PacketizationMode: 1, SPS: f.seenSPS, PPS: f.seenPPS}
		if !inBand {
			fr.Data = prependParams(fr.Data, f.seenSPS, f.seenPPS)
		}
	case ps.H265:
		if f.seenVPS == nil || f.seenSPS == nil || f.seenPPS == nil || !h265.IsRandomAccess(nalus) {
			return false
		}
		f.h265Format = &format.H265{PayloadTyp: feedVideoPT, VPS: f.seenVPS, SPS: f.seenSPS, PPS: f.seenPPS}
		if !inBand {
			fr.Data = prependParams(fr.Data, f.seenVPS, f.seenSPS, f.seenPPS)
		}
	default:
		return false
	}
	return true
}

// noteSeen keeps the parameter sets among nalus (copies: they outlive
// the frame), reporting whether this frame carried all of them.
func (f *liveFeed) noteSeen(t ps.StreamType, nalus [][]byte) bool {
	var vps, sps, pps bool
	for _, n := range nalus {
		if t == ps.H264 {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				f.seenSPS, sps = append([]byte(nil), n...), true
			case h264.NALUTypePPS:
				f.seenPPS, pps = append([]byte(nil), n...), true
			}
			continue
		}
		switch h265.NALUType((n[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			f.seenVPS, vps = append([]byte(nil), n...), true
		case h265.NALUType_SPS_NUT:
			f.seenSPS, sps = append([]byte(nil), n...), true
		case h265.NALUType_PPS_NUT:
			f.seenPPS, pps = append([]byte(nil), n...), true
		}
	}
	if t == ps.H264 {
		return sps && pps
	}
	return vps && sps && pps
}

// prependParams puts parameter sets before an Annex-B access unit.
func prependParams(au []byte, params ...[]byte) []byte {
	var out []byte
	for _, p := range params {
		out = append(out, 0, 0, 0, 1)
		out = append(out, p...)
	}
	return append(out, au...)
}

// announce builds the session from what the first frames showed and
// hands it to the hub.
func (f *liveFeed) announce() error {
	desc := &description.Session{Title: "GB/T 28181"}
	switch f.videoType {
	case ps.H264:
		enc, err := f.h264Format.CreateEncoder()
		if err != nil {
			return fmt.Errorf("h264 encoder: %w", err)
		}
		enc.PayloadMaxSize = rtpPayloadMax
		if err := enc.Init(); err != nil {
			return fmt.Errorf("h264 encoder: %w", err)
		}
		f.h264Enc = enc
		f.videoMedia = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f.h264Format}}
	case ps.H265:
		enc, err := f.h265Format.CreateEncoder()
		if err != nil {
			return fmt.Errorf("h265 encoder: %w", err)
		}
		enc.PayloadMaxSize = rtpPayloadMax
		if err := enc.Init(); err != nil {
			return fmt.Errorf("h265 encoder: %w", err)
		}
		f.h265Enc = enc
		f.videoMedia = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f.h265Format}}
	default:
		return errNoVideo
	}
	desc.Medias = append(desc.Medias, f.videoMedia)
	if f.audioType != 0 {
		// The static payload types: 0 is µ-law, 8 A-law (RFC 3551).
		g := &format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}
		if f.audioType == ps.G711U {
			g.PayloadTyp, g.MULaw = 0, true
		}
		enc, err := g.CreateEncoder()
		if err != nil {
			return fmt.Errorf("g711 encoder: %w", err)
		}
		f.audioEnc = enc
		f.audioMedia = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{g}}
		desc.Medias = append(desc.Medias, f.audioMedia)
	}
	if err := f.out.Ready(desc); err != nil {
		return err
	}
	f.ready = true
	return nil
}

// write packetises one frame into the announced session. Frames of a
// type the session does not carry are dropped, as are frames that do not
// split (a damaged pack the demuxer let through).
func (f *liveFeed) write(fr ps.Frame) {
	var (
		pkts  []*rtp.Packet
		err   error
		medi  *description.Media
		stamp uint32
	)
	switch {
	case fr.Type == f.videoType:
		nalus, serr := splitAnnexB(fr.Data)
		if serr != nil {
			return
		}
		nalus = dropDelimiters(nalus, fr.Type)
		if len(nalus) == 0 {
			return
		}
		f.noteParams(nalus)
		if f.h264Enc != nil {
			pkts, err = f.h264Enc.Encode(nalus)
		} else {
			pkts, err = f.h265Enc.Encode(nalus)
		}
		medi, stamp = f.videoMedia, uint32(fr.PTS)
	case f.audioEnc != nil && fr.Type == f.audioType:
		if len(fr.Data) == 0 {
			return
		}
		pkts, err = f.audioEnc.Encode(fr.Data)
		// 90 kHz to the 8 kHz of G.711.
		medi, stamp = f.audioMedia, uint32(fr.PTS*8000/90000)
	default:
		return
	}
	if err != nil {
		return
	}
	for _, p := range pkts {
		// The encoders number from zero; the PTS places the frame (the
		// hub rebases every stream onto its own timeline).
		p.Timestamp += stamp
		f.out.WriteRTP(medi, p)
	}
}

// noteParams keeps the description's parameter sets current when a
// device changes resolution mid-stream, for RTSP readers that join later.
func (f *liveFeed) noteParams(nalus [][]byte) {
	switch {
	case f.h264Format != nil:
		var sps, pps []byte
		for _, n := range nalus {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				sps = n
			case h264.NALUTypePPS:
				pps = n
			}
		}
		if sps == nil || pps == nil {
			return
		}
		if old, oldPPS := f.h264Format.SafeParams(); string(old) != string(sps) || string(oldPPS) != string(pps) {
			f.h264Format.SafeSetParams(append([]byte(nil), sps...), append([]byte(nil), pps...))
		}
	case f.h265Format != nil:
		var vps, sps, pps []byte
		for _, n := range nalus {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				vps = n
			case h265.NALUType_SPS_NUT:
				sps = n
			case h265.NALUType_PPS_NUT:
				pps = n
			}
		}
		if vps == nil || sps == nil || pps == nil {
			return
		}
		if ov, os, op := f.h265Format.SafeParams(); string(ov) != string(vps) || string(os) != string(sps) || string(op) != string(pps) {
			f.h265Format.SafeSetParams(append([]byte(nil), vps...), append([]byte(nil), sps...), append([]byte(nil), pps...))
		}
	}
}

// splitAnnexB splits an Annex-B access unit into NAL units, dropping
// empty ones (a start code followed by another).
func splitAnnexB(b []byte) ([][]byte, error) {
	var au h264.AnnexB
	if err := au.Unmarshal(b); err != nil {
		return nil, err
	}
	out := au[:0]
	for _, n := range au {
		if len(n) > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty access unit")
	}
	return out, nil
}

// dropDelimiters removes access-unit delimiters: RTP marks the end of an
// access unit itself, and WebRTC decoders do not want them.
func dropDelimiters(nalus [][]byte, t ps.StreamType) [][]byte {
	out := nalus[:0]
	for _, n := range nalus {
		if t == ps.H264 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
			continue
		}
		if t == ps.H265 && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_AUD_NUT {
			continue
		}
		out = append(out, n)
	}
	return out
}
