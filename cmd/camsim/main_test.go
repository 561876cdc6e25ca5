package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is written by run and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunPrintsEachCameraAndStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-n", "2", "-name-prefix", "cmdtest-", "-ptz", "-probe-delay", "0", "-faults", "slow=10ms"}, &out, io.Discard)
	}()

	var lines []string
	for deadline := time.Now().Add(10 * time.Second); len(lines) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("output so far: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
		lines = strings.Split(strings.TrimSpace(out.String()), "\n")
		if lines[0] == "" {
			lines = nil
		}
	}
	for i, line := range lines {
		fields := strings.Split(line, "\t")
		if len(fields) != 5 || fields[0] != []string{"cmdtest-1", "cmdtest-2"}[i] ||
			!strings.HasPrefix(fields[1], "xaddr=http://127.0.0.1:") || !strings.HasPrefix(fields[2], "main=rtsp://127.0.0.1:") {
			t.Fatalf("line %q", line)
		}
	}
	// The printed XAddr answers SOAP.
	xaddr := strings.TrimPrefix(strings.Split(lines[0], "\t")[1], "xaddr=")
	body := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>`
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(xaddr, "application/soap+xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(reply), "GetSystemDateAndTimeResponse") {
		t.Fatalf("%d: %s", resp.StatusCode, reply)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"}, {"-faults", "fire"}, {"-sub-codec", "mpeg2"}, {"-pass", "x"}, {"-http-base", "nonsense"}, {"extra"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
}
