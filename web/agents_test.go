package web

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/agents"
	"github.com/tianyan/vms/catalog"
)

// fakeCameras relays camera actions to agents that answer as told.
type fakeCameras struct {
	err  error
	snap agentlink.SnapshotReply
	ptz  []agentlink.PTZRequest
}

func (f *fakeCameras) PTZ(_ context.Context, agentID string, req agentlink.PTZRequest) error {
	f.ptz = append(f.ptz, req)
	return f.err
}

func (f *fakeCameras) Snapshot(_ context.Context, agentID, camera string) (agentlink.SnapshotReply, error) {
	return f.snap, f.err
}

// fakeLeases holds the PTZ head for one user at a given priority.
type fakeLeases struct {
	holder   string
	priority int
}

func (f *fakeLeases) Acquire(_, user string, priority int, _ time.Time) (bool, string) {
	if f.holder != "" && f.holder != user && priority <= f.priority {
		return false, f.holder
	}
	f.holder, f.priority = user, priority
	return true, ""
}

// ptzPriority ranks users by a table.
type ptzPriority map[string]int

func (p ptzPriority) PTZPriority(u accounts.User, _ catalog.Point) int { return p[u.Username] }

// dome is a PTZ camera behind agent-1.
var dome = catalog.Point{ID: "dome-1", PTZ: true, Agent: "agent-1", Camera: "cam-7", Main: catalog.Source{Type: catalog.SourcePublish}}

func TestPTZGoesThroughTheCamerasAgentUnderTheHigherPriority(t *testing.T) {
	cams, leases, log := &fakeCameras{}, &fakeLeases{}, &fakeAudit{}
	s := &Server{agents: &agentHandler{cameras: cams, leases: leases, decide: ptzPriority{"duty": 5, "street": 1}, trail: log.trail(), log: quiet}}
	ptz := func(who string, p catalog.Point, body string) answer {
		return call(route(t, s, "POST /api/v1/points/:id/ptz", as(who).on(p)), "POST", "/api/v1/points/"+p.ID+"/ptz", body)
	}

	// The camera the point names, whatever the body says.
	ptz("street", dome, `{"op":"move","pan":0.5,"camera":"someone-elses"}`).want(t, http.StatusNoContent, "")
	if len(cams.ptz) != 1 || cams.ptz[0].Camera != "cam-7" || cams.ptz[0].Op != "move" {
		t.Fatalf("relayed %+v", cams.ptz)
	}
	ptz("duty", dome, `{"op":"stop"}`).want(t, http.StatusNoContent, "")
	ptz("street", dome, `{"op":"stop"}`).want(t, http.StatusConflict, "ptz_busy")
	ptz("duty", dome, `{"op":"spin"}`).want(t, http.StatusUnprocessableEntity, "invalid")
	fixed := dome
	fixed.PTZ = false
	ptz("duty", fixed, `{"op":"stop"}`).want(t, http.StatusConflict, "no_ptz")
	if len(cams.ptz) != 2 {
		t.Fatalf("relayed %d requests; refused ones must not reach the agent", len(cams.ptz))
	}
	if got := log.standalone(); !slices.Equal(got, []string{"ptz.move", "ptz.stop"}) {
		t.Fatalf("records %v", got)
	}

	for err, want := range map[error]struct {
		status int
		code   string
	}{
		agents.ErrOffline:      {503, "agent_offline"},
		agents.ErrAgentTimeout: {504, "agent_timeout"},
		errStore:               {502, "camera_error"},
	} {
		cams.err = err
		ptz("duty", dome, `{"op":"stop"}`).want(t, want.status, want.code)
	}
}

func TestSnapshotsComeFromTheAgentAndAreImages(t *testing.T) {
	cams, log := &fakeCameras{snap: agentlink.SnapshotReply{ContentType: "image/jpeg", Data: []byte{0xff, 0xd8, 0xff}}}, &fakeAudit{}
	s := &Server{agents: &agentHandler{cameras: cams, trail: log.trail(), log: quiet}}
	snap := func(p catalog.Point) answer {
		return call(route(t, s, "GET /api/v1/points/:id/snapshot.jpg", as("street").on(p)), "GET", "/api/v1/points/"+p.ID+"/snapshot.jpg", "")
	}
	a := snap(dome)
	a.want(t, http.StatusOK, "")
	if a.Header().Get("Content-Type") != "image/jpeg" || a.Body.Len() != 3 || a.Header().Get("Cache-Control") != "private, no-store" {
		t.Fatalf("answer %v %q", a.Header(), a.Body)
	}
	if got := log.standalone(); !slices.Equal(got, []string{"snapshot"}) || log.records[0].Point != "dome-1" {
		t.Fatalf("records %+v", log.records)
	}
	snap(road).want(t, http.StatusNotFound, "no_snapshot") // no agent behind it
	cams.snap.ContentType = "text/html"
	snap(dome).want(t, http.StatusBadGateway, "camera_error")
}
