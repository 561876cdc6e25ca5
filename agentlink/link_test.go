package agentlink

import (
	"strings"
	"testing"
	"time"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	raw, err := Encode(TypeRelayStart, "7", RelayStart{RelayKey: RelayKey{Point: "p1", Profile: "sub"}, Source: "rtsp://10.0.0.1/s", PublishURL: "rtsp://c/p1/sub"})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Decode(raw)
	if err != nil || env.Type != TypeRelayStart || env.ID != "7" {
		t.Fatalf("%+v %v", env, err)
	}
	var rs RelayStart
	if err := env.Decode(&rs); err != nil || rs.Point != "p1" || rs.Profile != "sub" || rs.String() != "p1/sub" {
		t.Fatalf("%+v %v", rs, err)
	}
}

func TestDecodeRefusesWhatIsNotAMessage(t *testing.T) {
	for _, in := range []string{"", "null", "[]", `{"id":"1"}`, `{"type":`, strings.Repeat("x", MaxMessageBytes+1)} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%.20q) accepted", in)
		}
	}
	env, _ := Decode([]byte(`{"type":"health"}`))
	var h Health
	if err := env.Decode(&h); err == nil {
		t.Error("a body-less health decoded")
	}
}

func TestPTZRequestValidation(t *testing.T) {
	good := []PTZRequest{{Camera: "c", Op: PTZMove, Pan: 1, Tilt: -1}, {Camera: "c", Op: PTZStop}, {Camera: "c", Op: PTZPreset, Preset: "1"}}
	bad := []PTZRequest{{Op: PTZStop}, {Camera: "c", Op: "spin"}, {Camera: "c", Op: PTZMove, Pan: 2}, {Camera: "c", Op: PTZPreset},
		{Camera: "c", Op: PTZMove, TimeoutMs: 60000}}
	for _, r := range good {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	for _, r := range bad {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"type":"hello","body":{"protocol":1}}`, `{"type":"reply","id":"3","body":{"ok":true,"data":{"x":1}}}`,
		`{"type":"health","body":{"points":{"a":true}}}`, `{"type":"relay_state","body":{"point":"p","profile":"main","state":"running"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Decode(data)
		if err != nil {
			return
		}
		for _, v := range []any{&Hello{}, &Health{}, &RelayState{}, &Reply{}, &Inventory{}, &PTZRequest{}} {
			_ = env.Decode(v)
		}
	})
}

func TestPeerIntervalIsBoundedAndDefaultsForOlderPeers(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want time.Duration
	}{
		{0, KeepaliveInterval}, // an older peer announces nothing
		{-5, KeepaliveInterval},
		{1, MinKeepalive},
		{200, 200 * time.Millisecond},
		{3_600_000, MaxKeepalive}, // an hour would hold a dead link for hours
	} {
		if got := PeerInterval(tc.ms); got != tc.want {
			t.Errorf("PeerInterval(%d) = %v, want %v", tc.ms, got, tc.want)
		}
	}
	// Every deadline outlasts MissedKeepalives intervals of the peer.
	for _, iv := range []time.Duration{MinKeepalive, 200 * time.Millisecond, KeepaliveInterval, MaxKeepalive} {
		if d := ReadDeadline(iv); d <= MissedKeepalives*iv || d > (MissedKeepalives+1)*iv+time.Second {
			t.Errorf("ReadDeadline(%v) = %v", iv, d)
		}
	}
	// A hello and a welcome carry the intervals.
	raw, _ := Encode(TypeHello, "", Hello{Protocol: Version, KeepaliveMs: 200})
	env, _ := Decode(raw)
	var h Hello
	if err := env.Decode(&h); err != nil || PeerInterval(h.KeepaliveMs) != 200*time.Millisecond {
		t.Fatalf("%+v %v", h, err)
	}
}
