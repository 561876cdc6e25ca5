package cameranet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// defaultPorts are the ports a camera URL means when it names none.
var defaultPorts = map[string]uint16{"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}

// CheckURL judges the host of a camera URL (rtsp, rtsps, http or https)
// before it is stored, so that the API can refuse it at once with the rule
// that refuses it. An IP literal is checked as it is; a name is resolved
// and every address it resolves to must be allowed. A name that does not
// resolve now is accepted: it cannot be judged yet, and the dialer judges
// whatever it resolves to when a connection is made.
//
// The error never contains the URL (it may carry a password), only its host.
func (p *Policy) CheckURL(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return errors.New("camera URL has no host")
	}
	host := u.Hostname()
	port := defaultPorts[strings.ToLower(u.Scheme)]
	if s := u.Port(); s != "" {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return errors.New("camera URL port is not a number between 1 and 65535")
		}
		port = uint16(n)
	}
	subject := "camera URL host " + host
	if a, err := netip.ParseAddr(host); err == nil {
		return p.check(subject, netip.AddrPortFrom(a, port))
	}
	if numericHost(host) {
		// Go dials names like these through DNS, but other software reads
		// them as IPv4 shorthand (127.1, 2130706433, 0x7f.1); refuse them
		// rather than guess which one is meant.
		return &RefusedError{Subject: subject, Rule: "is an IPv4 address in shorthand; write it as four decimal numbers (a.b.c.d)"}
	}
	r := p.resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.check(subject, netip.AddrPortFrom(a, port)); err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Resolved = true
			}
			return err
		}
	}
	return nil
}

// numericHost reports whether host's last label is a number (decimal, or
// hex with 0x), which the WHATWG URL standard parses as an IPv4 address.
func numericHost(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	digits := last
	if len(last) > 1 && (strings.HasPrefix(last, "0x") || strings.HasPrefix(last, "0X")) {
		digits = last[2:]
		if digits == "" {
			return true
		}
		for _, c := range digits {
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
		return true
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
