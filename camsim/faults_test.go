package camsim

import (
	"net/http"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"go.uber.org/goleak"
)

func TestDropStreamClosesSessionsAndRefusesNewOnes(t *testing.T) {
	cam := startCam(t, authedConfig())
	r, err := openReader(t, cam.RTSPURL("main"), testUser, testPass, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.waitFrames(t, 2)

	cam.SetFaults(Faults{DropStream: true})
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the RTSP session survived DropStream")
	}
	if _, err := openReader(t, cam.RTSPURL("main"), testUser, testPass, nil); err == nil {
		t.Fatal("a new RTSP session was accepted during DropStream")
	}
	// The SOAP side lives on, as on a camera whose streamer crashed.
	var info deviceInfo
	newSOAPClient(t, cam.XAddr(), testUser, testPass).mustCall(opDeviceInfo, &info)

	cam.SetFaults(Faults{})
	r, err = openReader(t, cam.RTSPURL("sub"), testUser, testPass, nil)
	if err != nil {
		t.Fatalf("after healing: %v", err)
	}
	r.waitFrames(t, 2)
}

func TestWrongPasswordFaultRejectsTheRightPassword(t *testing.T) {
	cam := startCam(t, authedConfig())
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
	cam.SetFaults(Faults{WrongPassword: true})

	status, body := c.call(opDeviceInfo)
	wantFault(t, status, body, http.StatusBadRequest, "ter:NotAuthorized")
	if resp, _ := get(t, cam.SnapshotURL("main"), basicAuth(testUser, testPass)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("snapshot during WrongPassword: %d", resp.StatusCode)
	}
	if _, err := openReader(t, cam.RTSPURL("main"), testUser, testPass, nil); err == nil {
		t.Error("RTSP accepted the password during WrongPassword")
	}
	// The clock stays public.
	c.mustCall(`<tds:GetSystemDateAndTime/>`, &struct{}{})

	cam.SetFaults(Faults{})
	var info deviceInfo
	c.mustCall(opDeviceInfo, &info)
}

func TestWrongPasswordFaultOnACameraWithoutCredentials(t *testing.T) {
	cam := startCam(t, CameraConfig{})
	cam.SetFaults(Faults{WrongPassword: true})
	_, err := openReader(t, cam.RTSPURL("main"), "", "", nil)
	wantRTSPStatus(t, err, base.StatusUnauthorized)
	status, body := newSOAPClient(t, cam.XAddr(), "", "").call(opDeviceInfo)
	wantFault(t, status, body, http.StatusUnauthorized, "ter:NotAuthorized")
}

func TestSlowRepliesHoldEveryReply(t *testing.T) {
	cam := startCam(t, authedConfig())
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
	const slow = 300 * time.Millisecond
	cam.SetFaults(Faults{SlowReplies: slow})
	if got := cam.Faults(); got.SlowReplies != slow {
		t.Fatalf("Faults() = %+v", got)
	}
	start := time.Now()
	c.mustCall(opDeviceInfo, &deviceInfo{})
	if took := time.Since(start); took < slow {
		t.Errorf("SOAP reply after %v, want at least %v", took, slow)
	}
	start = time.Now()
	getJPEG(t, cam.SnapshotURL("sub"), basicAuth(testUser, testPass))
	if took := time.Since(start); took < slow {
		t.Errorf("snapshot after %v, want at least %v", took, slow)
	}
}

func TestParseFaults(t *testing.T) {
	f, err := ParseFaults("drop, slow=1500ms,wrongpass,nodiscovery")
	if err != nil {
		t.Fatal(err)
	}
	want := Faults{DropStream: true, SlowReplies: 1500 * time.Millisecond, WrongPassword: true, NoDiscovery: true}
	if f != want {
		t.Fatalf("%+v, want %+v", f, want)
	}
	if again, err := ParseFaults(f.String()); err != nil || again != f {
		t.Fatalf("round trip of %q: %+v, %v", f.String(), again, err)
	}
	if f, err := ParseFaults("none"); err != nil || f != (Faults{}) || f.String() != "none" {
		t.Fatalf("none: %+v %v", f, err)
	}
	for _, bad := range []string{"fire", "slow", "slow=-1s", "slow=soon", "drop=1"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := authedConfig()
	cfg.Name = uniqueName(t, "leak")
	cfg.PTZ = true
	cfg.ProbeReplyDelay = 10 * time.Millisecond
	cfg.Logger = testLogger(t)
	cam, err := StartCamera(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newSOAPClient(t, cam.XAddr(), testUser, testPass)
	c.mustCall(opDeviceInfo, &deviceInfo{})
	getJPEG(t, cam.SnapshotURL("main"), basicAuth(testUser, testPass))
	r, err := openReader(t, cam.RTSPURL("main"), testUser, testPass, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.waitFrames(t, 2)

	// A reply held by SlowReplies must not hold up Close.
	cam.SetFaults(Faults{SlowReplies: time.Hour})
	held := make(chan struct{})
	go func() {
		defer close(held)
		req, _ := http.NewRequest(http.MethodPost, cam.XAddr(), nil)
		if resp, err := c.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the request reach the camera; Close must work either way

	closed := make(chan struct{})
	go func() { cam.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
	<-held
	r.client.Close()
	<-r.done
	c.http.Transport.(*http.Transport).CloseIdleConnections()
}
