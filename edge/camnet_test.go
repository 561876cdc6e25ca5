package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/internal/netnstest"
)

// portListener is an open TCP port that counts the connections it gets.
type portListener struct {
	net.Listener
	conns atomic.Int32
}

func listenOn(t *testing.T, addr string) *portListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pl := &portListener{Listener: ln}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			pl.conns.Add(1)
			c.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return pl
}

func networks(t *testing.T, list string) *cameranet.Policy {
	t.Helper()
	p, err := cameranet.Parse(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHealthProbeConnectsOnlyInsideTheCameraNetworks is the agent's half
// of the camera URL door: an open port made a bound point "online". Now a
// port outside the agent's networks is never dialled and the point is
// unreachable, with the rule as its error; inside, the probe still works.
func TestHealthProbeConnectsOnlyInsideTheCameraNetworks(t *testing.T) {
	port := listenOn(t, "127.0.0.1:0")
	binding := []agentlink.PointBinding{{Point: "p1", Camera: "cam-1", Source: "rtsp://admin:pw@" + port.Addr().String() + "/main"}}

	a := New(Config{Credentials: Credentials{AgentID: "agt-h"}, CameraNetworks: networks(t, "10.0.0.0/8"), Logger: testLogger(t)})
	a.bindings = binding
	h := a.health(ctxFor(t, 10*time.Second))
	if h.Points["p1"] || len(h.Cameras) != 1 || h.Cameras[0].Reachable {
		t.Fatalf("health outside the networks: %+v", h)
	}
	if e := h.Cameras[0].LastError; !strings.Contains(e, "camera address "+port.Addr().String()+" is loopback; not inside --camera-networks (10.0.0.0/8)") ||
		strings.Contains(e, "pw") {
		t.Fatalf("last error %q", e)
	}
	if n := port.conns.Load(); n != 0 {
		t.Fatalf("the health probe connected %d times outside the networks", n)
	}

	a = New(Config{Credentials: Credentials{AgentID: "agt-h"}, CameraNetworks: loopbackNetworks(t), Logger: testLogger(t)})
	a.bindings = binding
	if h := a.health(ctxFor(t, 10*time.Second)); !h.Points["p1"] {
		t.Fatalf("health with loopback listed: %+v", h)
	}
	// The listener counts once its Accept returns, a moment after the dial.
	eventually(t, 5*time.Second, "the probe's one connection", func() bool { return port.conns.Load() == 1 })
}

// TestRelayRefusesACameraOutsideTheCameraNetworks: the centre asks for a
// relay of a source outside the agent's networks; the relay retries with
// the rule as its error and never connects.
func TestRelayRefusesACameraOutsideTheCameraNetworks(t *testing.T) {
	port := listenOn(t, "127.0.0.1:0")
	centre := listenOn(t, "127.0.0.1:0")
	states := make(chan agentlink.RelayState, 16)
	r := startRelay(agentlink.RelayStart{RelayKey: agentlink.RelayKey{Point: "p1", Profile: "main"},
		Source: "rtsp://" + port.Addr().String() + "/main", PublishURL: "rtsp://" + centre.Addr().String() + "/p1"},
		networks(t, "10.0.0.0/8").DialContext, testLogger(t), func(st agentlink.RelayState) {
			select {
			case states <- st:
			default:
			}
		}, nil)
	defer r.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case st := <-states:
			if st.State != agentlink.RelayRetrying {
				continue
			}
			if !strings.Contains(st.Error, "is loopback; not inside --camera-networks (10.0.0.0/8)") {
				t.Fatalf("relay error %q does not name the rule", st.Error)
			}
			if n := port.conns.Load() + centre.conns.Load(); n != 0 {
				t.Fatalf("%d connections made for a refused camera", n)
			}
			return
		case <-deadline:
			t.Fatal("the relay never reported the refusal")
		}
	}
}

// TestProvisionRefusesAddressesOutsideTheCameraNetworks: a technician's
// address outside is refused before anything is sent; a camera inside that
// redirects its device service outside is refused at the redirect.
func TestProvisionRefusesAddressesOutsideTheCameraNetworks(t *testing.T) {
	outside := listenOn(t, "127.0.0.2:0")
	book := NewCameraBook("", testLogger(t))
	book.SetCameraNetworks(networks(t, "127.0.0.1/32"))
	ctx := ctxFor(t, 20*time.Second)

	for xaddr, rule := range map[string]string{
		"http://" + outside.Addr().String() + "/onvif/device_service": "camera URL host 127.0.0.2 is loopback; not inside --camera-networks (127.0.0.1/32)",
		outside.Addr().String():                      "camera URL host 127.0.0.2 is loopback",
		"169.254.169.254":                            "camera URL host 169.254.169.254 is link-local; not inside --camera-networks (127.0.0.1/32)",
		"http://[fe80::1%25lo]/onvif/device_service": "is link-local",
	} {
		_, err := book.Provision(ctx, "", xaddr, camUser, camPass)
		if !errors.Is(err, cameranet.ErrRefused) || !strings.Contains(err.Error(), rule) {
			t.Errorf("Provision(%s): %v, want a refusal saying %q", xaddr, err, rule)
		}
	}

	// A device service on an allowed address that redirects outside.
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+outside.Addr().String()+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	_, err := book.Provision(ctx, "", redirect.URL+"/onvif/device_service", camUser, camPass)
	if !errors.Is(err, cameranet.ErrRefused) || !strings.Contains(err.Error(), "camera address "+outside.Addr().String()+" is loopback") {
		t.Fatalf("a redirect outside the networks: %v", err)
	}
	if n := outside.conns.Load(); n != 0 {
		t.Fatalf("the address outside got %d connections", n)
	}
	if n := len(book.List()); n != 0 {
		t.Fatalf("refused cameras entered the book: %d", n)
	}
}

// TestBookWithoutNetworksUsesTheInterfacesOfItsHost: an agent given no
// --camera-networks reaches the LAN of its interfaces, never loopback. It
// runs in a network namespace whose one LAN is 10.231.1.0/24.
func TestBookWithoutNetworksUsesTheInterfacesOfItsHost(t *testing.T) {
	lan := netnstest.New(t, 1)
	book := NewCameraBook("", testLogger(t))
	var nets string
	var refused error
	err := lan.Hosts[0].Do(func() error {
		// The default is settled on first use, here inside the namespace.
		nets = book.CameraNetworks().String()
		_, refused = book.Provision(context.Background(), "", "http://127.0.0.1:1/onvif/device_service", camUser, camPass)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if nets != netnstest.Prefix.String() {
		t.Fatalf("default camera networks %s, want %s", nets, netnstest.Prefix)
	}
	if !errors.Is(refused, cameranet.ErrRefused) || !strings.Contains(refused.Error(), "not inside --camera-networks (10.231.1.0/24)") {
		t.Fatalf("loopback under the default: %v", refused)
	}
}
