package cameranet

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzParse: any flag value either fails with an error naming the flag or
// gives a policy whose String parses back to the same networks.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "127.0.0.0/8, fd00::/8", "::ffff:10.0.0.0/104", "1.2.3.4", ",,", "10.0.0.0/33", "fe80::1%eth0/64", "0.0.0.0/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		p, err := Parse(list)
		if err != nil {
			return
		}
		again, err := Parse(p.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", list, p.String(), err)
		}
		if !slices.Equal(again.Networks(), p.Networks()) {
			t.Fatalf("round trip of %q: %v != %v", list, again.Networks(), p.Networks())
		}
		for _, n := range p.Networks() {
			if n != n.Masked() || n.Addr().Is4In6() && n.Bits() >= 96 {
				t.Fatalf("network %v of %q is not canonical", n, list)
			}
		}
	})
}

// noDNS fails every DNS exchange at once: fuzzed host names never leave
// the machine.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in fuzz tests")
}}

// FuzzCheckURL: no URL panics CheckURL, and no refusal repeats the URL's
// password.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"rtsp://u:pw@10.0.0.1:554/x", "rtsp://169.254.169.254/", "rtsp://[fe80::1%25lo]:1/", "rtsp://127.1/",
		"rtsp://0x7f.1/", "http://[::ffff:127.0.0.1]/", "rtsp://localhost/", "rtsp://:554/", "rtsp://h:99999/", "%zz"} {
		f.Add(s, "s3cret")
	}
	p := mustParseF(f, "10.0.0.0/8,127.0.0.0/8").WithResolver(noDNS)
	f.Fuzz(func(t *testing.T, raw, password string) {
		_ = p.CheckURL(context.Background(), raw)
		if len(password) < 6 {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return
		}
		u.User = url.UserPassword("admin", password)
		err = p.CheckURL(context.Background(), u.String())
		if err != nil && strings.Contains(err.Error(), password) && !strings.Contains(u.Hostname(), password) {
			t.Fatalf("the refusal of %q shows its password: %v", u.Redacted(), err)
		}
	})
}

func mustParseF(f *testing.F, list string) *Policy {
	p, err := Parse(list)
	if err != nil {
		f.Fatal(err)
	}
	return p
}
