package manscdp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// PTZOp says which family of PTZCmd instruction a PTZ value is.
type PTZOp uint8

// PTZCmd instruction families (GB/T 28181-2016 Annex A.3).
const (
	// PTZMove is pan/tilt/zoom; all directions zero is "stop".
	PTZMove PTZOp = iota
	// PTZFocusIris is the FI instruction (focus near/far, iris open/close).
	PTZFocusIris
	PTZPresetSet
	PTZPresetGoto
	PTZPresetDelete
	// PTZRaw is any other instruction (cruise, scan, auxiliary switch),
	// kept as its raw bytes.
	PTZRaw
)

// PTZ is one decoded PTZCmd.
type PTZ struct {
	Op PTZOp
	// Address is the 12-bit device address (byte 3 and the low nibble of
	// byte 7); devices and platforms use 1.
	Address uint16
	// Pan +1 right, -1 left; Tilt +1 up, -1 down; Zoom +1 in (tele),
	// -1 out (wide). PTZMove only.
	Pan, Tilt, Zoom int8
	// PanSpeed and TiltSpeed are 0–255; ZoomSpeed is 0–15.
	PanSpeed, TiltSpeed, ZoomSpeed uint8
	// Focus +1 far, -1 near; Iris +1 open, -1 close. PTZFocusIris only.
	Focus, Iris           int8
	FocusSpeed, IrisSpeed uint8
	// Preset is 1–255 for the preset operations.
	Preset uint8
	// Code and Data1..3 are bytes 4–7 (Data3 is the high nibble of byte 7)
	// for PTZRaw.
	Code, Data1, Data2, Data3 uint8
}

// Instruction bits of a PTZMove byte 4.
const (
	ptzRight   = 0x01
	ptzLeft    = 0x02
	ptzDown    = 0x04
	ptzUp      = 0x08
	ptzZoomIn  = 0x10
	ptzZoomOut = 0x20
	fiFar      = 0x01
	fiNear     = 0x02
	fiOpen     = 0x04
	fiClose    = 0x08
)

// ErrBadPTZ is wrapped by every DecodePTZ error.
var ErrBadPTZ = errors.New("manscdp: bad PTZCmd")

func dirBits(v int8, pos, neg byte) byte {
	switch {
	case v > 0:
		return pos
	case v < 0:
		return neg
	}
	return 0
}

// EncodePTZ writes p as the 16-hex-digit PTZCmd string: A5, version 0 with
// its check nibble, address, instruction, data bytes, and the checksum of
// bytes 1–7 modulo 256.
func EncodePTZ(p PTZ) string {
	var b [8]byte
	b[0] = 0xA5
	b[1] = (0xA + 0x5 + 0x0) & 0x0F // version 0 in the high nibble
	b[2] = byte(p.Address)
	var d3 byte
	switch p.Op {
	case PTZMove:
		b[3] = dirBits(p.Pan, ptzRight, ptzLeft) | dirBits(p.Tilt, ptzUp, ptzDown) | dirBits(p.Zoom, ptzZoomIn, ptzZoomOut)
		b[4], b[5], d3 = p.PanSpeed, p.TiltSpeed, p.ZoomSpeed
	case PTZFocusIris:
		b[3] = 0x40 | dirBits(p.Focus, fiFar, fiNear) | dirBits(p.Iris, fiOpen, fiClose)
		b[4], b[5] = p.FocusSpeed, p.IrisSpeed
	case PTZPresetSet, PTZPresetGoto, PTZPresetDelete:
		b[3] = 0x81 + byte(p.Op-PTZPresetSet)
		b[5] = p.Preset
	default:
		b[3], b[4], b[5], d3 = p.Code, p.Data1, p.Data2, p.Data3
	}
	b[6] = d3<<4 | byte(p.Address>>8)&0x0F
	var sum byte
	for _, v := range b[:7] {
		sum += v
	}
	b[7] = sum
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// DecodePTZ reads a PTZCmd string. It refuses anything but 8 bytes with the
// A5 lead, a consistent check nibble and a correct checksum, and a move with
// both directions of one axis at once.
func DecodePTZ(s string) (PTZ, error) {
	s = strings.TrimSpace(s)
	if len(s) != 16 {
		return PTZ{}, fmt.Errorf("%w: %d hex digits, want 16", ErrBadPTZ, len(s))
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return PTZ{}, fmt.Errorf("%w: %v", ErrBadPTZ, err)
	}
	if b[0] != 0xA5 {
		return PTZ{}, fmt.Errorf("%w: first byte %02X, want A5", ErrBadPTZ, b[0])
	}
	if b[1]&0x0F != (0xA+0x5+b[1]>>4)&0x0F {
		return PTZ{}, fmt.Errorf("%w: check nibble", ErrBadPTZ)
	}
	var sum byte
	for _, v := range b[:7] {
		sum += v
	}
	if sum != b[7] {
		return PTZ{}, fmt.Errorf("%w: checksum %02X, want %02X", ErrBadPTZ, b[7], sum)
	}
	p := PTZ{Address: uint16(b[2]) | uint16(b[6]&0x0F)<<8}
	code := b[3]
	switch {
	case code&0xC0 == 0:
		if code&(ptzLeft|ptzRight) == ptzLeft|ptzRight || code&(ptzUp|ptzDown) == ptzUp|ptzDown ||
			code&(ptzZoomIn|ptzZoomOut) == ptzZoomIn|ptzZoomOut {
			return PTZ{}, fmt.Errorf("%w: opposite directions at once (%02X)", ErrBadPTZ, code)
		}
		p.Op = PTZMove
		p.Pan = axis(code, ptzRight, ptzLeft)
		p.Tilt = axis(code, ptzUp, ptzDown)
		p.Zoom = axis(code, ptzZoomIn, ptzZoomOut)
		p.PanSpeed, p.TiltSpeed, p.ZoomSpeed = b[4], b[5], b[6]>>4
	case code&0xF0 == 0x40:
		if code&(fiFar|fiNear) == fiFar|fiNear || code&(fiOpen|fiClose) == fiOpen|fiClose {
			return PTZ{}, fmt.Errorf("%w: opposite directions at once (%02X)", ErrBadPTZ, code)
		}
		p.Op = PTZFocusIris
		p.Focus = axis(code, fiFar, fiNear)
		p.Iris = axis(code, fiOpen, fiClose)
		p.FocusSpeed, p.IrisSpeed = b[4], b[5]
	case code >= 0x81 && code <= 0x83:
		p.Op = PTZPresetSet + PTZOp(code-0x81)
		// The preset number belongs in byte 6; some platforms put it in
		// byte 5 instead.
		p.Preset = b[5]
		if p.Preset == 0 {
			p.Preset = b[4]
		}
		if p.Preset == 0 {
			return PTZ{}, fmt.Errorf("%w: preset number 0", ErrBadPTZ)
		}
	default:
		p.Op = PTZRaw
		p.Code, p.Data1, p.Data2, p.Data3 = code, b[4], b[5], b[6]>>4
	}
	return p, nil
}

func axis(code, pos, neg byte) int8 {
	switch {
	case code&pos != 0:
		return 1
	case code&neg != 0:
		return -1
	}
	return 0
}

// Stop reports whether p is the all-zero move that stops every motion.
func (p PTZ) Stop() bool {
	return p.Op == PTZMove && p.Pan == 0 && p.Tilt == 0 && p.Zoom == 0
}
