package gbsdp

import (
	"bytes"
	"strings"
	"testing"
)

// An offer as wvp-style platforms send it for TCP passive.
const wvpTCPOffer = "v=0\r\n" +
	"o=34020000002000000001 0 0 IN IP4 10.1.2.3\r\n" +
	"s=Play\r\n" +
	"c=IN IP4 10.1.2.3\r\n" +
	"t=0 0\r\n" +
	"m=video 30004 TCP/RTP/AVP 96 97 98 99\r\n" +
	"a=recvonly\r\n" +
	"a=rtpmap:96 PS/90000\r\n" +
	"a=rtpmap:98 H264/90000\r\n" +
	"a=rtpmap:97 MPEG4/90000\r\n" +
	"a=rtpmap:99 H265/90000\r\n" +
	"a=setup:passive\r\n" +
	"a=connection:new\r\n" +
	"y=0200000009\r\n"

func TestParseTCPPassiveOffer(t *testing.T) {
	s, err := Parse([]byte(wvpTCPOffer))
	if err != nil {
		t.Fatal(err)
	}
	v := s.Video()
	if s.Origin != "34020000002000000001" || s.Name != NamePlay || s.MediaAddr(v) != "10.1.2.3" || v.Port != 30004 {
		t.Fatalf("%+v", s)
	}
	if !v.TCP() || v.Transport() != TCPPassive || v.Connection != "new" || v.Direction != "recvonly" {
		t.Fatalf("media %+v", v)
	}
	if f, ok := v.Format(99); !ok || f.Name != "H265" || f.Clock != 90000 {
		t.Fatalf("format 99: %+v", f)
	}
	if ssrc, err := s.SSRCValue(); err != nil || ssrc != 200000009 {
		t.Fatalf("ssrc %d %v", ssrc, err)
	}
}

func TestParseToleratesLooseDeviceAnswers(t *testing.T) {
	// LF ends, spaces, media-level c= only, y= before m=, RTP/AVP/TCP,
	// an rtpmap for a type the m= line forgot, f= with the format, junk.
	ans := "v=0\n o=34020000001320000001 0 0 IN IP4 192.168.1.64 \n" +
		"s=Play\nt=0 0\ny=0200000009 \nJUNK LINE\n" +
		"m=video 15060 RTP/AVP/TCP 96\nc=IN IP4 192.168.1.64\n" +
		"a=SETUP: Active\na=sendonly\na=rtpmap:96 PS/90000\na=rtpmap:100 H264/90000\na=x-custom:1\n" +
		"f=v/2/4///a///\n"
	s, err := Parse([]byte(ans))
	if err != nil {
		t.Fatal(err)
	}
	v := s.Video()
	if s.MediaAddr(v) != "192.168.1.64" || v.Transport() != TCPActive || v.Direction != "sendonly" {
		t.Fatalf("%+v %+v", s, v)
	}
	if _, ok := v.Format(100); !ok {
		t.Fatal("stray rtpmap lost")
	}
	if s.SSRC != "0200000009" || s.F != "v/2/4///a///" || len(v.Attrs) != 1 {
		t.Fatalf("%+v", s)
	}
}

func TestParseRefusesWhatItCannotUse(t *testing.T) {
	for name, body := range map[string]string{
		"empty":     "",
		"no media":  "v=0\r\ns=Play\r\ny=0100000001\r\n",
		"bad port":  "v=0\r\nm=video 99999 RTP/AVP 96\r\n",
		"short m=":  "v=0\r\nm=video\r\n",
		"oversized": "v=0\r\n" + strings.Repeat("a=x\r\n", MaxSize/5+1),
	} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOfferAnswerRoundTrip(t *testing.T) {
	for _, tr := range []Transport{UDP, TCPPassive, TCPActive} {
		y, err := SSRC(false, "3402000000", 12)
		if err != nil {
			t.Fatal(err)
		}
		offer := NewOffer(Offer{ID: "34020000002000000001", IP: "127.0.0.1", Port: 40000, Transport: tr, SSRC: y})
		raw := offer.Marshal()
		if !bytes.Contains(raw, []byte("y=0200000012\r\n")) || !bytes.Contains(raw, []byte("a=rtpmap:96 PS/90000\r\n")) {
			t.Fatalf("%s offer:\n%s", tr, raw)
		}
		parsed, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := parsed.Video().Transport(); got != tr {
			t.Fatalf("offer transport %s, want %s\n%s", got, tr, raw)
		}
		ans, err := NewAnswer(parsed, Answer{ID: "34020000001320000001", IP: "127.0.0.2", Port: 50000, F: "v/2/4///a///"})
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(ans.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		v := back.Video()
		if v.Transport() != tr.Peer() || back.SSRC != y || back.MediaAddr(v) != "127.0.0.2" || v.Port != 50000 ||
			len(v.Formats) != 1 || v.Formats[0].Name != "PS" || v.Direction != "sendonly" || back.F != "v/2/4///a///" {
			t.Fatalf("%s answer %+v %+v\n%s", tr, back, v, ans.Marshal())
		}
	}
}

func TestSSRCLayout(t *testing.T) {
	cases := []struct {
		playback bool
		domain   string
		seq      int
		want     string
	}{
		{false, "3402000000", 1, "0200000001"},
		{true, "4401060000", 9999, "1106009999"},
		{false, "4401060000", 10001, "0106000001"},
	}
	for _, c := range cases {
		got, err := SSRC(c.playback, c.domain, c.seq)
		if err != nil || got != c.want {
			t.Errorf("SSRC(%v,%s,%d) = %s %v, want %s", c.playback, c.domain, c.seq, got, err, c.want)
		}
	}
	if !Playback("1106009999") || Playback("0106009999") {
		t.Error("Playback")
	}
	if _, err := SSRC(false, "340x000000", 1); err == nil {
		t.Error("non-decimal domain accepted")
	}
	for _, bad := range []string{"", "abc", "99999999999", "4294967296"} {
		if _, err := ParseSSRC(bad); err == nil {
			t.Errorf("ParseSSRC(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(wvpTCPOffer))
	f.Add(NewOffer(Offer{ID: "1", IP: "127.0.0.1", Port: 1, Transport: UDP, SSRC: "0100000001"}).Marshal())
	f.Add([]byte("m=video 0/2 RTP/AVP 96\na=rtpmap:96\na=rtpmap:x y\na=rtpmap:96 PS\nc=IN\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		// What parses must marshal and parse again to the same media.
		again, err := Parse(s.Marshal())
		if err != nil {
			t.Fatalf("reparse: %v\n%s", err, s.Marshal())
		}
		if len(again.Media) != len(s.Media) {
			t.Fatalf("media %d then %d", len(s.Media), len(again.Media))
		}
		if v := s.Video(); v != nil {
			if av := again.Video(); av == nil || av.Transport() != v.Transport() || av.Port != v.Port {
				t.Fatalf("video changed: %+v then %+v", v, av)
			}
			if _, err := NewAnswer(s, Answer{ID: "1", IP: "127.0.0.1", Port: 2}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
