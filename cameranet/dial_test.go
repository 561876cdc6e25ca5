package cameranet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianyan/vms/internal/fakedns"
)

// countingListener accepts on 127.0.0.1 and counts connections, closing
// each at once: the far end of a dial that must not happen.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func listen(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cl.accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return cl
}

func (cl *countingListener) port() string {
	return strings.TrimPrefix(cl.Addr().String(), "127.0.0.1:")
}

func TestDialerRefusesAddressesOutsideBeforeConnecting(t *testing.T) {
	cam := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err := CentreDefault().DialContext(ctx, "tcp", cam.Addr().String())
	refusal(t, "dial loopback under the centre default", err, "camera address "+cam.Addr().String()+" is loopback")

	lo := mustParse(t, "127.0.0.0/8")
	c, err := lo.DialContext(ctx, "tcp", cam.Addr().String())
	if err != nil {
		t.Fatalf("127.0.0.0/8 listed: %v", err)
	}
	c.Close()
	lo.AddListeners(cam.Addr().String())
	_, err = lo.DialContext(ctx, "tcp", cam.Addr().String())
	refusal(t, "dial our own listener", err, "own listener")
	_, err = lo.DialContext(ctx, "unix", "/tmp/x.sock")
	refusal(t, "unix socket", err, "is not an IP address and port")

	// Only the one dial allowed reached the listener (counted once its
	// Accept returns, a moment after the dial).
	deadline := time.Now().Add(2 * time.Second)
	for cam.accepted.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := cam.accepted.Load(); n != 1 {
		t.Fatalf("the listener accepted %d connections, want 1 (the allowed one)", n)
	}
}

// TestDialerChecksTheResolvedAddressSoDNSCannotRebind: a camera name
// resolves inside the camera networks when the URL is checked, and to
// loopback when it is dialled. The dialer judges the address it connects
// to, so the connection is refused and the loopback listener sees nothing.
func TestDialerChecksTheResolvedAddressSoDNSCannotRebind(t *testing.T) {
	cam := listen(t)
	dns := fakedns.Start(t)
	p := mustParse(t, "10.0.0.0/8").WithResolver(dns.Resolver())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const name = "cam7.rebind.test"
	dns.Set(name, netip.MustParseAddr("10.0.0.7"))
	if err := p.CheckURL(ctx, "rtsp://"+name+":"+cam.port()+"/main"); err != nil {
		t.Fatalf("the name resolved inside the camera networks, yet: %v", err)
	}
	dns.Set(name, netip.MustParseAddr("127.0.0.1"))
	_, err := p.DialContext(ctx, "tcp", net.JoinHostPort(name, cam.port()))
	refusal(t, "dial after rebinding", err, "127.0.0.1", "is loopback; not inside --camera-networks (10.0.0.0/8)")
	if dns.Queries(name) < 2 {
		t.Fatalf("the dialer did not resolve the name again (%d queries)", dns.Queries(name))
	}
	// The same name and port, dialled without the policy, does connect:
	// only the check stood between the dial and the listener.
	plain := &net.Dialer{Resolver: dns.Resolver()}
	c, err := plain.DialContext(ctx, "tcp", net.JoinHostPort(name, cam.port()))
	if err != nil {
		t.Fatalf("control dial: %v", err)
	}
	c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for cam.accepted.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := cam.accepted.Load(); n != 1 {
		t.Fatalf("the loopback listener accepted %d connections, want 1 (the unguarded control dial only)", n)
	}
}

func TestHTTPTransportRefusesOutsideAndUsesNoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://10.0.0.1:3128")
	tr := CentreDefault().HTTPTransport()
	defer tr.CloseIdleConnections()
	if tr.Proxy != nil {
		t.Fatal("the camera transport uses a proxy: the dialer would judge the proxy, not the camera")
	}
	cam := listen(t)
	req, _ := newRequest("http://" + cam.Addr().String() + "/onvif/device_service")
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("RoundTrip to loopback: %v, want a refusal", err)
	}
}
