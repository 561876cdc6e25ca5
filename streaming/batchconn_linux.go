//go:build linux && (amd64 || arm64)

package streaming

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one sendmmsg call carries at most.
const batchSize = 64

// mmsghdr is Linux's struct mmsghdr (x/sys/unix has no wrapper).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// batchConn sends the WebRTC port's datagrams with sendmmsg: writers queue
// a copy and return at once, one goroutine drains the queue in batches. A
// frame fanned out to many viewers becomes a few system calls instead of
// one per packet per viewer, which is where a fan-out server spends most
// of its CPU. Order is kept (one queue). Reads go straight to the socket.
type batchConn struct {
	*net.UDPConn
	raw    syscall.RawConn
	inet6  bool
	q      chan outDatagram
	pool   sync.Pool
	closed chan struct{}
	done   chan struct{}
	once   sync.Once
}

type outDatagram struct {
	buf  *[]byte
	n    int
	addr netip.AddrPort
}

// newBatchConn wraps c; it falls back to c itself if c is not a UDP socket.
func newBatchConn(c net.PacketConn) net.PacketConn {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return c
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return c
	}
	b := &batchConn{UDPConn: uc, raw: raw, q: make(chan outDatagram, 8192),
		closed: make(chan struct{}), done: make(chan struct{})}
	b.inet6 = uc.LocalAddr().(*net.UDPAddr).IP.To4() == nil
	b.pool.New = func() any { s := make([]byte, 1500); return &s }
	go b.flush()
	return b
}

var errBatchClosed = errors.New("webrtc socket closed")

// WriteToAddrPort queues a copy of p for addr.
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	select {
	case <-b.closed:
		return 0, errBatchClosed
	default:
	}
	buf := b.pool.Get().(*[]byte)
	if cap(*buf) < len(p) {
		s := make([]byte, len(p))
		buf = &s
	}
	n := copy((*buf)[:cap(*buf)], p)
	select {
	case b.q <- outDatagram{buf: buf, n: n, addr: addr}:
		return len(p), nil
	case <-b.closed:
		return 0, errBatchClosed
	}
}

// WriteTo queues a copy of p for addr.
func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return b.UDPConn.WriteTo(p, addr)
	}
	return b.WriteToAddrPort(p, ua.AddrPort())
}

// Close stops the sender after it drained what was queued, then the socket.
func (b *batchConn) Close() error {
	b.once.Do(func() { close(b.closed) })
	<-b.done
	return b.UDPConn.Close()
}

func (b *batchConn) flush() {
	defer close(b.done)
	var (
		batch [batchSize]outDatagram
		msgs  [batchSize]mmsghdr
		iovs  [batchSize]unix.Iovec
		sa4   [batchSize]unix.RawSockaddrInet4
		sa6   [batchSize]unix.RawSockaddrInet6
	)
	for {
		var first outDatagram
		select {
		case first = <-b.q:
		case <-b.closed:
			return
		}
		batch[0] = first
		n := 1
	drain:
		for n < batchSize {
			select {
			case d := <-b.q:
				batch[n] = d
				n++
			default:
				break drain
			}
		}
		for i := range n {
			d := batch[i]
			iovs[i].Base = &(*d.buf)[0]
			iovs[i].SetLen(d.n)
			msgs[i] = mmsghdr{}
			msgs[i].hdr.Iov = &iovs[i]
			msgs[i].hdr.SetIovlen(1)
			ip, port := d.addr.Addr(), d.addr.Port()
			if b.inet6 {
				sa6[i] = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
				putPort(&sa6[i].Port, port)
				msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&sa6[i]))
				msgs[i].hdr.Namelen = unix.SizeofSockaddrInet6
			} else {
				sa4[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
				putPort(&sa4[i].Port, port)
				msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&sa4[i]))
				msgs[i].hdr.Namelen = unix.SizeofSockaddrInet4
			}
		}
		b.send(msgs[:n])
		runtime.KeepAlive(&iovs)
		runtime.KeepAlive(&sa4)
		runtime.KeepAlive(&sa6)
		for i := range n {
			b.pool.Put(batch[i].buf)
			batch[i] = outDatagram{}
		}
	}
}

// send hands msgs to sendmmsg until all went or the socket fails; a
// datagram the kernel refuses (e.g. an unreachable peer) is dropped, as
// UDP would.
func (b *batchConn) send(msgs []mmsghdr) {
	for len(msgs) > 0 {
		var sent int
		var errno syscall.Errno
		err := b.raw.Write(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN {
				return false // wait until writable
			}
			sent, errno = int(r), e
			return true
		})
		if err != nil {
			return // socket closed
		}
		if errno != 0 {
			sent = 1 // skip the datagram that failed
		}
		msgs = msgs[sent:]
	}
}

func putPort(dst *uint16, port uint16) {
	p := (*[2]byte)(unsafe.Pointer(dst))
	p[0], p[1] = byte(port>>8), byte(port)
}
