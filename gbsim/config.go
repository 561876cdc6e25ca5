package gbsim

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tianyan/vms/camsim"
)

// Faults switch on misbehaviour that real devices show.
type Faults struct {
	// DropKeepalives stops keepalive MESSAGEs (registration stays).
	DropKeepalives bool
	// WrongPassword answers the Digest challenge with a wrong password.
	WrongPassword bool
	// TCPOnly refuses UDP media offers with 488 and answers TCP ones.
	TCPOnly bool
	// IgnoreSSRC sends RTP with the device's own SSRC, not the offer's
	// y=, and says so in its answer (as some DVRs do).
	IgnoreSSRC bool
	// NATAddress, when set, is the "private" host:port the device puts in
	// Via and Contact instead of its real address, as a device behind NAT
	// does; the server must answer to the source address. In tests use a
	// 127/8 address other than the socket's (e.g. "127.0.0.254:5060") so a
	// server that wrongly dials it reaches nothing off the machine.
	NATAddress string
}

// DeviceConfig describes one simulated device.
type DeviceConfig struct {
	// ID is the device's 20-digit GB ID (type 118 for an NVR, 132 for an
	// IP camera).
	ID string
	// Name, Manufacturer, Model and Firmware answer DeviceInfo queries.
	Name, Manufacturer, Model, Firmware string

	// Server is the SIP server's host:port; ServerID its 20-digit ID;
	// Domain its 10-digit domain (the realm of the Digest challenge need
	// not equal it).
	Server   string
	ServerID string
	Domain   string
	Password string
	// Transport for SIP: "udp" (default) or "tcp".
	Transport string
	// LocalIP to bind (default 127.0.0.1).
	LocalIP string

	// Expires asked for in REGISTER (default 3600 s); the device
	// re-registers at 80 % of what the server grants.
	Expires time.Duration
	// KeepaliveInterval between keepalive MESSAGEs (default 60 s).
	KeepaliveInterval time.Duration
	// KeepaliveFailures after which the device registers again (default 3).
	KeepaliveFailures int
	// RetryInterval between failed registration attempts (default 10 s).
	RetryInterval time.Duration
	// RequestTimeout bounds each SIP transaction (default 10 s).
	RequestTimeout time.Duration
	// RebootTime is how long a TeleBoot or Restart keeps it silent
	// (default 3 s).
	RebootTime time.Duration

	// Channels are the catalog entries; when nil, NumChannels channels are
	// generated (see GenerateChannels).
	Channels    []ChannelConfig
	NumChannels int
	// NVR puts ParentID = device ID on channels, as an NVR does.
	NVR bool
	// Platform makes the device a lower-level platform (type 200): its
	// catalog also lists the civil-code nodes of its channels, a business
	// group (215) and a virtual organisation (216) under it, and every
	// channel sits in that organisation (ParentID and BusinessGroupID).
	Platform bool
	// PageSize is the number of items per catalog MESSAGE (default 1, as
	// Hikvision; Dahua sends about 5).
	PageSize int
	// GBK writes MANSCDP bodies in GB2312 (declared in the prolog).
	GBK bool
	// Quirks bend the MANSCDP the device writes as some firmware does.
	Quirks Quirks
	// Clip is the camsim clip streamed on INVITE (default camsim.ClipH264Sub).
	Clip string
	// Audio adds G.711 A-law (silence) to the stream, as cameras with a
	// microphone input send.
	Audio bool

	Faults Faults
	Logger *slog.Logger
}

// ChannelConfig describes one catalog entry.
type ChannelConfig struct {
	ID        string
	Name      string
	CivilCode string
	ParentID  string
	// BusinessGroupID is set on NVR channels placed in a virtual
	// organisation.
	BusinessGroupID string
	Longitude       float64
	Latitude        float64
	// PTZType: 1 dome, 2 half-dome, 3 fixed (0: not reported).
	PTZType int
	// Off reports the channel Status OFF.
	Off bool
}

func (c *DeviceConfig) setDefaults() error {
	if len(c.ID) != 20 {
		return fmt.Errorf("gbsim: device ID %q is not 20 digits", c.ID)
	}
	if c.Server == "" || c.ServerID == "" {
		return errors.New("gbsim: Server and ServerID are required")
	}
	if c.Domain == "" {
		c.Domain = c.ServerID[:10]
	}
	if c.Transport == "" {
		c.Transport = "udp"
	}
	if c.LocalIP == "" {
		c.LocalIP = "127.0.0.1"
	}
	if c.Expires <= 0 {
		c.Expires = time.Hour
	}
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = time.Minute
	}
	if c.KeepaliveFailures <= 0 {
		c.KeepaliveFailures = 3
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 10 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.RebootTime <= 0 {
		c.RebootTime = 3 * time.Second
	}
	if c.PageSize <= 0 {
		c.PageSize = 1
	}
	if c.Clip == "" {
		c.Clip = camsim.ClipH264Sub
	}
	if c.Name == "" {
		c.Name = "gbsim " + c.ID[14:]
	}
	if c.Manufacturer == "" {
		c.Manufacturer = "Hikvision"
	}
	if c.Model == "" {
		c.Model = "DS-7816N"
		if !c.NVR {
			c.Model = "DS-2DE4425IW"
		}
	}
	if c.Firmware == "" {
		c.Firmware = "V4.30.000"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Channels == nil {
		n := c.NumChannels
		if n <= 0 {
			n = 1
		}
		c.Channels = GenerateChannels(c.ID, 0, n, c.NVR)
	}
	return nil
}

// Sample civil codes (province 34, city 02, four counties), so a catalog
// spreads over several regions.
var sampleCivilCodes = []string{"340202", "340203", "340207", "340208"}

// GenerateChannels makes n channel entries for device id: channel IDs take
// the device's first 10 digits, type 131 (camera) and a 7-digit serial
// from first; civil codes, coordinates and PTZ types vary so that region,
// map and PTZ handling all get exercised. NVR channels carry ParentID.
func GenerateChannels(deviceID string, first, n int, nvr bool) []ChannelConfig {
	out := make([]ChannelConfig, n)
	for i := range out {
		serial := first + i
		ch := ChannelConfig{
			ID:        fmt.Sprintf("%s131%07d", deviceID[:10], serial%10_000_000),
			Name:      fmt.Sprintf("通道%d", i+1),
			CivilCode: sampleCivilCodes[serial%len(sampleCivilCodes)],
			Longitude: 117.20 + float64(serial%100)*0.001,
			Latitude:  31.80 + float64(serial%97)*0.001,
			PTZType:   3,
		}
		if serial%3 == 0 {
			ch.PTZType = 1
		}
		if nvr {
			ch.ParentID = deviceID
		}
		out[i] = ch
	}
	return out
}
