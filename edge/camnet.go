package edge

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/tianyan/vms/cameranet"
	"github.com/tianyan/vms/onvif"
)

// cameraNets is how the camera book reaches cameras: only hosts inside the
// agent's camera networks, for every ONVIF call, snapshot, relay and
// health probe.
type cameraNets struct {
	mu     sync.Mutex
	policy *cameranet.Policy
	hc     *http.Client
}

// SetCameraNetworks sets the hosts the agent may connect to for cameras
// (--camera-networks). Until it is called the book uses
// cameranet.AgentDefault, the networks of this host's interfaces.
func (b *CameraBook) SetCameraNetworks(p *cameranet.Policy) {
	b.nets.mu.Lock()
	defer b.nets.mu.Unlock()
	b.nets.policy = p
	b.nets.hc = &http.Client{Transport: p.HTTPTransport()}
}

// CameraNetworks returns the policy the book connects through.
func (b *CameraBook) CameraNetworks() *cameranet.Policy {
	p, _ := b.cameraNets()
	return p
}

// cameraNets returns the policy and its HTTP client, settling on the
// default the first time.
func (b *CameraBook) cameraNets() (*cameranet.Policy, *http.Client) {
	b.nets.mu.Lock()
	defer b.nets.mu.Unlock()
	if b.nets.policy == nil {
		p, err := cameranet.AgentDefault()
		if err != nil {
			// Deny rather than guess: an empty policy reaches no camera.
			b.log.Error("no camera networks; no camera will be reached", "err", err)
			p = cameranet.New(nil)
		}
		b.nets.policy = p
		b.nets.hc = &http.Client{Transport: p.HTTPTransport()}
	}
	return b.nets.policy, b.nets.hc
}

// checkXAddr refuses a device address outside the camera networks before
// anything is sent there, with the rule in the error.
func (b *CameraBook) checkXAddr(ctx context.Context, xaddr string) error {
	x := strings.TrimSpace(xaddr)
	if !strings.Contains(x, "://") {
		x = "http://" + x
	}
	return b.CameraNetworks().CheckURL(ctx, x)
}

// onvifClient is a client for a camera that connects only inside the
// camera networks (the camera's service addresses, redirects and snapshot
// URIs included: they all go through the guarded dialer).
func (b *CameraBook) onvifClient(xaddr, user, pass string) (*onvif.Client, error) {
	_, hc := b.cameraNets()
	return onvif.NewClient(xaddr, onvif.ClientOptions{Username: user, Password: pass, HTTPClient: hc, Logger: b.log})
}

// dialFunc opens a connection, as net.Dialer.DialContext does.
type dialFunc = func(ctx context.Context, network, address string) (net.Conn, error)
