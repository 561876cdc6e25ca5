package onvif

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// sweepHosts expands CIDR ranges (or single addresses) into the IPv4 hosts
// to probe, without network and broadcast addresses, de-duplicated.
func sweepHosts(cidrs []string) ([]netip.Addr, error) {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		var pfx netip.Prefix
		var err error
		if strings.Contains(c, "/") {
			pfx, err = netip.ParsePrefix(c)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(c)
			if err == nil {
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("sweep range %q: %v", c, err)
		}
		pfx = pfx.Masked()
		if !pfx.Addr().Unmap().Is4() {
			return nil, fmt.Errorf("sweep range %q: only IPv4 ranges can be swept", c)
		}
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-(pfx.Addr().BitLen()-32))
		hostBits := 32 - pfx.Bits()
		if hostBits > maxSweepHostBits {
			return nil, fmt.Errorf("sweep range %q is larger than /%d", c, 32-maxSweepHostBits)
		}
		first, n := pfx.Addr(), 1<<hostBits
		a := first
		for i := 0; i < n; i, a = i+1, a.Next() {
			if hostBits >= 2 && (i == 0 || i == n-1) {
				continue // network and broadcast addresses
			}
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// sweep sends unicast probes to every host, at most opts.Concurrency
// waiting for an answer at a time, each for at most opts.SweepHostWait.
// One socket, conn, serves the whole sweep; its reader wakes the worker
// waiting on the replying host.
func sweep(ctx context.Context, conn net.PacketConn, hosts []netip.Addr, opts DiscoverOptions, col *collector) error {
	msgs := make([][]byte, 0, len(probeTypes))
	for _, typ := range probeTypes {
		m, _ := buildProbe(typ)
		msgs = append(msgs, m)
	}

	var mu sync.Mutex
	waiting := map[netip.Addr]chan struct{}{}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		col.readLoop(conn, func(from netip.Addr) {
			mu.Lock()
			if ch, ok := waiting[from]; ok {
				close(ch)
				delete(waiting, from)
			}
			mu.Unlock()
		})
	}()

	work := make(chan netip.Addr)
	var workers sync.WaitGroup
	var sendErrs, sent int
	var errMu sync.Mutex
	var lastErr error
	for range min(opts.Concurrency, len(hosts)) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			timer := time.NewTimer(opts.SweepHostWait)
			timer.Stop()
			for h := range work {
				ch := make(chan struct{})
				mu.Lock()
				waiting[h] = ch
				mu.Unlock()
				to := &net.UDPAddr{IP: h.AsSlice(), Port: opts.Port}
				ok := false
				for _, m := range msgs {
					if _, err := conn.WriteTo(m, to); err != nil {
						errMu.Lock()
						sendErrs++
						lastErr = err
						errMu.Unlock()
						continue
					}
					ok = true
				}
				if ok {
					errMu.Lock()
					sent++
					errMu.Unlock()
					timer.Reset(opts.SweepHostWait)
					select {
					case <-ch:
						timer.Stop() // since Go 1.23 no stale tick can be left behind
					case <-timer.C:
					case <-ctx.Done():
					}
				}
				mu.Lock()
				delete(waiting, h)
				mu.Unlock()
			}
		}()
	}
feed:
	for _, h := range hosts {
		select {
		case work <- h:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	workers.Wait()
	// Stop the reader: a deadline in the past ends ReadFrom at once.
	_ = conn.SetReadDeadline(time.Now())
	<-readerDone
	if sent == 0 && sendErrs > 0 {
		return fmt.Errorf("no unicast probe could be sent: %w", lastErr)
	}
	return nil
}
