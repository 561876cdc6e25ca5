package server

import (
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/streaming"
)

// sourceOf is what the hub plays for one of p's sources: a GB/T 28181
// channel is an external source run by the live part of the GB server
// (INVITE on the first reader, BYE when idle), on demand whatever the
// point says; anything else as sourceConfig says.
func (a *App) sourceOf(p catalog.Point, s catalog.Source) streaming.SourceConfig {
	if p.Agent != "" || s.Type != catalog.SourceGB28181 {
		return sourceConfig(p, s)
	}
	if a.GBLive == nil {
		// Without --sip nothing can play the channel: readers get the
		// start timeout.
		return streaming.SourceConfig{Type: streaming.SourceExternal, OnDemand: true}
	}
	return streaming.SourceConfig{Type: streaming.SourceExternal, External: a.GBLive.Source(s.Device, p.ID), OnDemand: true}
}
