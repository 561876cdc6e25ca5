package streaming

import (
	"errors"
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"github.com/tianyan/vms/camsim"
)

// chromeOffer is a recvonly WHEP offer as Chrome sends it: many video
// codecs with RTX, RED/ULPFEC, and an audio section.
const chromeOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"a=extmap-allow-mixed\r\n" +
	"a=msid-semantic: WMS\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125 39 40 45 46 98 99 100 101 112 113 116 117 118\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:x9Vv\r\n" +
	"a=ice-pwd:bK3b1q8cB5n1v9nV8q2r3s4t\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:0\r\n" +
	"a=extmap:1 urn:ietf:params:rtp-hdrext:toffset\r\n" +
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n" +
	"a=recvonly\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtcp-rsize\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtcp-fb:96 goog-remb\r\n" +
	"a=rtcp-fb:96 transport-cc\r\n" +
	"a=rtcp-fb:96 ccm fir\r\n" +
	"a=rtcp-fb:96 nack\r\n" +
	"a=rtcp-fb:96 nack pli\r\n" +
	"a=rtpmap:97 rtx/90000\r\n" +
	"a=fmtp:97 apt=96\r\n" +
	"a=rtpmap:102 H264/90000\r\n" +
	"a=rtcp-fb:102 nack\r\n" +
	"a=rtcp-fb:102 nack pli\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
	"a=rtpmap:103 rtx/90000\r\n" +
	"a=fmtp:103 apt=102\r\n" +
	"a=rtpmap:104 H264/90000\r\n" +
	"a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n" +
	"a=rtpmap:105 rtx/90000\r\n" +
	"a=fmtp:105 apt=104\r\n" +
	"a=rtpmap:106 H264/90000\r\n" +
	"a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=rtpmap:107 rtx/90000\r\n" +
	"a=fmtp:107 apt=106\r\n" +
	"a=rtpmap:108 H264/90000\r\n" +
	"a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n" +
	"a=rtpmap:109 rtx/90000\r\n" +
	"a=fmtp:109 apt=108\r\n" +
	"a=rtpmap:127 H264/90000\r\n" +
	"a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n" +
	"a=rtpmap:125 rtx/90000\r\n" +
	"a=fmtp:125 apt=127\r\n" +
	"a=rtpmap:39 H264/90000\r\n" +
	"a=fmtp:39 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034\r\n" +
	"a=rtpmap:40 rtx/90000\r\n" +
	"a=fmtp:40 apt=39\r\n" +
	"a=rtpmap:45 AV1/90000\r\n" +
	"a=fmtp:45 level-idx=5;profile=0;tier=0\r\n" +
	"a=rtpmap:46 rtx/90000\r\n" +
	"a=fmtp:46 apt=45\r\n" +
	"a=rtpmap:98 VP9/90000\r\n" +
	"a=fmtp:98 profile-id=0\r\n" +
	"a=rtpmap:99 rtx/90000\r\n" +
	"a=fmtp:99 apt=98\r\n" +
	"a=rtpmap:100 H265/90000\r\n" +
	"a=fmtp:100 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n" +
	"a=rtpmap:101 rtx/90000\r\n" +
	"a=fmtp:101 apt=100\r\n" +
	"a=rtpmap:112 red/90000\r\n" +
	"a=rtpmap:113 rtx/90000\r\n" +
	"a=fmtp:113 apt=112\r\n" +
	"a=rtpmap:116 ulpfec/90000\r\n" +
	"a=rtpmap:117 flexfec-03/90000\r\n" +
	"a=fmtp:117 repair-window=10000000\r\n" +
	"a=rtpmap:118 H264/90000\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:x9Vv\r\n" +
	"a=ice-pwd:bK3b1q8cB5n1v9nV8q2r3s4t\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:1\r\n" +
	"a=recvonly\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=rtcp-fb:111 transport-cc\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:63 red/48000/2\r\n" +
	"a=fmtp:63 111/111\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:13 CN/8000\r\n" +
	"a=rtpmap:110 telephone-event/48000\r\n" +
	"a=rtpmap:126 telephone-event/8000\r\n"

// fuzzStreams are streams as a camera would make them: H.264 with a known
// SPS (so profile matching runs), and H.265 with G.711 audio.
func fuzzStreams(f testing.TB) []*Stream {
	h264Clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		f.Fatal(err)
	}
	h264 := newStream("fuzz-h264", []*Track{{Kind: KindVideo, Codec: CodecH264, ClockRate: 90000,
		format: &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: h264Clip.Params[0], PPS: h264Clip.Params[1]}}}, testLogger())
	h264.procs[0].(*h264Processor).setSPS(h264Clip.Params[0])
	if h264.h264ProfileIDC() == 0 {
		f.Fatal("fixture stream has no H.264 profile")
	}
	mixed := newStream("fuzz-h265", []*Track{
		{Kind: KindVideo, Codec: CodecH265, ClockRate: 90000, format: &format.H265{PayloadTyp: 96}},
		{Kind: KindAudio, Codec: CodecPCMA, ClockRate: 8000, Channels: 1, format: &format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}},
	}, testLogger())
	return []*Stream{h264, mixed}
}

func FuzzParseOffer(f *testing.F) {
	for _, s := range []string{
		chromeOffer,
		strings.ReplaceAll(chromeOffer, "\r\n", "\n"),
		chromeOffer[:len(chromeOffer)/2],
		"",
		"v=0",
		"v=0\r\n",
		"   v=0\r\nm=video\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 300\r\na=rtpmap:300 H264/90000\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000/1/2/3\r\na=rtpmap:x\r\na=fmtp:\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
		"v=0\r\nm=\r\na=rtpmap:96 /\r\n",
		"v=0\r\no=\r\ns=\r\nt=\r\nm=video 0 0 0\r\na=rtpmap:96\r\n",
		"v=1\r\n",
		"\x00\xff\xfe garbage",
		"v=0\r\n" + strings.Repeat("a=x\r\n", 1000),
	} {
		f.Add(s)
	}
	streams := fuzzStreams(f)

	f.Fuzz(func(t *testing.T, raw string) {
		o, err := parseOffer(raw)
		if err != nil {
			if o != nil {
				t.Fatalf("parseOffer returned an offer and the error %v", err)
			}
			return
		}
		if o == nil {
			t.Fatal("parseOffer returned neither an offer nor an error")
		}
		if !o.video && !o.audio {
			t.Fatal("accepted an offer with no audio or video section")
		}
		for _, c := range o.codecs {
			if c.kind != "video" && c.kind != "audio" {
				t.Fatalf("codec of kind %q", c.kind)
			}
			if c.payloadType > 127 {
				t.Fatalf("payload type %d out of range", c.payloadType)
			}
		}

		// Whatever parses must also be safe to plan against real streams,
		// and a plan may only use what the offer actually carried.
		for _, s := range streams {
			plans, err := planCodecs(s, o)
			if err != nil {
				var ce *CodecError
				if errors.As(err, &ce) && !strings.Contains(ce.Error(), ce.Camera) {
					t.Fatalf("codec error %q does not name the camera codec", ce.Error())
				}
				continue
			}
			if len(plans) == 0 {
				t.Fatal("planCodecs returned no plan and no error")
			}
			for _, p := range plans {
				if p.track < 0 || p.track >= len(s.Tracks) {
					t.Fatalf("plan for track %d of %d", p.track, len(s.Tracks))
				}
				tr := s.Tracks[p.track]
				found := false
				for _, c := range o.codecs {
					if uint8(p.params.PayloadType) == c.payloadType && c.kind == string(tr.Kind) && strings.EqualFold(c.name, tr.Codec) {
						found = true
					}
				}
				if !found {
					t.Fatalf("plan %+v for a %s track uses a payload type the offer did not give %s", p.params, tr.Codec, tr.Codec)
				}
			}
		}
	})
}

// The seed offer is meaningful: it parses, and planning picks the codec and
// the H.264 profile the camera actually sends.
func TestChromeOfferPlansTheCamerasCodecAndProfile(t *testing.T) {
	o, err := parseOffer(chromeOffer)
	if err != nil {
		t.Fatal(err)
	}
	streams := fuzzStreams(t)
	plans, err := planCodecs(streams[0], o)
	if err != nil {
		t.Fatal(err)
	}
	// The clip is High profile (640x360): 39 is the offer's High, packetization-mode=1.
	if len(plans) != 1 || plans[0].params.PayloadType != 39 {
		t.Fatalf("H.264 plan %+v, want payload type 39", plans)
	}
	plans, err = planCodecs(streams[1], o)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 2 || plans[0].params.PayloadType != 100 || plans[1].params.PayloadType != 8 {
		t.Fatalf("H.265+PCMA plan %+v, want payload types 100 and 8", plans)
	}
	h264Only, err := parseOffer(strings.Replace(chromeOffer, "a=rtpmap:100 H265/90000\r\n", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	var ce *CodecError
	if _, err := planCodecs(streams[1], h264Only); !errors.As(err, &ce) || ce.Camera != CodecH265 {
		t.Fatalf("H.265 camera, offer without H.265: err %v, want a CodecError", err)
	}
}
