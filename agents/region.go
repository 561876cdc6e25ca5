package agents

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tianyan/vms/store"
)

// maxRegionLen bounds a region code (catalog codes are short: GB/T 2260
// digits, extended by street and community).
const maxRegionLen = 64

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: name must be 1–100 characters", ErrInvalid)
	}
	return name, nil
}

// checkRegion checks a region code's shape; whether the catalog knows it
// is the caller's to check (the registry does not read the catalog).
func checkRegion(region string) (string, error) {
	region = strings.TrimSpace(region)
	if len(region) > maxRegionLen || !utf8.ValidString(region) || strings.ContainsFunc(region, func(r rune) bool { return r < ' ' }) {
		return "", fmt.Errorf("%w: region must be a region code of at most %d characters", ErrInvalid, maxRegionLen)
	}
	return region, nil
}

// AgentPatch changes an agent's name or region; nil fields stay.
type AgentPatch struct {
	Name   *string `json:"name,omitempty"`
	Region *string `json:"region,omitempty"`
}

// Update applies a patch to an agent's record and returns the agent. The
// hooks run inside the same transaction; an error from one changes nothing.
func (r *Registry) Update(id string, p AgentPatch, also ...store.TxHook) (Agent, error) {
	var name, region string
	var err error
	if p.Name != nil {
		if name, err = checkName(*p.Name); err != nil {
			return Agent{}, err
		}
	}
	if p.Region != nil {
		if region, err = checkRegion(*p.Region); err != nil {
			return Agent{}, err
		}
	}
	err = r.updateThen(id, also, func(rec *record) error {
		if p.Name != nil {
			rec.Name = name
		}
		if p.Region != nil {
			rec.Region = region
		}
		return nil
	})
	if err != nil {
		return Agent{}, err
	}
	return r.Get(id)
}

// PointsOf lists the points bound to an agent, as the catalog says.
func (r *Registry) PointsOf(agentID string) []string {
	return r.opts.PointsOf(agentID)
}
