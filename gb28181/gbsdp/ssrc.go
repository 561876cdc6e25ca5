package gbsdp

import (
	"errors"
	"fmt"
	"strconv"
)

// SSRC builds a y= value: ten decimal digits, the first 0 for live or 1
// for playback/download, the next five the domain's digits 4–8 (its
// province-city-county part after the first three), the last four seq
// modulo 10000. domain is the platform's 10-digit SIP domain.
func SSRC(playback bool, domain string, seq int) (string, error) {
	if len(domain) < 8 {
		return "", fmt.Errorf("gbsdp: domain %q shorter than 8 digits", domain)
	}
	for _, c := range domain[3:8] {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("gbsdp: domain %q is not decimal", domain)
		}
	}
	first := "0"
	if playback {
		first = "1"
	}
	if seq < 0 {
		seq = -seq
	}
	return fmt.Sprintf("%s%s%04d", first, domain[3:8], seq%10000), nil
}

// ParseSSRC reads a y= value as the RTP SSRC it names (its decimal value,
// which is how devices put it in RTP).
func ParseSSRC(y string) (uint32, error) {
	if y == "" {
		return 0, errors.New("gbsdp: no y= line")
	}
	if len(y) > 10 {
		return 0, fmt.Errorf("gbsdp: y=%q longer than 10 digits", y)
	}
	v, err := strconv.ParseUint(y, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("gbsdp: y=%q: not a decimal SSRC", y)
	}
	return uint32(v), nil
}

// Playback reports whether a y= value is for playback (first digit 1).
func Playback(y string) bool { return len(y) == 10 && y[0] == '1' }
