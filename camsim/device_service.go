package camsim

import (
	"encoding/xml"
	"time"
)

// Device service (tds) operations.

type ttTime struct {
	Hour   int `xml:"tt:Hour"`
	Minute int `xml:"tt:Minute"`
	Second int `xml:"tt:Second"`
}

type ttDate struct {
	Year  int `xml:"tt:Year"`
	Month int `xml:"tt:Month"`
	Day   int `xml:"tt:Day"`
}

type ttDateTime struct {
	Time ttTime `xml:"tt:Time"`
	Date ttDate `xml:"tt:Date"`
}

func dateTimeOf(t time.Time) ttDateTime {
	return ttDateTime{Time: ttTime{t.Hour(), t.Minute(), t.Second()}, Date: ttDate{t.Year(), int(t.Month()), t.Day()}}
}

func (c *Camera) getSystemDateAndTime(*soapRequest) (any, *soapFault) {
	now := time.Now().Add(c.cfg.ClockOffset).UTC()
	type resp struct {
		XMLName xml.Name `xml:"tds:GetSystemDateAndTimeResponse"`
		SDT     struct {
			DateTimeType    string `xml:"tt:DateTimeType"`
			DaylightSavings bool   `xml:"tt:DaylightSavings"`
			TimeZone        struct {
				TZ string `xml:"tt:TZ"`
			} `xml:"tt:TimeZone"`
			UTCDateTime   ttDateTime `xml:"tt:UTCDateTime"`
			LocalDateTime ttDateTime `xml:"tt:LocalDateTime"`
		} `xml:"tds:SystemDateAndTime"`
	}
	var r resp
	r.SDT.DateTimeType = "Manual"
	r.SDT.TimeZone.TZ = "UTC0"
	r.SDT.UTCDateTime = dateTimeOf(now)
	r.SDT.LocalDateTime = dateTimeOf(now)
	return r, nil
}

func (c *Camera) getDeviceInformation(*soapRequest) (any, *soapFault) {
	return struct {
		XMLName         xml.Name `xml:"tds:GetDeviceInformationResponse"`
		Manufacturer    string   `xml:"tds:Manufacturer"`
		Model           string   `xml:"tds:Model"`
		FirmwareVersion string   `xml:"tds:FirmwareVersion"`
		SerialNumber    string   `xml:"tds:SerialNumber"`
		HardwareID      string   `xml:"tds:HardwareId"`
	}{Manufacturer: c.cfg.Manufacturer, Model: c.cfg.Model, FirmwareVersion: c.cfg.Firmware,
		SerialNumber: c.cfg.Serial, HardwareID: c.cfg.Model}, nil
}

type xaddrOnly struct {
	XAddr string `xml:"tt:XAddr"`
}

func (c *Camera) getCapabilities(*soapRequest) (any, *soapFault) {
	type version struct {
		Major int `xml:"tt:Major"`
		Minor int `xml:"tt:Minor"`
	}
	type resp struct {
		XMLName xml.Name `xml:"tds:GetCapabilitiesResponse"`
		Caps    struct {
			Device struct {
				XAddr  string `xml:"tt:XAddr"`
				System struct {
					DiscoveryResolve  bool      `xml:"tt:DiscoveryResolve"`
					DiscoveryBye      bool      `xml:"tt:DiscoveryBye"`
					RemoteDiscovery   bool      `xml:"tt:RemoteDiscovery"`
					SystemBackup      bool      `xml:"tt:SystemBackup"`
					SystemLogging     bool      `xml:"tt:SystemLogging"`
					FirmwareUpgrade   bool      `xml:"tt:FirmwareUpgrade"`
					SupportedVersions []version `xml:"tt:SupportedVersions"`
				} `xml:"tt:System"`
			} `xml:"tt:Device"`
			Media struct {
				XAddr     string `xml:"tt:XAddr"`
				Streaming struct {
					RTPMulticast bool `xml:"tt:RTPMulticast"`
					RTPTCP       bool `xml:"tt:RTP_TCP"`
					RTPRTSPTCP   bool `xml:"tt:RTP_RTSP_TCP"`
				} `xml:"tt:StreamingCapabilities"`
			} `xml:"tt:Media"`
			PTZ *xaddrOnly `xml:"tt:PTZ"`
		} `xml:"tds:Capabilities"`
	}
	var r resp
	r.Caps.Device.XAddr = c.XAddr()
	r.Caps.Device.System.DiscoveryBye = true
	r.Caps.Device.System.SupportedVersions = []version{{2, 0}, {2, 60}}
	r.Caps.Media.XAddr = c.serviceURL("media_service")
	r.Caps.Media.Streaming.RTPTCP = true
	r.Caps.Media.Streaming.RTPRTSPTCP = true
	if c.ptz != nil {
		r.Caps.PTZ = &xaddrOnly{c.serviceURL("ptz_service")}
	}
	return r, nil
}

func (c *Camera) getServices(*soapRequest) (any, *soapFault) {
	type service struct {
		Namespace string `xml:"tds:Namespace"`
		XAddr     string `xml:"tds:XAddr"`
		Version   struct {
			Major int `xml:"tt:Major"`
			Minor int `xml:"tt:Minor"`
		} `xml:"tds:Version"`
	}
	svc := func(ns, path string, major, minor int) service {
		s := service{Namespace: ns, XAddr: c.serviceURL(path)}
		s.Version.Major, s.Version.Minor = major, minor
		return s
	}
	list := []service{svc(nsDeviceWSDL, "device_service", 2, 60), svc(nsMedia, "media_service", 2, 60)}
	if c.ptz != nil {
		list = append(list, svc(nsPTZ, "ptz_service", 2, 60))
	}
	return struct {
		XMLName  xml.Name  `xml:"tds:GetServicesResponse"`
		Services []service `xml:"tds:Service"`
	}{Services: list}, nil
}

func (c *Camera) getScopes(*soapRequest) (any, *soapFault) {
	type scope struct {
		ScopeDef  string `xml:"tt:ScopeDef"`
		ScopeItem string `xml:"tt:ScopeItem"`
	}
	var list []scope
	for _, s := range c.scopes() {
		list = append(list, scope{"Fixed", s})
	}
	return struct {
		XMLName xml.Name `xml:"tds:GetScopesResponse"`
		Scopes  []scope  `xml:"tds:Scopes"`
	}{Scopes: list}, nil
}
