package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.etcd.io/bbolt"
)

// Point IDs come in two forms.
//
// A GB/T 28181 device ID is exactly 20 digits: an 8-digit centre (region)
// code, a 2-digit industry code, a 3-digit type code (131 camera, 132 IPC),
// a 1-digit network code and a 6-digit serial. Any ID of 20 digits is held to
// that scheme, and its type code must be 131 or 132.
//
// Every other ID must match legacyIDPattern: short IDs such as "cam1" are
// what tests, demos and integrations that predate the GB scheme use, and they
// stay accepted.
var legacyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

const (
	gbIDLen = 20
	// Type codes used for generated IDs: panoramic masts are "cameras"
	// (131), fixed HD cameras are IPCs (132).
	gbTypePanoramic = "131"
	gbTypeHD        = "132"
	gbIndustry      = "00"
	gbNetwork       = "0"
	maxSerial       = 999999
	// unassignedCentre is the centre code of generated IDs for points
	// without a region: the district of this deployment (GB/T 2260 440307,
	// padded to 8 digits).
	unassignedCentre = "44030700"
)

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validateID checks either form of point ID.
func validateID(id string) *ValidationError {
	if len(id) == gbIDLen && allDigits(id) {
		if t := id[10:13]; t != gbTypePanoramic && t != gbTypeHD {
			return invalid("id", "GB/T 28181 ID must have type code 131 or 132 in digits 11-13, not %s", t)
		}
		return nil
	}
	if !legacyIDPattern.MatchString(id) {
		return invalid("id", "must be a 20-digit GB/T 28181 ID or match %s", legacyIDPattern)
	}
	if slices.Contains(ReservedIDs, strings.ToLower(id)) {
		return invalid("id", "%q is reserved (the API uses /points/%s)", id, id)
	}
	return nil
}

// ReservedIDs are names under /api/v1/points/ that are not points.
var ReservedIDs = []string{"facets", "geo", "export", "import"}

// idPrefix returns the first 14 digits of a generated ID for a point of kind
// in region: the region code's first 8 digits (right-padded with zeros),
// industry, type and network.
func idPrefix(region, kind string) string {
	centre := unassignedCentre
	if region != "" {
		centre = region
		if len(centre) > 8 {
			centre = centre[:8]
		}
		for len(centre) < 8 {
			centre += "0"
		}
	}
	typ := gbTypeHD
	if kind == KindPanoramic {
		typ = gbTypePanoramic
	}
	return centre + gbIndustry + typ + gbNetwork
}

// nextID returns the next free generated ID with prefix, consuming the points
// bucket sequence; it skips IDs that are stored or reported taken.
func nextID(b *bbolt.Bucket, prefix string, taken func(string) bool) (string, error) {
	for {
		seq, err := b.NextSequence()
		if err != nil {
			return "", fmt.Errorf("catalog: next sequence: %w", err)
		}
		if seq > maxSerial {
			return "", errors.New("catalog: generated point IDs exhausted; supply an id")
		}
		id := fmt.Sprintf("%s%06d", prefix, seq)
		if b.Get([]byte(id)) == nil && (taken == nil || !taken(id)) {
			return id, nil
		}
	}
}
