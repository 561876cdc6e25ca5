package netnstest

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

func TestLANCarriesMulticastAndUnicastAndIsRemovedAfterwards(t *testing.T) {
	var namespaces []string
	t.Run("lan", func(t *testing.T) {
		lan := New(t, 2)
		a, b := lan.Hosts[0], lan.Hosts[1]
		namespaces = []string{a.Namespace, b.Namespace, lan.switchNS}
		if a.IP.String() != "10.231.1.1" || b.IP.String() != "10.231.1.2" {
			t.Fatalf("addresses %s, %s", a.IP, b.IP)
		}

		group := &net.UDPAddr{IP: net.IPv4(239, 255, 0, 1), Port: 9999}
		recv, err := b.ListenPacket("udp4", "0.0.0.0:9999")
		if err != nil {
			t.Fatal(err)
		}
		defer recv.Close()
		bIf, err := b.Interface()
		if err != nil {
			t.Fatal(err)
		}
		if err := ipv4.NewPacketConn(recv).JoinGroup(bIf, &net.UDPAddr{IP: group.IP}); err != nil {
			t.Fatal(err)
		}

		send, err := a.ListenPacket("udp4", a.IP.String()+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer send.Close()
		// With no interface pinned, the namespace's multicast route picks
		// the LAN link.
		if _, err := send.WriteTo([]byte("hello"), group); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		recv.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := recv.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "hello" || !strings.HasPrefix(from.String(), "10.231.1.1:") {
			t.Fatalf("multicast: %q from %v, %v", buf[:n], from, err)
		}

		if _, err := recv.WriteTo([]byte("back"), from); err != nil {
			t.Fatal(err)
		}
		send.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err = send.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "back" || !strings.HasPrefix(from.String(), "10.231.1.2:") {
			t.Fatalf("unicast: %q from %v, %v", buf[:n], from, err)
		}

		// A TCP dial through DialContext reaches a listener in the other
		// namespace.
		var ln net.Listener
		if err := b.Do(func() error {
			var err error
			ln, err = net.Listen("tcp4", b.IP.String()+":0")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("ok"))
				c.Close()
			}
		}()
		conn, err := a.DialContext(t.Context(), "tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "ok" {
			t.Fatalf("tcp: %q, %v", buf[:n], err)
		}

		// The host's own namespace never saw the link.
		if ifi, err := net.InterfaceByName(Link); err == nil {
			t.Errorf("interface %s exists in the host's namespace: %+v", Link, ifi)
		}
	})
	if len(namespaces) == 0 {
		return // skipped: no root or no ip
	}
	for _, ns := range namespaces {
		if _, err := os.Stat(filepath.Join("/var/run/netns", ns)); !os.IsNotExist(err) {
			t.Errorf("namespace %s is still there after the test (%v)", ns, err)
		}
	}
}
