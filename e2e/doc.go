// Package e2e holds Tianyan's fault tests: the real `vms` and `edge-agent`
// binaries run as separate processes, are killed with SIGKILL, restarted and
// starved of cameras, and each test asserts that the system recovers —
// viewers play again, points report their state, the database holds all of
// an import or none of it, and resources return to where they started.
//
// The tests build cmd/vms and cmd/edge-agent once per run (without -race, so
// the server's memory is what production sees), start them on free loopback
// ports with their ordinary flags, and drive them only from outside: the
// HTTP API, WHEP viewers (pion), simulated cameras (camsim) in the test
// process, and Debian's Chromium through the DevTools protocol.
//
// The package has no code outside its tests. It must never reach into the
// server's packages to change their state (everything goes through the
// processes' public interfaces), and must never talk to anything but
// 127.0.0.1.
package e2e
