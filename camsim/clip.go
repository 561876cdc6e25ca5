package camsim

import (
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

//go:embed clips/*.h264 clips/*.h265
var clips embed.FS

// Clip names shipped with the package.
const (
	ClipH264Sub  = "h264_640x360_25.h264"  // 640x360, 25 fps, GOP 2 s, no B-frames
	ClipH264Main = "h264_1280x720_25.h264" // 1280x720, 25 fps, 2 Mbit/s, GOP 2 s
	ClipH265Sub  = "h265_640x360_25.h265"  // 640x360 H.265, 25 fps, GOP 2 s
)

// Clip is an elementary stream split into access units.
type Clip struct {
	Name  string
	Codec string // "H264" or "H265"
	FPS   int
	// AUs are the access units in decode order, without delimiters.
	AUs [][][]byte
	// Params are the parameter sets (H264: SPS, PPS; H265: VPS, SPS, PPS).
	Params [][]byte
	// Keyframes are the indexes in AUs of random-access units (IDR, or
	// IRAP for H.265), in order; a loop may restart at any of them.
	Keyframes []int
	// Width and Height come from the SPS.
	Width, Height int
	// Profile is the H.264 profile named in the SPS ("Baseline", "Main",
	// "High"), empty for H.265.
	Profile string
}

// loadedClips caches the embedded clips once parsed (name → *Clip): a
// fleet of cameras shares them instead of each parsing megabytes again.
var loadedClips sync.Map

// LoadClip loads one of the embedded clips. Every caller gets the same
// *Clip, so it must be treated as read-only.
func LoadClip(name string) (*Clip, error) {
	if c, ok := loadedClips.Load(name); ok {
		return c.(*Clip), nil
	}
	buf, err := clips.ReadFile("clips/" + name)
	if err != nil {
		return nil, err
	}
	c, err := ParseClip(name, buf, 25)
	if err != nil {
		return nil, err
	}
	shared, _ := loadedClips.LoadOrStore(name, c)
	return shared.(*Clip), nil
}

// ParseClip splits an Annex-B stream written with access-unit delimiters.
func ParseClip(name string, buf []byte, fps int) (*Clip, error) {
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(buf); err != nil {
		return nil, fmt.Errorf("clip %s: %w", name, err)
	}
	c := &Clip{Name: name, Codec: "H264", FPS: fps}
	isAUD := func(n []byte) bool { return h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter }
	if strings.HasSuffix(name, ".h265") {
		c.Codec = "H265"
		isAUD = func(n []byte) bool { return h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_AUD_NUT }
	}
	var cur [][]byte
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		if isAUD(n) {
			if len(cur) > 0 {
				c.AUs = append(c.AUs, cur)
			}
			cur = nil
			continue
		}
		c.noteParam(n)
		cur = append(cur, n)
	}
	if len(cur) > 0 {
		c.AUs = append(c.AUs, cur)
	}
	if len(c.AUs) == 0 || len(c.Params) == 0 || c.Params[len(c.Params)-1] == nil {
		return nil, errors.New("clip " + name + ": no access units or parameter sets")
	}
	if err := c.describe(); err != nil {
		return nil, fmt.Errorf("clip %s: %w", name, err)
	}
	return c, nil
}

// describe fills Keyframes, Width, Height and Profile, so that what a
// simulated camera reports over ONVIF is what its stream really carries.
func (c *Clip) describe() error {
	isKey := h264.IsRandomAccess
	if c.Codec == "H265" {
		isKey = h265.IsRandomAccess
	}
	for i, au := range c.AUs {
		if isKey(au) {
			c.Keyframes = append(c.Keyframes, i)
		}
	}
	if len(c.Keyframes) == 0 {
		return errors.New("no keyframe")
	}
	if c.Codec == "H265" {
		var sps h265.SPS
		if err := sps.Unmarshal(c.Params[1]); err != nil {
			return err
		}
		c.Width, c.Height = sps.Width(), sps.Height()
		return nil
	}
	var sps h264.SPS
	if err := sps.Unmarshal(c.Params[0]); err != nil {
		return err
	}
	c.Width, c.Height = sps.Width(), sps.Height()
	switch sps.ProfileIdc {
	case 66:
		c.Profile = "Baseline"
	case 77:
		c.Profile = "Main"
	case 88:
		c.Profile = "Extended"
	default:
		c.Profile = "High"
	}
	return nil
}

// Bitrate is the clip's average bitrate in bits per second.
func (c *Clip) Bitrate() int {
	var n int
	for _, au := range c.AUs {
		for _, nalu := range au {
			n += len(nalu)
		}
	}
	return n * 8 * c.FPS / len(c.AUs)
}

// GOPLength is the number of frames from one keyframe to the next (the
// whole clip when it has one keyframe).
func (c *Clip) GOPLength() int {
	if len(c.Keyframes) < 2 {
		return len(c.AUs)
	}
	return c.Keyframes[1] - c.Keyframes[0]
}

// nextKeyframe is the first keyframe index after pos, wrapping around.
func (c *Clip) nextKeyframe(pos int) int {
	for _, k := range c.Keyframes {
		if k > pos {
			return k
		}
	}
	return c.Keyframes[0]
}

func (c *Clip) noteParam(n []byte) {
	if c.Codec == "H264" {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			c.setParam(0, n, 2)
		case h264.NALUTypePPS:
			c.setParam(1, n, 2)
		}
		return
	}
	switch h265.NALUType((n[0] >> 1) & 0x3f) {
	case h265.NALUType_VPS_NUT:
		c.setParam(0, n, 3)
	case h265.NALUType_SPS_NUT:
		c.setParam(1, n, 3)
	case h265.NALUType_PPS_NUT:
		c.setParam(2, n, 3)
	}
}

func (c *Clip) setParam(i int, n []byte, count int) {
	if c.Params == nil {
		c.Params = make([][]byte, count)
	}
	if c.Params[i] == nil {
		c.Params[i] = n
	}
}
