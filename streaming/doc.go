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
// # Who owns what
//
// The Hub keeps a directory of paths (one per point profile) behind a lock
// that guards only the directory. Each path's state — its configuration,
// source (a camera puller, an in-process ExternalSource run the same way,
// or an RTSP publisher), Stream, readers, waiting
// readers, and its idle and start timers — belongs to one goroutine, the
// path's run loop, as in MediaMTX's path. Everyone else talks to it:
// Acquire and release, SetPoint, RemovePoint and Close, the RTSP server's
// publisher hooks, pullers reporting ready or lost, and Stats all send a
// request and wait for the answer; answers go to buffered channels so the
// path never waits for anyone. Timers fire into the same select, so an idle
// expiry is judged against the state at that moment and cannot act on a
// source that a later reader restarted. Nothing is called back across a
// lock: the Demander's Demand runs in the reader's goroutine and
// OnSourceState in the puller's, both after the path has answered.
//
// Every goroutine has an owner that stops and waits for it: the Hub starts
// path goroutines only under its lock while open, and Close waits for them;
// a path starts its pullers and waits for every one of them (stopped ones
// included) before it ends, so a SetPoint racing RemovePoint or Close can
// never leave a camera connection behind. RemovePoint does not wait for
// that (a caller's own locks must not wait on a camera); Close does. The
// WebRTC server counts each session's goroutines when it registers the
// session; pion's callbacks only signal.
//
// # Idle
//
// With no reader for HubConfig.IdleGrace, a path stops what it may ask
// back: an on-demand camera pull, or a publisher the centre demanded (its
// Demander's Demand returned true), which is then undemanded. A publisher
// nobody demanded — an encoder pushing into a point — keeps publishing with
// no viewer, however long, whatever the point's on_demand says.
//
// Streaming never decides who may read or publish: it is told through the
// Authorizer interface and the Hub's configuration. It must never import
// catalog, permissions, accounts or web.
package streaming
