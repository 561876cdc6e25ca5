package cameranet

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// DialTimeout bounds one connection attempt of Dialer.
const DialTimeout = 10 * time.Second

// Dialer returns a dialer that refuses, at connect time, every address
// outside the policy. The check runs in the dialer's Control hook on the
// address the socket is about to connect to, after name resolution and for
// each address a name resolved to, so DNS cannot rebind around it.
func (p *Policy) Dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:        DialTimeout,
		KeepAlive:      30 * time.Second,
		Resolver:       p.resolver,
		ControlContext: p.control,
	}
}

// DialContext dials address through Dialer; it has the signature of
// http.Transport.DialContext and gortsplib.Client.DialContext.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return p.Dialer().DialContext(ctx, network, address)
}

func (p *Policy) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Unix sockets and anything else without an IP are no camera.
		return &RefusedError{Subject: "camera address " + address, Rule: "is not an IP address and port"}
	}
	return p.CheckAddrPort(ap)
}

// HTTPTransport returns a transport for ONVIF and snapshot requests that
// connects only through the policy's dialer. It never uses a proxy: the
// dialer would then judge the proxy's address, not the camera's.
func (p *Policy) HTTPTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           p.DialContext,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
