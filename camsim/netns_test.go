package camsim

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/tianyan/vms/internal/netnstest"
)

// TestCamerasInNetworkNamespacesAreFoundAndStream puts two cameras on
// their own hosts of a namespace LAN and a client on a third: a multicast
// probe from the client finds both at their own addresses, a unicast probe
// finds one, and SOAP and RTSP work across the LAN.
func TestCamerasInNetworkNamespacesAreFoundAndStream(t *testing.T) {
	lan := netnstest.New(t, 3)
	client := lan.Hosts[0]
	var cams []*Camera
	for _, h := range lan.Hosts[1:] {
		var cam *Camera
		err := h.Do(func() error {
			cfg := authedConfig()
			cfg.Name = "cam-" + h.IP.String()
			cfg.DiscoveryIP = h.IP.String()
			cfg.ProbeReplyDelay = 20 * time.Millisecond
			cfg.PTZ = true
			cfg.Logger = testLogger(t)
			var err error
			cam, err = StartCamera(cfg)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cam.Close)
		cams = append(cams, cam)
	}

	conn, err := client.ListenPacket("udp4", client.IP.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ifi, err := client.Interface()
	if err != nil {
		t.Fatal(err)
	}
	p := prober(t, conn, ifi)
	id := "urn:uuid:" + uuid.NewString()
	if _, err := p.WriteTo(probeMessage(id, "dn:NetworkVideoTransmitter", ""), nil, groupAddr); err != nil {
		t.Fatal(err)
	}
	found := map[string]string{} // endpoint → reply source
	readMessages(t, conn, func(ms []wsdMessageIn) bool {
		if len(ms) > 0 {
			m := ms[len(ms)-1]
			for _, e := range m.Body.Matches {
				if m.Header.RelatesTo == id {
					found[e.EPR] = m.from.String()
				}
			}
		}
		return len(found) == len(cams)
	})
	for i, cam := range cams {
		host := lan.Hosts[i+1]
		if from := found[cam.Endpoint()]; from != host.IP.String()+":3702" {
			t.Errorf("%s answered from %q, want %s:3702", cam.Name(), from, host.IP)
		}
		if want := "http://" + host.IP.String() + ":"; cam.XAddr()[:len(want)] != want {
			t.Errorf("XAddr %s is not on the camera's own address", cam.XAddr())
		}
	}

	// Unicast probe, as a subnet sweep sends.
	to := &net.UDPAddr{IP: net.IP(lan.Hosts[2].IP.AsSlice()), Port: 3702}
	id = "urn:uuid:" + uuid.NewString()
	if _, err := conn.WriteTo(probeMessage(id, "", ""), to); err != nil {
		t.Fatal(err)
	}
	ms := readMessages(t, conn, func(ms []wsdMessageIn) bool {
		return len(ms) > 0 && ms[len(ms)-1].Header.RelatesTo == id
	})
	if m := ms[len(ms)-1]; len(m.Body.Matches) != 1 || m.Body.Matches[0].EPR != cams[1].Endpoint() {
		t.Fatalf("unicast probe to %s answered by %+v", to, m.Body.Matches)
	}

	// SOAP and RTSP from the client's namespace. Every dial goes through
	// it: from the host's namespace these addresses lead nowhere we own.
	c := newSOAPClient(t, cams[0].XAddr(), testUser, testPass)
	c.http.Transport.(*http.Transport).DialContext = client.DialContext
	var info deviceInfo
	c.mustCall(opDeviceInfo, &info)
	if info.Model != "CamSim-1" {
		t.Errorf("device information %+v", info)
	}
	uri := streamURI(t, c, "sub")
	r, err := openReader(t, uri, testUser, testPass, client.DialContext)
	if err != nil {
		t.Fatalf("reading %s: %v", uri, err)
	}
	r.waitFrames(t, 5)
}
