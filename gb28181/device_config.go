package gb28181

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Bounds on a keepalive interval a device reports: outside them the configured one applies.
const (
	minReportedKeepalive = 5 * time.Second
	maxReportedKeepalive = time.Hour
)

// queryKeepaliveInterval asks the device its heartbeat interval (ConfigDownload BasicParam,
// GB/T 28181-2016 §A.2.4.7) so that "3 missed keepalives" counts its own intervals. Devices that do
// not answer keep the configured interval.
func (s *Server) queryKeepaliveInterval(ctx context.Context, id string) {
	peer, err := s.DevicePeer(id)
	if err != nil {
		return
	}
	sn := NextSN()
	got := make(chan time.Duration, 1)
	cancel := s.Expect(id, "ConfigDownload", sn, func(r *Request) {
		if iv, ok := heartBeatInterval(r.Body()); ok {
			select {
			case got <- iv:
			default:
			}
		}
	})
	defer cancel()
	cs := s.charsetFor(id)
	body := fmt.Sprintf("<?xml version=\"1.0\" encoding=\"%s\"?>\n<Query>\n<CmdType>ConfigDownload</CmdType>\n<SN>%d</SN>\n<DeviceID>%s</DeviceID>\n<ConfigType>BasicParam</ConfigType>\n</Query>\n", cs, sn, id)
	if err := s.SendMANSCDP(ctx, peer, "", []byte(body)); err != nil {
		return
	}
	t := time.NewTimer(s.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case iv := <-got:
		if iv < minReportedKeepalive || iv > maxReportedKeepalive {
			return
		}
		s.devices.Update(id, false, func(d *Device) DeviceEventKind {
			if d.KeepaliveInterval == iv {
				return 0
			}
			d.KeepaliveInterval = iv
			return DeviceUpdated
		})
		s.log.Debug("gb28181: device keepalive interval", "device", id, "interval", iv)
	case <-t.C:
	case <-ctx.Done():
	}
}

// heartBeatInterval reads BasicParam/HeartBeatInterval (seconds) from a ConfigDownload answer. The
// field is ASCII in every charset, so the body is read without decoding it.
func heartBeatInterval(body []byte) (time.Duration, bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	in := false
	for i := 0; i < 4096; i++ {
		tok, err := d.Token()
		if err != nil {
			return 0, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			in = strings.EqualFold(t.Name.Local, "HeartBeatInterval")
		case xml.EndElement:
			in = false
		case xml.CharData:
			if in {
				n, err := strconv.Atoi(strings.TrimSpace(string(t)))
				if err != nil || n <= 0 {
					return 0, false
				}
				return time.Duration(n) * time.Second, true
			}
		}
	}
	return 0, false
}
