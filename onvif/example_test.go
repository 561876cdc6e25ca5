package onvif_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tianyan/vms/onvif"
)

// Find cameras on the local segment, then ask each for its streams.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found, err := onvif.Discover(ctx, onvif.DiscoverOptions{Timeout: 3 * time.Second})
	if err != nil {
		fmt.Println("discovery:", err)
		return
	}
	for _, f := range found {
		if len(f.XAddrs) == 0 {
			continue
		}
		c, err := onvif.NewClient(f.XAddrs[0], onvif.ClientOptions{Username: "admin", Password: "secret"})
		if err != nil {
			continue
		}
		dev, err := c.Probe(ctx)
		if onvif.KindOf(err) == onvif.KindAuth {
			fmt.Println(f.Name, "needs another password")
			continue
		}
		if err != nil {
			fmt.Println(f.Name, err)
			continue
		}
		main, sub := dev.MainSub()
		fmt.Println(dev.Manufacturer, dev.Model, main.StreamURI)
		if sub != nil {
			fmt.Println("  sub stream:", sub.StreamURI)
		}
	}
}
