package accounts

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

func TestCreateUserThenGetUserReturnsItWithoutSecrets(t *testing.T) {
	f := newFixture(t, Options{})
	created, err := f.a.CreateUser(User{Username: "alice", DisplayName: "Alice Wang", Roles: []string{"operator"}}, "wonderland-42")
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.a.GetUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != "alice" || got.DisplayName != "Alice Wang" || len(got.Roles) != 1 || got.Roles[0] != "operator" ||
		got.Disabled || !got.CreatedAt.Equal(f.clock.now()) || !got.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("GetUser = %+v, created %+v", got, created)
	}
	js, _ := json.Marshal(got)
	if bytes.Contains(js, []byte("argon2")) || bytes.Contains(js, []byte("password")) {
		t.Errorf("User JSON leaks secrets: %s", js)
	}
}

func TestStoredUserRecordHoldsOnlyAPHCHashOfThePassword(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	_, raw := f.rawBucket(t, store.BucketUsers)
	if bytes.Contains(raw, []byte("wonderland-42")) {
		t.Fatal("plaintext password stored")
	}
	if !bytes.Contains(raw, []byte(`"$argon2id$v=19$`)) {
		t.Fatalf("no PHC hash in stored record: %s", raw)
	}
}

func TestCreateUserWithTakenUsernameFailsWithErrExists(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "password-1")
	_, err := f.a.CreateUser(User{Username: "alice"}, "password-2")
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	if _, err := f.a.Authenticate("alice", "password-1"); err != nil {
		t.Errorf("original password no longer works: %v", err)
	}
}

func TestCreateUserWithInvalidInputFailsWithValidationError(t *testing.T) {
	tests := []struct {
		name, field string
		u           User
		password    string
	}{
		{"one-char username", "username", User{Username: "a"}, "password"},
		{"33-char username", "username", User{Username: strings.Repeat("a", 33)}, "password"},
		{"upper-case username", "username", User{Username: "Alice"}, "password"},
		{"username starting with dot", "username", User{Username: ".alice"}, "password"},
		{"username with space", "username", User{Username: "al ice"}, "password"},
		{"empty username", "username", User{}, "password"},
		{"seven-char password", "password", User{Username: "alice"}, "1234567"},
		{"huge password", "password", User{Username: "alice"}, strings.Repeat("p", 1025)},
		{"display name with newline", "display_name", User{Username: "alice", DisplayName: "a\nb"}, "password"},
		{"long display name", "display_name", User{Username: "alice", DisplayName: strings.Repeat("名", 129)}, "password"},
		{"bad role", "roles", User{Username: "alice", Roles: []string{"Admin"}}, "password"},
		{"empty role", "roles", User{Username: "alice", Roles: []string{""}}, "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			_, err := f.a.CreateUser(tt.u, tt.password)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("err = %v, want *ValidationError on %q", err, tt.field)
			}
			if keys, _ := f.rawBucket(t, store.BucketUsers); len(keys) != 0 {
				t.Errorf("invalid user written: %v", keys)
			}
		})
	}
}

func TestCreateUserAcceptsBoundaryUsernamesAndPasswords(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "ab", "12345678")
	f.mustCreate(t, "0"+strings.Repeat("z", 31), "密码密码密码密码") // 8 runes
	f.mustCreate(t, "a_b.c-d", "password")
}

func TestCreateUserDeduplicatesRolesAndNeverStoresNilRoles(t *testing.T) {
	f := newFixture(t, Options{})
	u := f.mustCreate(t, "alice", "password", "viewer", "admin", "viewer")
	if strings.Join(u.Roles, ",") != "viewer,admin" {
		t.Errorf("Roles = %v", u.Roles)
	}
	f.mustCreate(t, "bob", "password")
	bob, _ := f.a.GetUser("bob")
	if js, _ := json.Marshal(bob); !bytes.Contains(js, []byte(`"roles":[]`)) {
		t.Errorf("user without roles encodes as %s, want roles []", js)
	}
}

func TestGetUserOfUnknownNameFailsWithErrNotFound(t *testing.T) {
	f := newFixture(t, Options{})
	for _, name := range []string{"ghost", ""} {
		if _, err := f.a.GetUser(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetUser(%q) err = %v, want ErrNotFound", name, err)
		}
	}
}

func TestIsAdminRequiresTheAdminRole(t *testing.T) {
	if (User{Roles: []string{"operator", "viewer"}}).IsAdmin() {
		t.Error("non-admin reported as admin")
	}
	if !(User{Roles: []string{"viewer", "admin"}}).IsAdmin() {
		t.Error("admin not reported as admin")
	}
}

func TestEnsureAdminWithoutPasswordCreatesAdminWithGeneratedPassword(t *testing.T) {
	f := newFixture(t, Options{})
	generated, created, err := f.a.EnsureAdmin("")
	if err != nil || !created {
		t.Fatalf("EnsureAdmin = %q, %v, %v", generated, created, err)
	}
	if len(generated) != 20 {
		t.Errorf("generated password has %d chars, want 20", len(generated))
	}
	if _, err := base64.RawURLEncoding.DecodeString(generated); err != nil {
		t.Errorf("generated password %q is not URL-safe base64: %v", generated, err)
	}
	u, err := f.a.Authenticate("admin", generated)
	if err != nil {
		t.Fatalf("cannot log in with generated password: %v", err)
	}
	if !u.IsAdmin() {
		t.Errorf("admin lacks admin role: %+v", u)
	}
}

func TestEnsureAdminWithPasswordUsesItAndGeneratesNothing(t *testing.T) {
	f := newFixture(t, Options{})
	generated, created, err := f.a.EnsureAdmin("chosen-admin-pw")
	if err != nil || !created || generated != "" {
		t.Fatalf("EnsureAdmin = %q, %v, %v", generated, created, err)
	}
	if _, err := f.a.Authenticate("admin", "chosen-admin-pw"); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureAdminWhenAdminExistsDoesNothing(t *testing.T) {
	f := newFixture(t, Options{})
	if _, _, err := f.a.EnsureAdmin("first-password"); err != nil {
		t.Fatal(err)
	}
	generated, created, err := f.a.EnsureAdmin("")
	if err != nil || created || generated != "" {
		t.Fatalf("second EnsureAdmin = %q, %v, %v; want no-op", generated, created, err)
	}
	if _, err := f.a.Authenticate("admin", "first-password"); err != nil {
		t.Fatalf("admin password changed: %v", err)
	}
}

func TestEnsureAdminWithTooShortPasswordFails(t *testing.T) {
	f := newFixture(t, Options{})
	if _, _, err := f.a.EnsureAdmin("short"); err == nil {
		t.Fatal("EnsureAdmin accepted a 5-char password")
	}
	if _, err := f.a.GetUser("admin"); !errors.Is(err, ErrNotFound) {
		t.Errorf("admin created anyway: %v", err)
	}
}

func TestAuthenticateWithRightPasswordReturnsTheUser(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42", "viewer")
	u, err := f.a.Authenticate("alice", "wonderland-42")
	if err != nil || u.Username != "alice" {
		t.Fatalf("Authenticate = %+v, %v", u, err)
	}
}

func TestLoginWithWrongPasswordFails(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	for _, pw := range []string{"wonderland-43", "", "WONDERLAND-42"} {
		if _, _, _, err := f.a.Login("alice", pw); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Login with %q err = %v, want ErrBadCredentials", pw, err)
		}
	}
	if keys, _ := f.rawBucket(t, store.BucketSessions); len(keys) != 0 {
		t.Errorf("failed logins created sessions: %d", len(keys))
	}
}

func TestLoginWithUnknownUserFailsLikeAWrongPassword(t *testing.T) {
	f := newFixture(t, Options{})
	for _, name := range []string{"ghost", "", "Not Valid!"} {
		if _, _, _, err := f.a.Login(name, "whatever-pw"); err != ErrBadCredentials {
			t.Errorf("Login(%q) err = %v, want exactly ErrBadCredentials", name, err)
		}
	}
}

func TestLoginOfDisabledUserFails(t *testing.T) {
	f := newFixture(t, Options{})
	if _, err := f.a.CreateUser(User{Username: "mallory", Disabled: true}, "right-password"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.a.Login("mallory", "right-password"); err != ErrBadCredentials {
		t.Fatalf("err = %v, want exactly ErrBadCredentials", err)
	}
}

func TestAuthenticateWithCorruptStoredHashFailsClosed(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	_ = f.db.Update(func(tx *bbolt.Tx) error {
		rec, _ := getRecord(tx, "alice")
		rec.PasswordHash = "$argon2id$garbage"
		return store.PutJSON(tx, store.BucketUsers, []byte("alice"), rec)
	})
	u, err := f.a.Authenticate("alice", "wonderland-42")
	if err == nil || u.Username != "" {
		t.Fatalf("Authenticate = %+v, %v; want failure", u, err)
	}
}

func TestLoginWithUnknownUserStillSpendsArgon2Work(t *testing.T) {
	f := newFixture(t, Options{})
	if _, err := f.a.Authenticate("ghost", "whatever-pw"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(f.a.dummyHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("dummy hash %q not computed with the configured params", f.a.dummyHash)
	}
}
