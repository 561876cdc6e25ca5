//go:build !(linux && (amd64 || arm64))

package streaming

import "net"

// newBatchConn batches only on 64-bit Linux (sendmmsg with the mmsghdr
// layout of batchconn_linux.go).
func newBatchConn(c net.PacketConn) net.PacketConn { return c }
