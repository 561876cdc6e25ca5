package manscdp

import (
	"errors"
	"testing"
)

// Vectors worked out by hand from GB/T 28181-2016 Annex A.3 (checksum =
// bytes 1–7 mod 256) and cross-checked against strings platforms send.
var ptzVectors = []struct {
	name string
	p    PTZ
	hex  string
}{
	{"stop", PTZ{Address: 1}, "A50F0100000000B5"},
	{"up at tilt speed FA", PTZ{Address: 1, Tilt: 1, TiltSpeed: 0xFA}, "A50F010800FA00B7"},
	{"right at pan speed 3F", PTZ{Address: 1, Pan: 1, PanSpeed: 0x3F}, "A50F01013F0000F5"},
	{"right-down 88/88", PTZ{Address: 1, Pan: 1, Tilt: -1, PanSpeed: 0x88, TiltSpeed: 0x88}, "A50F0105888800CA"},
	{"left-up 88/88", PTZ{Address: 1, Pan: -1, Tilt: 1, PanSpeed: 0x88, TiltSpeed: 0x88}, "A50F010A888800CF"},
	{"zoom in speed 1", PTZ{Address: 1, Zoom: 1, ZoomSpeed: 1}, "A50F0110000010D5"},
	{"zoom out speed 1", PTZ{Address: 1, Zoom: -1, ZoomSpeed: 1}, "A50F0120000010E5"},
	{"focus near 88", PTZ{Op: PTZFocusIris, Address: 1, Focus: -1, FocusSpeed: 0x88}, "A50F01428800007F"},
	{"focus far 88", PTZ{Op: PTZFocusIris, Address: 1, Focus: 1, FocusSpeed: 0x88}, "A50F01418800007E"},
	{"iris open 88", PTZ{Op: PTZFocusIris, Address: 1, Iris: 1, IrisSpeed: 0x88}, "A50F014400880081"},
	{"iris close 88", PTZ{Op: PTZFocusIris, Address: 1, Iris: -1, IrisSpeed: 0x88}, "A50F014800880085"},
	{"preset set 1", PTZ{Op: PTZPresetSet, Address: 1, Preset: 1}, "A50F018100010037"},
	{"preset goto 1", PTZ{Op: PTZPresetGoto, Address: 1, Preset: 1}, "A50F018200010038"},
	{"preset goto 3", PTZ{Op: PTZPresetGoto, Address: 1, Preset: 3}, "A50F01820003003A"},
	{"preset delete 255", PTZ{Op: PTZPresetDelete, Address: 1, Preset: 255}, "A50F018300FF0037"},
	{"cruise start 4 (raw)", PTZ{Op: PTZRaw, Address: 1, Code: 0x88, Data1: 4}, "A50F018804000041"},
	// Address 0x312: low byte 12 in byte 3, high nibble 3 in byte 7.
	{"12-bit address", PTZ{Address: 0x312, Pan: -1, PanSpeed: 0x10}, "A50F1202100003DB"},
}

func TestEncodePTZMatchesStandardVectors(t *testing.T) {
	for _, v := range ptzVectors {
		if got := EncodePTZ(v.p); got != v.hex {
			t.Errorf("%s: EncodePTZ = %s, want %s", v.name, got, v.hex)
		}
	}
}

func TestDecodePTZReadsStandardVectors(t *testing.T) {
	for _, v := range ptzVectors {
		got, err := DecodePTZ(v.hex)
		if err != nil {
			t.Errorf("%s: %v", v.name, err)
			continue
		}
		if got != v.p {
			t.Errorf("%s: DecodePTZ = %+v, want %+v", v.name, got, v.p)
		}
	}
	if p, err := DecodePTZ(" a50f0100000000b5 "); err != nil || !p.Stop() {
		t.Errorf("lower-case stop: %+v %v", p, err)
	}
}

func TestDecodePTZRefusesBadCommands(t *testing.T) {
	for _, s := range []string{
		"",
		"A50F0100000000",     // short
		"A50F0100000000B500", // long
		"A50F0100000000B6",   // checksum off by one
		"A60F0100000000B6",   // wrong lead byte
		"A50E0100000000B4",   // check nibble wrong
		"A50F0103000000B8",   // left and right at once
		"A50F0181000000B6",   // preset 0
		"ZZ0F0100000000B5",   // not hex
	} {
		if _, err := DecodePTZ(s); !errors.Is(err, ErrBadPTZ) {
			t.Errorf("DecodePTZ(%q) err = %v, want ErrBadPTZ", s, err)
		}
	}
}

func TestDecodePTZAcceptsPresetNumberInByteFive(t *testing.T) {
	// Some platforms put the preset number in byte 5.
	p, err := DecodePTZ("A50F01820300003A")
	if err != nil || p.Op != PTZPresetGoto || p.Preset != 3 {
		t.Fatalf("got %+v, %v", p, err)
	}
}

func FuzzDecodePTZ(f *testing.F) {
	for _, v := range ptzVectors {
		f.Add(v.hex)
	}
	f.Add("A50F0103000000B8")
	f.Add("A50F01FF000000B4")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := DecodePTZ(s)
		if err != nil {
			return
		}
		// Whatever decodes must encode to a command that decodes the same.
		again, err := DecodePTZ(EncodePTZ(p))
		if err != nil {
			t.Fatalf("re-encoded %q: %v", s, err)
		}
		if again != p {
			t.Fatalf("%q: %+v then %+v", s, p, again)
		}
	})
}
