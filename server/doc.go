// Package server wires the central VMS together: it opens the store,
// builds catalog, accounts, permissions, the streaming hub, the RTSP and
// WebRTC servers and the HTTP API, keeps the hub in step with the catalog,
// and shuts everything down in order. It is the only package that knows
// all the others; cmd/vms only parses configuration and calls it.
package server
