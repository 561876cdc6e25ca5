package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tianyan/vms/whepclient"
)

// TestTwoServersCascadeOverGB28181ShowingAndPlayingOnlyTheGrantedPoint: two
// `vms serve` processes, the lower (a district) registering upward to the
// upper (the city) over GB/T 28181 on loopback, set up only through their
// HTTP APIs as an operator would (README "Registering upward"). The lower
// pulls a camera into a granted point and holds a second, ungranted one.
// The upper must list exactly the granted point, as a GB channel of the
// lower, and a WHEP viewer on the upper must get its keyframe through the
// cascade (upper INVITE → lower's hub → PS over RTP → upper's hub); the
// ungranted point must never show up on the upper.
func TestTwoServersCascadeOverGB28181ShowingAndPlayingOnlyTheGrantedPoint(t *testing.T) {
	const (
		upperID   = "44030000002000000001"
		upperDom  = "4403000000"
		lowerID   = "44030700002000000001"
		lowerDom  = "4403070000"
		granted   = "44030700001320000001" // reservoir, behind the camera
		ungranted = "44030700001320000003" // school: no grant covers it
		password  = "city-register-pass"
	)
	// A cold cascade is two on-demand starts in a row (the lower's camera,
	// then the upper's INVITE), on a shared box: a generous start timeout.
	upperSIP := freeUDPAndTCPPort(t)
	upper := startVMS(t, vmsOptions{Args: []string{"--sip", fmt.Sprintf("127.0.0.1:%d", upperSIP),
		"--sip-id", upperID, "--sip-domain", upperDom, "--sip-keepalive", "5s", "--start-timeout", "20s"}})
	lower := startVMS(t, vmsOptions{Args: []string{"--sip-id", lowerID, "--sip-domain", lowerDom,
		"--sip-keepalive", "5s", "--start-timeout", "20s"}})
	upAdmin := login(t, upper, "admin", adminPassword)
	lowAdmin := login(t, lower, "admin", adminPassword)

	// The upper knows the lower as a device with its own password.
	upAdmin.must(http.MethodPost, "/api/v1/gb/devices", map[string]string{"id": lowerID, "password": password}, nil)

	// The lower: a camera's point and a point nobody upstream may see.
	cam := startCamera(t, "127.0.0.1:0")
	lowAdmin.must(http.MethodPost, "/api/v1/points", map[string]any{"id": granted, "name": "水库 1", "category": "reservoir",
		"main": map[string]string{"type": "rtsp", "url": cam.URL("main")}}, nil)
	lowAdmin.must(http.MethodPost, "/api/v1/points", map[string]any{"id": ungranted, "name": "学校 1", "category": "school",
		"main": map[string]string{"type": "publish"}}, nil)
	lowAdmin.must(http.MethodPost, "/api/v1/users", map[string]any{"username": "city", "kind": "platform"}, nil)
	lowAdmin.must(http.MethodPost, "/api/v1/grants", map[string]any{"user": "city", "categories": []string{"reservoir"},
		"regions": []string{"*"}, "max_level": 4, "actions": []string{"view"}}, nil)
	lowAdmin.must(http.MethodPost, "/api/v1/gb/platforms", map[string]any{"id": upperID, "name": "市级平台",
		"address": fmt.Sprintf("127.0.0.1:%d", upperSIP), "transport": "udp", "password": password, "account": "city",
		"keepalive_interval_s": 5, "enabled": true}, nil)

	// Both sides see the registration.
	waitFor(t, 30*time.Second, "the lower registered and the upper seeing it online", func() bool {
		var plats struct {
			Items []struct {
				ID     string
				Status struct{ Registered bool }
			}
		}
		lowAdmin.must(http.MethodGet, "/api/v1/gb/platforms", nil, &plats)
		var devs struct {
			Items []struct {
				ID     string
				Online bool
			}
		}
		upAdmin.must(http.MethodGet, "/api/v1/gb/devices", nil, &devs)
		return len(plats.Items) == 1 && plats.Items[0].Status.Registered &&
			len(devs.Items) == 1 && devs.Items[0].ID == lowerID && devs.Items[0].Online
	})

	// upperPoints lists the upper's points, failing at once if the
	// ungranted one is among them.
	type gbPoint struct {
		ID   string
		Main struct{ Type, Device string }
	}
	upperPoints := func() []gbPoint {
		t.Helper()
		var list struct{ Items []gbPoint }
		upAdmin.must(http.MethodGet, "/api/v1/points?limit=100", nil, &list)
		for _, p := range list.Items {
			if p.ID == ungranted {
				t.Fatalf("the upper lists %s, a point the platform account may not view: %+v", ungranted, list.Items)
			}
		}
		return list.Items
	}
	var pts []gbPoint
	waitFor(t, 30*time.Second, "the upper's catalog to hold the granted point", func() bool {
		pts = upperPoints()
		return len(pts) > 0
	})
	if len(pts) != 1 || pts[0].ID != granted || pts[0].Main.Type != "gb28181" || pts[0].Main.Device != lowerID {
		t.Fatalf("the upper lists %+v, want only %s as a gb28181 channel of %s", pts, granted, lowerID)
	}

	// A viewer on the upper plays the granted point through the cascade.
	viewer, err := whepclient.ConnectHTTP(timeout(t, 30*time.Second), upAdmin.whepURL(granted, "main"), upAdmin.token,
		whepclient.Options{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatalf("WHEP viewer on the upper: %v", err)
	}
	defer viewer.Close()
	if err := viewer.WaitKeyframe(timeout(t, 30*time.Second)); err != nil {
		t.Fatalf("no keyframe through the cascade: %v (stats %+v)", err, viewer.Stats())
	}
	waitFor(t, 15*time.Second, "25 frames through the cascade", func() bool { return viewer.Stats().Frames >= 25 })
	var st struct {
		State      string
		VideoCodec string `json:"video_codec"`
		Width      int
		Height     int
	}
	upAdmin.must(http.MethodGet, "/api/v1/points/"+granted+"/stats?profile=main", nil, &st)
	if st.State != "live" || st.VideoCodec != "H264" || st.Width != 1280 || st.Height != 720 {
		t.Errorf("the upper's stream of the cascaded point %+v, want live H264 1280×720", st)
	}

	// A fresh catalog query (answered before the API call returns) still
	// brings only the granted point.
	upAdmin.must(http.MethodPost, "/api/v1/gb/devices/"+lowerID+"/catalog", nil, nil)
	var chans struct {
		Items []struct{ ID string }
	}
	upAdmin.must(http.MethodGet, "/api/v1/gb/channels?device="+lowerID, nil, &chans)
	if len(chans.Items) != 1 || chans.Items[0].ID != granted {
		t.Errorf("the upper's channels of the lower %+v, want only %s", chans.Items, granted)
	}
	if pts := upperPoints(); len(pts) != 1 {
		t.Errorf("after a fresh catalog query the upper lists %+v", pts)
	}
	t.Logf("cascade keyframe %v after the viewer's offer; viewer stats %+v", viewer.Stats().FirstKeyframe.Round(time.Millisecond), viewer.Stats())
}
