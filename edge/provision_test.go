package edge

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

// TestDiscoveredJSONKeepsEveryKeyWhenEmpty: `discover --json` promises its
// shape to scripts, so an unprobed camera or a profile a camera left half
// described still has every key.
func TestDiscoveredJSONKeepsEveryKeyWhenEmpty(t *testing.T) {
	raw, err := json.Marshal(Discovered{Profiles: []DiscoveredProfile{{}}})
	if err != nil {
		t.Fatal(err)
	}
	var cam map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cam); err != nil {
		t.Fatal(err)
	}
	var profiles []map[string]json.RawMessage
	if err := json.Unmarshal(cam["profiles"], &profiles); err != nil || len(profiles) != 1 {
		t.Fatalf("profiles %s", cam["profiles"])
	}
	want := []string{"error", "ip", "manufacturer", "model", "profiles", "ptz", "snapshot_uri", "xaddr"}
	if got := slices.Sorted(maps.Keys(cam)); !slices.Equal(got, want) {
		t.Errorf("camera keys %v, want %v", got, want)
	}
	want = []string{"codec", "height", "name", "stream_uri", "token", "width"}
	if got := slices.Sorted(maps.Keys(profiles[0])); !slices.Equal(got, want) {
		t.Errorf("profile keys %v, want %v", got, want)
	}
}
