package onvif

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Device is what Probe learned about a camera. Fields the camera would not
// give stay empty; Warnings say why.
type Device struct {
	XAddr           string
	IP              string // host part of XAddr
	Manufacturer    string
	Model           string
	FirmwareVersion string
	SerialNumber    string
	HardwareID      string
	// ClockOffset is camera time minus local time.
	ClockOffset time.Duration
	Profiles    []Profile
	// SnapshotURI is the main profile's snapshot URI, or the first one the
	// camera gave.
	SnapshotURI string
	// PTZ is true when the camera has a PTZ service and a profile bound to
	// a PTZ configuration.
	PTZ     bool
	Presets []Preset
	// MediaXAddr and PTZXAddr are the service addresses in use (after
	// host correction, see Warnings).
	MediaXAddr, PTZXAddr string
	// Warnings lists optional calls that failed and corrections made.
	Warnings []string
}

// Profile is one media profile: an encoder setting with its stream.
type Profile struct {
	Token string
	Name  string
	// Codec is H264, H265, JPEG or MPEG4 (vendor spellings normalised).
	Codec  string
	Width  int
	Height int
	FPS    float64
	// Bitrate is the encoder's bitrate limit as the camera reports it,
	// normally kbit/s.
	Bitrate     int
	StreamURI   string // RTSP, RTP unicast
	SnapshotURI string
	// PTZ is true when the profile carries a PTZ configuration, which PTZ
	// calls with this profile's token need.
	PTZ bool
}

// Preset is a stored PTZ position.
type Preset struct {
	Token string
	Name  string
}

// MainSub picks the main stream (highest resolution) and the sub stream
// (lowest resolution, a different profile); sub is nil when there is only
// one profile. Profiles without a known resolution are used only when no
// profile has one. Ties prefer the higher (main) or lower (sub) bitrate,
// then the camera's order.
func (d Device) MainSub() (main, sub *Profile) {
	var cands []int
	for i, p := range d.Profiles {
		if p.Width > 0 && p.Height > 0 {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		for i := range d.Profiles {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	area := func(i int) int { return d.Profiles[i].Width * d.Profiles[i].Height }
	mi, si := cands[0], cands[0]
	for _, i := range cands[1:] {
		a, p := area(i), d.Profiles[i]
		if a > area(mi) || (a == area(mi) && p.Bitrate > d.Profiles[mi].Bitrate) {
			mi = i
		}
		if a < area(si) || (a == area(si) && p.Bitrate < d.Profiles[si].Bitrate) {
			si = i
		}
	}
	if si == mi {
		// All candidates tie: the sub stream is the first other profile.
		for _, i := range cands {
			if i != mi {
				si = i
				break
			}
		}
	}
	main = &d.Profiles[mi]
	if si != mi {
		sub = &d.Profiles[si]
	}
	return main, sub
}

// Probe asks the camera everything the edge agent needs: clock, identity,
// services, profiles with stream and snapshot URIs, and PTZ nodes and
// presets. Identity and profiles are required; every other failed call is
// recorded in Device.Warnings. On error the returned Device holds what was
// learned so far.
func (c *Client) Probe(ctx context.Context) (dev Device, err error) {
	dev = Device{XAddr: c.xaddr, IP: c.base.Hostname()}
	defer func() {
		if v := recover(); v != nil {
			err = recovered("Probe", c.xaddr, v)
		}
	}()
	warn := func(format string, a ...any) { dev.Warnings = append(dev.Warnings, fmt.Sprintf(format, a...)) }

	if err := c.SyncClock(ctx); err != nil {
		switch KindOf(err) {
		case KindTimeout, KindNetwork, KindCanceled:
			return dev, err // nothing else will answer either
		}
		warn("clock not synchronised, using local time: %v", err)
	}
	dev.ClockOffset = c.ClockOffset()

	var info deviceInformationResponse
	if err := c.call(ctx, "GetDeviceInformation", svcDevice, c.xaddr, reqGetDeviceInformation(), &info, callOpts{}); err != nil {
		return dev, err
	}
	dev.Manufacturer = strings.TrimSpace(info.Manufacturer)
	dev.Model = strings.TrimSpace(info.Model)
	dev.FirmwareVersion = strings.TrimSpace(info.FirmwareVersion)
	dev.SerialNumber = strings.TrimSpace(info.SerialNumber)
	dev.HardwareID = strings.TrimSpace(info.HardwareID)

	svcs, err := c.services(ctx)
	if err != nil {
		return dev, err
	}
	dev.Warnings = append(dev.Warnings, svcs.warnings...)
	dev.MediaXAddr, dev.PTZXAddr = svcs.media, svcs.ptz

	var pr profilesResponse
	if err := c.call(ctx, "GetProfiles", svcMedia, svcs.media, reqGetProfiles(), &pr, callOpts{}); err != nil {
		return dev, err
	}
	for i := range pr.Profiles {
		p := pr.Profiles[i].profile()
		if p.Token == "" {
			warn("profile %q has no token; skipped", p.Name)
			continue
		}
		dev.Profiles = append(dev.Profiles, p)
	}
	if len(dev.Profiles) == 0 {
		return dev, &Error{Op: "GetProfiles", XAddr: svcs.media, Kind: KindUnsupported, Detail: "camera has no media profiles"}
	}
	for i := range dev.Profiles {
		p := &dev.Profiles[i]
		if uri, err := c.StreamURI(ctx, p.Token); err != nil {
			warn("GetStreamUri %s: %v", p.Token, err)
		} else {
			p.StreamURI = uri
			if w := c.hostMismatch(uri, "stream URI of "+p.Token); w != "" {
				warn("%s", w)
			}
		}
		if uri, err := c.SnapshotURI(ctx, p.Token); err != nil {
			warn("GetSnapshotUri %s: %v", p.Token, err)
		} else {
			p.SnapshotURI = uri
		}
	}
	if m, _ := dev.MainSub(); m != nil && m.SnapshotURI != "" {
		dev.SnapshotURI = m.SnapshotURI
	} else {
		for _, p := range dev.Profiles {
			if p.SnapshotURI != "" {
				dev.SnapshotURI = p.SnapshotURI
				break
			}
		}
	}

	var ptzProfile string
	for _, p := range dev.Profiles {
		if p.PTZ {
			ptzProfile = p.Token
			break
		}
	}
	if svcs.ptz != "" && ptzProfile != "" {
		dev.PTZ = true
		var nodes nodesResponse
		if err := c.call(ctx, "GetNodes", svcPTZ, svcs.ptz, reqGetNodes(), &nodes, callOpts{}); err != nil {
			warn("GetNodes: %v", err)
		} else if len(nodes.PTZNode) == 0 {
			warn("GetNodes: camera lists no PTZ node")
		}
		if presets, err := c.Presets(ctx, ptzProfile); err != nil {
			warn("GetPresets %s: %v", ptzProfile, err)
		} else {
			dev.Presets = presets
		}
	}
	return dev, nil
}

// SyncClock reads the camera's clock (GetSystemDateAndTime) and keeps the
// offset used to stamp WS-Security tokens. The call goes out without
// credentials first, as the standard requires cameras to answer it
// unauthenticated, and is retried with them if the camera insists.
func (c *Client) SyncClock(ctx context.Context) (err error) {
	defer guard("GetSystemDateAndTime", c.xaddr, &err)
	var r systemDateAndTimeResponse
	sent := time.Now()
	err = c.call(ctx, "GetSystemDateAndTime", svcDevice, c.xaddr, reqGetSystemDateAndTime(), &r, callOpts{noWSSE: true})
	if KindOf(err) == KindAuth && c.opts.Username != "" {
		sent = time.Now()
		err = c.call(ctx, "GetSystemDateAndTime", svcDevice, c.xaddr, reqGetSystemDateAndTime(), &r, callOpts{})
	}
	if err != nil {
		return err
	}
	got := time.Now()
	sdt := r.SystemDateAndTime
	if sdt.UTCDateTime == nil {
		// Local time without a parseable zone would put the offset off by
		// hours, which is worse than none.
		return &Error{Op: "GetSystemDateAndTime", XAddr: c.xaddr, Kind: KindMalformed, Detail: "camera reports no UTC time"}
	}
	camera, err := sdt.UTCDateTime.value()
	if err != nil {
		return &Error{Op: "GetSystemDateAndTime", XAddr: c.xaddr, Kind: KindMalformed, Detail: err.Error()}
	}
	// The camera read its clock about halfway through the exchange; its
	// value is truncated to the second, hence the half second added.
	mid := sent.Add(got.Sub(sent) / 2)
	offset := camera.Add(500 * time.Millisecond).Sub(mid)
	c.mu.Lock()
	c.offset = offset
	c.mu.Unlock()
	return nil
}

// hostMismatch warns when a URI the camera gave points at another host
// than the one we reach it on (typical behind NAT).
func (c *Client) hostMismatch(uri, what string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Hostname() == "" || strings.EqualFold(u.Hostname(), c.base.Hostname()) {
		return ""
	}
	return fmt.Sprintf("%s points at host %s, not %s", what, u.Hostname(), c.base.Hostname())
}

// services finds the media and PTZ service addresses, once: from
// GetCapabilities, else GetServices, else assuming every service lives at
// the device address (common on small cameras).
func (c *Client) services(ctx context.Context) (serviceAddrs, error) {
	c.mu.Lock()
	if c.svcAddrs != nil {
		s := *c.svcAddrs
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()

	var s serviceAddrs
	var capsErr error
	var caps capabilitiesResponse
	if capsErr = c.call(ctx, "GetCapabilities", svcDevice, c.xaddr, reqGetCapabilities(), &caps, callOpts{}); capsErr == nil {
		media, ptz := caps.Capabilities.Media.XAddr, caps.Capabilities.PTZ.XAddr
		if strings.TrimSpace(media) == "" {
			media = caps.Capabilities.Extension.Media.XAddr
		}
		if strings.TrimSpace(ptz) == "" {
			ptz = caps.Capabilities.Extension.PTZ.XAddr
		}
		var w string
		if s.media, w = c.resolveServiceAddr(media, "media"); w != "" {
			s.warnings = append(s.warnings, w)
		}
		if s.ptz, w = c.resolveServiceAddr(ptz, "PTZ"); w != "" {
			s.warnings = append(s.warnings, w)
		}
	} else {
		switch KindOf(capsErr) {
		case KindAuth, KindTimeout, KindNetwork, KindCanceled:
			return s, capsErr
		}
		s.warnings = append(s.warnings, fmt.Sprintf("GetCapabilities: %v; trying GetServices", capsErr))
		var sr servicesResponse
		if err := c.call(ctx, "GetServices", svcDevice, c.xaddr, reqGetServices(), &sr, callOpts{}); err != nil {
			switch KindOf(err) {
			case KindAuth, KindTimeout, KindNetwork, KindCanceled:
				return s, err
			}
			s.warnings = append(s.warnings, fmt.Sprintf("GetServices: %v", err))
		}
		for _, sv := range sr.Service {
			ns := strings.TrimSpace(sv.Namespace)
			var w string
			switch {
			case ns == nsMedia && s.media == "":
				s.media, w = c.resolveServiceAddr(sv.XAddr, "media")
			case ns == nsPTZ && s.ptz == "":
				s.ptz, w = c.resolveServiceAddr(sv.XAddr, "PTZ")
			}
			if w != "" {
				s.warnings = append(s.warnings, w)
			}
		}
	}
	if s.media == "" {
		s.media = c.xaddr
		s.warnings = append(s.warnings, "camera named no media service; using the device address")
	}
	c.mu.Lock()
	c.svcAddrs = &s
	c.mu.Unlock()
	return s, nil
}
