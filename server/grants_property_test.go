package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/whepclient"
)

// refGrant is a grant as the reference evaluator sees it.
type refGrant struct {
	user, role  string
	cats, regs  []string
	maxLevel    int
	actions     []string
	expiredPast bool
}

// refWorld is the brute-force model of who may view what.
type refWorld struct {
	parent map[string]string // region → parent
	roles  map[string][]string
	grants []refGrant
}

func (w refWorld) under(region, ancestor string) bool {
	for r := region; r != ""; r = w.parent[r] {
		if r == ancestor {
			return true
		}
	}
	return false
}

// allows is the specification of issue [2/5], evaluated literally.
func (w refWorld) allows(user, action string, p catalog.Point) bool {
	for _, g := range w.grants {
		holder := g.user == user || g.role != "" && slices.Contains(w.roles[user], g.role)
		if !holder || g.expiredPast || p.Level > g.maxLevel || !slices.Contains(g.actions, action) {
			continue
		}
		if !slices.Contains(g.cats, "*") && !slices.Contains(g.cats, p.Category) {
			continue
		}
		inRegion := slices.Contains(g.regs, "*")
		for _, r := range g.regs {
			inRegion = inRegion || w.under(p.Region, r)
		}
		if inRegion {
			return true
		}
	}
	return false
}

// TestEveryReadPathAgreesWithTheBruteForceReference builds random regions,
// points, users, roles and grants, then asks the running server through
// every read path — list, facets, get, WHEP, RTSP read — and compares each
// answer with the reference evaluator above.
func TestEveryReadPathAgreesWithTheBruteForceReference(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { checkReadPathsAgainstReference(t, seed) })
	}
}

func checkReadPathsAgainstReference(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	a := startApp(t)
	w := refWorld{parent: map[string]string{}, roles: map[string][]string{}}
	regions := []string{"440307"}
	if _, err := a.Catalog.CreateRegion(catalog.Region{Code: "440307", Name: "District"}); err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 3; s++ {
		st := fmt.Sprintf("440307%03d", s)
		mustRegion(t, a, catalog.Region{Code: st, Name: "Street " + st, Parent: "440307"})
		w.parent[st] = "440307"
		regions = append(regions, st)
		for k := 1; k <= 2; k++ {
			cm := fmt.Sprintf("%s%03d", st, k)
			mustRegion(t, a, catalog.Region{Code: cm, Name: "Community " + cm, Parent: st})
			w.parent[cm] = st
			regions = append(regions, cm)
		}
	}
	cats := []string{"reservoir", "river", "school", "slope"}
	var points []catalog.Point
	for i := range 24 {
		p := map[string]any{"id": fmt.Sprintf("p%02d", i), "name": fmt.Sprintf("Point %d", i),
			"category": cats[rng.IntN(len(cats))], "region": regions[1+rng.IntN(len(regions)-1)],
			"level": 1 + rng.IntN(4), "main": map[string]string{"type": "publish"}}
		res := a.admin(http.MethodPost, "/api/v1/points", p)
		if res.Status != http.StatusCreated {
			t.Fatalf("create point: %s", res)
		}
		var got catalog.Point
		decodeInto(t, res, &got)
		points = append(points, got)
	}
	for _, r := range []string{"water", "street"} {
		if err := a.Accounts.CreateRole(accounts.Role{Name: r}); err != nil {
			t.Fatal(err)
		}
	}
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	tokens := map[string]string{}
	for _, u := range users {
		var roles []string
		for _, r := range []string{"water", "street"} {
			if rng.IntN(3) == 0 {
				roles = append(roles, r)
			}
		}
		w.roles[u] = roles
		if _, err := a.Accounts.CreateUser(accounts.User{Username: u, Roles: roles}, "password-"+u); err != nil {
			t.Fatal(err)
		}
		res := a.do(http.MethodPost, "/api/v1/auth/login", "", "", map[string]string{"username": u, "password": "password-" + u})
		var tok struct{ Token string }
		decodeInto(t, res, &tok)
		tokens[u] = tok.Token
	}
	pick := func(from []string, star float64) []string {
		if rng.Float64() < star {
			return []string{"*"}
		}
		var out []string
		for _, v := range from {
			if rng.IntN(3) == 0 {
				out = append(out, v)
			}
		}
		if len(out) == 0 {
			out = []string{from[rng.IntN(len(from))]}
		}
		return out
	}
	for range 14 {
		g := refGrant{cats: pick(cats, 0.15), regs: pick(regions, 0.1), maxLevel: 1 + rng.IntN(4),
			actions: pick([]string{"view", "ptz", "snapshot"}, 0), expiredPast: rng.IntN(6) == 0}
		body := map[string]any{"categories": g.cats, "regions": g.regs, "max_level": g.maxLevel, "actions": g.actions}
		if rng.IntN(4) == 0 {
			g.role = []string{"water", "street"}[rng.IntN(2)]
			body["role"] = g.role
		} else {
			g.user = users[rng.IntN(len(users))]
			body["user"] = g.user
		}
		if g.expiredPast {
			body["not_before"] = time.Now().Add(-48 * time.Hour).Format(time.RFC3339)
			body["not_after"] = time.Now().Add(-time.Hour).Format(time.RFC3339)
		}
		if res := a.admin(http.MethodPost, "/api/v1/grants", body); res.Status != http.StatusCreated {
			t.Fatalf("create grant %v: %s", body, res)
		}
		w.grants = append(w.grants, g)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	decisions, allowed := 0, 0
	for _, u := range users {
		tok := tokens[u]
		var want []string
		wantCats := map[string]int{}
		for _, p := range points {
			if w.allows(u, "view", p) {
				want = append(want, p.ID)
				wantCats[p.Category]++
			}
		}
		// list
		res := a.do(http.MethodGet, "/api/v1/points?limit=500", tok, "", nil)
		var list struct {
			Items []catalog.Point
			Total int
		}
		decodeInto(t, res, &list)
		var got []string
		for _, p := range list.Items {
			got = append(got, p.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) || list.Total != len(want) {
			t.Fatalf("%s lists %v (total %d), reference says %v", u, got, list.Total, want)
		}
		// facets
		res = a.do(http.MethodGet, "/api/v1/points/facets", tok, "", nil)
		var f catalog.Facets
		decodeInto(t, res, &f)
		if f.Total != len(want) {
			t.Fatalf("%s facets total %d, reference %d", u, f.Total, len(want))
		}
		for _, c := range f.Categories {
			if c.Count != wantCats[c.Code] {
				t.Fatalf("%s facet %s = %d, reference %d", u, c.Code, c.Count, wantCats[c.Code])
			}
		}
		for i, p := range points {
			ok := slices.Contains(want, p.ID)
			decisions++
			if ok {
				allowed++
			}
			// get: 200 or 404 (never 403: existence must not leak)
			res := a.do(http.MethodGet, "/api/v1/points/"+p.ID, tok, "", nil)
			if ok && res.Status != http.StatusOK || !ok && res.Status != http.StatusNotFound {
				t.Fatalf("%s GET %s: %d, reference allows=%v", u, p.ID, res.Status, ok)
			}
			if i%3 != int(seed%3) {
				continue // WHEP and RTSP on a third of the points each run
			}
			// WHEP: a granted viewer reaches the stream (503: nobody
			// publishes), anyone else gets 404.
			_, err := whepclient.ConnectHTTP(ctx, a.whepURL(p.ID), tok, whepclient.Options{Interfaces: []string{"lo"}})
			status, _ := whepStatus(t, err)
			if ok && status != http.StatusServiceUnavailable || !ok && status != http.StatusNotFound {
				t.Fatalf("%s WHEP %s: %d, reference allows=%v", u, p.ID, status, ok)
			}
			// RTSP read with the user's password: the same.
			_, err = readRTSP(t, "rtsp://"+u+":password-"+u+"@"+a.RTSP.Addr()+"/"+p.ID, true)
			wantCode := base.StatusNotFound
			if ok {
				wantCode = base.StatusServiceUnavailable
			}
			wantRTSPStatus(t, err, wantCode)
		}
	}
	t.Logf("seed %d: %d (user, point) view decisions, %d allowed, all paths agree", seed, decisions, allowed)
	if allowed == 0 || allowed == decisions {
		t.Fatalf("degenerate world: %d of %d allowed", allowed, decisions)
	}
}

func mustRegion(t *testing.T, a *testApp, r catalog.Region) {
	t.Helper()
	if _, err := a.Catalog.CreateRegion(r); err != nil {
		t.Fatal(err)
	}
}
