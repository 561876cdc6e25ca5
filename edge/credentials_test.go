package edge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianyan/vms/agentlink"
)

func TestCredentialsAreSavedPrivateAndLoadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	want := Credentials{Server: "https://vms.example:8443", AgentID: "agt-1", Secret: "s3cret"}
	if err := want.Save(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, CredentialsFile)
	for p, mode := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", p, st.Mode().Perm(), mode)
		}
	}
	got, err := LoadCredentials(dir)
	if err != nil || got != want {
		t.Fatalf("loaded %+v, %v; want %+v", got, err, want)
	}

	// Saving over a file someone loosened makes it private again.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := want.Save(dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("after a second save the mode is %v", st.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestLoadCredentialsRefusesAFileOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	if err := (Credentials{Server: "http://127.0.0.1:1", AgentID: "a", Secret: "s"}).Save(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, CredentialsFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCredentials(dir)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %v: got %v, want a refusal saying chmod 600", mode, err)
		}
	}
}

func TestLoadCredentialsExplainsMissingAndDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadCredentials(dir); err == nil || !strings.Contains(err.Error(), "enroll") {
		t.Errorf("no file: %v, want a hint to enroll", err)
	}
	path := filepath.Join(dir, CredentialsFile)
	for _, body := range []string{"", "not json", "[]", `{"server":"http://x"}`, `{"server":"","agent_id":"a","secret":"s"}`} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCredentials(dir); err == nil || !strings.Contains(err.Error(), "not a credentials file") {
			t.Errorf("file %q: %v", body, err)
		}
	}
}

// enrollCentre answers the enrollment endpoint as the centre does: one
// code is good, any other gets the centre's 401 error object.
func enrollCentre(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req agentlink.EnrollRequest
		if r.Method != http.MethodPost || r.URL.Path != agentlink.EnrollPath || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if req.Code != "good-code" || req.Hostname != "field-box" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"bad_code","message":"enrollment code unknown, used or expired"}}`))
			return
		}
		_ = json.NewEncoder(w).Encode(agentlink.EnrollResponse{AgentID: "agt-7", Secret: "long-secret"})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestEnrollTradesTheCodeForCredentials(t *testing.T) {
	srv := enrollCentre(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := Enroll(ctx, nil, srv.URL+"/", "good-code", "field-box")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Credentials{Server: srv.URL, AgentID: "agt-7", Secret: "long-secret"}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestEnrollWithABadCodeSaysWhy(t *testing.T) {
	srv := enrollCentre(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Enroll(ctx, nil, srv.URL, "used-code", "field-box")
	var ce *CentreError
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || ce.Code != "bad_code" {
		t.Fatalf("got %v, want the centre's bad_code error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "enrollment code unknown, used or expired") || strings.Contains(msg, "{") {
		t.Errorf("message %q should quote the centre's reason, not its JSON", msg)
	}
}

func TestEnrollRefusesBadServersAndAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, server := range []string{"", "vms.example", "ftp://vms.example", "http://"} {
		if _, err := Enroll(ctx, nil, server, "c", "h"); err == nil || !strings.Contains(err.Error(), "http(s) URL") {
			t.Errorf("server %q: %v", server, err)
		}
	}

	page := strings.Repeat("<html><body>Bad gateway</body></html>", 100)
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"proxy error page", http.StatusBadGateway, page, "502"},
		{"not credentials", http.StatusOK, `{"agent_id":""}`, "malformed answer"},
		{"not JSON", http.StatusOK, "<html>", "malformed answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			_, err := Enroll(ctx, nil, srv.URL, "good-code", "h")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error message of %d bytes quotes the whole page", len(err.Error()))
			}
		})
	}

	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	if _, err := Enroll(ctx, nil, gone.URL, "good-code", "h"); err == nil || !strings.HasPrefix(err.Error(), "enroll: ") {
		t.Errorf("unreachable centre: %v", err)
	}
}
