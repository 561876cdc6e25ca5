package gbsim

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// FleetConfig describes many devices run in one process.
type FleetConfig struct {
	// Template is copied to every device; its ID, Channels and
	// NumChannels are ignored.
	Template DeviceConfig
	// Devices is the number of devices.
	Devices int
	// ChannelsPerDevice, or TotalChannels spread as evenly as possible
	// (13,635 over 1,000 gives 635 devices of 14 and 365 of 13).
	ChannelsPerDevice int
	TotalChannels     int
	// FirstIndex numbers the first device (IDs are the domain, type 200
	// for platforms, 118 for NVRs or 132 for cameras, and a 7-digit index).
	FirstIndex int
	// StartSpread delays each device's start by a random fraction of it,
	// as a site powering up does; 0 starts all at once.
	StartSpread time.Duration
}

// Fleet is a set of simulated devices.
type Fleet struct {
	Devices []*Device
	spread  time.Duration
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewFleet builds cfg.Devices stopped devices with unique device and
// channel IDs.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.Devices <= 0 {
		return nil, fmt.Errorf("gbsim: fleet of %d devices", cfg.Devices)
	}
	domain := cfg.Template.Domain
	if domain == "" && len(cfg.Template.ServerID) >= 10 {
		domain = cfg.Template.ServerID[:10]
	}
	if len(domain) != 10 {
		return nil, fmt.Errorf("gbsim: domain %q is not 10 digits", domain)
	}
	typ := "132"
	switch {
	case cfg.Template.Platform:
		typ = "200"
	case cfg.Template.NVR:
		typ = "118"
	}
	f := &Fleet{spread: cfg.StartSpread}
	nextChannel := cfg.FirstIndex * max(cfg.ChannelsPerDevice, 1)
	for i := 0; i < cfg.Devices; i++ {
		n := cfg.ChannelsPerDevice
		if cfg.TotalChannels > 0 {
			n = cfg.TotalChannels / cfg.Devices
			if i < cfg.TotalChannels%cfg.Devices {
				n++
			}
		}
		n = max(n, 1)
		dc := cfg.Template
		dc.ID = fmt.Sprintf("%s%s%07d", domain, typ, cfg.FirstIndex+i)
		dc.Channels = GenerateChannels(dc.ID, nextChannel, n, dc.NVR)
		nextChannel += n
		d, err := NewDevice(dc)
		if err != nil {
			return nil, err
		}
		f.Devices = append(f.Devices, d)
	}
	return f, nil
}

// Start starts every device (spread over StartSpread).
func (f *Fleet) Start(ctx context.Context) {
	ctx, f.cancel = context.WithCancel(ctx)
	for _, d := range f.Devices {
		delay := jitter(f.spread)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if delay > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(delay):
				}
			}
			d.Start(ctx)
		}()
	}
	f.wg.Wait()
}

// Stop stops every device at once (each unregisters) and waits for them.
func (f *Fleet) Stop() {
	if f.cancel != nil {
		f.cancel()
	}
	var wg sync.WaitGroup
	for _, d := range f.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Stop()
		}()
	}
	wg.Wait()
}

// Registered counts devices holding a registration.
func (f *Fleet) Registered() int {
	n := 0
	for _, d := range f.Devices {
		if d.Registered() {
			n++
		}
	}
	return n
}

// Channels counts the fleet's channels.
func (f *Fleet) Channels() int {
	n := 0
	for _, d := range f.Devices {
		n += len(d.Channels())
	}
	return n
}

// Stats sums the devices' counters.
func (f *Fleet) Stats() Stats {
	var s Stats
	for _, d := range f.Devices {
		x := d.Stats()
		s.Registrations += x.Registrations
		s.AuthFailures += x.AuthFailures
		s.Keepalives += x.Keepalives
		s.CatalogQueries += x.CatalogQueries
		s.CatalogPages += x.CatalogPages
		s.Invites += x.Invites
		s.Refused += x.Refused
	}
	return s
}
