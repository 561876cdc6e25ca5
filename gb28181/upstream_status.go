package gb28181

import "time"

// PlatformStatus is how our registration to an upstream platform stands,
// for the admin page.
type PlatformStatus struct {
	// Registered is true while the platform has accepted our REGISTER and
	// its keepalives answer.
	Registered bool `json:"registered"`
	// RegisteredAt is when the current registration was accepted.
	RegisteredAt time.Time `json:"registered_at,omitzero"`
	// LastKeepalive is when the platform last answered a keepalive.
	LastKeepalive time.Time `json:"last_keepalive,omitzero"`
	// LastError says why the last REGISTER or keepalive failed ("" if none).
	LastError string `json:"last_error"`
	// LastErrorAt is when it happened.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Views counts the live streams the platform is playing from us now.
	Views int `json:"views"`
}
