package onvif

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"golang.org/x/net/ipv4"
)

// ListenOptions configure Listen.
type ListenOptions struct {
	// Interfaces names the interfaces whose multicast group membership is
	// taken; empty means every up, multicast-capable IPv4 interface.
	Interfaces []string
	// MulticastIP joins the group only on the interface holding this
	// address (e.g. "127.0.0.1"). It overrides Interfaces.
	MulticastIP string
	// Port is the WS-Discovery port. Default 3702.
	Port int
	// Logger receives debug lines about ignored datagrams.
	Logger *slog.Logger
}

// Event is a device announcing itself (Kind "hello") or leaving ("bye";
// only EndpointRef, and XAddrs when given, are set).
type Event struct {
	Kind  string
	Found Found
}

// Event kinds.
const (
	EventHello = "hello"
	EventBye   = "bye"
)

// Listen joins the WS-Discovery multicast group and calls fn, from Listen's
// own goroutine, for every Hello and Bye heard, until ctx is done; it then
// returns nil. It returns an error only when it cannot listen at all. The
// socket shares the port with other listeners on the host (SO_REUSEADDR),
// so a camera simulator or another agent may run alongside.
func Listen(ctx context.Context, opts ListenOptions, fn func(Event)) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered("Listen", "", v)
		}
	}()
	fail := func(kind ErrorKind, format string, a ...any) error {
		return &Error{Op: "Listen", Kind: kind, Detail: fmt.Sprintf(format, a...)}
	}
	if fn == nil {
		return fail(KindInvalid, "nil event handler")
	}
	if opts.Port <= 0 || opts.Port > 65535 {
		opts.Port = DefaultDiscoveryPort
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	targets, err := multicastTargets(opts.Interfaces, opts.MulticastIP)
	if err != nil {
		return fail(KindInvalid, "%v", err)
	}
	if len(targets) == 0 {
		return fail(KindNetwork, "no up, multicast-capable IPv4 interface to listen on")
	}
	lc := net.ListenConfig{Control: reuseAddr}
	conn, err := lc.ListenPacket(ctx, "udp4", net.JoinHostPort(listenHost(), strconv.Itoa(opts.Port)))
	if err != nil {
		return fail(KindNetwork, "listen on port %d: %v", opts.Port, err)
	}
	defer conn.Close()
	growReadBuffer(conn)
	p := ipv4.NewPacketConn(conn)
	joined := 0
	var joinErrs []error
	for _, t := range targets {
		if err := p.JoinGroup(t.ifi, &net.UDPAddr{IP: discoveryGroup}); err != nil {
			joinErrs = append(joinErrs, fmt.Errorf("%s: %w", t.ifi.Name, err))
			continue
		}
		joined++
	}
	if joined == 0 {
		return fail(KindNetwork, "could not join the discovery group: %v", errors.Join(joinErrs...))
	}
	for _, e := range joinErrs {
		log.Warn("onvif listen: group not joined", "err", e)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	buf := make([]byte, maxDatagram+1)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fail(KindNetwork, "read: %v", err)
		}
		src := ""
		if ua, ok := from.(*net.UDPAddr); ok {
			src = ua.IP.String()
		}
		if n > maxDatagram {
			log.Debug("onvif listen: ignored datagram", "from", src, "err", "oversize")
			continue
		}
		msg, err := parseDiscovery(buf[:n], src)
		if err != nil {
			log.Debug("onvif listen: ignored datagram", "from", src, "err", err)
			continue
		}
		kind := ""
		switch msg.kind {
		case kindHello:
			kind = EventHello
		case kindBye:
			kind = EventBye
		default:
			continue // probes from other clients, stray matches
		}
		for _, f := range msg.found {
			fn(Event{Kind: kind, Found: f})
		}
	}
}
