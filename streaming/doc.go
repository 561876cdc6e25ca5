// Package streaming owns live media: it ingests RTSP (pulled from cameras or
// published by encoders and edge agents), keeps one upstream per point, and
// fans it out to any number of readers — WebRTC (WHEP) viewers and RTSP
// readers.
//
// The data path is camera → Source → Stream → readers. A Stream packetizes
// for WebRTC once per stream; each reader only rewrites RTP sequence numbers
// and timestamps on its own copy of the header, so the per-viewer cost is a
// header rewrite, SRTP and a socket write.
//
// Streaming never decides who may read or publish: it is told through the
// Authorizer interface and the Hub's configuration. It must never import
// catalog, permissions, accounts or web.
package streaming
