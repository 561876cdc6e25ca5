// Package web is Tianyan's HTTP face: the JSON API (gin), the WHEP
// endpoint and the embedded browser UI. It authenticates callers, asks
// permissions for every decision and calls the domain packages; it holds no
// domain state of its own beyond request throttles.
//
// Every route is in one table (routes.go) with the rule its callers must
// pass and the method that answers it. Each resource is its own small
// handler type in a file named for it (points.go: pointHandler, users.go:
// userHandler, whep.go: streamHandler, …), taking only the narrow
// interfaces of the domain it calls, declared beside it; New wires them
// from Deps. What every resource shares stays shared: the guard and the
// authentication before each handler (routes.go, auth.go), the audit trail
// (audit_trail.go), bounded body decoding (body.go), errors (errors.go) and
// browser hardening (hardening.go). Handler tests sit here over in-memory
// fakes of those interfaces; server/ holds the tests over the real parts.
//
// No domain package may import web.
package web
