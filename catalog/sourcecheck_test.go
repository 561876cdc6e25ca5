package catalog

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostCheck refuses URLs whose host is in refused, counting every call.
type hostCheck struct {
	mu      sync.Mutex
	refused map[string]bool
	calls   []string
	// during, if set, runs inside each check (to prove no lock is held).
	during func()
}

func (h *hostCheck) check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("bad URL")
	}
	h.mu.Lock()
	h.calls = append(h.calls, u.Hostname())
	during := h.during
	h.mu.Unlock()
	if during != nil {
		during()
	}
	if h.refused[u.Hostname()] {
		return errors.New("camera URL host " + u.Hostname() + " is loopback; not inside --camera-networks (10.0.0.0/8)")
	}
	return nil
}

func (h *hostCheck) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

// checkedCatalog is a catalog with a hostCheck refusing loopback and the
// metadata address.
func checkedCatalog(t *testing.T) (*Catalog, *hostCheck) {
	t.Helper()
	h := &hostCheck{refused: map[string]bool{"127.0.0.1": true, "169.254.169.254": true}}
	_, db := newCatalogAt(t, t.TempDir())
	c, err := New(db, WithSourceCheck(h.check))
	if err != nil {
		t.Fatal(err)
	}
	return c, h
}

func TestCreateRefusesAPulledURLTheCheckRefusesNamingTheField(t *testing.T) {
	c, h := checkedCatalog(t)
	p := rtspPoint("p1", "Gate")
	p.Main.URL = "rtsp://admin:secret@127.0.0.1:8554/main"
	_, err := c.Create(p)
	wantValidationError(t, err, "main.url")
	if !strings.Contains(err.Error(), "main.url: camera URL host 127.0.0.1 is loopback") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v", err)
	}
	p = rtspPoint("p1", "Gate")
	p.Sub = &Source{Type: SourceRTSP, URL: "rtsp://169.254.169.254/sub"}
	_, err = c.Create(p)
	wantValidationError(t, err, "sub.url")
	if c.Len() != 0 {
		t.Fatalf("a refused point was stored: %d points", c.Len())
	}
	// The camera of an agent's point is on the agent's LAN: the agent decides.
	p = rtspPoint("p2", "Behind agent")
	p.Main.URL, p.Agent, p.Camera = "rtsp://127.0.0.1:554/main", "agt-1", "cam-1"
	mustCreate(t, c, p)
	mustCreate(t, c, rtspPoint("p3", "Fine"))
	if got := h.count(); got != 4 {
		t.Fatalf("the check ran %d times, want 4 (main; main and sub; p3's main): %v", got, h.calls)
	}
}

func TestUpdateChecksOnlyURLsTheChangeMakesTheCentrePull(t *testing.T) {
	c, h := checkedCatalog(t)
	// Points stored before the check existed (or while loopback was listed).
	old := rtspPoint("old", "Stored before")
	old.Main.URL = "rtsp://127.0.0.1:8554/main"
	agentPoint := rtspPoint("agt", "Agent's")
	agentPoint.Main.URL, agentPoint.Agent, agentPoint.Camera = "rtsp://127.0.0.1:554/main", "agt-1", "cam-9"
	{
		unchecked, err := New(c.db)
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, unchecked, old)
		mustCreate(t, unchecked, agentPoint)
	}
	c2, err := New(c.db, WithSourceCheck(h.check))
	if err != nil {
		t.Fatal(err)
	}
	h.calls = nil
	name := "Renamed"
	if _, err := c2.Update("old", PointPatch{Name: &name}); err != nil {
		t.Fatalf("renaming a point whose URL did not change: %v", err)
	}
	if h.count() != 0 {
		t.Fatalf("an unchanged URL was checked again: %v", h.calls)
	}
	bad := Source{Type: SourceRTSP, URL: "rtsp://u:pw@169.254.169.254/x"}
	_, err = c2.Update("old", PointPatch{Main: &bad})
	wantValidationError(t, err, "main.url")
	noAgent := ""
	_, err = c2.Update("agt", PointPatch{Agent: &noAgent})
	wantValidationError(t, err, "main.url")
	if p, _ := c2.Get("agt"); p.Agent != "agt-1" {
		t.Fatalf("a refused PATCH changed the point: %+v", p)
	}
	good := Source{Type: SourceRTSP, URL: "rtsp://10.0.0.9/x"}
	if _, err := c2.Update("old", PointPatch{Main: &good}); err != nil {
		t.Fatal(err)
	}
}

// TestSourceCheckRunsWithoutTheWriteLock: a check may resolve a name; it
// must not hold up health updates (which take the write lock) meanwhile.
func TestSourceCheckRunsWithoutTheWriteLock(t *testing.T) {
	c, h := checkedCatalog(t)
	mustCreate(t, c, rtspPoint("p1", "One"))
	h.mu.Lock()
	h.during = func() {
		done := make(chan error, 1)
		go func() { done <- c.SetStatus("p1", StateOnline, time.Time{}) }()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Error("SetStatus waited for the URL check: the check ran under the write lock")
		}
	}
	h.mu.Unlock()
	other := Source{Type: SourceRTSP, URL: "rtsp://10.0.0.77/main"}
	if _, err := c.Update("p1", PointPatch{Main: &other}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, rtspPoint("p2", "Two"))
	body := strings.Join(PointColumns, ",") + "\np3,Three,hd,road,,,,1,,,false,rtsp://10.0.0.78/main,\n"
	if _, _, err := c.ImportPoints(strings.NewReader(body), ContentTypeCSV, false); err != nil {
		t.Fatal(err)
	}
	if h.count() < 3 {
		t.Fatalf("the check ran %d times, want at least 3", h.count())
	}
}

func TestImportRefusesRowsWithRefusedURLsAndWritesNothing(t *testing.T) {
	c, h := checkedCatalog(t)
	head := strings.Join(PointColumns, ",") + ",agent,camera\n"
	body := head +
		"p1,One,hd,road,,,,1,,,false,rtsp://10.0.0.1/main,,,\n" +
		"p2,Two,hd,road,,,,1,,,false,rtsp://u:secret@127.0.0.1:8554/main,rtsp://169.254.169.254/sub,,\n" +
		"p3,Three,hd,road,,,,1,,,false,rtsp://127.0.0.1:8554/main,,,\n" +
		"p4,Agent's,hd,road,,,,1,,,false,rtsp://127.0.0.1/main,,agt-1,cam-4\n"
	n, rows, err := c.ImportPoints(strings.NewReader(body), ContentTypeCSV, false)
	if !errors.Is(err, ErrRowsRejected) || n != 0 {
		t.Fatalf("n=%d err=%v, want ErrRowsRejected", n, err)
	}
	want := []RowError{{Line: 3, Field: "main_url"}, {Line: 3, Field: "sub_url"}, {Line: 4, Field: "main_url"}}
	if len(rows) != len(want) {
		t.Fatalf("row errors %+v, want lines/fields %+v", rows, want)
	}
	for i, w := range want {
		if rows[i].Line != w.Line || rows[i].Field != w.Field || !strings.Contains(rows[i].Message, "is loopback") ||
			strings.Contains(rows[i].Message, "secret") {
			t.Errorf("row error %d: %+v, want line %d field %s naming the rule", i, rows[i], w.Line, w.Field)
		}
	}
	if c.Len() != 0 {
		t.Fatalf("%d points written by a rejected import", c.Len())
	}
	// Each distinct scheme, host and port is checked once (p3's main is
	// p2's host and port); the agent's row not at all.
	if got := h.count(); got != 3 {
		t.Fatalf("%d checks, want 3: %v", got, h.calls)
	}
}
