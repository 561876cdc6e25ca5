package onvif

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/use-go/onvif/device"
	"github.com/use-go/onvif/media"
	"github.com/use-go/onvif/ptz"
	"github.com/use-go/onvif/xsd"
	tt "github.com/use-go/onvif/xsd/onvif"
)

// Requests are use-go/onvif message types; replies are decoded into the
// lenient structs below instead of use-go's, because those carry
// prefixed tags ("onvif:Time") that never match real replies and typed
// fields that fail a whole reply on one odd value. Every reply field is a
// string, matched on its local name, and converted forgivingly.

// Service actions, used for the SOAP 1.2 action parameter and SOAPAction.
type service string

const (
	svcDevice service = nsDevice
	svcMedia  service = nsMedia
	svcPTZ    service = nsPTZ
)

func reqGetSystemDateAndTime() any { return device.GetSystemDateAndTime{} }
func reqGetDeviceInformation() any { return device.GetDeviceInformation{} }
func reqGetCapabilities() any {
	return device.GetCapabilities{Category: tt.CapabilityCategory("All")}
}
func reqGetServices() any { return device.GetServices{IncludeCapability: xsd.Boolean(false)} }
func reqGetProfiles() any { return media.GetProfiles{} }
func reqGetStreamURI(profile string) any {
	return media.GetStreamUri{
		StreamSetup: tt.StreamSetup{
			Stream:    tt.StreamType("RTP-Unicast"),
			Transport: tt.Transport{Protocol: tt.TransportProtocol("RTSP")},
		},
		ProfileToken: tt.ReferenceToken(profile),
	}
}
func reqGetSnapshotURI(profile string) any {
	return media.GetSnapshotUri{ProfileToken: tt.ReferenceToken(profile)}
}
func reqSetSynchronizationPoint(profile string) any {
	return media.SetSynchronizationPoint{ProfileToken: tt.ReferenceToken(profile)}
}
func reqGetNodes() any { return ptz.GetNodes{} }
func reqGetPresets(profile string) any {
	return ptz.GetPresets{ProfileToken: tt.ReferenceToken(profile)}
}
func reqGotoPreset(profile, preset string) any {
	return ptz.GotoPreset{ProfileToken: tt.ReferenceToken(profile), PresetToken: tt.ReferenceToken(preset)}
}
func reqStop(profile string) any {
	return ptz.Stop{ProfileToken: tt.ReferenceToken(profile), PanTilt: xsd.Boolean(true), Zoom: xsd.Boolean(true)}
}

// Generic velocity spaces: naming them explicitly avoids the empty space=""
// attribute use-go's Vector types would otherwise send, which some cameras
// reject as an unknown space.
const (
	panTiltVelocitySpace = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace"
	zoomVelocitySpace    = "http://www.onvif.org/ver10/tptz/ZoomSpaces/VelocityGenericSpace"
)

func reqContinuousMove(profile string, pan, tilt, zoom float64, timeout time.Duration) any {
	return ptz.ContinuousMove{
		ProfileToken: tt.ReferenceToken(profile),
		Velocity: tt.PTZSpeed{
			PanTilt: tt.Vector2D{X: pan, Y: tilt, Space: xsd.AnyURI(panTiltVelocitySpace)},
			Zoom:    tt.Vector1D{X: zoom, Space: xsd.AnyURI(zoomVelocitySpace)},
		},
		Timeout: xsd.Duration(xsdDuration(timeout)),
	}
}

// xsdDuration renders d as an xs:duration in seconds ("PT1.5S"). use-go's
// own constructor calls log.Fatal on bad input, so it is not used.
func xsdDuration(d time.Duration) string {
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S"
}

type dateTimeXML struct {
	Time struct {
		Hour   string `xml:"Hour"`
		Minute string `xml:"Minute"`
		Second string `xml:"Second"`
	} `xml:"Time"`
	Date struct {
		Year  string `xml:"Year"`
		Month string `xml:"Month"`
		Day   string `xml:"Day"`
	} `xml:"Date"`
}

// value converts the fields, refusing dates that cannot be a camera clock.
func (d *dateTimeXML) value() (time.Time, error) {
	var n [6]int
	for i, s := range []string{d.Date.Year, d.Date.Month, d.Date.Day, d.Time.Hour, d.Time.Minute, d.Time.Second} {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return time.Time{}, fmt.Errorf("date field %q is not a number", s)
		}
		n[i] = v
	}
	if n[0] < 1970 || n[0] > 9999 || n[1] < 1 || n[1] > 12 || n[2] < 1 || n[2] > 31 ||
		n[3] < 0 || n[3] > 23 || n[4] < 0 || n[4] > 59 || n[5] < 0 || n[5] > 60 {
		return time.Time{}, fmt.Errorf("date %04d-%02d-%02dT%02d:%02d:%02d out of range", n[0], n[1], n[2], n[3], n[4], n[5])
	}
	return time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], 0, time.UTC), nil
}

type systemDateAndTimeResponse struct {
	SystemDateAndTime struct {
		DateTimeType  string       `xml:"DateTimeType"`
		UTCDateTime   *dateTimeXML `xml:"UTCDateTime"`
		LocalDateTime *dateTimeXML `xml:"LocalDateTime"`
		TimeZone      struct {
			TZ string `xml:"TZ"`
		} `xml:"TimeZone"`
	} `xml:"SystemDateAndTime"`
}

type deviceInformationResponse struct {
	Manufacturer    string `xml:"Manufacturer"`
	Model           string `xml:"Model"`
	FirmwareVersion string `xml:"FirmwareVersion"`
	SerialNumber    string `xml:"SerialNumber"`
	HardwareID      string `xml:"HardwareId"`
}

type xaddrXML struct {
	XAddr string `xml:"XAddr"`
}

type capabilitiesResponse struct {
	Capabilities struct {
		Device    xaddrXML `xml:"Device"`
		Media     xaddrXML `xml:"Media"`
		PTZ       xaddrXML `xml:"PTZ"`
		Extension struct {
			// A few vendors list the services a second time here.
			Media xaddrXML `xml:"Media"`
			PTZ   xaddrXML `xml:"PTZ"`
		} `xml:"Extension"`
	} `xml:"Capabilities"`
}

type servicesResponse struct {
	Service []struct {
		Namespace string `xml:"Namespace"`
		XAddr     string `xml:"XAddr"`
	} `xml:"Service"`
}

type profileXML struct {
	Token                     string `xml:"token,attr"`
	Name                      string `xml:"Name"`
	VideoEncoderConfiguration *struct {
		Encoding   string `xml:"Encoding"`
		Resolution struct {
			Width  string `xml:"Width"`
			Height string `xml:"Height"`
		} `xml:"Resolution"`
		RateControl struct {
			FrameRateLimit string `xml:"FrameRateLimit"`
			BitrateLimit   string `xml:"BitrateLimit"`
		} `xml:"RateControl"`
	} `xml:"VideoEncoderConfiguration"`
	PTZConfiguration *struct {
		Token string `xml:"token,attr"`
	} `xml:"PTZConfiguration"`
}

type profilesResponse struct {
	Profiles []profileXML `xml:"Profiles"`
}

type mediaURIResponse struct {
	MediaURI struct {
		URI string `xml:"Uri"`
	} `xml:"MediaUri"`
}

type tokenNameXML struct {
	Token string `xml:"token,attr"`
	Name  string `xml:"Name"`
}

type nodesResponse struct {
	PTZNode []tokenNameXML `xml:"PTZNode"`
}

type presetsResponse struct {
	Preset []tokenNameXML `xml:"Preset"`
}

// profile converts a reply profile, tolerating missing or odd numbers.
func (p *profileXML) profile() Profile {
	out := Profile{Token: strings.TrimSpace(p.Token), Name: strings.TrimSpace(p.Name), PTZ: p.PTZConfiguration != nil}
	if v := p.VideoEncoderConfiguration; v != nil {
		out.Codec = normalizeCodec(v.Encoding)
		out.Width = atoiLenient(v.Resolution.Width)
		out.Height = atoiLenient(v.Resolution.Height)
		out.FPS = atofLenient(v.RateControl.FrameRateLimit)
		out.Bitrate = atoiLenient(v.RateControl.BitrateLimit)
	}
	return out
}

// normalizeCodec maps vendor spellings to H264, H265, JPEG, MPEG4.
func normalizeCodec(s string) string {
	c := strings.ToUpper(strings.TrimSpace(s))
	c = strings.ReplaceAll(c, ".", "")
	switch c {
	case "HEVC":
		return "H265"
	case "AVC":
		return "H264"
	case "MJPEG", "MJPG":
		return "JPEG"
	}
	return c
}

// atoiLenient parses an integer, accepting "1920.0" and surrounding space;
// anything unparseable or negative is 0.
func atoiLenient(s string) int {
	f := atofLenient(s)
	if f <= 0 || f > math.MaxInt32 {
		return 0
	}
	return int(f)
}

func atofLenient(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0
	}
	return f
}
