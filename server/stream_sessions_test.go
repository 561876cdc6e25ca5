package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"path"
	"testing"
	"time"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/whepclient"
)

// Live views are tied to the login session or API token that opened them,
// RTSP reads to the stream key or password: whatever ends that credential
// ends the stream within the watcher's 2 s, with the reason in the audit log.

// grantWaterReservoirs lets the grants fixture's user water view res1.
func grantWaterReservoirs(a *testApp) {
	a.grant(map[string]any{"user": "water", "categories": []string{"reservoir"}, "regions": []string{"440307"},
		"max_level": 2, "actions": []string{"view"}})
}

// viewAs opens a real WHEP viewer of point with token and waits for its
// first keyframe; it is closed when the test ends.
func viewAs(t *testing.T, a *testApp, token, point string) *whepclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := whepclient.ConnectHTTP(ctx, a.whepURL(point), token, whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatalf("WHEP viewer of %s: %v", point, err)
	}
	t.Cleanup(c.Close)
	waitKeyframe(t, c, 10*time.Second)
	return c
}

// waitViewEnded waits until the server has ended viewer c's session, then
// checks that the viewer stopped receiving frames, and returns how long the
// end took from since.
func waitViewEnded(t *testing.T, a *testApp, c *whepclient.Client, since time.Time) time.Duration {
	t.Helper()
	id := path.Base(c.Location())
	waitFor(t, 5*time.Second, "the server to end the view", func() bool {
		_, live := a.WebRTC.Session(id)
		return !live
	})
	took := time.Since(since)
	// Packets already on the wire may still land: let them, then see that
	// no more frames come.
	time.Sleep(300 * time.Millisecond)
	before := c.Stats().Frames
	time.Sleep(time.Second)
	if after := c.Stats().Frames; after > before {
		t.Fatalf("the viewer still receives frames after its view ended (%d → %d)", before, after)
	}
	return took
}

// wantStopAudited waits for a view.stop of user on point via via with reason.
func wantStopAudited(t *testing.T, a *testApp, user, point, via, reason string) {
	t.Helper()
	waitFor(t, 5*time.Second, "view.stop "+via+" reason="+reason+" in the audit log", func() bool {
		recs, _, err := a.Audit.Query(audit.Filter{Action: "view.stop", Point: point, User: user, Limit: audit.MaxLimit})
		if err != nil {
			return false
		}
		for _, r := range recs {
			if r.Detail["via"] == via && r.Detail["reason"] == reason {
				return true
			}
		}
		return false
	})
}

// shortSessionID is the ID the API lists a session or API token under.
func shortSessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])[:8]
}

func TestEndingTheCredentialThatOpenedAWHEPViewEndsTheView(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		// token, when set, opens the view with an API token instead of the
		// login session.
		token bool
		// end ends the view's credential; other is another login session
		// of water's, whose own view must live on unless the whole user is
		// ended.
		end       func(t *testing.T, a *testApp, viewToken, other string)
		otherLive bool
	}{
		{
			name: "admin ends the user's sessions", reason: endSessionEnded,
			end: func(t *testing.T, a *testApp, _, _ string) {
				if res := a.admin(http.MethodDelete, "/api/v1/users/water/sessions", nil); res.Status != http.StatusOK {
					t.Fatalf("end water's sessions: %s", res)
				}
			},
		},
		{
			name: "the user ends that session from another", reason: endSessionEnded, otherLive: true,
			end: func(t *testing.T, a *testApp, viewToken, other string) {
				if res := a.do(http.MethodDelete, "/api/v1/me/sessions/"+shortSessionID(viewToken), other, "", nil); res.Status != http.StatusNoContent {
					t.Fatalf("end the viewing session: %s", res)
				}
			},
		},
		{
			name: "logout", reason: endSessionEnded, otherLive: true,
			end: func(t *testing.T, a *testApp, viewToken, _ string) {
				if res := a.do(http.MethodPost, "/api/v1/auth/logout", viewToken, "", nil); res.Status != http.StatusNoContent {
					t.Fatalf("logout: %s", res)
				}
			},
		},
		{
			name: "the API token is revoked", reason: endTokenRevoked, token: true, otherLive: true,
			end: func(t *testing.T, a *testApp, viewToken, _ string) {
				if res := a.admin(http.MethodDelete, "/api/v1/users/water/tokens/"+shortSessionID(viewToken), nil); res.Status != http.StatusNoContent {
					t.Fatalf("revoke token: %s", res)
				}
			},
		},
		{
			name: "the admin disables the user", reason: endUserDisabled,
			end: func(t *testing.T, a *testApp, _, _ string) {
				if res := a.admin(http.MethodPatch, "/api/v1/users/water", map[string]bool{"disabled": true}); res.Status != http.StatusOK {
					t.Fatalf("disable water: %s", res)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, viewToken := grantsFixture(t)
			grantWaterReservoirs(a)
			if tc.token {
				res := a.do(http.MethodPost, "/api/v1/me/tokens", viewToken, "", map[string]string{"name": "wall"})
				if res.Status != http.StatusCreated {
					t.Fatalf("create token: %s", res)
				}
				var tok struct{ Token string }
				decodeInto(t, res, &tok)
				viewToken = tok.Token
			}
			other := a.loginAs("water", "water-pass-123")
			view := viewAs(t, a, viewToken, "res1")
			bystander := viewAs(t, a, other, "res1")
			// The view outlives the watcher's passes while nothing changes.
			time.Sleep(revokeInterval + revokeInterval/2)
			if _, live := a.WebRTC.Session(path.Base(view.Location())); !live {
				t.Fatal("the view ended though nothing changed")
			}

			start := time.Now()
			tc.end(t, a, viewToken, other)
			took := waitViewEnded(t, a, view, start)
			t.Logf("view ended %v after: %s", took.Round(10*time.Millisecond), tc.name)
			wantStopAudited(t, a, "water", "res1", "webrtc", tc.reason)

			_, bystanderLive := a.WebRTC.Session(path.Base(bystander.Location()))
			if bystanderLive != tc.otherLive {
				t.Fatalf("the view opened with water's other session live=%v, want %v", bystanderLive, tc.otherLive)
			}
		})
	}
}

// readerEnded reports on the channel when r's client has ended.
func readerEnded(r *rtspReader) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.client.Wait() }()
	return done
}

func wantEndedWithin(t *testing.T, what string, done <-chan error, d time.Duration) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s still connected %v later", what, d)
	}
}

func wantStillReading(t *testing.T, what string, r *rtspReader, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s ended: %v", what, err)
	default:
	}
	n := r.packets.Load()
	waitFor(t, 5*time.Second, what+" receiving", func() bool { return r.packets.Load() > n+10 })
}

// waterStreamKey reads water's stream key with water's own session.
func waterStreamKey(t *testing.T, a *testApp, token, method string) string {
	t.Helper()
	res := a.do(method, "/api/v1/me/stream-key", token, "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("%s stream key: %s", method, res)
	}
	var out struct {
		StreamKey string `json:"stream_key"`
	}
	decodeInto(t, res, &out)
	return out.StreamKey
}

func TestRTSPReadEndsWhenTheStreamKeyOrPasswordThatOpenedItChanges(t *testing.T) {
	a, login := grantsFixture(t)
	grantWaterReservoirs(a)
	key := waterStreamKey(t, a, login, http.MethodGet)
	at := a.RTSP.Addr() + "/res1"
	open := func(what, secret string, basic bool) (*rtspReader, <-chan error) {
		t.Helper()
		r, err := readRTSP(t, "rtsp://water:"+secret+"@"+at, basic)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		waitFor(t, 10*time.Second, what+" receiving", func() bool { return r.packets.Load() >= 20 })
		return r, readerEnded(r)
	}
	byKey, byKeyDone := open("read with the stream key (Basic)", key, true)
	_, byDigestDone := open("read with the stream key (Digest)", key, false)
	byPassword, byPasswordDone := open("read with the password", "water-pass-123", true)

	// Ending water's login sessions leaves RTSP alone: no session opened it.
	if res := a.admin(http.MethodDelete, "/api/v1/users/water/sessions", nil); res.Status != http.StatusOK {
		t.Fatalf("end water's sessions: %s", res)
	}
	time.Sleep(revokeInterval + revokeInterval/2)
	wantStillReading(t, "the stream-key reader after the sessions ended", byKey, byKeyDone)
	login = a.loginAs("water", "water-pass-123")

	start := time.Now()
	waterStreamKey(t, a, login, http.MethodPost) // rotate
	wantEndedWithin(t, "the Basic stream-key reader after rotation", byKeyDone, 5*time.Second)
	wantEndedWithin(t, "the Digest stream-key reader after rotation", byDigestDone, 5*time.Second)
	t.Logf("stream-key readers ended %v after rotation", time.Since(start).Round(10*time.Millisecond))
	wantStillReading(t, "the password reader after the key rotated", byPassword, byPasswordDone)
	waitFor(t, 5*time.Second, "two view.stop reason=stream_key_rotated", func() bool {
		n := 0
		for _, r := range a.audited("view.stop") {
			if r.User == "water" && r.Detail["via"] == "rtsp" && r.Detail["reason"] == endStreamKeyRotated {
				n++
			}
		}
		return n == 2
	})

	newKey := waterStreamKey(t, a, login, http.MethodGet)
	byNewKey, byNewKeyDone := open("read with the new stream key", newKey, true)
	start = time.Now()
	if res := a.admin(http.MethodPost, "/api/v1/users/water/password", map[string]string{"password": "water-pass-456"}); res.Status != http.StatusNoContent {
		t.Fatalf("reset water's password: %s", res)
	}
	wantEndedWithin(t, "the password reader after a password reset", byPasswordDone, 5*time.Second)
	t.Logf("password reader ended %v after the reset", time.Since(start).Round(10*time.Millisecond))
	wantStopAudited(t, a, "water", "res1", "rtsp", endPasswordChanged)
	wantStillReading(t, "the new stream-key reader after the password reset", byNewKey, byNewKeyDone)

	if res := a.admin(http.MethodPatch, "/api/v1/users/water", map[string]bool{"disabled": true}); res.Status != http.StatusOK {
		t.Fatalf("disable water: %s", res)
	}
	wantEndedWithin(t, "the stream-key reader of a disabled user", byNewKeyDone, 5*time.Second)
	wantStopAudited(t, a, "water", "res1", "rtsp", endUserDisabled)
}

func TestUserWithPublishCannotReplaceTheFeedOfAnAgentBoundPoint(t *testing.T) {
	a, login := grantsFixture(t)
	creds := a.enrollAgent("street 1 LAN")
	for _, p := range []map[string]any{
		{"id": "edge1", "name": "Agent camera", "category": "reservoir", "region": "440307001", "level": 1,
			"agent": creds.AgentID, "main": map[string]string{"type": "rtsp", "url": "rtsp://10.0.0.1/a"}},
		{"id": "push1", "name": "Encoder", "category": "reservoir", "region": "440307001", "level": 1,
			"main": map[string]string{"type": "publish"}},
	} {
		if res := a.admin(http.MethodPost, "/api/v1/points", p); res.Status != http.StatusCreated {
			t.Fatalf("create %s: %s", p["id"], res)
		}
	}
	a.grant(map[string]any{"user": "water", "categories": []string{"reservoir"}, "regions": []string{"440307"},
		"max_level": 2, "actions": []string{"view", "publish"}})
	key := waterStreamKey(t, a, login, http.MethodGet)
	at := "rtsp://" + a.RTSP.Addr() + "/"

	// The grant lets water publish an encoder point of the category...
	if err := publishWith(at+"push1", "water", key); err != nil {
		t.Fatalf("water publishing an encoder point: %v", err)
	}
	// ...but not the point whose feed comes from the agent's relay, with
	// the stream key or the password.
	for _, secret := range []string{key, "water-pass-123"} {
		if err := publishWith(at+"edge1", "water", secret); !isRTSPStatus(err, base403) {
			t.Fatalf("water publishing the agent's point: %v, want 403", err)
		}
	}
	// Nor may the admin: only the agent's relay feeds it.
	if err := publishWith(at+"edge1", "admin", adminPassword); !isRTSPStatus(err, base403) {
		t.Fatalf("admin publishing the agent's point: %v, want 403", err)
	}

	// A user's publish into a point that is then bound to an agent is ended
	// by the watcher, whatever the hub does on the rebinding.
	check := streamCheck{a: a.App, perm: mustDecider(t, a), creds: map[[2]string]string{}}
	cred := string(a.Accounts.RTSPCredential("water", key, true))
	if reason := check.endReason("water", cred, permissions.Publish, "push1"); reason != "" {
		t.Fatalf("water's publish of push1 would end: %s", reason)
	}
	if res := a.admin(http.MethodPatch, "/api/v1/points/push1", map[string]any{"agent": creds.AgentID,
		"main": map[string]string{"type": "rtsp", "url": "rtsp://10.0.0.2/b"}}); res.Status != http.StatusOK {
		t.Fatalf("bind push1 to the agent: %s", res)
	}
	if reason := check.endReason("water", cred, permissions.Publish, "push1"); reason != endAgentBound {
		t.Fatalf("water's publish of an agent-bound point: end reason %q, want %q", reason, endAgentBound)
	}
	if reason := check.endReason("water", cred, permissions.View, "push1"); reason != "" {
		t.Fatalf("water's view of the agent-bound point would end: %s", reason)
	}
}

// mustDecider is a permissions decider over the app's grants as they are
// now (it does not follow later grant changes).
func mustDecider(t *testing.T, a *testApp) *permissions.Decider {
	t.Helper()
	d, err := permissions.New(permissions.NewGrants(a.DB), a.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRTSPPublishEndsWhenTheStreamKeyThatOpenedItIsRotated(t *testing.T) {
	a := startApp(t)
	a.createPoint("push", map[string]string{"type": "publish"})
	ff := startFFmpegPublisher(t, "rtsp://admin:"+a.streamKey()+"@"+a.RTSP.Addr()+"/push")
	waitFor(t, 10*time.Second, "the publisher to go live", func() bool {
		select {
		case <-ff.done:
			t.Fatalf("ffmpeg exited (%v):\n%s", ff.err, ff.stderr)
		default:
		}
		return a.stats("push").State == "live"
	})
	time.Sleep(revokeInterval + revokeInterval/2)
	select {
	case <-ff.done:
		t.Fatalf("the publisher ended though nothing changed (%v):\n%s", ff.err, ff.stderr)
	default:
	}

	start := time.Now()
	if res := a.admin(http.MethodPost, "/api/v1/me/stream-key", nil); res.Status != http.StatusOK {
		t.Fatalf("rotate: %s", res)
	}
	select {
	case <-ff.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the publisher still runs 5 s after its stream key was rotated")
	}
	t.Logf("publisher ended %v after the rotation", time.Since(start).Round(10*time.Millisecond))
	waitFor(t, 5*time.Second, "publish.stop reason=stream_key_rotated", func() bool {
		for _, r := range a.audited("publish.stop") {
			if r.Point == "push" && r.Detail["reason"] == endStreamKeyRotated {
				return true
			}
		}
		return false
	})
}
