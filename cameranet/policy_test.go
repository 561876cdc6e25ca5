package cameranet

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/internal/fakedns"
	"github.com/tianyan/vms/internal/netnstest"
)

const centreList = "--camera-networks (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fd00::/8)"

func mustParse(t *testing.T, list string) *Policy {
	t.Helper()
	p, err := Parse(list)
	if err != nil {
		t.Fatalf("Parse(%q): %v", list, err)
	}
	return p
}

// refusal asserts err is a refusal whose text contains every one of want.
func refusal(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("%s: got %v, want a refusal", what, err)
	}
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("%s: %v is not a *RefusedError", what, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not say %q", what, err, w)
		}
	}
}

func TestCentreDefaultAllowsThePrivateRangesAndNothingSpecial(t *testing.T) {
	p := CentreDefault()
	if got := p.String(); got != "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fd00::/8" {
		t.Fatalf("CentreDefault = %s", got)
	}
	for _, a := range []string{"10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.64", "100.64.0.1", "100.127.255.1",
		"fd12:3456::1", "::ffff:10.0.0.1"} {
		if err := p.CheckAddr(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	for _, tc := range []struct{ addr, rule string }{
		{"8.8.8.8", "is not inside " + centreList},
		{"172.32.0.1", "is not inside"},
		{"100.128.0.1", "is not inside"},
		{"fc00::1", "is not inside"},
		{"127.0.0.1", "is loopback; not inside " + centreList},
		{"127.255.0.9", "is loopback"},
		{"::1", "is loopback"},
		{"::ffff:127.0.0.1", "is loopback"},
		{"169.254.169.254", "is link-local; not inside " + centreList},
		{"fe80::1%eth0", "is link-local"},
		{"0.0.0.0", "is unspecified"},
		{"::", "is unspecified"},
		{"224.0.0.251", "is multicast"},
		{"ff02::1", "is multicast"},
		{"255.255.255.255", "is broadcast"},
	} {
		refusal(t, tc.addr, p.CheckAddr(netip.MustParseAddr(tc.addr)), tc.addr, tc.rule)
	}
}

func TestSpecialRangesAreAllowedOnlyWhenListedThemselves(t *testing.T) {
	all := mustParse(t, "0.0.0.0/0, ::/0")
	if err := all.CheckAddr(netip.MustParseAddr("8.8.8.8")); err != nil {
		t.Fatal(err)
	}
	refusal(t, "127.0.0.1 under 0.0.0.0/0", all.CheckAddr(netip.MustParseAddr("127.0.0.1")),
		"is loopback; --camera-networks (0.0.0.0/0, ::/0) must list a loopback range itself (e.g. 127.0.0.0/8)")
	refusal(t, "169.254.169.254 under 0.0.0.0/0", all.CheckAddr(netip.MustParseAddr("169.254.169.254")), "link-local range itself")
	refusal(t, "::1 under ::/0", all.CheckAddr(netip.MustParseAddr("::1")), "is loopback")

	lo := mustParse(t, "127.0.0.0/8")
	for _, a := range []string{"127.0.0.1", "127.0.0.53", "::ffff:127.0.0.1"} {
		if err := lo.CheckAddr(netip.MustParseAddr(a)); err != nil {
			t.Errorf("127.0.0.0/8 listed, %s refused: %v", a, err)
		}
	}
	refusal(t, "10.0.0.1 with loopback only", lo.CheckAddr(netip.MustParseAddr("10.0.0.1")), "is not inside --camera-networks (127.0.0.0/8)")
	refusal(t, "::1 with 127.0.0.0/8 only", lo.CheckAddr(netip.MustParseAddr("::1")), "is loopback")

	one := mustParse(t, "127.0.0.1, 169.254.169.254")
	if err := one.CheckAddr(netip.MustParseAddr("169.254.169.254")); err != nil {
		t.Errorf("a listed address is refused: %v", err)
	}
	refusal(t, "127.0.0.2 with 127.0.0.1 listed", one.CheckAddr(netip.MustParseAddr("127.0.0.2")), "is loopback")
}

func TestParseReadsTheFlagAndRefusesWhatItCannotRead(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":                        "10.0.0.0/8",
		" 10.1.2.3/8 , 192.168.1.64 ,":      "10.0.0.0/8,192.168.1.64/32",
		"10.0.0.0/8,10.0.0.0/8":             "10.0.0.0/8",
		"::ffff:10.0.0.0/104, fd00::/8":     "10.0.0.0/8,fd00::/8",
		"fe80::/10,127.0.0.0/8,224.0.0.0/4": "fe80::/10,127.0.0.0/8,224.0.0.0/4",
	} {
		if got := mustParse(t, in).String(); got != want {
			t.Errorf("Parse(%q) = %s, want %s", in, got, want)
		}
	}
	for _, blank := range []string{"", " , "} {
		if _, err := Parse(blank); err == nil || !strings.Contains(err.Error(), "no network listed") {
			t.Errorf("Parse(%q): err = %v, want \"no network listed\"", blank, err)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "10.0.0/8", "bogus", "fe80::1%eth0", "10.0.0.0/8;", "*", "localhost"} {
		if _, err := Parse("10.0.0.0/8," + bad); err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("Parse(%q): err = %v, want one quoting it", bad, err)
		}
	}
}

func TestCheckURLNamesTheRuleAndNeverThePassword(t *testing.T) {
	p := CentreDefault()
	ctx := context.Background()
	if err := p.CheckURL(ctx, "rtsp://admin:pw@10.2.3.4:554/main"); err != nil {
		t.Fatal(err)
	}
	err := p.CheckURL(ctx, "rtsp://169.254.169.254/latest/meta-data")
	refusal(t, "metadata", err)
	if want := "camera URL host 169.254.169.254 is link-local; not inside " + centreList; err.Error() != want {
		t.Fatalf("got  %q\nwant %q", err, want)
	}
	for raw, want := range map[string][]string{
		"rtsp://cam:s3cret-pw@127.0.0.1:8554/main": {"camera URL host 127.0.0.1 is loopback"},
		// localhost is in /etc/hosts: no DNS query leaves the machine.
		"rtsp://cam:s3cret-pw@localhost:554/main": {"camera URL host localhost resolves to ", "which is loopback"},
		"rtsp://[::1]:554/":                       {"host ::1 is loopback"},
		"rtsp://[fe80::1%25eth0]/":                {"is link-local"},
		"http://8.8.8.8/onvif/device_service":     {"8.8.8.8 is not inside"},
		"rtsp://127.1/main":                       {"127.1 is an IPv4 address in shorthand"},
		"rtsp://2130706433/main":                  {"in shorthand"},
		"rtsp://0x7f.0x1/main":                    {"in shorthand"},
	} {
		err := p.CheckURL(ctx, raw)
		refusal(t, raw, err, want...)
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the refusal shows the password: %v", raw, err)
		}
	}
}

func TestOwnListenersAreRefusedEvenInsideAListedNetwork(t *testing.T) {
	p := mustParse(t, "127.0.0.0/8, 10.0.0.0/8")
	p.AddListeners("127.0.0.1:8554", ":8080", "[::]:9000", "not an address")
	for _, ap := range []string{"127.0.0.1:8554", "127.0.0.1:8080", "127.0.0.9:8080", "127.0.0.1:9000"} {
		refusal(t, ap, p.CheckAddrPort(netip.MustParseAddrPort(ap)), "is this server's own listener")
	}
	for _, ap := range []string{"127.0.0.1:8555", "127.0.0.2:8554", "10.9.9.9:8554"} {
		if err := p.CheckAddrPort(netip.MustParseAddrPort(ap)); err != nil {
			t.Errorf("%s refused: %v", ap, err)
		}
	}
	refusal(t, "URL of the own RTSP port", p.CheckURL(context.Background(), "rtsp://127.0.0.1:8554/p1"), "own listener (127.0.0.1:8554)")
	// A copy with another resolver learns the listeners set later.
	q := p.WithResolver(nil)
	p.AddListeners("127.0.0.1:7000")
	refusal(t, "listener added after the copy", q.CheckAddrPort(netip.MustParseAddrPort("127.0.0.1:7000")), "own listener")
	refusal(t, "the earlier listeners stay", q.CheckAddrPort(netip.MustParseAddrPort("127.0.0.1:8554")), "own listener")
}

// TestCheckURLResolvesNamesAndAcceptsWhatCannotBeJudgedYet: every address
// a name resolves to must be allowed; a name that does not resolve is left
// to the dialer.
func TestCheckURLResolvesNamesAndAcceptsWhatCannotBeJudgedYet(t *testing.T) {
	dns := fakedns.Start(t)
	p := CentreDefault().WithResolver(dns.Resolver())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dns.Set("cam1.camera.test", netip.MustParseAddr("10.0.0.7"))
	dns.Set("split.camera.test", netip.MustParseAddr("10.0.0.8"), netip.MustParseAddr("169.254.169.254"))
	if err := p.CheckURL(ctx, "rtsp://cam1.camera.test/main"); err != nil {
		t.Fatal(err)
	}
	refusal(t, "a name with one bad address", p.CheckURL(ctx, "rtsp://split.camera.test/main"),
		"camera URL host split.camera.test resolves to 169.254.169.254, which is link-local")
	if err := p.CheckURL(ctx, "rtsp://nowhere.camera.test/main"); err != nil {
		t.Fatalf("an unresolvable name is refused: %v", err)
	}
	if dns.Queries("nowhere.camera.test") == 0 {
		t.Fatal("the name was never looked up")
	}
}

// TestAgentDefaultIsTheNetworksOfItsInterfaces runs inside a network
// namespace whose only interfaces are lo and one veth at 10.231.1.1/24.
func TestAgentDefaultIsTheNetworksOfItsInterfaces(t *testing.T) {
	lan := netnstest.New(t, 1)
	var nets []netip.Prefix
	var p *Policy
	err := lan.Hosts[0].Do(func() error {
		var err error
		if nets, err = InterfaceNetworks(); err != nil {
			return err
		}
		p, err = AgentDefault()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The veth's IPv6 link-local address is left out, as is lo.
	if !slices.Equal(nets, []netip.Prefix{netnstest.Prefix}) {
		t.Fatalf("InterfaceNetworks = %v, want [%v]", nets, netnstest.Prefix)
	}
	if err := p.CheckAddr(netip.MustParseAddr("10.231.1.77")); err != nil {
		t.Fatal(err)
	}
	refusal(t, "loopback on an agent", p.CheckAddr(netip.MustParseAddr("127.0.0.1")), "is loopback; not inside --camera-networks (10.231.1.0/24)")
	refusal(t, "another LAN", p.CheckAddr(netip.MustParseAddr("10.231.2.1")), "is not inside")

	empty := netnstest.New(t, 1)
	// lo only: an agent there would reach no camera and must say so.
	if out, err := exec.Command("ip", "-n", empty.Hosts[0].Namespace, "link", "set", netnstest.Link, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set down: %v: %s", err, out)
	}
	err = empty.Hosts[0].Do(func() error {
		_, err := AgentDefault()
		return err
	})
	if err == nil || !strings.Contains(err.Error(), Flag) {
		t.Fatalf("AgentDefault with only lo: %v, want an error naming %s", err, Flag)
	}
}
