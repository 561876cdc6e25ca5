package gbsim

import (
	"context"
	"errors"
)

// newFrameSender opens the media sender for a session.
var newFrameSender = func(ctx context.Context, cfg senderConfig) (frameSender, error) {
	return nil, errors.New("gbsim: media sender not wired yet")
}
