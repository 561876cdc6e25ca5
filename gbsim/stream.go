package gbsim

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/gb28181/gbsdp"
	"github.com/tianyan/vms/gb28181/ps"
)

// frameSender is what a session writes PS frames into (media.Sender).
type frameSender interface {
	WriteFrame(ps.Frame) error
	Port() int
	Close() error
}

type senderConfig struct {
	transport    gbsdp.Transport // the device's side
	remote       string
	localIP      string
	ssrc         uint32
	video, audio ps.StreamType // 0: from the first frames
	logger       *slog.Logger
}

// stream sends the channel's clip to the session's peer in real time until
// ctx ends or the peer is gone. It starts where the clip "is" now — mid-GOP,
// as a live camera does — so a viewer waits for the next keyframe unless the
// server sends IFameCmd. IFameCmd makes the next frame sent a keyframe by
// going back to the start of the current GOP (the simulator re-sends that
// GOP; a real encoder would encode a fresh IDR).
func (d *Device) stream(ctx context.Context, s *session) {
	clip, err := camsim.LoadClip(d.cfg.Clip)
	if err != nil {
		d.log.Error("gbsim: clip", "err", err)
		return
	}
	if s.sender == nil {
		s.sender, err = newFrameSender(ctx, d.senderConfig(s))
		if err != nil {
			d.log.Warn("gbsim: media connect failed", "err", err)
			return
		}
	}
	defer s.sender.Close()
	// Closing the sender is what ends a wait for a TCP peer that never
	// connects, so a BYE or a reboot need not sit out the connect timeout.
	defer context.AfterFunc(ctx, func() { s.sender.Close() })()

	fps := max(clip.FPS, 1)
	frame := time.Second / time.Duration(fps)
	typ := ps.H264
	isKey := h264.IsRandomAccess
	if clip.Codec == "H265" {
		typ, isKey = ps.H265, h265.IsRandomAccess
	}
	pos := int(time.Since(processStart)/frame) % len(clip.AUs)
	pts := int64(90000) // a non-zero start, as encoders use
	step := int64(90000 / fps)
	tick := time.NewTicker(frame)
	defer tick.Stop()
	var buf []byte
	// G.711 A-law silence, one video frame's worth (8 kHz).
	var silence []byte
	if d.cfg.Audio {
		silence = bytes.Repeat([]byte{0xD5}, 8000/fps)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case <-s.kick:
			pos = gopStart(clip, pos)
		default:
		}
		au := clip.AUs[pos]
		key := isKey(au)
		buf = annexB(buf[:0], au, key, clip)
		if err := s.sender.WriteFrame(ps.Frame{Type: typ, PTS: pts, DTS: pts, Data: buf, Key: key}); err != nil {
			d.log.Debug("gbsim: stream ended", "call", s.callID, "err", err)
			return
		}
		s.frames.Add(1)
		if silence != nil {
			if err := s.sender.WriteFrame(ps.Frame{Type: ps.G711A, PTS: pts, DTS: pts, Data: silence}); err != nil {
				d.log.Debug("gbsim: stream ended", "call", s.callID, "err", err)
				return
			}
		}
		pts += step
		pos = (pos + 1) % len(clip.AUs)
	}
}

// processStart anchors where in its clip every simulated camera "is".
var processStart = time.Now()

// gopStart is the last keyframe at or before pos.
func gopStart(c *camsim.Clip, pos int) int {
	k := c.Keyframes[0]
	for _, i := range c.Keyframes {
		if i <= pos {
			k = i
		}
	}
	return k
}

var startCode = []byte{0, 0, 0, 1}

// annexB writes au with start codes; a keyframe gets the parameter sets in
// front when it lacks them, as encoders send them with every IDR.
func annexB(dst []byte, au [][]byte, key bool, c *camsim.Clip) []byte {
	if key && !hasParams(au, c.Codec) {
		for _, p := range c.Params {
			dst = append(append(dst, startCode...), p...)
		}
	}
	for _, n := range au {
		dst = append(append(dst, startCode...), n...)
	}
	return dst
}

func hasParams(au [][]byte, codec string) bool {
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if codec == "H265" {
			if h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT {
				return true
			}
		} else if h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			return true
		}
	}
	return false
}

// senderConfig is the media sender setup of a session: the clip's codec
// and, with Audio, G.711 A-law, declared in the PSM from the first pack.
func (d *Device) senderConfig(s *session) senderConfig {
	c := senderConfig{transport: s.transport, remote: s.remote, localIP: d.cfg.LocalIP, ssrc: s.ssrc,
		video: ps.H264, logger: d.log}
	if strings.HasSuffix(d.cfg.Clip, ".h265") {
		c.video = ps.H265
	}
	if d.cfg.Audio {
		c.audio = ps.G711A
	}
	return c
}
