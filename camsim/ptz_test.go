package camsim

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"
)

// fakeClock is moved by hand, so that PTZ integration is checked exactly.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time          { return f.t }
func (f *fakeClock) advance(d time.Duration) { f.t = f.t.Add(d) }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPTZStateIntegratesVelocityAndClamps(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newPTZState(clk.now)

	p.continuousMove(PTZVector{Pan: 0.5, Tilt: -0.25, Zoom: 0.1}, 10*time.Second)
	clk.advance(time.Second)
	if got := p.position(); !near(got.Pan, 0.5) || !near(got.Tilt, -0.25) || !near(got.Zoom, 0.1) {
		t.Fatalf("after 1 s: %+v", got)
	}
	if pt, z := p.moving(); !pt || !z {
		t.Fatalf("moving = %v, %v; want both", pt, z)
	}

	// Pan runs into its end stop; tilt and zoom keep going.
	clk.advance(2 * time.Second)
	got := p.position()
	if !near(got.Pan, 1) || !near(got.Tilt, -0.75) || !near(got.Zoom, 0.3) {
		t.Fatalf("after 3 s: %+v", got)
	}

	// Stop zoom only: pan/tilt still integrate, zoom is frozen.
	p.stop(false, true)
	clk.advance(time.Second)
	got = p.position()
	if !near(got.Tilt, -1) || !near(got.Zoom, 0.3) {
		t.Fatalf("after stopping zoom: %+v", got)
	}
	if pt, z := p.moving(); pt || z {
		t.Fatalf("at both end stops with zoom stopped, moving = %v, %v", pt, z)
	}

	// The timeout ends a move by itself.
	p.continuousMove(PTZVector{Pan: -1}, 500*time.Millisecond)
	clk.advance(2 * time.Second)
	if got := p.position(); !near(got.Pan, 0.5) {
		t.Fatalf("after a 0.5 s move at -1 from 1: pan %v, want 0.5", got.Pan)
	}
	if pt, _ := p.moving(); pt {
		t.Fatal("still moving after the timeout")
	}

	p.moveTo(PTZVector{Pan: 3, Tilt: -3, Zoom: -1})
	if got := p.position(); got != (PTZVector{1, -1, 0}) {
		t.Fatalf("moveTo out of range: %+v", got)
	}
}

type ptzStatusIn struct {
	PTZStatus struct {
		Position struct {
			PanTilt struct {
				X float64 `xml:"x,attr"`
				Y float64 `xml:"y,attr"`
			}
			Zoom struct {
				X float64 `xml:"x,attr"`
			}
		}
		MoveStatus struct{ PanTilt, Zoom string }
	}
}

func ptzStatus(t *testing.T, c *soapClient) ptzStatusIn {
	t.Helper()
	var s ptzStatusIn
	c.mustCall(`<tptz:GetStatus><tptz:ProfileToken>main</tptz:ProfileToken></tptz:GetStatus>`, &s)
	return s
}

func TestPTZContinuousMoveMovesTheHeadAndStopFreezesIt(t *testing.T) {
	cfg := authedConfig()
	cfg.PTZ = true
	cam := startCam(t, cfg)
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)

	c.mustCall(`<tptz:ContinuousMove><tptz:ProfileToken>main</tptz:ProfileToken><tptz:Velocity>`+
		`<tt:PanTilt x="0.5" y="-0.5" space="http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace"/><tt:Zoom x="0.2"/>`+
		`</tptz:Velocity><tptz:Timeout>PT20S</tptz:Timeout></tptz:ContinuousMove>`, &struct{}{})
	var s ptzStatusIn
	for deadline := time.Now().Add(5 * time.Second); ; {
		s = ptzStatus(t, c)
		if s.PTZStatus.Position.PanTilt.X > 0.05 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("head never moved: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pos := s.PTZStatus.Position
	if pos.PanTilt.Y >= 0 || pos.Zoom.X <= 0 || s.PTZStatus.MoveStatus.PanTilt != "MOVING" {
		t.Errorf("moving at (0.5, -0.5, 0.2) but status %+v", s)
	}

	c.mustCall(`<tptz:Stop><tptz:ProfileToken>main</tptz:ProfileToken></tptz:Stop>`, &struct{}{})
	stopped := ptzStatus(t, c)
	time.Sleep(100 * time.Millisecond)
	later := ptzStatus(t, c)
	if stopped.PTZStatus.Position != later.PTZStatus.Position {
		t.Fatalf("head moved after Stop: %+v then %+v", stopped.PTZStatus.Position, later.PTZStatus.Position)
	}
	if later.PTZStatus.MoveStatus.PanTilt != "IDLE" || later.PTZStatus.MoveStatus.Zoom != "IDLE" {
		t.Errorf("move status after Stop %+v", later.PTZStatus.MoveStatus)
	}
	got := cam.PTZPosition()
	if p := later.PTZStatus.Position; !near(got.Pan, p.PanTilt.X) || !near(got.Tilt, p.PanTilt.Y) || !near(got.Zoom, p.Zoom.X) {
		t.Errorf("PTZPosition %+v, GetStatus %+v", got, p)
	}
}

func TestPTZPresetsNodesAndBadArguments(t *testing.T) {
	cfg := authedConfig()
	cfg.PTZ = true
	cam := startCam(t, cfg)
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)

	var presets struct {
		Preset []struct {
			Token string `xml:"token,attr"`
			Name  string
		}
	}
	c.mustCall(`<tptz:GetPresets><tptz:ProfileToken>main</tptz:ProfileToken></tptz:GetPresets>`, &presets)
	if len(presets.Preset) != 3 || presets.Preset[1].Token != "2" || presets.Preset[1].Name != "Gate" {
		t.Fatalf("presets %+v", presets)
	}
	c.mustCall(`<tptz:GotoPreset><tptz:ProfileToken>main</tptz:ProfileToken><tptz:PresetToken>2</tptz:PresetToken></tptz:GotoPreset>`, &struct{}{})
	if got := cam.PTZPosition(); got != (PTZVector{-0.5, 0.2, 0.3}) {
		t.Fatalf("after GotoPreset 2: %+v", got)
	}
	c.mustCall(`<tptz:AbsoluteMove><tptz:ProfileToken>sub</tptz:ProfileToken><tptz:Position><tt:PanTilt x="0.1" y="0.2"/></tptz:Position></tptz:AbsoluteMove>`, &struct{}{})
	if got := cam.PTZPosition(); got != (PTZVector{0.1, 0.2, 0.3}) {
		t.Fatalf("after AbsoluteMove of pan/tilt only: %+v", got)
	}

	var nodes struct {
		PTZNode []struct {
			Token              string `xml:"token,attr"`
			SupportedPTZSpaces struct {
				ContinuousPanTiltVelocitySpace struct{ URI string }
			}
		}
	}
	c.mustCall(`<tptz:GetNodes/>`, &nodes)
	if len(nodes.PTZNode) != 1 || nodes.PTZNode[0].SupportedPTZSpaces.ContinuousPanTiltVelocitySpace.URI != spacePanTiltVelocity {
		t.Errorf("nodes %+v", nodes)
	}
	var configs struct {
		PTZConfiguration []struct {
			Token             string `xml:"token,attr"`
			NodeToken         string
			DefaultPTZTimeout string
		}
	}
	c.mustCall(`<tptz:GetConfigurations/>`, &configs)
	if len(configs.PTZConfiguration) != 1 || configs.PTZConfiguration[0].DefaultPTZTimeout != "PT10S" ||
		configs.PTZConfiguration[0].NodeToken != ptzNodeToken {
		t.Errorf("configurations %+v", configs)
	}
	profiles := getProfiles(t, c)
	if profiles[0].PTZConfiguration == nil || profiles[0].PTZConfiguration.NodeToken != ptzNodeToken {
		t.Errorf("main profile's PTZ configuration %+v", profiles[0].PTZConfiguration)
	}

	for _, tc := range []struct{ op, sub string }{
		{`<tptz:GotoPreset><tptz:ProfileToken>main</tptz:ProfileToken><tptz:PresetToken>99</tptz:PresetToken></tptz:GotoPreset>`, "ter:NoToken"},
		{`<tptz:ContinuousMove><tptz:ProfileToken>main</tptz:ProfileToken><tptz:Velocity><tt:PanTilt x="2" y="0"/></tptz:Velocity></tptz:ContinuousMove>`, "ter:InvalidVelocity"},
		{`<tptz:ContinuousMove><tptz:ProfileToken>main</tptz:ProfileToken><tptz:Velocity><tt:PanTilt x="NaN" y="0"/></tptz:Velocity></tptz:ContinuousMove>`, "ter:InvalidVelocity"},
		{`<tptz:ContinuousMove><tptz:ProfileToken>main</tptz:ProfileToken><tptz:Velocity><tt:Zoom x="0.1"/></tptz:Velocity><tptz:Timeout>soon</tptz:Timeout></tptz:ContinuousMove>`, "ter:TimeoutNotSupported"},
		{`<tptz:GetStatus><tptz:ProfileToken>nope</tptz:ProfileToken></tptz:GetStatus>`, "ter:NoProfile"},
		{`<tptz:Stop><tptz:ProfileToken>main</tptz:ProfileToken><tptz:PanTilt>maybe</tptz:PanTilt></tptz:Stop>`, "ter:InvalidArgVal"},
	} {
		status, body := c.call(tc.op)
		t.Run(fmt.Sprint(tc.sub), func(t *testing.T) { wantFault(t, status, body, http.StatusBadRequest, "ter:InvalidArgVal", tc.sub) })
	}
	if got := cam.PTZPosition(); got != (PTZVector{0.1, 0.2, 0.3}) {
		t.Fatalf("rejected commands moved the head: %+v", got)
	}
}
