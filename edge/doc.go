// Package edge is the edge agent: it runs on a field LAN, keeps one control
// link that it dials out to the central server (NAT-friendly), relays a
// camera's RTSP to the centre only while someone watches, reports camera
// health and inventory, drives PTZ and snapshots through ONVIF, and serves
// the technician's provisioning page.
//
// It talks to the centre only through the agentlink protocol and the
// centre's public HTTP API; it must never import the server's packages
// (web, server, catalog, permissions, agents). It never transcodes.
package edge
