package gb28181

import (
	"bytes"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gb28181/ps"
)

// feedRecorder is an ExternalOutput keeping everything it is given.
type feedRecorder struct {
	desc    *description.Session
	readies int
	pkts    map[*description.Media][]*rtp.Packet
}

func (r *feedRecorder) Ready(d *description.Session) error {
	r.desc = d
	r.readies++
	return nil
}

func (r *feedRecorder) WriteRTP(m *description.Media, p *rtp.Packet) {
	if r.pkts == nil {
		r.pkts = map[*description.Media][]*rtp.Packet{}
	}
	r.pkts[m] = append(r.pkts[m], p)
}

func annexB(nalus ...[]byte) []byte {
	var b bytes.Buffer
	for _, n := range nalus {
		b.Write([]byte{0, 0, 0, 1})
		b.Write(n)
	}
	return b.Bytes()
}

// clipFrames turns a camsim clip into PS frames as a device's demuxed
// stream would carry them, from its first keyframe.
func clipFrames(t *testing.T, name string, typ ps.StreamType, n int) []ps.Frame {
	t.Helper()
	clip, err := camsim.LoadClip(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []ps.Frame
	for i := 0; i < n; i++ {
		idx := clip.Keyframes[0] + i
		au := clip.AUs[idx%len(clip.AUs)]
		if i == 0 {
			au = append(append([][]byte(nil), clip.Params...), au...)
		}
		out = append(out, ps.Frame{Type: typ, PTS: int64(i) * 3600, DTS: int64(i) * 3600, Data: annexB(au...), Key: i == 0})
	}
	return out
}

func TestFeedAnnouncesH265WithItsParameterSets(t *testing.T) {
	rec := &feedRecorder{}
	f := newLiveFeed(rec)
	for _, fr := range clipFrames(t, camsim.ClipH265Sub, ps.H265, 10) {
		if err := f.feed(fr); err != nil {
			t.Fatal(err)
		}
	}
	if rec.readies != 1 || len(rec.desc.Medias) != 1 {
		t.Fatalf("announced %d times: %+v", rec.readies, rec.desc)
	}
	h, ok := rec.desc.Medias[0].Formats[0].(*format.H265)
	if !ok || h.VPS == nil || h.SPS == nil || h.PPS == nil {
		t.Fatalf("video format %#v, want H.265 with VPS, SPS and PPS", rec.desc.Medias[0].Formats[0])
	}
	dec := &rtph265.Decoder{}
	if err := dec.Init(); err != nil {
		t.Fatal(err)
	}
	aus := 0
	for i, p := range rec.pkts[rec.desc.Medias[0]] {
		au, err := dec.Decode(p)
		if err != nil {
			continue
		}
		if aus == 0 && !h265.IsRandomAccess(au) {
			t.Fatalf("first access unit (packet %d) is not a keyframe", i)
		}
		aus++
	}
	if aus != 10 {
		t.Fatalf("%d access units depacketized, want 10", aus)
	}
}

func TestFeedTakesParameterSetsSentApartFromTheKeyframe(t *testing.T) {
	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	rec := &feedRecorder{}
	f := newLiveFeed(rec)
	// A P-frame before anything: no use to a viewer.
	_ = f.feed(ps.Frame{Type: ps.H264, Data: annexB(clip.AUs[clip.Keyframes[0]+1]...)})
	// SPS and PPS in a pack of their own, then the IDR without them.
	_ = f.feed(ps.Frame{Type: ps.H264, Data: annexB(clip.Params...)})
	idr := [][]byte{}
	for _, n := range clip.AUs[clip.Keyframes[0]] {
		if typ := n[0] & 0x1f; typ != 7 && typ != 8 {
			idr = append(idr, n)
		}
	}
	for i := 0; i <= feedAudioWaitFrames; i++ {
		au := idr
		if i > 0 {
			au = clip.AUs[clip.Keyframes[0]+i]
		}
		if err := f.feed(ps.Frame{Type: ps.H264, PTS: int64(i) * 3600, Data: annexB(au...)}); err != nil {
			t.Fatal(err)
		}
	}
	if rec.readies != 1 {
		t.Fatal("the session was not announced")
	}
	h := rec.desc.Medias[0].Formats[0].(*format.H264)
	if !bytes.Equal(h.SPS, clip.Params[0]) || !bytes.Equal(h.PPS, clip.Params[1]) {
		t.Fatal("the announced SPS/PPS are not the device's")
	}
	dec, _ := h.CreateDecoder()
	var first [][]byte
	for _, p := range rec.pkts[rec.desc.Medias[0]] {
		if au, err := dec.Decode(p); err == nil {
			first = au
			break
		}
	}
	if len(first) < 3 || first[0][0]&0x1f != 7 || first[1][0]&0x1f != 8 {
		t.Fatalf("the first access unit does not start with SPS and PPS: %d NAL units", len(first))
	}
}

func TestFeedCarriesG711Audio(t *testing.T) {
	for _, tc := range []struct {
		typ   ps.StreamType
		pt    uint8
		mulaw bool
	}{{ps.G711A, 8, false}, {ps.G711U, 0, true}} {
		rec := &feedRecorder{}
		f := newLiveFeed(rec)
		video := clipFrames(t, camsim.ClipH264Sub, ps.H264, 4)
		samples := bytes.Repeat([]byte{0xd5}, 320) // 40 ms at 8 kHz
		for i, v := range video {
			if err := f.feed(v); err != nil {
				t.Fatal(err)
			}
			if err := f.feed(ps.Frame{Type: tc.typ, PTS: int64(i) * 3600, Data: samples}); err != nil {
				t.Fatal(err)
			}
		}
		if rec.readies != 1 || len(rec.desc.Medias) != 2 {
			t.Fatalf("%v: announced %+v, want video and audio", tc.typ, rec.desc)
		}
		g, ok := rec.desc.Medias[1].Formats[0].(*format.G711)
		if !ok || g.PayloadTyp != tc.pt || g.MULaw != tc.mulaw || g.SampleRate != 8000 || g.ChannelCount != 1 {
			t.Fatalf("%v: audio format %#v", tc.typ, rec.desc.Medias[1].Formats[0])
		}
		audio := rec.pkts[rec.desc.Medias[1]]
		if len(audio) < 3 {
			t.Fatalf("%v: %d audio packets", tc.typ, len(audio))
		}
		// 40 ms apart on the 8 kHz clock.
		if d := audio[2].Timestamp - audio[1].Timestamp; d != 320 {
			t.Fatalf("%v: audio timestamps %d apart, want 320", tc.typ, d)
		}
	}
}

func TestFeedWithoutAudioWaitsOnlyAFewFrames(t *testing.T) {
	rec := &feedRecorder{}
	f := newLiveFeed(rec)
	for i, fr := range clipFrames(t, camsim.ClipH264Sub, ps.H264, feedAudioWaitFrames+2) {
		if err := f.feed(fr); err != nil {
			t.Fatal(err)
		}
		if want := i >= feedAudioWaitFrames; (rec.readies == 1) != want {
			t.Fatalf("after %d frames announced=%v", i+1, rec.readies == 1)
		}
	}
	if len(rec.desc.Medias) != 1 {
		t.Fatalf("medias %d, want video only", len(rec.desc.Medias))
	}
}

// FuzzFeed: whatever a device's PS carries once demuxed, the feed neither
// panics nor announces a session without video parameter sets.
func FuzzFeed(f *testing.F) {
	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(byte(ps.H264), annexB(append(append([][]byte(nil), clip.Params...), clip.AUs[clip.Keyframes[0]]...)...))
	f.Add(byte(ps.H265), []byte{0, 0, 1, 0x40, 1, 0, 0, 1, 0x42, 1, 0, 0, 1, 0x44, 1, 0, 0, 1, 0x26, 1})
	f.Add(byte(ps.G711A), []byte{1, 2, 3})
	f.Add(byte(ps.H264), []byte{0, 0, 1})
	f.Add(byte(ps.H264), []byte{0, 0, 0, 1, 0x67, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65})
	f.Fuzz(func(t *testing.T, typ byte, data []byte) {
		rec := &feedRecorder{}
		fd := newLiveFeed(rec)
		for i := 0; i < 2*feedAudioWaitFrames+2; i++ {
			_ = fd.feed(ps.Frame{Type: ps.StreamType(typ), PTS: int64(i) * 3600, Data: append([]byte(nil), data...)})
			_ = fd.feed(ps.Frame{Type: ps.G711A, PTS: int64(i) * 3600, Data: data})
		}
		if rec.desc == nil {
			return
		}
		switch v := rec.desc.Medias[0].Formats[0].(type) {
		case *format.H264:
			if len(v.SPS) == 0 || len(v.PPS) == 0 {
				t.Fatal("H.264 announced without SPS/PPS")
			}
		case *format.H265:
			if len(v.VPS) == 0 || len(v.SPS) == 0 || len(v.PPS) == 0 {
				t.Fatal("H.265 announced without VPS/SPS/PPS")
			}
		default:
			t.Fatalf("announced %T", v)
		}
	})
}
