package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/agentlink"
	"github.com/tianyan/vms/camsim"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/edge"
)

// The agent's provisioning page, driven through a real centre, a real edge
// agent and simulated ONVIF cameras. The agent sits in street 1; it knows
// four cameras: c1 is bound to a level-2 reservoir point in street 1, c2
// to a level-4 panoramic point in street 2, c3 and c4 are not registered.

const (
	street1     = "440307001"
	street2     = "440307002"
	pageCamPass = "cam-secret-1"
)

// pageRegionParent is the fixture's region tree (importRegionsFixture), for
// the reference's own ancestor walk.
var pageRegionParent = map[string]string{street1: "440307", street2: "440307"}

// pagePointRef is a bound point as the reference sees it.
type pagePointRef struct {
	id, camera, category, region string
	level                        int
}

// pageGrant is a grant as the fixture creates it and the reference reads it.
type pageGrant struct {
	actions, categories, regions []string
	max                          int
}

// pageAccount is one account of the matrix: a central user with grants,
// or a visitor who never logs in (name ""), possibly sending a credential
// the page must not accept.
type pageAccount struct {
	name     string
	admin    bool
	disabled bool
	grants   []pageGrant
	// header is sent on every request by visitors that hold some other
	// credential (an API token, the agent's own Basic credentials).
	header string
	label  string
}

func (u pageAccount) String() string {
	if u.label != "" {
		return u.label
	}
	return u.name
}

func (u pageAccount) password() string {
	if u.admin {
		return adminPassword
	}
	return u.name + "-pass-123"
}

// can is the reference decision: admins everything, the disabled nothing,
// anyone else what one of their grants names for the point's category,
// region subtree and level.
func (u pageAccount) can(action string, p pagePointRef) bool {
	if u.disabled || u.name == "" {
		return false
	}
	if u.admin {
		return true
	}
	for _, g := range u.grants {
		if !slices.Contains(g.actions, action) || p.level > g.max {
			continue
		}
		if !slices.Contains(g.categories, "*") && !slices.Contains(g.categories, p.category) {
			continue
		}
		for r := p.region; r != ""; r = pageRegionParent[r] {
			if slices.Contains(g.regions, r) || slices.Contains(g.regions, "*") {
				return true
			}
		}
	}
	return false
}

// provisions reports whether the account holds provision anywhere, or
// (region != "") within region.
func (u pageAccount) provisions(region string) bool {
	if u.disabled || u.name == "" {
		return false
	}
	if u.admin {
		return true
	}
	for _, g := range u.grants {
		if !slices.Contains(g.actions, "provision") {
			continue
		}
		if region == "" || slices.Contains(g.regions, "*") {
			return true
		}
		for r := region; r != ""; r = pageRegionParent[r] {
			if slices.Contains(g.regions, r) {
				return true
			}
		}
	}
	return false
}

// loginStatus is what logging in on the page answers the account.
func (u pageAccount) loginStatus() int {
	switch {
	case u.disabled:
		return http.StatusUnauthorized
	case u.provisions(""):
		return http.StatusOK
	}
	return http.StatusForbidden
}

var (
	grantTech  = pageGrant{[]string{"provision", "view", "snapshot"}, []string{"*"}, []string{street1}, 4}
	pageTech   = pageAccount{name: "tech", grants: []pageGrant{grantTech}}
	pageStreet = pageAccount{name: "street", grants: []pageGrant{{[]string{"view"}, []string{"*"}, []string{street1}, 2}}}
	pageOther  = pageAccount{name: "otherprov", grants: []pageGrant{{[]string{"provision", "view", "snapshot"}, []string{"*"}, []string{street2}, 4}}}
	// binder may view one bound point only, and provision elsewhere.
	pageBinder = pageAccount{name: "binder", grants: []pageGrant{{[]string{"provision"}, []string{"school"}, []string{street2}, 1},
		{[]string{"view"}, []string{"reservoir"}, []string{street1}, 2}}}
	pagePointViewer = pageAccount{name: "pointviewer", grants: []pageGrant{{[]string{"view"}, []string{"reservoir"}, []string{street1}, 2}}}
	pageDisabled    = pageAccount{name: "gone", disabled: true, grants: []pageGrant{grantTech}}
)

// pageFixture is the centre, the agent in street 1, its page and cameras.
type pageFixture struct {
	a     *testApp
	creds edge.Credentials
	agent *edge.Agent
	book  *edge.CameraBook
	page  string
	// cam maps c1…c4 to camera IDs; points are the bound ones.
	cam    map[string]string
	sims   map[string]*camsim.Camera
	points []pagePointRef
}

// enrollAgentIn creates an agent in region and enrolls it.
func (a *testApp) enrollAgentIn(name, region string) edge.Credentials {
	a.t.Helper()
	res := a.admin(http.MethodPost, "/api/v1/agents", map[string]string{"name": name, "region": region})
	if res.Status != http.StatusCreated {
		a.t.Fatalf("create agent: %s", res)
	}
	var created struct {
		Agent struct{ ID, Region string }
		Code  string `json:"enrollment_code"`
	}
	decodeInto(a.t, res, &created)
	if created.Agent.Region != region {
		a.t.Fatalf("agent created in region %q, asked %q", created.Agent.Region, region)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := edge.Enroll(ctx, nil, a.HTTPURL(), created.Code, "page-host")
	if err != nil {
		a.t.Fatalf("enroll: %v", err)
	}
	return creds
}

func pageRandom() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func startAgentPage(t *testing.T, accounts ...pageAccount) *pageFixture {
	t.Helper()
	a := startApp(t)
	a.importRegionsFixture()
	f := &pageFixture{a: a, cam: map[string]string{}, sims: map[string]*camsim.Camera{}}
	f.creds = a.enrollAgentIn("Street 1 LAN", street1)
	f.book = edge.NewCameraBook("", testLogger())
	f.book.SetCameraNetworks(loopbackCameraNetworks(t))
	f.book.SetDiscovery(edge.DiscoveryConfig{MulticastIP: "127.0.0.1", Timeout: 300 * time.Millisecond})
	suffix := pageRandom()
	for _, name := range []string{"c1", "c2", "c3", "c4"} {
		// Unique names: other test processes may run cameras on loopback.
		cam, err := camsim.StartCamera(camsim.CameraConfig{Name: name + "-" + suffix, Manufacturer: "Tianyan", Model: "SIM-PTZ",
			DiscoveryIP: "127.0.0.1", Username: "admin", Password: pageCamPass, PTZ: true, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cam.Close)
		id := edge.CameraID(cam.Endpoint(), cam.XAddr())
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err = f.book.Provision(ctx, id, cam.XAddr(), "admin", pageCamPass)
		cancel()
		if err != nil {
			t.Fatalf("probe %s: %v", name, err)
		}
		f.cam[name], f.sims[name] = id, cam
	}
	f.agent = edge.New(edge.Config{Credentials: f.creds, Cameras: f.book, HealthInterval: time.Second, Logger: testLogger(),
		CameraNetworks: loopbackCameraNetworks(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.agent.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "agent online", func() bool { return f.agent.Online() && a.agentOnline(f.creds.AgentID) })

	f.points = []pagePointRef{
		{id: "res-s1", camera: f.cam["c1"], category: "reservoir", region: street1, level: 2},
		{id: "pano-s2", camera: f.cam["c2"], category: "major-project", region: street2, level: 4},
	}
	for _, p := range f.points {
		rec, _ := f.book.Get(p.camera)
		main, err := rec.StreamURL(rec.MainToken)
		if err != nil {
			t.Fatal(err)
		}
		res := a.admin(http.MethodPost, "/api/v1/points", map[string]any{"id": p.id, "name": "Point " + p.id, "category": p.category,
			"region": p.region, "level": p.level, "agent": f.creds.AgentID, "camera": p.camera, "ptz": true,
			"main": map[string]string{"type": "rtsp", "url": main}})
		if res.Status != http.StatusCreated {
			t.Fatalf("bound point %s: %s", p.id, res)
		}
	}
	for _, u := range accounts {
		f.createAccount(u)
	}
	page := httptest.NewServer(edge.NewProvisioningUI(f.agent, testLogger()).Handler())
	t.Cleanup(page.Close)
	f.page = page.URL
	return f
}

// createAccount makes the account's user and grants at the centre.
func (f *pageFixture) createAccount(u pageAccount) {
	if u.name == "" || u.admin {
		return
	}
	f.a.createUser(u.name, u.password())
	for _, g := range u.grants {
		f.a.grant(map[string]any{"user": u.name, "categories": g.categories, "regions": g.regions, "max_level": g.max, "actions": g.actions})
	}
	if u.disabled {
		if res := f.a.admin(http.MethodPatch, "/api/v1/users/"+u.name, map[string]any{"disabled": true}); res.Status != http.StatusOK {
			f.a.t.Fatalf("disable %s: %s", u.name, res)
		}
	}
}

// pointOf returns the point camera id is bound to.
func (f *pageFixture) pointOf(id string) (pagePointRef, bool) {
	for _, p := range f.points {
		if p.camera == id {
			return p, true
		}
	}
	return pagePointRef{}, false
}

// browser is a technician's browser at address ip (127.0.0.x: loopback
// answers them all), with its own cookies.
type pageBrowser struct {
	t      *testing.T
	base   string
	hc     *http.Client
	header string // sent as Authorization on every request, if set
}

func (f *pageFixture) browser(ip string) *pageBrowser {
	jar, _ := cookiejar.New(nil)
	addr := net.ParseIP(ip)
	if addr == nil {
		f.a.t.Fatalf("browser address %q", ip)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: addr}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	f.a.t.Cleanup(tr.CloseIdleConnections)
	return &pageBrowser{t: f.a.t, base: f.page, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: tr}}
}

func (b *pageBrowser) call(method, path string, body any) response {
	b.t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.base+path, r)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.header != "" {
		req.Header.Set("Authorization", b.header)
	}
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: raw}
}

func (b *pageBrowser) login(user, password string) response {
	b.t.Helper()
	return b.call(http.MethodPost, "/api/login", map[string]string{"username": user, "password": password})
}

// pageCameraJSON is a camera as the page lists it.
type pageCameraJSON struct {
	ID       string `json:"id"`
	Password string `json:"password"`
	Point    *struct {
		ID, Name string
		Actions  []string
	} `json:"point"`
}

func pageListed(t *testing.T, res response) map[string]pageCameraJSON {
	t.Helper()
	var l struct{ Items []pageCameraJSON }
	decodeInto(t, res, &l)
	out := map[string]pageCameraJSON{}
	for _, c := range l.Items {
		out[c.ID] = c
	}
	return out
}

func pageErrCode(res response) string {
	var e struct{ Error struct{ Code, Field string } }
	_ = json.Unmarshal(res.Body, &e)
	return e.Error.Code
}

// pageRef is the independent reference: for every route of the page, the
// status an account must get, for a camera when the route acts on one.
// It reads the fixture and the accounts' grants, never the page's table
// or the centre's permissions.
func (f *pageFixture) pageRef() map[string]func(u pageAccount, cam string) int {
	logged := func(u pageAccount) bool { return u.name != "" && u.loginStatus() == http.StatusOK }
	plain := func(u pageAccount, _ string) int {
		if !logged(u) {
			return http.StatusUnauthorized
		}
		return http.StatusOK
	}
	// camera applies the rule for a camera route: bound cameras need
	// action on their point (none: refused, 409), unbound ones provision
	// in the agent's region; ok is the status of a camera that passes.
	camera := func(action string, ok int) func(u pageAccount, cam string) int {
		return func(u pageAccount, cam string) int {
			if !logged(u) {
				return http.StatusUnauthorized
			}
			if p, bound := f.pointOf(cam); bound {
				switch {
				case !u.can("view", p):
					return http.StatusNotFound
				case action == "":
					return http.StatusConflict
				case !u.can(action, p):
					return http.StatusForbidden
				}
				return ok
			}
			if !slices.Contains([]string{f.cam["c3"], f.cam["c4"]}, cam) || !u.provisions(street1) {
				return http.StatusNotFound
			}
			return ok
		}
	}
	return map[string]func(pageAccount, string) int{
		"GET /":            func(pageAccount, string) int { return http.StatusOK },
		"POST /api/login":  func(u pageAccount, _ string) int { return u.loginStatus() },
		"POST /api/logout": func(pageAccount, string) int { return http.StatusNoContent },
		"GET /api/status":  plain,
		"GET /api/cameras": plain,
		"POST /api/discover": func(u pageAccount, _ string) int {
			if !logged(u) {
				return http.StatusUnauthorized
			}
			if !u.provisions(street1) {
				return http.StatusForbidden
			}
			return http.StatusOK
		},
		"POST /api/cameras/probe":            camera("manage", http.StatusOK),
		"GET /api/cameras/{id}/snapshot.jpg": camera("snapshot", http.StatusOK),
		// Past the page's door the centre decides; an empty name is its 422.
		"POST /api/cameras/{id}/point": camera("", http.StatusUnprocessableEntity),
		"GET /api/regions":             plain,
		"GET /api/categories":          plain,
	}
}

// visibleRef is whether the account sees a camera in the page's lists.
func (f *pageFixture) visibleRef(u pageAccount, cam string) bool {
	if p, bound := f.pointOf(cam); bound {
		return u.can("view", p)
	}
	return u.provisions(street1)
}

// TestAgentPageRouteMatrix walks every route of the page's route table for
// every account — admin, a technician with provision in the agent's
// street, the view-only street officer, a provisioner of another street, a
// user who may view one bound point (with and without provision
// elsewhere), a disabled user, a visitor who never logged in, an API token
// and the agent's own credentials — and each camera (bound, unbound,
// unknown), and holds every answer to the reference. A route added to the
// page without an entry in the reference fails here.
func TestAgentPageRouteMatrix(t *testing.T) {
	accounts := []pageAccount{{name: "admin", admin: true}, pageTech, pageStreet, pageOther, pageBinder, pagePointViewer, pageDisabled}
	f := startAgentPage(t, accounts...)
	tok := f.a.do(http.MethodPost, "/api/v1/me/tokens", f.a.token, "", map[string]string{"name": "page-matrix"})
	var created struct{ Token string }
	if tok.Status != http.StatusCreated || json.Unmarshal(tok.Body, &created) != nil || created.Token == "" {
		t.Fatalf("API token: %s", tok)
	}
	accounts = append(accounts, pageAccount{label: "no login"},
		pageAccount{label: "admin API token", header: "Bearer " + created.Token},
		pageAccount{label: "agent credential", header: "Basic " + pageBasic(f.creds.AgentID, f.creds.Secret)})

	ref := f.pageRef()
	routes := edge.PageRoutes()
	var keys []string
	for _, r := range routes {
		keys = append(keys, r.Method+" "+r.Path)
		if ref[r.Method+" "+r.Path] == nil {
			t.Errorf("page route %s %s has no reference: write down who may use it", r.Method, r.Path)
		}
	}
	for k := range ref {
		if !slices.Contains(keys, k) {
			t.Errorf("the reference knows %s, which the page does not serve", k)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	cams := []string{f.cam["c1"], f.cam["c2"], f.cam["c3"], f.cam["c4"], "cam-000000000000"}
	ours := map[string]string{}
	for k, v := range f.cam {
		ours[v] = k
	}
	checked := 0
	for i, u := range accounts {
		b := f.browser(fmt.Sprintf("127.0.0.%d", 2+i))
		b.header = u.header
		if u.name != "" {
			res := b.login(u.name, u.password())
			if want := ref["POST /api/login"](u, ""); res.Status != want {
				t.Fatalf("%s: login %d, want %d: %s", u, res.Status, want, res.Body)
			}
			checked++
		}
		for _, r := range routes {
			key := r.Method + " " + r.Path
			if key == "POST /api/login" || key == "POST /api/logout" {
				continue // before and after the rest
			}
			targets := []string{""}
			if r.Rule.Camera == edge.CameraInPath || r.Rule.Camera == edge.CameraInBody {
				targets = cams
			}
			for _, cam := range targets {
				path := strings.ReplaceAll(r.Path, "{id}", cam)
				var body any
				switch key {
				case "POST /api/cameras/probe":
					body = map[string]string{"id": cam, "username": "admin", "password": pageCamPass}
				case "POST /api/cameras/{id}/point":
					body = map[string]any{"name": "", "category": "reservoir", "region": street1, "level": 1}
				}
				res := b.call(r.Method, path, body)
				checked++
				want := ref[key](u, cam)
				if res.Status != want {
					t.Errorf("%s: %s %s → %d, reference %d: %.200s", u, r.Method, path, res.Status, want, res.Body)
					continue
				}
				switch {
				case want == http.StatusNotFound && pageErrCode(res) != "not_found",
					want == http.StatusConflict && pageErrCode(res) != "registered",
					want == http.StatusUnauthorized && pageErrCode(res) != "unauthenticated":
					t.Errorf("%s: %s %s → %d with code %q", u, r.Method, path, res.Status, pageErrCode(res))
				case want == http.StatusUnprocessableEntity && !bytes.Contains(res.Body, []byte(`"field":"name"`)):
					t.Errorf("%s: %s %s → 422 not from the centre: %s", u, r.Method, path, res.Body)
				case want == http.StatusOK && strings.HasSuffix(path, ".jpg"):
					if _, err := jpeg.Decode(bytes.NewReader(res.Body)); err != nil {
						t.Errorf("%s: %s is no JPEG: %v", u, path, err)
					}
				case want == http.StatusOK && (key == "GET /api/cameras" || key == "POST /api/discover"):
					got := pageListed(t, res)
					for id, name := range ours {
						c, seen := got[id]
						if seen != f.visibleRef(u, id) {
							t.Errorf("%s: %s lists %s: %v, reference %v", u, key, name, seen, !seen)
						}
						p, bound := f.pointOf(id)
						if seen && bound != (c.Point != nil) || seen && bound && c.Point.ID != p.id {
							t.Errorf("%s: %s shows %s registered as %+v, bound to %q", u, key, name, c.Point, p.id)
						}
						if seen && c.Password != "***" {
							t.Errorf("%s: %s shows %s's camera password as %q", u, key, name, c.Password)
						}
					}
					for id, c := range got {
						// Cameras other tests run on loopback may be discovered:
						// unbound, and only for those who provision here.
						if _, mine := ours[id]; !mine && (c.Point != nil || !u.provisions(street1)) {
							t.Errorf("%s: %s lists a foreign camera %s %+v", u, key, id, c.Point)
						}
					}
				}
			}
		}
		res := b.call(http.MethodPost, "/api/logout", nil)
		if want := ref["POST /api/logout"](u, ""); res.Status != want {
			t.Errorf("%s: logout %d, want %d", u, res.Status, want)
		}
		if res := b.call(http.MethodGet, "/api/status", nil); res.Status != http.StatusUnauthorized {
			t.Errorf("%s: status after logout %d", u, res.Status)
		}
	}
	t.Logf("%d answers held to the reference across %d accounts and %d page routes", checked, len(accounts), len(routes))
}

func pageBasic(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestAgentPageShowsEachAccountOnlyItsCameras is the door "edge agent's
// provisioning page": the view-only street officer may not log in at all;
// a technician of street 1 does not see, nor get a snapshot of, the
// level-4 panoramic camera of street 2, whose own provisioner does (through
// the centre's snapshot door, audited there).
func TestAgentPageShowsEachAccountOnlyItsCameras(t *testing.T) {
	f := startAgentPage(t, pageTech, pageStreet, pageOther)
	street := f.browser("127.0.0.2")
	res := street.login("street", pageStreet.password())
	if res.Status != http.StatusForbidden || pageErrCode(res) != "not_provisioner" || len(res.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("view-only street officer logging in on the agent page: %s", res)
	}
	if res := street.call(http.MethodGet, "/api/cameras", nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("street officer lists cameras: %s", res)
	}

	tech := f.browser("127.0.0.3")
	if res := tech.login("tech", pageTech.password()); res.Status != http.StatusOK {
		t.Fatalf("tech login: %s", res)
	}
	got := pageListed(t, tech.call(http.MethodGet, "/api/cameras", nil))
	if _, ok := got[f.cam["c2"]]; ok || len(got) != 3 {
		t.Fatalf("street-1 technician sees %d cameras, the street-2 panoramic among them: %v", len(got), got)
	}
	if res := tech.call(http.MethodGet, "/api/cameras/"+f.cam["c2"]+"/snapshot.jpg", nil); res.Status != http.StatusNotFound {
		t.Fatalf("street-1 technician's snapshot of the level-4 panoramic camera of street 2: %d", res.Status)
	}

	other := f.browser("127.0.0.4")
	if res := other.login("otherprov", pageOther.password()); res.Status != http.StatusOK {
		t.Fatalf("otherprov login: %s", res)
	}
	got = pageListed(t, other.call(http.MethodGet, "/api/cameras", nil))
	if c, ok := got[f.cam["c2"]]; !ok || len(got) != 1 || c.Point == nil || c.Point.ID != "pano-s2" {
		t.Fatalf("street-2 provisioner on a street-1 agent sees %v, want only its own registered camera", got)
	}
	res = other.call(http.MethodGet, "/api/cameras/"+f.cam["c2"]+"/snapshot.jpg", nil)
	if _, err := jpeg.Decode(bytes.NewReader(res.Body)); res.Status != http.StatusOK || err != nil {
		t.Fatalf("street-2 provisioner's snapshot of its own point: %d %v", res.Status, err)
	}
	recs := f.a.audited("snapshot")
	if len(recs) != 1 || recs[0].User != "otherprov" || recs[0].Point != "pano-s2" {
		t.Fatalf("the centre audited %+v, want one snapshot of pano-s2 by otherprov", recs)
	}
	if res := other.call(http.MethodPost, "/api/discover", nil); res.Status != http.StatusForbidden {
		t.Fatalf("discovery by a provisioner of another region: %s", res)
	}
}

// TestAgentPageShowsRegisteredCamerasAndRefusesRegisteringThemAgain is the
// door "agent page, binding": a bound camera is pageListed as registered, with
// its point, and registering it again is refused on the page before the
// centre is asked; a camera registered through the page turns registered
// at once, and the second attempt is refused the same way.
func TestAgentPageShowsRegisteredCamerasAndRefusesRegisteringThemAgain(t *testing.T) {
	f := startAgentPage(t, pageTech)
	tech := f.browser("127.0.0.2")
	if res := tech.login("tech", pageTech.password()); res.Status != http.StatusOK {
		t.Fatalf("tech login: %s", res)
	}
	got := pageListed(t, tech.call(http.MethodGet, "/api/cameras", nil))
	if c := got[f.cam["c1"]]; c.Point == nil || c.Point.ID != "res-s1" || c.Point.Name != "Point res-s1" {
		t.Fatalf("registered camera pageListed as %+v", c)
	}
	if c := got[f.cam["c3"]]; c.ID == "" || c.Point != nil {
		t.Fatalf("unregistered camera pageListed as %+v", c)
	}
	spec := edge.PointSpec{Name: "Reservoir again", Category: "reservoir", Region: street1, Level: 1, Kind: "hd"}
	res := tech.call(http.MethodPost, "/api/cameras/"+f.cam["c1"]+"/point", spec)
	if res.Status != http.StatusConflict || pageErrCode(res) != "registered" || !bytes.Contains(res.Body, []byte("res-s1")) {
		t.Fatalf("registering a bound camera again: %s", res)
	}

	// Named by its address, or under an ID of one's own choosing, a bound
	// camera stays the same camera: no second record to register.
	probe := func(body map[string]string) response {
		body["username"], body["password"] = "admin", pageCamPass
		return tech.call(http.MethodPost, "/api/cameras/probe", body)
	}
	if res := probe(map[string]string{"xaddr": f.sims["c1"].XAddr()}); res.Status != http.StatusForbidden {
		t.Fatalf("probing the bound camera by its address: %s", res)
	}
	if res := probe(map[string]string{"id": "cam-mine", "xaddr": f.sims["c1"].XAddr()}); res.Status != http.StatusNotFound {
		t.Fatalf("probing the bound camera's address under a new ID: %s", res)
	}
	res = probe(map[string]string{"xaddr": f.sims["c3"].XAddr()})
	var probed pageCameraJSON
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &probed) != nil || probed.ID != f.cam["c3"] {
		t.Fatalf("probing an unbound camera by its address: %s", res)
	}
	if n := len(f.book.List()); n != 4 {
		t.Fatalf("the book holds %d cameras after the probes, want the same 4", n)
	}

	spec.Name = "Reservoir east"
	res = tech.call(http.MethodPost, "/api/cameras/"+f.cam["c3"]+"/point", spec)
	var p catalog.Point
	if res.Status != http.StatusCreated || json.Unmarshal(res.Body, &p) != nil || p.Camera != f.cam["c3"] || p.Agent != f.creds.AgentID {
		t.Fatalf("registering an unbound camera: %s", res)
	}
	got = pageListed(t, tech.call(http.MethodGet, "/api/cameras", nil))
	if c := got[f.cam["c3"]]; c.Point == nil || c.Point.ID != p.ID {
		t.Fatalf("the camera just registered is pageListed as %+v", c)
	}
	spec.Name = "Reservoir east, twice"
	if res := tech.call(http.MethodPost, "/api/cameras/"+f.cam["c3"]+"/point", spec); res.Status != http.StatusConflict || pageErrCode(res) != "registered" {
		t.Fatalf("registering it a second time: %s", res)
	}
	all, err := f.a.Catalog.List()
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, p := range all {
		per[p.Camera]++
	}
	for name, id := range f.cam {
		if per[id] > 1 {
			t.Errorf("camera %s is bound to %d points", name, per[id])
		}
	}
	if per[f.cam["c3"]] != 1 || len(all) != 3 {
		t.Fatalf("catalog after the page's registrations: %d points, %v", len(all), per)
	}
}

// TestAgentPageLoginThrottleKeepsTheRealTechnicianIn is the door "agent
// page login": 30 wrong passwords for the technician's name from one
// browser, then a password spray over 30 names from it, lock that browser
// out on the page and never the technician logging in from another; the
// centre throttles and audits each attempt under the browser's address as
// the agent saw it.
func TestAgentPageLoginThrottleKeepsTheRealTechnicianIn(t *testing.T) {
	f := startAgentPage(t, pageTech)
	attacker := f.browser("127.0.0.2")
	refused := 0
	for i := range 30 {
		res := attacker.login("tech", "wrong-password-"+pageRandom())
		switch res.Status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("bad login %d: %s", i, res)
		}
	}
	for i := range 30 {
		res := attacker.login("ghost-"+pageRandom(), "wrong-password")
		if res.Status != http.StatusUnauthorized && res.Status != http.StatusTooManyRequests {
			t.Fatalf("spray %d: %s", i, res)
		}
		if res.Status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused < 30 {
		t.Fatalf("the page throttled %d of 60 bad logins from one browser", refused)
	}
	res := attacker.login("tech", pageTech.password())
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("the attacking browser with the right password: %s", res)
	}

	// The real technician, from another address, is let in: at most after
	// the centre's short backoff for the name, never a lock.
	tech := f.browser("127.0.0.3")
	res = tech.login("tech", pageTech.password())
	if res.Status == http.StatusTooManyRequests {
		wait, _ := time.ParseDuration(res.Header.Get("Retry-After") + "s")
		t.Logf("the centre asks the technician's name to wait %v", wait)
		if wait > 5*time.Second {
			t.Fatalf("the real technician is locked out for %v", wait)
		}
		time.Sleep(wait + 100*time.Millisecond)
		res = tech.login("tech", pageTech.password())
	}
	if res.Status != http.StatusOK {
		t.Fatalf("the real technician from another browser: %s", res)
	}
	if res := tech.call(http.MethodGet, "/api/cameras", nil); res.Status != http.StatusOK {
		t.Fatalf("the real technician's session: %s", res)
	}

	via := " via " + f.creds.AgentID
	fails := f.a.audited("login.fail")
	if len(fails) == 0 || len(fails) > 25 {
		t.Fatalf("the centre saw %d failed logins, want the few the page let through", len(fails))
	}
	t.Logf("of 60 bad logins from one browser the page let %d reach the centre", len(fails))
	for _, r := range fails {
		if r.ClientIP != "127.0.0.2"+via {
			t.Fatalf("failed login audited from %q, want the attacker's browser %q", r.ClientIP, "127.0.0.2"+via)
		}
	}
	ok := f.a.audited("login.ok")
	if len(ok) == 0 || ok[0].User != "tech" || ok[0].ClientIP != "127.0.0.3"+via {
		t.Fatalf("the technician's login audited as %+v", ok)
	}
}

// TestCentreBelievesClientAddressOnlyFromEnrolledAgents: the header that
// names a technician's browser is honoured only with an enrolled agent's
// credentials on the same request, and refused from anyone else; the
// page-access door answers only an agent, and only about a live session.
func TestCentreBelievesClientAddressOnlyFromEnrolledAgents(t *testing.T) {
	a := startApp(t)
	a.importRegionsFixture()
	creds := a.enrollAgentIn("Street 1 LAN", street1)
	a.createUser("tech", pageTech.password())
	a.grant(map[string]any{"user": "tech", "categories": []string{"*"}, "regions": []string{street1}, "max_level": 4, "actions": []string{"provision"}})
	login := func(hdr map[string]string) response {
		req, _ := http.NewRequest(http.MethodPost, a.HTTPURL()+"/api/v1/auth/login",
			strings.NewReader(`{"username":"tech","password":"`+pageTech.password()+`"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return response{Status: res.StatusCode, Header: res.Header, Body: raw}
	}
	const spoof = "203.0.113.9"
	for name, hdr := range map[string]map[string]string{
		"no credentials":     {agentlink.ClientAddressHeader: spoof},
		"wrong agent secret": {agentlink.ClientAddressHeader: spoof, "Authorization": "Basic " + pageBasic(creds.AgentID, "guess")},
		"a user's token":     {agentlink.ClientAddressHeader: spoof, "Authorization": "Bearer " + a.token},
	} {
		if res := login(hdr); res.Status != http.StatusUnauthorized || pageErrCode(res) != "agent_refused" {
			t.Errorf("client address with %s: %s", name, res)
		}
	}
	if res := login(map[string]string{agentlink.ClientAddressHeader: "not-an-ip", "Authorization": "Basic " + pageBasic(creds.AgentID, creds.Secret)}); res.Status != http.StatusBadRequest {
		t.Errorf("a malformed client address: %s", res)
	}
	res := login(map[string]string{agentlink.ClientAddressHeader: spoof, "Authorization": "Basic " + pageBasic(creds.AgentID, creds.Secret)})
	var out struct{ Token string }
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &out) != nil || out.Token == "" {
		t.Fatalf("login on behalf of a browser by the agent: %s", res)
	}
	recs := a.audited("login.ok")
	if last := recs[0]; last.User != "tech" || last.ClientIP != spoof+" via "+creds.AgentID {
		t.Fatalf("audited %+v", last)
	}
	for _, r := range recs {
		if r.ClientIP == spoof {
			t.Fatalf("the address was believed bare: %+v", r)
		}
	}

	access := func(hdr map[string]string) response {
		req, _ := http.NewRequest(http.MethodGet, a.HTTPURL()+agentlink.PageAccessPath, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return response{Status: res.StatusCode, Header: res.Header, Body: raw}
	}
	agentAuth := "Basic " + pageBasic(creds.AgentID, creds.Secret)
	for name, c := range map[string]struct {
		hdr    map[string]string
		status int
		code   string
	}{
		"the user alone":        {map[string]string{"Authorization": "Bearer " + out.Token}, http.StatusUnauthorized, "agent_refused"},
		"the user as the token": {map[string]string{"Authorization": "Bearer " + out.Token, agentlink.UserTokenHeader: out.Token}, http.StatusUnauthorized, "agent_refused"},
		"the agent alone":       {map[string]string{"Authorization": agentAuth}, http.StatusUnauthorized, "unauthenticated"},
		"a forged token":        {map[string]string{"Authorization": agentAuth, agentlink.UserTokenHeader: "forged"}, http.StatusUnauthorized, "unauthenticated"},
	} {
		if res := access(c.hdr); res.Status != c.status || pageErrCode(res) != c.code {
			t.Errorf("page access with %s: %s", name, res)
		}
	}
	res = access(map[string]string{"Authorization": agentAuth, agentlink.UserTokenHeader: out.Token})
	var pa agentlink.PageAccess
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &pa) != nil {
		t.Fatalf("page access: %s", res)
	}
	if pa.User != "tech" || pa.Region != street1 || !pa.ProvisionSomewhere || !pa.ProvisionHere || pa.Bound == nil {
		t.Fatalf("page access %+v", pa)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("page access may be cached: %q", res.Header.Get("Cache-Control"))
	}
	// A revoked agent asks nothing any more.
	if res := a.admin(http.MethodPost, "/api/v1/agents/"+creds.AgentID+"/revoke", nil); res.Status != http.StatusNoContent {
		t.Fatalf("revoke: %s", res)
	}
	if res := access(map[string]string{"Authorization": agentAuth, agentlink.UserTokenHeader: out.Token}); res.Status != http.StatusForbidden {
		t.Fatalf("page access by a revoked agent: %s", res)
	}
}

// TestAgentRegionDecidesWhoSeesUnboundCameras: an agent's region is set at
// creation (a region the catalog knows), changed by administrators only,
// audited, and from the next request decides whose page shows its unbound
// cameras.
func TestAgentRegionDecidesWhoSeesUnboundCameras(t *testing.T) {
	f := startAgentPage(t, pageTech, pageOther)
	a := f.a
	if res := a.admin(http.MethodPost, "/api/v1/agents", map[string]string{"name": "Nowhere", "region": "999999"}); res.Status != http.StatusUnprocessableEntity || pageErrCode(res) != "invalid" {
		t.Fatalf("agent in an unknown region: %s", res)
	}
	tech := f.browser("127.0.0.2")
	other := f.browser("127.0.0.3")
	for _, b := range []struct {
		b    *pageBrowser
		u    pageAccount
		sees int
	}{{tech, pageTech, 3}, {other, pageOther, 1}} {
		if res := b.b.login(b.u.name, b.u.password()); res.Status != http.StatusOK {
			t.Fatalf("login %s: %s", b.u, res)
		}
		if got := pageListed(t, b.b.call(http.MethodGet, "/api/cameras", nil)); len(got) != b.sees {
			t.Fatalf("%s sees %d cameras, want %d", b.u, len(got), b.sees)
		}
	}

	techTok := a.loginAs("tech", pageTech.password())
	if res := a.do(http.MethodPatch, "/api/v1/agents/"+f.creds.AgentID, techTok, "", map[string]string{"region": street2}); res.Status != http.StatusForbidden {
		t.Fatalf("a technician moves the agent: %s", res)
	}
	if res := a.admin(http.MethodPatch, "/api/v1/agents/"+f.creds.AgentID, map[string]string{"region": "999999"}); res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("agent moved to an unknown region: %s", res)
	}
	res := a.admin(http.MethodPatch, "/api/v1/agents/"+f.creds.AgentID, map[string]string{"region": street2})
	var ag struct{ Region string }
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &ag) != nil || ag.Region != street2 {
		t.Fatalf("admin moves the agent to street 2: %s", res)
	}
	if recs := a.audited("agent.update"); len(recs) != 1 || recs[0].Detail["region"] != street2 {
		t.Fatalf("audit of the move: %+v", recs)
	}
	// Street 1's technician keeps its registered camera and loses the
	// unbound ones; street 2's provisioner gains them.
	got := pageListed(t, tech.call(http.MethodGet, "/api/cameras", nil))
	if _, ok := got[f.cam["c1"]]; !ok || len(got) != 1 {
		t.Fatalf("after the move the street-1 technician sees %v", got)
	}
	if res := tech.call(http.MethodGet, "/api/cameras/"+f.cam["c3"]+"/snapshot.jpg", nil); res.Status != http.StatusNotFound {
		t.Fatalf("after the move the street-1 technician previews an unbound camera: %d", res.Status)
	}
	got = pageListed(t, other.call(http.MethodGet, "/api/cameras", nil))
	if _, ok := got[f.cam["c3"]]; !ok || len(got) != 3 {
		t.Fatalf("after the move the street-2 provisioner sees %v", got)
	}
	var st struct {
		Region        string
		ProvisionHere bool `json:"provision_here"`
	}
	decodeInto(t, other.call(http.MethodGet, "/api/status", nil), &st)
	if st.Region != street2 || !st.ProvisionHere {
		t.Fatalf("status after the move: %+v", st)
	}
	// Cleared, only grants for all regions would cover it.
	if res := a.admin(http.MethodPatch, "/api/v1/agents/"+f.creds.AgentID, map[string]string{"region": ""}); res.Status != http.StatusOK {
		t.Fatalf("clear the region: %s", res)
	}
	if got := pageListed(t, other.call(http.MethodGet, "/api/cameras", nil)); len(got) != 1 {
		t.Fatalf("an agent without region shows its unbound cameras: %v", got)
	}
}

// TestAgentPageSessionEndsWithTheCentralOne: the page asks the centre on
// every request, so disabling a technician (which ends their central
// sessions) or withdrawing their provision grant closes the page to them
// at once.
func TestAgentPageSessionEndsWithTheCentralOne(t *testing.T) {
	f := startAgentPage(t, pageTech, pageOther)
	tech := f.browser("127.0.0.2")
	if res := tech.login("tech", pageTech.password()); res.Status != http.StatusOK {
		t.Fatalf("tech login: %s", res)
	}
	if res := f.a.admin(http.MethodPatch, "/api/v1/users/tech", map[string]any{"disabled": true}); res.Status != http.StatusOK {
		t.Fatalf("disable: %s", res)
	}
	if res := tech.call(http.MethodGet, "/api/cameras", nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("the page after the technician was disabled: %s", res)
	}

	other := f.browser("127.0.0.3")
	if res := other.login("otherprov", pageOther.password()); res.Status != http.StatusOK {
		t.Fatalf("otherprov login: %s", res)
	}
	var grants struct {
		Items []struct{ ID, User string }
	}
	decodeInto(t, f.a.admin(http.MethodGet, "/api/v1/grants", nil), &grants)
	for _, g := range grants.Items {
		if g.User == "otherprov" {
			if res := f.a.admin(http.MethodDelete, "/api/v1/grants/"+g.ID, nil); res.Status != http.StatusNoContent {
				t.Fatalf("delete grant: %s", res)
			}
		}
	}
	if res := other.call(http.MethodGet, "/api/cameras", nil); res.Status != http.StatusForbidden || pageErrCode(res) != "not_provisioner" {
		t.Fatalf("the page after the provision grant was withdrawn: %s", res)
	}
}
