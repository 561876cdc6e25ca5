// Package camsim simulates IP cameras for tests and the demo.
//
// An RTSPCamera (gortsplib) loops committed H.264/H.265 clips in real time
// with continuous timestamps, one path per profile. A Camera wraps one in
// a simulated ONVIF device that speaks the standard on the wire, so that a
// client written against real cameras works against it unchanged:
//
//   - WS-Discovery 2005/04: joins 239.255.255.250:3702 on the interface of
//     its DiscoveryIP, answers matching multicast and unicast Probes with a
//     ProbeMatch, says Hello on start and Bye on Close;
//   - SOAP 1.2 on HTTP: device (GetSystemDateAndTime, GetDeviceInformation,
//     GetCapabilities, GetServices, GetScopes), media (GetProfiles "main" and
//     "sub", GetStreamUri, GetSnapshotUri, SetSynchronizationPoint …) and PTZ
//     (GetNodes, GetStatus, ContinuousMove, Stop, GotoPreset …) with a head
//     whose position integrates its velocity over time;
//   - WS-Security UsernameToken PasswordDigest or HTTP Digest on every call
//     but GetSystemDateAndTime; the same credentials on RTSP and snapshots;
//   - JPEG snapshots rendered at request time;
//   - Faults (stream drop, slow replies, wrong password, silence) switched
//     on and off while running.
//
// cmd/camsim runs a fleet of them. It owns nothing of the product's state,
// must never be imported by production code (only by tests and the demo
// wiring), and must not import the product's ONVIF client: it is the
// independent other side that client is tested against.
package camsim
