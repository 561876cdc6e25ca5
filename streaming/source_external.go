package streaming

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/pion/rtp"
)

// ExternalSource is a source that runs in this process rather than behind
// an RTSP URL: a GB/T 28181 device whose PS over RTP another package
// demuxes and packetises. The hub runs it like a camera pull: on demand
// (the first reader starts it, the idle grace cancels ctx), retried with
// backoff when Run returns while still wanted, its readers answered with
// ErrStartTimeout if it is not Ready in time.
type ExternalSource interface {
	// Run produces the stream into out until ctx ends (then its return
	// value is ignored) or the source is lost (return the reason; a nil
	// return while ctx is live counts as lost too). It must return
	// promptly once ctx ends: the hub waits for it when closing.
	Run(ctx context.Context, out ExternalOutput) error
}

// ExternalOutput is where an ExternalSource writes. Its methods may be
// called from any one goroutine at a time.
type ExternalOutput interface {
	// Ready declares the media, once their codecs are known (H.264 with
	// its SPS/PPS, H.265 with VPS/SPS/PPS, G.711…), and makes the stream
	// live for the waiting readers. It may be called again when the codec
	// changes (a device reconfigured); incompatible tracks end the readers.
	// An error means the hub no longer wants this run: return from Run.
	Ready(desc *description.Session) error
	// WriteRTP sends one RTP packet of a media in the described session
	// (the same *description.Media pointer). Packets before Ready are
	// dropped.
	WriteRTP(medi *description.Media, pkt *rtp.Packet)
}

// errExternalEnded is the loss reported when an external source returns
// nil while still wanted.
var errExternalEnded = errors.New("external source ended")

// external runs one Run of the external source; nil when stopped.
func (pl *puller) external() error {
	if pl.cfg.External == nil {
		<-pl.ctx.Done() // misconfigured: nothing to run, wait to be stopped
		return nil
	}
	out := &externalOutput{pl: pl}
	err := pl.cfg.External.Run(pl.ctx, out)
	if pl.ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errExternalEnded
	}
	return err
}

// externalOutput hands an external source's stream to its path.
type externalOutput struct {
	pl     *puller
	stream atomic.Pointer[Stream]
}

func (o *externalOutput) Ready(desc *description.Session) error {
	if desc == nil {
		return errors.New("no session description")
	}
	st, err := o.pl.path.onSourceReady(o.pl, desc)
	if err != nil {
		return err
	}
	o.stream.Store(st)
	return nil
}

func (o *externalOutput) WriteRTP(medi *description.Media, pkt *rtp.Packet) {
	if st := o.stream.Load(); st != nil {
		st.writeRTP(medi, pkt)
	}
}

// sameConfig reports whether two source configurations are equal, the
// external source by identity. An External of a type that cannot be
// compared counts as different rather than panicking.
func sameConfig(a, b SourceConfig) bool {
	ea, eb := a.External, b.External
	a.External, b.External = nil, nil
	if a != b {
		return false
	}
	if ea == nil || eb == nil {
		return ea == nil && eb == nil
	}
	if reflect.TypeOf(ea) != reflect.TypeOf(eb) || !reflect.TypeOf(ea).Comparable() {
		return false
	}
	return ea == eb
}

// pulled reports whether the hub runs the source of this type itself (a
// camera pull or an external source), as opposed to waiting for a
// publisher.
func pulled(sourceType string) bool {
	return sourceType == SourceRTSP || sourceType == SourceExternal
}
