package gbsim

import (
	"context"
	"time"

	"github.com/tianyan/vms/gb28181/media"
)

// newFrameSender opens the media sender for a session (a variable so a
// test can observe frames without a network).
var newFrameSender = func(ctx context.Context, cfg senderConfig) (frameSender, error) {
	return media.NewSender(ctx, media.SenderConfig{
		Transport: media.Transport(cfg.transport), // same names: udp, tcp-active, tcp-passive
		Remote:    cfg.remote, LocalBind: cfg.localIP, SSRC: cfg.ssrc, Video: cfg.video, Audio: cfg.audio,
		ConnectTimeout: 10 * time.Second, Logger: cfg.logger,
	})
}
