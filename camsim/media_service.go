package camsim

import (
	"encoding/xml"
	"strings"
)

// Media service (trt) operations. What they report (codec, resolution,
// frame rate, bitrate, GOP, H.264 profile) is read from the clip each
// profile really streams.

const (
	videoSourceToken       = "vs0"
	videoSourceConfigToken = "vsc0"
)

type ttResolution struct {
	Width  int `xml:"tt:Width"`
	Height int `xml:"tt:Height"`
}

type ttVideoSourceConfiguration struct {
	Token       string `xml:"token,attr"`
	Name        string `xml:"tt:Name"`
	UseCount    int    `xml:"tt:UseCount"`
	SourceToken string `xml:"tt:SourceToken"`
	Bounds      struct {
		X      int `xml:"x,attr"`
		Y      int `xml:"y,attr"`
		Width  int `xml:"width,attr"`
		Height int `xml:"height,attr"`
	} `xml:"tt:Bounds"`
}

type ttVideoEncoderConfiguration struct {
	Token       string       `xml:"token,attr"`
	Name        string       `xml:"tt:Name"`
	UseCount    int          `xml:"tt:UseCount"`
	Encoding    string       `xml:"tt:Encoding"`
	Resolution  ttResolution `xml:"tt:Resolution"`
	Quality     float64      `xml:"tt:Quality"`
	RateControl struct {
		FrameRateLimit   int `xml:"tt:FrameRateLimit"`
		EncodingInterval int `xml:"tt:EncodingInterval"`
		BitrateLimit     int `xml:"tt:BitrateLimit"` // kbit/s
	} `xml:"tt:RateControl"`
	H264 *struct {
		GovLength   int    `xml:"tt:GovLength"`
		H264Profile string `xml:"tt:H264Profile"`
	} `xml:"tt:H264"`
	Multicast struct {
		Address struct {
			Type        string `xml:"tt:Type"`
			IPv4Address string `xml:"tt:IPv4Address"`
		} `xml:"tt:Address"`
		Port      int  `xml:"tt:Port"`
		TTL       int  `xml:"tt:TTL"`
		AutoStart bool `xml:"tt:AutoStart"`
	} `xml:"tt:Multicast"`
	SessionTimeout string `xml:"tt:SessionTimeout"`
}

type ttProfile struct {
	Token string                      `xml:"token,attr"`
	Fixed bool                        `xml:"fixed,attr"`
	Name  string                      `xml:"tt:Name"`
	VSC   ttVideoSourceConfiguration  `xml:"tt:VideoSourceConfiguration"`
	VEC   ttVideoEncoderConfiguration `xml:"tt:VideoEncoderConfiguration"`
	PTZ   *ttPTZConfiguration         `xml:"tt:PTZConfiguration"`
}

func (c *Camera) profile(token string) ttProfile {
	clip := c.clips[token]
	main := c.clips[ProfileMain]
	p := ttProfile{Token: token, Fixed: true, Name: token}

	p.VSC.Token = videoSourceConfigToken
	p.VSC.Name = "VideoSource"
	p.VSC.UseCount = len(profileTokens)
	p.VSC.SourceToken = videoSourceToken
	p.VSC.Bounds.Width, p.VSC.Bounds.Height = main.Width, main.Height

	v := &p.VEC
	v.Token = "vec-" + token
	v.Name = "VideoEncoder-" + token
	v.UseCount = 1
	v.Encoding = clip.Codec
	v.Resolution = ttResolution{clip.Width, clip.Height}
	v.Quality = 5
	v.RateControl.FrameRateLimit = clip.FPS
	v.RateControl.EncodingInterval = 1
	v.RateControl.BitrateLimit = (clip.Bitrate() + 999) / 1000
	if clip.Codec == "H264" {
		v.H264 = &struct {
			GovLength   int    `xml:"tt:GovLength"`
			H264Profile string `xml:"tt:H264Profile"`
		}{clip.GOPLength(), clip.Profile}
	}
	v.Multicast.Address.Type = "IPv4"
	v.Multicast.Address.IPv4Address = "0.0.0.0"
	v.Multicast.TTL = 1
	v.SessionTimeout = "PT60S"

	if c.ptz != nil {
		cfg := ptzConfiguration()
		p.PTZ = &cfg
	}
	return p
}

// profileArg reads the ProfileToken argument every media call takes.
func (c *Camera) profileArg(req *soapRequest) (string, *soapFault) {
	var in struct {
		ProfileToken string `xml:"ProfileToken"`
	}
	if f := req.decode(&in); f != nil {
		return "", f
	}
	token := strings.TrimSpace(in.ProfileToken)
	if _, ok := c.clips[token]; !ok {
		return "", faultInvalidArg("ter:NoProfile", "no profile with token "+token)
	}
	return token, nil
}

func (c *Camera) getProfiles(*soapRequest) (any, *soapFault) {
	var list []ttProfile
	for _, token := range profileTokens {
		list = append(list, c.profile(token))
	}
	return struct {
		XMLName  xml.Name    `xml:"trt:GetProfilesResponse"`
		Profiles []ttProfile `xml:"trt:Profiles"`
	}{Profiles: list}, nil
}

func (c *Camera) getProfile(req *soapRequest) (any, *soapFault) {
	token, f := c.profileArg(req)
	if f != nil {
		return nil, f
	}
	return struct {
		XMLName xml.Name  `xml:"trt:GetProfileResponse"`
		Profile ttProfile `xml:"trt:Profile"`
	}{Profile: c.profile(token)}, nil
}

func (c *Camera) getVideoSources(*soapRequest) (any, *soapFault) {
	main := c.clips[ProfileMain]
	type source struct {
		Token      string       `xml:"token,attr"`
		Framerate  int          `xml:"tt:Framerate"`
		Resolution ttResolution `xml:"tt:Resolution"`
	}
	return struct {
		XMLName xml.Name `xml:"trt:GetVideoSourcesResponse"`
		Sources []source `xml:"trt:VideoSources"`
	}{Sources: []source{{videoSourceToken, main.FPS, ttResolution{main.Width, main.Height}}}}, nil
}

type ttMediaURI struct {
	URI                 string `xml:"tt:Uri"`
	InvalidAfterConnect bool   `xml:"tt:InvalidAfterConnect"`
	InvalidAfterReboot  bool   `xml:"tt:InvalidAfterReboot"`
	Timeout             string `xml:"tt:Timeout"`
}

func (c *Camera) getStreamURI(req *soapRequest) (any, *soapFault) {
	token, f := c.profileArg(req)
	if f != nil {
		return nil, f
	}
	return struct {
		XMLName  xml.Name   `xml:"trt:GetStreamUriResponse"`
		MediaURI ttMediaURI `xml:"trt:MediaUri"`
	}{MediaURI: ttMediaURI{URI: c.RTSPURL(token), Timeout: "PT0S"}}, nil
}

func (c *Camera) getSnapshotURI(req *soapRequest) (any, *soapFault) {
	token, f := c.profileArg(req)
	if f != nil {
		return nil, f
	}
	return struct {
		XMLName  xml.Name   `xml:"trt:GetSnapshotUriResponse"`
		MediaURI ttMediaURI `xml:"trt:MediaUri"`
	}{MediaURI: ttMediaURI{URI: c.SnapshotURL(token), Timeout: "PT0S"}}, nil
}

func (c *Camera) setSynchronizationPoint(req *soapRequest) (any, *soapFault) {
	token, f := c.profileArg(req)
	if f != nil {
		return nil, f
	}
	c.rtsp.SyncPoint(token)
	return struct {
		XMLName xml.Name `xml:"trt:SetSynchronizationPointResponse"`
	}{}, nil
}
