// Package gbsim simulates GB/T 28181 devices and NVRs for tests, benchmarks
// and demos: they register with Digest, keep alive, answer catalog, info,
// status and preset queries, obey PTZ and keyframe commands, and answer
// INVITE by sending the committed camsim clips as PS over RTP.
//
// They behave like the real devices' documented quirks rather than like
// our server expects: catalogs come in pages (Hikvision: one item per
// MESSAGE; Dahua: a handful), optionally GB2312-encoded; re-registration
// reuses the last challenge; PTZ gets no MANSCDP answer; a reboot sends
// nothing. Faults can be switched on per device: dropped keepalives, a
// wrong password, TCP-only media (488 for UDP offers), an ignored y= SSRC,
// and a NAT-like Contact that differs from the real source address.
//
// Each device is its own SIP user agent with its own socket (UDP) or
// connection to the server (TCP), as a real one is. The SIP layer is a
// small one written here on sipgo's message parser, because a device must
// do things a well-behaved stack will not (advertise a Via and Contact it
// does not own, answer 200 and then send its answer as new requests).
//
// gbsim never dials anything but the server address and the media
// addresses in the server's SDP.
package gbsim
