// Package onvif talks ONVIF to field cameras: WS-Discovery (multicast
// probes, unicast sweeps of routed ranges, Hello/Bye listening) and a SOAP
// client for the device, media and PTZ services (identity, clock, profiles,
// stream and snapshot URIs, presets, PTZ moves, keyframe requests,
// snapshots).
//
// Real cameras are quirky, so the package is tolerant where vendors differ
// and strict where safety needs it. Replies are matched on local element
// names only (vendors put elements in the wrong namespaces or use odd
// prefixes), unknown elements and missing optional fields are accepted, and
// SOAP 1.1 and 1.2 replies both parse. Every request carries a WS-Security
// UsernameToken digest stamped with the camera's clock, and HTTP Digest
// (RFC 7616, MD5 or SHA-256) or Basic is added when the camera challenges.
// Request bodies are built from github.com/use-go/onvif's message types; the
// HTTP exchange and the reply parsing are done here, because that library
// panics and reads replies strictly.
//
// Failures come back as *Error values whose Kind says what went wrong (bad
// password, timeout, SOAP fault, HTML error page, truncated or oversized
// reply) and whose message names the operation and the camera.
//
// The package must never import other packages of this module (the edge
// agent and the camera simulator both build on it), never panic on anything
// a camera or the network sends (each exported call recovers and reports an
// *Error), and never block without a deadline: every exchange is bounded in
// time and in bytes, Listen runs only until its context ends, and every
// goroutine the package starts ends with the call that started it.
package onvif
