//go:build !unix

package onvif

import "syscall"

// reuseAddr is a no-op where sharing the port needs other options.
func reuseAddr(_, _ string, _ syscall.RawConn) error { return nil }

// listenHost binds to all addresses: binding to a group address is not
// portable.
func listenHost() string { return "0.0.0.0" }
