package gb28181

import (
	"testing"
	"time"

	"github.com/tianyan/vms/gbsim"
)

// TestADeviceSilentToConfigDownloadHasItsCatalogAtOnce: many devices (and
// gbsim) never answer the ConfigDownload BasicParam query; its wait (the
// whole RequestTimeout) must not hold back the catalog sync, or every such
// device's channels appear RequestTimeout late.
func TestADeviceSilentToConfigDownloadHasItsCatalogAtOnce(t *testing.T) {
	const requestTimeout = 30 * time.Second
	w := newCatalogWorld(t, func(c *Config) { c.RequestTimeout = requestTimeout })
	start := time.Now()
	dev := simDevice(t, w.s, gbsim.DeviceConfig{ID: "44030700001180000201", NVR: true, Channels: gbsim.GenerateChannels("44030700001180000201", 200, 3, true)})
	// waitPoints gives up after 10 s, a third of the query's timeout.
	w.waitPoints(t, dev.ID(), 3)
	t.Logf("catalog synced %v after the device started", time.Since(start).Round(time.Millisecond))
	if d, _ := w.s.Devices().Get(dev.ID()); d.KeepaliveInterval != 0 {
		t.Fatalf("a device that never answered has keepalive interval %v", d.KeepaliveInterval)
	}
}
