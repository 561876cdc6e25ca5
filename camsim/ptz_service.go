package camsim

import (
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// PTZ service (tptz) operations over ptzState.

// ONVIF's generic PTZ spaces, the only ones the simulator speaks.
const (
	spacePanTiltPosition = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
	spaceZoomPosition    = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
	spacePanTiltVelocity = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace"
	spaceZoomVelocity    = "http://www.onvif.org/ver10/tptz/ZoomSpaces/VelocityGenericSpace"
	spacePanTiltSpeed    = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/GenericSpeedSpace"
	spaceZoomSpeed       = "http://www.onvif.org/ver10/tptz/ZoomSpaces/ZoomGenericSpeedSpace"
	ptzNodeToken         = "ptz-node-0"
	ptzConfigToken       = "ptz-config-0"
)

// ptzPreset is one of the camera's fixed presets.
type ptzPreset struct {
	Token, Name string
	Position    PTZVector
}

// ptzPresets are fixed: a mast camera's usual views.
var ptzPresets = []ptzPreset{
	{"1", "Home", PTZVector{0, 0, 0}},
	{"2", "Gate", PTZVector{-0.5, 0.2, 0.3}},
	{"3", "River", PTZVector{0.6, -0.3, 0.8}},
}

type ttRange struct {
	Min float64 `xml:"tt:Min"`
	Max float64 `xml:"tt:Max"`
}

type ttSpace2D struct {
	URI    string  `xml:"tt:URI"`
	XRange ttRange `xml:"tt:XRange"`
	YRange ttRange `xml:"tt:YRange"`
}

type ttSpace1D struct {
	URI    string  `xml:"tt:URI"`
	XRange ttRange `xml:"tt:XRange"`
}

type ttVector2D struct {
	X     float64 `xml:"x,attr"`
	Y     float64 `xml:"y,attr"`
	Space string  `xml:"space,attr,omitempty"`
}

type ttVector1D struct {
	X     float64 `xml:"x,attr"`
	Space string  `xml:"space,attr,omitempty"`
}

type ttPTZVector struct {
	PanTilt ttVector2D `xml:"tt:PanTilt"`
	Zoom    ttVector1D `xml:"tt:Zoom"`
}

func ptzVectorOut(v PTZVector) ttPTZVector {
	return ttPTZVector{ttVector2D{v.Pan, v.Tilt, spacePanTiltPosition}, ttVector1D{v.Zoom, spaceZoomPosition}}
}

type ttPTZConfiguration struct {
	Token                                 string      `xml:"token,attr"`
	Name                                  string      `xml:"tt:Name"`
	UseCount                              int         `xml:"tt:UseCount"`
	NodeToken                             string      `xml:"tt:NodeToken"`
	DefaultAbsolutePanTiltPositionSpace   string      `xml:"tt:DefaultAbsolutePantTiltPositionSpace"` // sic, as ONVIF's schema spells it
	DefaultAbsoluteZoomPositionSpace      string      `xml:"tt:DefaultAbsoluteZoomPositionSpace"`
	DefaultContinuousPanTiltVelocitySpace string      `xml:"tt:DefaultContinuousPanTiltVelocitySpace"`
	DefaultContinuousZoomVelocitySpace    string      `xml:"tt:DefaultContinuousZoomVelocitySpace"`
	DefaultPTZSpeed                       ttPTZVector `xml:"tt:DefaultPTZSpeed"`
	DefaultPTZTimeout                     string      `xml:"tt:DefaultPTZTimeout"`
	PanTiltLimits                         struct {
		Range ttSpace2D `xml:"tt:Range"`
	} `xml:"tt:PanTiltLimits"`
	ZoomLimits struct {
		Range ttSpace1D `xml:"tt:Range"`
	} `xml:"tt:ZoomLimits"`
}

func ptzConfiguration() ttPTZConfiguration {
	c := ttPTZConfiguration{
		Token: ptzConfigToken, Name: "PTZ", UseCount: len(profileTokens), NodeToken: ptzNodeToken,
		DefaultAbsolutePanTiltPositionSpace:   spacePanTiltPosition,
		DefaultAbsoluteZoomPositionSpace:      spaceZoomPosition,
		DefaultContinuousPanTiltVelocitySpace: spacePanTiltVelocity,
		DefaultContinuousZoomVelocitySpace:    spaceZoomVelocity,
		DefaultPTZSpeed:                       ttPTZVector{ttVector2D{1, 1, spacePanTiltSpeed}, ttVector1D{1, spaceZoomSpeed}},
		DefaultPTZTimeout:                     "PT10S",
	}
	c.PanTiltLimits.Range = ttSpace2D{spacePanTiltPosition, ttRange{-1, 1}, ttRange{-1, 1}}
	c.ZoomLimits.Range = ttSpace1D{spaceZoomPosition, ttRange{0, 1}}
	return c
}

func (c *Camera) getNodes(*soapRequest) (any, *soapFault) {
	type node struct {
		Token  string `xml:"token,attr"`
		Name   string `xml:"tt:Name"`
		Spaces struct {
			AbsPanTilt  ttSpace2D `xml:"tt:AbsolutePanTiltPositionSpace"`
			AbsZoom     ttSpace1D `xml:"tt:AbsoluteZoomPositionSpace"`
			ContPanTilt ttSpace2D `xml:"tt:ContinuousPanTiltVelocitySpace"`
			ContZoom    ttSpace1D `xml:"tt:ContinuousZoomVelocitySpace"`
			PanTiltSpd  ttSpace1D `xml:"tt:PanTiltSpeedSpace"`
			ZoomSpd     ttSpace1D `xml:"tt:ZoomSpeedSpace"`
		} `xml:"tt:SupportedPTZSpaces"`
		MaxPresets    int  `xml:"tt:MaximumNumberOfPresets"`
		HomeSupported bool `xml:"tt:HomeSupported"`
	}
	n := node{Token: ptzNodeToken, Name: "PTZNode", MaxPresets: len(ptzPresets), HomeSupported: true}
	n.Spaces.AbsPanTilt = ttSpace2D{spacePanTiltPosition, ttRange{-1, 1}, ttRange{-1, 1}}
	n.Spaces.AbsZoom = ttSpace1D{spaceZoomPosition, ttRange{0, 1}}
	n.Spaces.ContPanTilt = ttSpace2D{spacePanTiltVelocity, ttRange{-1, 1}, ttRange{-1, 1}}
	n.Spaces.ContZoom = ttSpace1D{spaceZoomVelocity, ttRange{-1, 1}}
	n.Spaces.PanTiltSpd = ttSpace1D{spacePanTiltSpeed, ttRange{0, 1}}
	n.Spaces.ZoomSpd = ttSpace1D{spaceZoomSpeed, ttRange{0, 1}}
	return struct {
		XMLName xml.Name `xml:"tptz:GetNodesResponse"`
		Nodes   []node   `xml:"tptz:PTZNode"`
	}{Nodes: []node{n}}, nil
}

func (c *Camera) getConfigurations(*soapRequest) (any, *soapFault) {
	return struct {
		XMLName xml.Name             `xml:"tptz:GetConfigurationsResponse"`
		Configs []ttPTZConfiguration `xml:"tptz:PTZConfiguration"`
	}{Configs: []ttPTZConfiguration{ptzConfiguration()}}, nil
}

func (c *Camera) getPresets(req *soapRequest) (any, *soapFault) {
	if _, f := c.profileArg(req); f != nil {
		return nil, f
	}
	type preset struct {
		Token    string      `xml:"token,attr"`
		Name     string      `xml:"tt:Name"`
		Position ttPTZVector `xml:"tt:PTZPosition"`
	}
	var list []preset
	for _, p := range ptzPresets {
		list = append(list, preset{p.Token, p.Name, ptzVectorOut(p.Position)})
	}
	return struct {
		XMLName xml.Name `xml:"tptz:GetPresetsResponse"`
		Presets []preset `xml:"tptz:Preset"`
	}{Presets: list}, nil
}

// vectorIn is a PTZVector as a request carries it: every part optional,
// numbers kept as text so that junk is an error rather than a zero.
type vectorIn struct {
	PanTilt *struct {
		X string `xml:"x,attr"`
		Y string `xml:"y,attr"`
	} `xml:"PanTilt"`
	Zoom *struct {
		X string `xml:"x,attr"`
	} `xml:"Zoom"`
}

// read fills v from the parts present, each within [lo, hi].
func (in *vectorIn) read(v *PTZVector, lo, hi, zoomLo float64) error {
	num := func(s string, lo, hi float64) (float64, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || f < lo || f > hi {
			return 0, fmt.Errorf("%q is not a number in [%g, %g]", s, lo, hi)
		}
		return f, nil
	}
	var err error
	if in.PanTilt != nil {
		if v.Pan, err = num(in.PanTilt.X, lo, hi); err != nil {
			return err
		}
		if v.Tilt, err = num(in.PanTilt.Y, lo, hi); err != nil {
			return err
		}
	}
	if in.Zoom != nil {
		if v.Zoom, err = num(in.Zoom.X, zoomLo, hi); err != nil {
			return err
		}
	}
	return nil
}

func (c *Camera) continuousMove(req *soapRequest) (any, *soapFault) {
	var in struct {
		ProfileToken string   `xml:"ProfileToken"`
		Velocity     vectorIn `xml:"Velocity"`
		Timeout      string   `xml:"Timeout"`
	}
	if f := req.decode(&in); f != nil {
		return nil, f
	}
	if _, ok := c.clips[strings.TrimSpace(in.ProfileToken)]; !ok {
		return nil, faultInvalidArg("ter:NoProfile", "no profile with token "+in.ProfileToken)
	}
	var v PTZVector
	if err := in.Velocity.read(&v, -1, 1, -1); err != nil {
		return nil, faultInvalidArg("ter:InvalidVelocity", "velocity: "+err.Error())
	}
	timeout := defaultPTZTimeout
	if strings.TrimSpace(in.Timeout) != "" {
		d, err := parseXSDuration(in.Timeout)
		if err != nil || d <= 0 {
			return nil, faultInvalidArg("ter:TimeoutNotSupported", fmt.Sprintf("timeout %q is not a positive xs:duration", in.Timeout))
		}
		timeout = d
	}
	c.ptz.continuousMove(v, timeout)
	return struct {
		XMLName xml.Name `xml:"tptz:ContinuousMoveResponse"`
	}{}, nil
}

func (c *Camera) absoluteMove(req *soapRequest) (any, *soapFault) {
	var in struct {
		ProfileToken string   `xml:"ProfileToken"`
		Position     vectorIn `xml:"Position"`
	}
	if f := req.decode(&in); f != nil {
		return nil, f
	}
	if _, ok := c.clips[strings.TrimSpace(in.ProfileToken)]; !ok {
		return nil, faultInvalidArg("ter:NoProfile", "no profile with token "+in.ProfileToken)
	}
	v := c.ptz.position() // parts left out stay where they are
	if err := in.Position.read(&v, -1, 1, 0); err != nil {
		return nil, faultInvalidArg("ter:InvalidPosition", "position: "+err.Error())
	}
	c.ptz.moveTo(v)
	return struct {
		XMLName xml.Name `xml:"tptz:AbsoluteMoveResponse"`
	}{}, nil
}

func (c *Camera) stop(req *soapRequest) (any, *soapFault) {
	var in struct {
		ProfileToken string `xml:"ProfileToken"`
		PanTilt      string `xml:"PanTilt"`
		Zoom         string `xml:"Zoom"`
	}
	if f := req.decode(&in); f != nil {
		return nil, f
	}
	if _, ok := c.clips[strings.TrimSpace(in.ProfileToken)]; !ok {
		return nil, faultInvalidArg("ter:NoProfile", "no profile with token "+in.ProfileToken)
	}
	// Both default to true: a bare Stop stops everything.
	flag := func(s string) (bool, error) {
		if s = strings.TrimSpace(s); s == "" {
			return true, nil
		}
		return strconv.ParseBool(s)
	}
	panTilt, err1 := flag(in.PanTilt)
	zoom, err2 := flag(in.Zoom)
	if err := errors.Join(err1, err2); err != nil {
		return nil, faultInvalidArg("ter:InvalidArgVal", "Stop flags: "+err.Error())
	}
	c.ptz.stop(panTilt, zoom)
	return struct {
		XMLName xml.Name `xml:"tptz:StopResponse"`
	}{}, nil
}

func (c *Camera) gotoPreset(req *soapRequest) (any, *soapFault) {
	var in struct {
		ProfileToken string `xml:"ProfileToken"`
		PresetToken  string `xml:"PresetToken"`
	}
	if f := req.decode(&in); f != nil {
		return nil, f
	}
	if _, ok := c.clips[strings.TrimSpace(in.ProfileToken)]; !ok {
		return nil, faultInvalidArg("ter:NoProfile", "no profile with token "+in.ProfileToken)
	}
	for _, p := range ptzPresets {
		if p.Token == strings.TrimSpace(in.PresetToken) {
			// The head arrives at once: tests and the demo want a
			// preset's view now, not a simulated slew.
			c.ptz.moveTo(p.Position)
			return struct {
				XMLName xml.Name `xml:"tptz:GotoPresetResponse"`
			}{}, nil
		}
	}
	return nil, faultInvalidArg("ter:NoToken", "no preset with token "+in.PresetToken)
}

func (c *Camera) getStatus(req *soapRequest) (any, *soapFault) {
	if _, f := c.profileArg(req); f != nil {
		return nil, f
	}
	panTilt, zoom := c.ptz.moving()
	word := func(moving bool) string {
		if moving {
			return "MOVING"
		}
		return "IDLE"
	}
	type status struct {
		Position   ttPTZVector `xml:"tt:Position"`
		MoveStatus struct {
			PanTilt string `xml:"tt:PanTilt"`
			Zoom    string `xml:"tt:Zoom"`
		} `xml:"tt:MoveStatus"`
		UtcTime string `xml:"tt:UtcTime"`
	}
	s := status{Position: ptzVectorOut(c.ptz.position()), UtcTime: time.Now().UTC().Format(time.RFC3339)}
	s.MoveStatus.PanTilt, s.MoveStatus.Zoom = word(panTilt), word(zoom)
	return struct {
		XMLName xml.Name `xml:"tptz:GetStatusResponse"`
		Status  status   `xml:"tptz:PTZStatus"`
	}{Status: s}, nil
}

// parseXSDuration reads the day-and-time part of an xs:duration ("PT5S",
// "PT0.5S", "PT1M30S", "P1DT2H"); years and months have no fixed length and
// are refused.
func parseXSDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("xs:duration %q: want PnDTnHnMnS", s)
	}
	datePart, timePart, hasT := strings.Cut(rest, "T")
	if hasT && timePart == "" {
		return 0, fmt.Errorf("xs:duration %q: empty time part", s)
	}
	var total float64
	read := func(part string, units map[byte]float64, order string) error {
		for part != "" {
			i := strings.IndexAny(part, order)
			if i <= 0 {
				return fmt.Errorf("xs:duration %q: bad component %q", s, part)
			}
			n, err := strconv.ParseFloat(part[:i], 64)
			if err != nil || n < 0 || math.IsInf(n, 0) {
				return fmt.Errorf("xs:duration %q: bad number %q", s, part[:i])
			}
			total += n * units[part[i]]
			// Units must come in order, once each.
			order = order[strings.IndexByte(order, part[i])+1:]
			part = part[i+1:]
		}
		return nil
	}
	if err := read(datePart, map[byte]float64{'D': 86400}, "D"); err != nil {
		return 0, err
	}
	if err := read(timePart, map[byte]float64{'H': 3600, 'M': 60, 'S': 1}, "HMS"); err != nil {
		return 0, err
	}
	if total > float64(math.MaxInt64/int64(time.Second)) {
		return 0, fmt.Errorf("xs:duration %q: too long", s)
	}
	return time.Duration(total * float64(time.Second)), nil
}
