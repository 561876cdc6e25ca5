package onvif

import (
	"net/http"
	"strings"
	"testing"
)

func TestDigestResponseMatchesRFCExamples(t *testing.T) {
	// RFC 7616 section 3.9.1 and RFC 2617 section 3.5.
	cases := []struct {
		algo, realm, nonce, password, cnonce, want string
	}{
		{"MD5", "http-auth@example.org", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "Circle of Life",
			"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "8ca523f5e9506fed4657c9700eebdbec"},
		{"SHA-256", "http-auth@example.org", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "Circle of Life",
			"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
		{"", "testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "Circle Of Life",
			"0a4f113b", "6629fae49393a05397450978507c4ef1"},
	}
	for _, tc := range cases {
		d, err := newDigestAuth(challenge{scheme: "digest", params: map[string]string{
			"realm": tc.realm, "nonce": tc.nonce, "qop": "auth", "algorithm": tc.algo}})
		if err != nil {
			t.Fatal(err)
		}
		method := "GET"
		if got := d.response(method, "/dir/index.html", "Mufasa", tc.password, tc.cnonce, "00000001"); got != tc.want {
			t.Errorf("%s: got %s want %s", tc.algo, got, tc.want)
		}
	}
}

func TestChallengeParsing(t *testing.T) {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Digest realm="a, b", qop="auth,auth-int", nonce="n\"1", algorithm=MD5, Basic realm="x"`)
	h.Add("WWW-Authenticate", `Digest realm="r2", nonce="n2", algorithm=SHA-256, qop="auth", stale=TRUE`)
	chs := parseChallenges(h.Values("WWW-Authenticate"))
	if len(chs) != 3 || chs[0].scheme != "digest" || chs[0].params["realm"] != "a, b" || chs[0].params["nonce"] != `n"1` ||
		chs[1].scheme != "basic" || chs[1].params["realm"] != "x" || chs[2].params["stale"] != "TRUE" {
		t.Fatalf("parsed %+v", chs)
	}
	a, _, ok := fromChallenges(h)
	if !ok || a.digest == nil || a.digest.realm != "r2" {
		t.Fatalf("strongest challenge not chosen: %+v", a)
	}
	hdr := a.digest.authorization("POST", "/onvif/device_service", `we"ird`, "pw")
	for _, want := range []string{`username="we\"ird"`, `realm="r2"`, `uri="/onvif/device_service"`, "algorithm=SHA-256", "qop=auth", "nc=00000001"} {
		if !strings.Contains(hdr, want) {
			t.Errorf("authorization %q lacks %q", hdr, want)
		}
	}
	if hdr2 := a.digest.authorization("POST", "/x", "u", "p"); !strings.Contains(hdr2, "nc=00000002") {
		t.Errorf("nonce count did not advance: %q", hdr2)
	}

	for _, bad := range []string{`Digest realm="x"`, `Digest nonce="n", algorithm=SHA-512-256`, `Digest nonce="n", qop="auth-int"`, `Negotiate abc==`, ``} {
		h := http.Header{}
		h.Set("WWW-Authenticate", bad)
		if _, why, ok := fromChallenges(h); ok || why == "" {
			t.Errorf("%q accepted (why %q)", bad, why)
		}
	}
}
