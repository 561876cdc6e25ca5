package server

import (
	"net/http"
	"testing"
	"time"
)

func TestWHEPWithMalformedOfferIs400AndStartsNoCamera(t *testing.T) {
	a := startApp(t)
	// Nothing listens here: a started source would make this a 504 after the start timeout.
	a.createPoint("dead", map[string]string{"type": "rtsp", "url": "rtsp://127.0.0.1:1/none"})
	start := time.Now()
	res := a.do(http.MethodPost, "/api/v1/points/dead/whep", a.token, "application/sdp", "v=0\r\nthis is not sdp")
	wantError(t, res, http.StatusBadRequest)
	if el := time.Since(start); el > time.Second {
		t.Fatalf("bad offer took %v: the server waited for the camera", el)
	}
	if st := a.stats("dead"); st.State != "idle" {
		t.Fatalf("a malformed offer started the source: state %q", st.State)
	}
}
