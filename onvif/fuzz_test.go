package onvif

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addCorpus seeds a fuzz target with every quirk file matching pattern.
func addCorpus(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", "quirks", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseProbeMatches(f *testing.F) {
	addCorpus(f, "probematch_*.xml")
	addCorpus(f, "hello.xml")
	addCorpus(f, "bye.xml")
	probe, _ := buildProbe("dn:NetworkVideoTransmitter")
	f.Add(probe)
	f.Add([]byte("\x00garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parseDiscovery(data, "127.0.0.1")
		if err != nil {
			if strings.Contains(err.Error(), "parser panic") {
				t.Fatal(err)
			}
			return
		}
		if len(msg.found) > maxMatches {
			t.Fatalf("%d matches kept", len(msg.found))
		}
		for _, fd := range msg.found {
			if fd.EndpointRef == "" && len(fd.XAddrs) == 0 {
				t.Fatalf("match without endpoint or address: %+v", fd)
			}
			if fd.IP != "127.0.0.1" {
				t.Fatalf("source lost: %+v", fd)
			}
		}
	})
}

func FuzzParseSOAPResponse(f *testing.F) {
	addCorpus(f, "*.xml")
	addCorpus(f, "*.html")
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(err error) {
			if err != nil && strings.Contains(err.Error(), "parser panic") {
				t.Fatal(err)
			}
		}
		var profiles profilesResponse
		err := parseSOAP(data, &profiles)
		check(err)
		if err == nil {
			for i := range profiles.Profiles {
				p := profiles.Profiles[i].profile()
				if p.Width < 0 || p.Height < 0 || p.Bitrate < 0 || p.FPS < 0 {
					t.Fatalf("negative numbers: %+v", p)
				}
			}
			d := Device{Profiles: make([]Profile, len(profiles.Profiles))}
			for i := range profiles.Profiles {
				d.Profiles[i] = profiles.Profiles[i].profile()
			}
			if m, s := d.MainSub(); (m == nil) != (len(d.Profiles) == 0) || (s != nil && s == m) {
				t.Fatalf("MainSub %v %v of %d profiles", m, s, len(d.Profiles))
			}
		}
		var sdt systemDateAndTimeResponse
		err = parseSOAP(data, &sdt)
		check(err)
		if err == nil && sdt.SystemDateAndTime.UTCDateTime != nil {
			_, _ = sdt.SystemDateAndTime.UTCDateTime.value()
		}
		if fault, ok := parseSOAP(data, nil).(*soapFault); ok {
			_ = fault.Error()
			_ = fault.kind()
		}
	})
}

func FuzzParseChallenges(f *testing.F) {
	f.Add(`Digest realm="a, b", qop="auth,auth-int", nonce="n\"1", algorithm=MD5, Basic realm="x"`)
	f.Add(`Digest realm="r2", nonce="n2", algorithm=SHA-256-sess, qop="auth", userhash=true, opaque="o"`)
	f.Add(`Basic`)
	f.Add(`=,="`)
	f.Fuzz(func(t *testing.T, header string) {
		h := http.Header{}
		h.Set("WWW-Authenticate", header)
		a, _, ok := fromChallenges(h)
		if ok && a.digest != nil {
			_ = a.digest.authorization("POST", "/onvif/device_service", "u", "p")
		}
	})
}
