package server

import (
	"context"
	"fmt"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/gb28181"
)

// gbThrottle is the REGISTER password throttle: 10 wrong answers lock a device ID for 15 minutes,
// while the per-address limit is high, since many devices of one site share a NAT address and one
// misconfigured device must not lock out its neighbours.
func gbThrottle() *accounts.Throttle {
	return accounts.NewThrottle(accounts.ThrottleConfig{
		PerUser: accounts.ThrottleLimit{Failures: 10, Window: 15 * time.Minute, Lockout: 15 * time.Minute},
		PerIP:   accounts.ThrottleLimit{Failures: 2000, Window: 15 * time.Minute, Lockout: 15 * time.Minute},
	})
}

// startGB starts the GB/T 28181 server when cfg.SIPAddr is set: devices register to it and their
// channels become points that the hub serves like any other.
func (a *App) startGB(cfg Config) error {
	if cfg.SIPAddr == "" {
		return nil
	}
	if cfg.SIPPassword == "" {
		a.log.Warn("gb28181: no --sip-password: only devices given their own password (API) can register")
	}
	gb, err := gb28181.New(gb28181.Config{
		ID: cfg.SIPID, Domain: cfg.SIPDomain, Listen: cfg.SIPAddr, Advertise: cfg.SIPHost, Password: cfg.SIPPassword,
		KeepaliveInterval: cfg.SIPKeepalive, CatalogInterval: cfg.SIPCatalogInterval, District: cfg.SIPDistrict,
		DB: a.DB, Audit: a.Audit, Throttle: gbThrottle(), Catalog: a.Catalog, OnPointChanged: a.syncPoint,
		Logger: a.log.With("component", "gb28181"),
	})
	if err != nil {
		return err
	}
	if err := gb.Start(context.Background()); err != nil {
		gb.Close()
		return fmt.Errorf("sip: %w", err)
	}
	a.GB = gb
	a.GBLive = gb28181.NewLive(gb, gb28181.LiveConfig{MediaHost: cfg.SIPHost,
		Logger: a.log.With("component", "gb28181-live")})
	return nil
}

// SIPAddr is where GB/T 28181 devices register (UDP and TCP share the port); "" when off.
func (a *App) SIPAddr() string {
	if a.GB == nil {
		return ""
	}
	return a.GB.UDPAddr().String()
}
