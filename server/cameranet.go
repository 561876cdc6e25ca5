package server

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/tianyan/vms/cameranet"
)

// cameraURLCheckTimeout bounds resolving a camera URL's host name while a
// point is created, changed or imported.
const cameraURLCheckTimeout = 3 * time.Second

// cameraNetworks builds the policy of --camera-networks (the private
// ranges when none are configured).
func cameraNetworks(cfg Config) (*cameranet.Policy, error) {
	pol := cameranet.CentreDefault()
	if len(cfg.CameraNetworks) > 0 {
		var err error
		if pol, err = cameranet.ParseList(cfg.CameraNetworks); err != nil {
			return nil, fmt.Errorf("camera networks: %w", err)
		}
	}
	if cfg.CameraResolver != nil {
		pol = pol.WithResolver(cfg.CameraResolver)
	}
	return pol, nil
}

// checkCameraURL is the catalog's source check: the URL of a point the
// centre pulls must name a host inside the camera networks.
func (a *App) checkCameraURL(rawURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cameraURLCheckTimeout)
	defer cancel()
	return a.CameraNetworks.CheckURL(ctx, rawURL)
}

// webRTCAddr is the ICE-TCP listener (the WebRTC port on the configured host).
func (a *App) webRTCAddr() string {
	host, _, err := net.SplitHostPort(a.cfg.WebRTCAddr)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(a.WebRTC.Port()))
}
