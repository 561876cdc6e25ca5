package streaming

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestBatchConnDeliversEveryDatagramInOrder sends through the batching
// socket, bound IPv4-only and dual-stack, to an IPv4 peer.
func TestBatchConnDeliversEveryDatagramInOrder(t *testing.T) {
	for _, bind := range []string{"127.0.0.1:0", "[::]:0"} {
		t.Run(bind, func(t *testing.T) {
			c, err := net.ListenPacket("udp", bind)
			if err != nil {
				t.Skipf("cannot bind %s here: %v", bind, err)
			}
			bc := newBatchConn(c)
			rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			_ = rx.SetReadBuffer(1 << 20)
			to := rx.LocalAddr().(*net.UDPAddr)
			const n = 300
			for i := range n {
				p := make([]byte, 200)
				binary.BigEndian.PutUint32(p, uint32(i))
				if i%2 == 0 {
					_, err = bc.WriteTo(p, to)
				} else {
					_, err = bc.(interface {
						WriteToAddrPort([]byte, netip.AddrPort) (int, error)
					}).WriteToAddrPort(p, to.AddrPort())
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, 1500)
			_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
			for i := range n {
				k, from, err := rx.ReadFromUDP(buf)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				if got := binary.BigEndian.Uint32(buf[:k]); got != uint32(i) || k != 200 {
					t.Fatalf("datagram %d carried %d (%d bytes)", i, got, k)
				}
				if from.Port != c.LocalAddr().(*net.UDPAddr).Port {
					t.Fatalf("from port %d", from.Port)
				}
			}
			if err := bc.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := bc.WriteTo([]byte("x"), to); err == nil {
				t.Fatal("write after Close succeeded")
			}
		})
	}
}
