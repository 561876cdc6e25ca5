package ps

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tianyan/vms/camsim"
)

var allClips = []string{camsim.ClipH264Sub, camsim.ClipH264Main, camsim.ClipH265Sub}

func TestMuxedClipsDemuxToTheSameAccessUnits(t *testing.T) {
	for _, name := range allClips {
		t.Run(name, func(t *testing.T) {
			in := clipFrames(t, name)
			stream := muxFrames(NewMuxer(in[0].Type, 0), in, nil)
			// Pack boundaries anywhere: odd chunk sizes, RTP-like and tiny.
			for _, sizes := range [][]int{{len(stream)}, {1400}, {1, 2, 3, 1000, 7}, {65536, 13}} {
				got, _ := feedChunks(t, NewDemuxer(), stream, sizes)
				assertFrames(t, in, got)
			}
		})
	}
}

func assertFrames(t *testing.T, want, got []Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Type != w.Type || g.PTS != w.PTS || g.DTS != w.DTS || g.Key != w.Key || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("frame %d: got %v pts %d dts %d key %v len %d; want %v pts %d dts %d key %v len %d",
				i, g.Type, g.PTS, g.DTS, g.Key, len(g.Data), w.Type, w.PTS, w.DTS, w.Key, len(w.Data))
		}
	}
}

// The RTP receiver flushes at each frame's marker: frames come out
// without waiting for the next one, and unchanged.
func TestFlushAtFrameEndEmitsTheFrameAtOnce(t *testing.T) {
	in := clipFrames(t, camsim.ClipH265Sub)[:60]
	m := NewMuxer(H265, G711A)
	d := NewDemuxer()
	for i, f := range in {
		pack := m.Video(f.PTS, f.DTS, f.Data, f.Key)
		var got []Frame
		emit := func(f Frame) { got = append(got, f) }
		// Split like RTP payloads.
		for len(pack) > 0 {
			n := min(1400, len(pack))
			if err := d.Feed(pack[:n], emit); err != nil {
				t.Fatal(err)
			}
			pack = pack[n:]
		}
		if len(got) != 0 {
			t.Fatalf("frame %d: emitted before its end", i)
		}
		d.Flush(emit)
		assertFrames(t, in[i:i+1], got)
	}
}

func TestAudioAndVideoInterleaved(t *testing.T) {
	video := clipFrames(t, camsim.ClipH264Sub)
	var audio []Frame
	for ts := int64(90000); ts < video[len(video)-1].DTS; ts += 1800 { // 20 ms of G.711
		audio = append(audio, Frame{Type: G711A, PTS: ts, DTS: ts, Data: bytes.Repeat([]byte{byte(ts / 1800)}, 160)})
	}
	stream := muxFrames(NewMuxer(H264, G711A), video, audio)
	gotV, gotA := feedChunks(t, NewDemuxer(), stream, []int{1400})
	assertFrames(t, video, gotV)
	assertFrames(t, audio, gotA)
}

func TestLargeAccessUnitSpansSeveralPESPackets(t *testing.T) {
	au := []byte{0, 0, 0, 1, 0x65, 0x88}
	for len(au) < 300_000 {
		au = append(au, byte(len(au)%250+1))
	}
	in := []Frame{
		{Type: H264, PTS: 7200, DTS: 3600, Data: au, Key: true},
		{Type: H264, PTS: 10800, DTS: 7200, Data: []byte{0, 0, 0, 1, 0x41, 0x9a, 1, 2, 3}},
	}
	stream := muxFrames(NewMuxer(H264, 0), in, nil)
	// Every PES packet must fit its 16-bit length.
	pes := 0
	for i := 0; i+6 <= len(stream); i++ {
		if stream[i] == 0 && stream[i+1] == 0 && stream[i+2] == 1 && stream[i+3] == 0xe0 {
			pes++
		}
	}
	if pes < 5 {
		t.Fatalf("300 kB unit in %d PES packets, want ≥ 5", pes)
	}
	got, _ := feedChunks(t, NewDemuxer(), stream, []int{4096})
	assertFrames(t, in, got)
}

// A device that sends no PSM: the codec is guessed from the first NAL.
func TestMissingPSMGuessesTheCodec(t *testing.T) {
	for _, name := range []string{camsim.ClipH264Sub, camsim.ClipH265Sub} {
		t.Run(name, func(t *testing.T) {
			in := clipFrames(t, name)
			m := NewMuxer(in[0].Type, 0)
			var stream []byte
			for _, f := range in {
				stream = append(stream, m.Video(f.PTS, f.DTS, f.Data, false)...) // no PSM written
			}
			if bytes.Contains(stream, []byte{0, 0, 1, 0xbc}) {
				t.Fatal("stream has a PSM")
			}
			got, _ := feedChunks(t, NewDemuxer(), stream, []int{1400})
			assertFrames(t, in, got)
		})
	}
}

func TestGarbageBetweenPacksIsSkipped(t *testing.T) {
	in := clipFrames(t, camsim.ClipH264Sub)[:50]
	m := NewMuxer(H264, 0)
	var stream []byte
	for i, f := range in {
		if i%10 == 5 {
			// Junk with near-misses: start codes of no system packet, a
			// false pack start.
			stream = append(stream, 0xde, 0xad, 0, 0, 1, 0x41, 0, 0, 0, 1, 0xba, 0xff, 0, 0)
		}
		stream = append(stream, m.Video(f.PTS, f.DTS, f.Data, f.Key)...)
	}
	d := NewDemuxer()
	var got []Frame
	var corrupt int
	for len(stream) > 0 {
		n := min(999, len(stream))
		if err := d.Feed(stream[:n], func(f Frame) { got = append(got, f) }); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			corrupt++
		}
		stream = stream[n:]
	}
	d.Flush(func(f Frame) { got = append(got, f) })
	if corrupt == 0 {
		t.Fatal("skipped junk went unreported")
	}
	assertFrames(t, in, got)
}

// Joining a stream halfway through a keyframe: what comes out starts at a
// whole access unit.
func TestJoiningMidPacketStartsAtAnAccessUnit(t *testing.T) {
	in := clipFrames(t, camsim.ClipH264Sub)[:30]
	stream := muxFrames(NewMuxer(H264, 0), in, nil)
	first := len(NewMuxer(H264, 0).Video(in[0].PTS, in[0].DTS, in[0].Data, true))
	got, _, corrupt := feedCorrupt(t, NewDemuxer(), stream[first/2:], []int{1400})
	if corrupt == 0 {
		t.Fatal("the partial pack skipped went unreported")
	}
	assertFrames(t, in[1:], got)
}

// Some devices write PES packets with a zero length: the payload then
// runs to the next start code.
func TestUnboundedVideoPES(t *testing.T) {
	in := clipFrames(t, camsim.ClipH264Sub)[:40]
	m := NewMuxer(H264, 0)
	var stream []byte
	for _, f := range in {
		if len(f.Data) > maxPESPayload-10 {
			continue
		}
		p := m.Video(f.PTS, f.DTS, f.Data, f.Key)
		i := bytes.Index(p, []byte{0, 0, 1, 0xe0})
		p[i+4], p[i+5] = 0, 0
		stream = append(stream, p...)
	}
	got, _ := feedChunks(t, NewDemuxer(), stream, []int{1400, 3})
	assertFrames(t, in, got)
}

func TestMPEG1PackAndPESHeaders(t *testing.T) {
	// An MPEG-1 pack header (12 bytes) and a PES with MPEG-1 stuffing,
	// STD buffer field and PTS+DTS.
	pack := []byte{0, 0, 1, 0xba, 0x21, 0, 1, 0, 1, 0x80, 0x1b, 0x83}
	es := []byte{0, 0, 0, 1, 0x67, 0x42, 0, 0x1e, 0, 0, 0, 1, 0x65, 0x88, 0x84}
	pes := []byte{0, 0, 1, 0xe0, 0, 0, 0xff, 0xff, 0x60, 0xe8}
	pes = appendTS(pes, 3, 7200)
	pes = appendTS(pes, 1, 3600)
	pes = append(pes, es...)
	l := len(pes) - 6
	pes[4], pes[5] = byte(l>>8), byte(l)
	var stream []byte
	stream = append(stream, pack...)
	stream = append(stream, pes...)
	got, _ := feedChunks(t, NewDemuxer(), stream, []int{5})
	assertFrames(t, []Frame{{Type: H264, PTS: 7200, DTS: 3600, Data: es, Key: true}}, got)
}

// ffmpeg's MPEG-1 ("mpeg") and MPEG-2 ("vob") program streams: no PSM,
// packs of 2 kB that cut access units anywhere and hold the end of one
// and the start of the next.
func TestDemuxesWhatFFmpegWrites(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	for _, name := range []string{camsim.ClipH264Sub, camsim.ClipH265Sub} {
		for _, format := range []string{"mpeg", "vob"} {
			t.Run(name+"/"+format, func(t *testing.T) {
				out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-framerate", "25",
					"-i", "../../camsim/clips/"+name, "-c", "copy", "-f", format, "-").Output()
				if err != nil {
					t.Fatalf("ffmpeg: %v", err)
				}
				want := clipFrames(t, name)
				got, _ := feedChunks(t, NewDemuxer(), out, []int{1400, 2048, 1})
				if len(got) != len(want) {
					t.Fatalf("got %d frames, want %d", len(got), len(want))
				}
				for i := range want {
					if got[i].Type != want[i].Type || got[i].Key != want[i].Key ||
						!sameNALUs(nalus(t, want[i].Type, got[i].Data), nalus(t, want[i].Type, want[i].Data)) {
						t.Fatalf("frame %d differs (type %v key %v)", i, got[i].Type, got[i].Key)
					}
					if i > 0 && got[i].PTS-got[i-1].PTS != 3600 {
						t.Fatalf("frame %d: PTS step %d, want 3600", i, got[i].PTS-got[i-1].PTS)
					}
				}
			})
		}
	}
}

// ffmpeg reads what the Muxer writes: every video frame decodes, with
// audio packs between them (ffmpeg does not know the GB/T 28181 G.711
// stream types, so only the video is checked).
func TestFFmpegDecodesMuxedStream(t *testing.T) {
	ffprobe := requireTool(t, "ffprobe")
	for _, name := range []string{camsim.ClipH264Sub, camsim.ClipH265Sub} {
		t.Run(name, func(t *testing.T) {
			in := clipFrames(t, name)
			var audio []Frame
			for ts := int64(90000); ts < in[len(in)-1].DTS; ts += 1800 {
				audio = append(audio, Frame{Type: G711A, PTS: ts, Data: bytes.Repeat([]byte{0xd5}, 160)})
			}
			stream := muxFrames(NewMuxer(in[0].Type, G711A), in, audio)
			cmd := exec.Command(ffprobe, "-v", "error", "-f", "mpeg", "-count_frames",
				"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "compact", "-")
			cmd.Stdin = bytes.NewReader(stream)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, out)
			}
			codec := map[StreamType]string{H264: "h264", H265: "hevc"}[in[0].Type]
			want := fmt.Sprintf("codec_name=%s|width=640|height=360|nb_read_frames=%d", codec, len(in))
			if !strings.Contains(string(out), want) {
				t.Fatalf("ffprobe says\n%s\nwant a stream %s", out, want)
			}
		})
	}
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed", name)
		}
		t.Fatalf("%s is needed for this test: %v", name, err)
	}
	return p
}

// After lost input the receiver resets: the broken unit is dropped and the
// next whole one comes out unharmed.
func TestResetDropsTheBrokenUnit(t *testing.T) {
	in := clipFrames(t, camsim.ClipH264Sub)[:10]
	m := NewMuxer(H264, 0)
	d := NewDemuxer()
	var got []Frame
	emit := func(f Frame) { got = append(got, f) }
	for i, f := range in {
		p := m.Video(f.PTS, f.DTS, f.Data, f.Key)
		if i == 4 {
			// The middle of this pack is lost.
			if err := d.Feed(p[:len(p)/3], emit); err != nil {
				t.Fatal(err)
			}
			d.Reset()
			_ = d.Feed(p[2*len(p)/3:], emit) // the tail looks like junk
			d.Flush(emit)
			continue
		}
		// The junk's last bytes wait for more and are skipped with the
		// next pack.
		if err := d.Feed(p, emit); err != nil && (i != 5 || !errors.Is(err, ErrCorrupt)) {
			t.Fatal(err)
		}
		d.Flush(emit)
	}
	want := append(append([]Frame(nil), in[:4]...), in[5:]...)
	assertFrames(t, want, got)
}

// A PSM that names the video with a type no GB/T 28181 video has (0x06,
// as some devices write for H.265): the payload decides.
func TestUnknownPSMVideoTypeIsGuessed(t *testing.T) {
	in := clipFrames(t, camsim.ClipH265Sub)[:60]
	stream := muxFrames(NewMuxer(StreamType(0x06), 0), in, nil)
	got, _ := feedChunks(t, NewDemuxer(), stream, []int{1400})
	assertFrames(t, in, got)
}

// A device reconfigured from H.264 to H.265 mid-stream: the PSM of the
// first H.265 keyframe switches the codec and no frame is lost.
func TestCodecChangeAtKeyframe(t *testing.T) {
	a := clipFrames(t, camsim.ClipH264Sub)[:30]
	b := clipFrames(t, camsim.ClipH265Sub)[:30]
	for i := range b {
		b[i].PTS += 30 * 3600
		b[i].DTS += 30 * 3600
	}
	stream := muxFrames(NewMuxer(H264, 0), a, nil)
	stream = append(stream, muxFrames(NewMuxer(H265, 0), b, nil)...)
	got, _ := feedChunks(t, NewDemuxer(), stream, []int{1400})
	assertFrames(t, append(append([]Frame(nil), a...), b...), got)
}
