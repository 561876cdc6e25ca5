package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// safeBuffer is a bytes.Buffer the command and the test may share.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGbsimRunsTheFleetItIsAskedForAndRegistersToTheServer(t *testing.T) {
	// A UDP "server" that answers nothing: the devices' REGISTERs arrive
	// from as many sources as there are devices.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut safeBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-server", pc.LocalAddr().String(), "-devices", "3", "-total-channels", "7",
			"-nvr", "-report", "50ms"}, &out, &errOut)
	}()
	sources := map[string]bool{}
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(sources) < 3 {
		n, src, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("REGISTERs from %d devices: %v", len(sources), err)
		}
		if strings.HasPrefix(string(buf[:n]), "REGISTER sip:34020000002000000001@3402000000 SIP/2.0") {
			sources[src.String()] = true
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "registered 0/3"); {
		if time.Now().After(deadline) {
			t.Fatalf("no status line:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := out.String()
	for _, want := range []string{"34020000001180000001  3 channels", "34020000001180000003  2 channels", "registered 0/3"} {
		if !strings.Contains(lines, want) {
			t.Fatalf("output lacks %q:\n%s", want, lines)
		}
	}
}

func TestGbsimRefusesBadFlags(t *testing.T) {
	var out, errOut safeBuffer
	if err := run(context.Background(), []string{"-devices", "0"}, &out, &errOut); err == nil {
		t.Fatal("zero devices accepted")
	}
	if err := run(context.Background(), []string{"-clip", "nope"}, &out, &errOut); err == nil {
		t.Fatal("unknown clip accepted")
	}
	if err := run(context.Background(), []string{"-quirks", "flatinfo,nope"}, &out, &errOut); err == nil {
		t.Fatal("unknown quirk accepted")
	}
}
