// Package media carries GB/T 28181 program streams over RTP: a Receiver
// takes PS over RTP from a device (UDP, or TCP with RFC 4571 framing where
// either side may connect) and hands out the demuxed access units; a
// Sender muxes access units into PS and sends them over RTP to a platform
// above.
//
// It tolerates what devices do: an SSRC other than the one the SDP's y=
// line asked for (the first seen is learned), packets slightly out of
// order (a short reorder window), lost packets (the broken unit is
// dropped, never glued to the next), garbage inside a TCP stream (the
// framing resynchronises). Every read and write has a timeout.
//
// It knows nothing of SIP or SDP: package gb28181 negotiates the session
// and tells this package the transport, addresses and SSRC.
package media

import "time"

// Transport is how RTP travels, as negotiated in the SDP.
type Transport string

// Transports. "Passive" and "active" are said of this side: a passive side
// listens for the peer's TCP connection, an active side dials it (SDP
// a=setup).
const (
	UDP        Transport = "udp"
	TCPPassive Transport = "tcp-passive"
	TCPActive  Transport = "tcp-active"
)

// Defaults for zero configuration fields.
const (
	DefaultReadTimeout    = 10 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultWriteTimeout   = 5 * time.Second
	DefaultPayloadType    = 96
	// maxPayload is the largest RTP payload sent: with the RTP, UDP and IP
	// headers it stays under a 1,500-byte MTU.
	maxPayload = 1400
)

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
