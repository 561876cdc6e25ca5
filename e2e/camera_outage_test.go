package e2e

import (
	"testing"
	"time"

	"github.com/tianyan/vms/whepclient"
)

// TestCameraOutageTakesThePointOfflineAndBackOnlinePlayable: a camera
// behind an edge agent stops while someone watches; its point must say
// offline within 10 s. The camera comes back on the same address: the
// point says online again, a new WHEP viewer gets a keyframe, and the
// viewer who watched through the outage is fed again.
func TestCameraOutageTakesThePointOfflineAndBackOnlinePlayable(t *testing.T) {
	v := startVMS(t, vmsOptions{})
	admin := login(t, v, "admin", adminPassword)
	cam := startCamera(t, "127.0.0.1:0")
	addr := cam.Addr()
	ea := startAgent(t, admin, "Street LAN")
	const point = "street-gate"
	createPoint(admin, point, ea.ID, cam)
	waitFor(t, 15*time.Second, "point online", func() bool { return admin.pointState(point) == "online" })

	opts := whepclient.Options{Interfaces: []string{"lo"}}
	watcher, err := whepclient.ConnectHTTP(timeout(t, 20*time.Second), admin.whepURL(point, "sub"), admin.token, opts)
	if err != nil {
		t.Fatalf("viewer before the outage: %v", err)
	}
	defer watcher.Close()
	if err := watcher.WaitKeyframe(timeout(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}

	cam.Close()
	stopped := time.Now()
	for admin.pointState(point) != "offline" {
		if time.Since(stopped) > 10*time.Second {
			t.Fatalf("point still %q 10 s after its camera stopped", admin.pointState(point))
		}
		time.Sleep(100 * time.Millisecond)
	}
	offline := time.Since(stopped)
	before := watcher.Stats().Frames

	startCamera(t, addr)
	returned := time.Now()
	waitFor(t, 20*time.Second, "point online again", func() bool { return admin.pointState(point) == "online" })
	online := time.Since(returned)

	viewer, err := whepclient.ConnectHTTP(timeout(t, 20*time.Second), admin.whepURL(point, "main"), admin.token, opts)
	if err != nil {
		t.Fatalf("new viewer after the camera returned: %v", err)
	}
	defer viewer.Close()
	if err := viewer.WaitKeyframe(timeout(t, 20*time.Second)); err != nil {
		t.Fatalf("new viewer after the camera returned: %v (stats %+v)", err, viewer.Stats())
	}
	playable := time.Since(returned)
	waitFor(t, 20*time.Second, "the viewer who stayed to be fed again", func() bool { return watcher.Stats().Frames >= before+25 })
	t.Logf("camera stopped → point offline in %v; camera back → online in %v, new viewer's keyframe %v after its return, the staying viewer fed again %v after it",
		offline.Round(time.Millisecond), online.Round(time.Millisecond), playable.Round(time.Millisecond), time.Since(returned).Round(time.Millisecond))
}
