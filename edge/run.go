package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tianyan/vms/agentlink"
)

// RunOptions are the parts of `edge-agent run` around the control link.
type RunOptions struct {
	// UIAddr serves the technician's provisioning page ("" for none).
	UIAddr string
	// UIListener, if set, serves the page instead of listening on UIAddr
	// (a caller that must know the port before the agent starts).
	UIListener net.Listener
	// RediscoverEvery repeats camera discovery (0: at start and on request only).
	RediscoverEvery time.Duration
	Logger          *slog.Logger
}

// RunAll runs the agent, periodic discovery and the provisioning page
// until ctx ends, and waits for all of them.
func RunAll(ctx context.Context, a *Agent, o RunOptions) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)

	wg.Add(1)
	go func() {
		defer wg.Done()
		errs <- a.Run(ctx)
		cancel()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			dctx, dcancel := context.WithTimeout(ctx, time.Minute)
			if err := a.cfg.Cameras.Rediscover(dctx); err != nil && ctx.Err() == nil {
				o.Logger.Warn("discovery failed", "err", err)
			}
			dcancel()
			a.SendInventory()
			if o.RediscoverEvery <= 0 {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(o.RediscoverEvery):
			}
		}
	}()
	if o.UIAddr != "" || o.UIListener != nil {
		ln := o.UIListener
		if ln == nil {
			var err error
			if ln, err = net.Listen("tcp", o.UIAddr); err != nil {
				cancel()
				wg.Wait()
				return err
			}
		}
		// The page is no camera, whatever the camera networks list.
		a.cfg.Cameras.CameraNetworks().AddListeners(ln.Addr().String())
		srv := &http.Server{Handler: NewProvisioningUI(a, o.Logger).Handler(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
		o.Logger.Info("provisioning page", "url", "http://"+ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
				cancel()
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// SendInventory reports the camera book to the centre if the link is up.
func (a *Agent) SendInventory() {
	a.mu.Lock()
	send := a.send
	a.mu.Unlock()
	if send != nil {
		send(agentlink.TypeInventory, "", agentlink.Inventory{Cameras: a.cfg.Cameras.Inventory()})
	}
}
