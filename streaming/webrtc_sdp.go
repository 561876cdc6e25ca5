package streaming

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// webrtcPacket is reused by a session's writer; pion copies it on write.
type webrtcPacket struct{ rtp.Packet }

// maxOfferSize bounds SDP offers; real browser offers are a few KB.
const maxOfferSize = 64 << 10

// offeredCodec is one rtpmap line of the client's offer.
type offeredCodec struct {
	kind        string
	name        string
	payloadType uint8
	clockRate   uint32
	channels    uint16
	fmtp        string
}

type offer struct {
	codecs []offeredCodec
	video  bool
	audio  bool
}

// parseOffer reads the parts of an SDP offer that decide codecs. It never
// panics on malformed input.
func parseOffer(raw string) (o *offer, err error) {
	if len(raw) > maxOfferSize {
		return nil, errors.New("offer too large")
	}
	if !strings.HasPrefix(strings.TrimSpace(raw), "v=0") {
		return nil, errors.New("not an SDP document")
	}
	defer func() {
		if r := recover(); r != nil {
			o, err = nil, fmt.Errorf("unparseable SDP: %v", r)
		}
	}()
	var sd sdp.SessionDescription
	if err := sd.Unmarshal([]byte(raw)); err != nil {
		return nil, err
	}
	o = &offer{}
	for _, md := range sd.MediaDescriptions {
		kind := md.MediaName.Media
		if kind != "video" && kind != "audio" {
			continue
		}
		if kind == "video" {
			o.video = true
		} else {
			o.audio = true
		}
		fmtps := map[string]string{}
		for _, a := range md.Attributes {
			if a.Key == "fmtp" {
				if pt, rest, ok := strings.Cut(a.Value, " "); ok {
					fmtps[pt] = rest
				}
			}
		}
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			ptStr, enc, ok := strings.Cut(a.Value, " ")
			if !ok {
				continue
			}
			pt, err := strconv.ParseUint(ptStr, 10, 8)
			if err != nil || pt > 127 {
				continue
			}
			parts := strings.Split(enc, "/")
			c := offeredCodec{kind: kind, name: parts[0], payloadType: uint8(pt), fmtp: fmtps[ptStr]}
			if len(parts) > 1 {
				if cr, err := strconv.ParseUint(parts[1], 10, 32); err == nil {
					c.clockRate = uint32(cr)
				}
			}
			if len(parts) > 2 {
				if ch, err := strconv.ParseUint(parts[2], 10, 16); err == nil {
					c.channels = uint16(ch)
				}
			}
			o.codecs = append(o.codecs, c)
		}
	}
	if !o.video && !o.audio {
		return nil, errors.New("offer has no audio or video section")
	}
	return o, nil
}

func fmtpParam(fmtp, key string) string {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// codecPlan is a codec to register for one of the stream's tracks.
type codecPlan struct {
	track  int
	kind   webrtc.RTPCodecType
	params webrtc.RTPCodecParameters
}

var videoFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}

// planCodecs matches the stream's tracks to the offer. Video that the
// browser cannot take is an error naming both sides; audio it cannot take
// is left out.
func planCodecs(stream *Stream, o *offer) ([]codecPlan, error) {
	var plans []codecPlan
	idc := stream.h264ProfileIDC()
	for i, t := range stream.Tracks {
		var match *offeredCodec
		for j := range o.codecs {
			c := &o.codecs[j]
			if string(t.Kind) != c.kind || !strings.EqualFold(c.name, t.Codec) {
				continue
			}
			if t.Codec == CodecH264 {
				if fmtpParam(c.fmtp, "packetization-mode") != "1" {
					continue
				}
				// Prefer the profile the camera actually uses.
				if match == nil || (!sameH264Profile(match.fmtp, idc) && sameH264Profile(c.fmtp, idc)) {
					match = c
				}
				continue
			}
			if match == nil {
				match = c
			}
		}
		if match == nil {
			if t.Kind == KindVideo {
				return nil, &CodecError{Camera: t.Codec, Offered: offeredNames(o, "video")}
			}
			continue
		}
		kind := webrtc.RTPCodecTypeAudio
		var fb []webrtc.RTCPFeedback
		if t.Kind == KindVideo {
			kind = webrtc.RTPCodecTypeVideo
			fb = videoFeedback
		}
		plans = append(plans, codecPlan{track: i, kind: kind, params: webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:     string(t.Kind) + "/" + match.name,
				ClockRate:    match.clockRate,
				Channels:     match.channels,
				SDPFmtpLine:  match.fmtp,
				RTCPFeedback: fb,
			},
			PayloadType: webrtc.PayloadType(match.payloadType),
		}})
	}
	if len(plans) == 0 {
		return nil, errors.New("nothing in the offer matches this stream")
	}
	return plans, nil
}

func offeredNames(o *offer, kind string) []string {
	seen := map[string]bool{}
	var names []string
	for _, c := range o.codecs {
		n := strings.ToUpper(c.name)
		if c.kind != kind || seen[n] || n == "RTX" || n == "RED" || n == "ULPFEC" || n == "FLEXFEC-03" {
			continue
		}
		seen[n] = true
		names = append(names, n)
	}
	if len(names) == 0 {
		return []string{"no " + kind}
	}
	return names
}

func sameH264Profile(fmtp string, idc byte) bool {
	pli := fmtpParam(fmtp, "profile-level-id")
	if len(pli) < 2 || idc == 0 {
		return false
	}
	v, err := strconv.ParseUint(pli[:2], 16, 8)
	return err == nil && byte(v) == idc
}

// h264ProfileIDC is the camera's H.264 profile_idc, or 0 when unknown.
func (s *Stream) h264ProfileIDC() byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if hp, ok := p.(*h264Processor); ok && len(hp.sps) > 1 {
			return hp.sps[1]
		}
	}
	return 0
}

// ValidateOffer checks an SDP offer before any source is started for it.
func ValidateOffer(raw string) error {
	if _, err := parseOffer(raw); err != nil {
		return fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	return nil
}
