package streaming

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/internal/backoff"
)

// Backoff bounds for reconnecting to a camera.
const (
	pullBackoffMin = 500 * time.Millisecond
	pullBackoffMax = 15 * time.Second
)

// puller pulls a camera's RTSP stream and reconnects with jittered backoff
// until it is closed.
//
// The same puller runs an external source (SourceExternal): its session
// is the source's Run, and ctx, cancelled by close, is the Run context.
type puller struct {
	path   *path
	cfg    SourceConfig
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
}

func (pl *puller) close() {
	close(pl.stop)
	pl.cancel()
	// The goroutine exits promptly: the client is closed from run's select
	// (an external source returns once its context ends).
}

// RedactURL removes credentials from a URL for logs and errors.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable url)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

func (pl *puller) run() {
	defer close(pl.done)
	log := pl.path.hub.log.With("point", pl.path.id)
	session, msg := pl.session, "camera connection lost, retrying"
	if pl.cfg.Type == SourceExternal {
		session, msg = pl.external, "external source lost, retrying"
	} else {
		log = log.With("url", RedactURL(pl.cfg.URL))
	}
	bo := backoff.Backoff{Min: pullBackoffMin, Max: pullBackoffMax, ResetAfter: 10 * time.Second}
	for {
		started := time.Now()
		err := session()
		pl.path.onSourceLost(pl, err)
		select {
		case <-pl.stop:
			return
		default:
		}
		// Full jitter keeps 13,000 cameras from reconnecting in lockstep.
		wait := bo.Next(time.Since(started))
		log.Warn(msg, "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-pl.stop:
			return
		case <-time.After(wait):
		}
	}
}

// session runs one connection to the camera until it fails or pl.stop closes.
func (pl *puller) session() error {
	u, err := base.ParseURL(pl.cfg.URL)
	if err != nil {
		return fmt.Errorf("bad camera URL: %w", err)
	}
	transport := gortsplib.TransportTCP
	if pl.cfg.Transport == "udp" {
		transport = gortsplib.TransportUDP
	}
	timeout := pl.path.hub.cfg.SourceReadTimeout
	c := &gortsplib.Client{
		Scheme:       u.Scheme,
		Host:         u.Host,
		Transport:    &transport,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		// Cameras commonly use self-signed certificates on RTSPS.
		TLSConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		// Nil keeps gortsplib's own dialer; redirects dial through it too.
		DialContext: pl.path.hub.cfg.DialCamera,
	}
	if err := c.Start2(); err != nil {
		return err
	}
	errCh := make(chan error, 1)
	go func() { errCh <- pl.play(c, u) }()
	select {
	case <-pl.stop:
		c.Close()
		<-errCh
		return nil
	case err := <-errCh:
		c.Close()
		return err
	}
}

func (pl *puller) play(c *gortsplib.Client, u *base.URL) error {
	desc, _, err := c.Describe(u)
	if err != nil {
		return err
	}
	tracks, _ := tracksFromDescription(desc)
	if len(tracks) == 0 {
		return errors.New("camera offers no playable track")
	}
	medias := make([]*description.Media, 0, len(tracks))
	for _, t := range tracks {
		medias = append(medias, t.media)
	}
	// Set up only what we serve, on a description of just those medias.
	sub := &description.Session{Title: desc.Title, Medias: medias}
	if err := c.SetupAll(desc.BaseURL, medias); err != nil {
		return err
	}
	stream, err := pl.path.onSourceReady(pl, sub)
	if err != nil {
		return err
	}
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		stream.writeRTP(m, pkt)
	})
	if _, err := c.Play(nil); err != nil {
		return err
	}
	return c.Wait()
}
