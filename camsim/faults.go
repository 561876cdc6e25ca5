package camsim

import (
	"fmt"
	"strings"
	"time"
)

// Faults are misbehaviours a simulated camera can be switched into, so that
// tests and the demo can show how the system copes with real-world cameras.
// The zero value is a healthy camera.
type Faults struct {
	// DropStream closes every RTSP session and refuses new ones; the SOAP
	// side keeps answering, as when a camera's streaming daemon dies.
	DropStream bool
	// SlowReplies delays every SOAP and snapshot reply by this much.
	SlowReplies time.Duration
	// WrongPassword rejects every credential (SOAP, snapshot and RTSP), as
	// if the camera's password had been changed behind the system's back.
	WrongPassword bool
	// NoDiscovery makes the camera ignore WS-Discovery probes and stay
	// silent (no Hello, no Bye).
	NoDiscovery bool
}

// String lists the faults in the form ParseFaults reads, "none" when
// healthy.
func (f Faults) String() string {
	var parts []string
	if f.DropStream {
		parts = append(parts, "drop")
	}
	if f.SlowReplies > 0 {
		parts = append(parts, "slow="+f.SlowReplies.String())
	}
	if f.WrongPassword {
		parts = append(parts, "wrongpass")
	}
	if f.NoDiscovery {
		parts = append(parts, "nodiscovery")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// ParseFaults reads a comma-separated fault list: "drop", "slow=DURATION",
// "wrongpass", "nodiscovery"; "" and "none" are a healthy camera.
func ParseFaults(s string) (Faults, error) {
	var f Faults
	if s == "" || s == "none" {
		return f, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, value, hasValue := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case name == "drop" && !hasValue:
			f.DropStream = true
		case name == "wrongpass" && !hasValue:
			f.WrongPassword = true
		case name == "nodiscovery" && !hasValue:
			f.NoDiscovery = true
		case name == "slow" && hasValue:
			d, err := time.ParseDuration(value)
			if err != nil || d < 0 {
				return Faults{}, fmt.Errorf("fault %q: want slow=DURATION, e.g. slow=2s", part)
			}
			f.SlowReplies = d
		default:
			return Faults{}, fmt.Errorf("unknown fault %q (known: drop, slow=DURATION, wrongpass, nodiscovery)", part)
		}
	}
	return f, nil
}
