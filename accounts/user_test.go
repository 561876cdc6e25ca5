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

func TestListUsersReturnsEveryUserSortedByUsername(t *testing.T) {
	f := newFixture(t, Options{})
	for _, name := range []string{"carol", "alice", "bob"} {
		f.mustCreate(t, name, "password-1")
	}
	users, err := f.a.ListUsers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
		if u.Roles == nil {
			t.Errorf("%s has nil roles", u.Username)
		}
	}
	if strings.Join(names, ",") != "alice,bob,carol" {
		t.Fatalf("users = %v", names)
	}
}

func TestListUsersOfEmptyStoreIsEmptyNotNil(t *testing.T) {
	f := newFixture(t, Options{})
	users, err := f.a.ListUsers()
	if err != nil || users == nil || len(users) != 0 {
		t.Fatalf("ListUsers = %v, %v", users, err)
	}
}

func TestUpdateUserChangesOnlyThePatchedFields(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42", "viewer")
	u, err := f.a.UpdateUser("alice", UserPatch{DisplayName: ptr("Alice Wang")})
	if err != nil {
		t.Fatal(err)
	}
	if u.DisplayName != "Alice Wang" || strings.Join(u.Roles, ",") != "viewer" || u.Disabled {
		t.Fatalf("after display name patch: %+v", u)
	}
	u, err = f.a.UpdateUser("alice", UserPatch{Roles: ptr([]string{"operator", "viewer", "operator"})})
	if err != nil {
		t.Fatal(err)
	}
	if u.DisplayName != "Alice Wang" || strings.Join(u.Roles, ",") != "operator,viewer" {
		t.Fatalf("after roles patch: %+v", u)
	}
	got, _ := f.a.GetUser("alice")
	if got.DisplayName != u.DisplayName || strings.Join(got.Roles, ",") != "operator,viewer" {
		t.Errorf("stored %+v, returned %+v", got, u)
	}
	if _, err := f.a.Authenticate("alice", "wonderland-42"); err != nil {
		t.Errorf("password lost by UpdateUser: %v", err)
	}
}

func TestUpdateUserWithInvalidOrUnknownInputChangesNothing(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42", "viewer")
	for _, tc := range []struct {
		field string
		p     UserPatch
	}{
		{"display_name", UserPatch{DisplayName: ptr("bad\nname"), Roles: ptr([]string{"operator"})}},
		{"roles", UserPatch{Roles: ptr([]string{"Operator"})}},
		{"roles", UserPatch{DisplayName: ptr("Alice"), Roles: ptr([]string{"inspector"})}},
	} {
		var ve *ValidationError
		if _, err := f.a.UpdateUser("alice", tc.p); !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("err = %v, want ValidationError on %q", err, tc.field)
		}
	}
	if u, _ := f.a.GetUser("alice"); u.DisplayName != "alice" || strings.Join(u.Roles, ",") != "viewer" {
		t.Errorf("user changed: %+v", u)
	}
	if _, err := f.a.UpdateUser("ghost", UserPatch{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
}

func TestDisablingAUserEndsTheirSessionsAndStopsTheirAPITokens(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	f.mustCreate(t, "bob", "builder-4242")
	session := f.login(t, "alice", "wonderland-42")
	bobSession := f.login(t, "bob", "builder-4242")
	token, _ := f.mustToken(t, "alice")
	if _, err := f.a.UpdateUser("alice", UserPatch{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.sessionsOf(t, "alice")); n != 0 {
		t.Errorf("%d sessions left after disabling", n)
	}
	for _, tok := range []string{session, token} {
		if _, err := f.a.Resolve(tok); !errors.Is(err, ErrNoSession) {
			t.Errorf("Resolve after disabling: err = %v, want ErrNoSession", err)
		}
	}
	if _, _, _, err := f.a.Login("alice", "wonderland-42"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("disabled user logged in: %v", err)
	}
	if _, err := f.a.Resolve(bobSession); err != nil {
		t.Errorf("bob's session died with alice's: %v", err)
	}

	// Enabling again restores the integration's token, not the old session.
	if _, err := f.a.UpdateUser("alice", UserPatch{Disabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Resolve(session); !errors.Is(err, ErrNoSession) {
		t.Errorf("old session revived: %v", err)
	}
	if u, err := f.a.Resolve(token); err != nil || u.Username != "alice" {
		t.Errorf("API token after re-enabling = %+v, %v", u, err)
	}
}

// sessionsOf returns the stored session records of username, dead or alive.
func (f fixture) sessionsOf(t *testing.T, username string) []sessionRecord {
	t.Helper()
	var out []sessionRecord
	_ = f.db.View(func(tx *bbolt.Tx) error {
		return forEachSession(tx, username, func(_ []byte, s sessionRecord) error {
			out = append(out, s)
			return nil
		})
	})
	return out
}

func TestTheLastEnabledAdminCannotBeDisabledDemotedOrDeleted(t *testing.T) {
	f := newFixture(t, Options{})
	if _, _, err := f.a.EnsureAdmin("admin-password"); err != nil {
		t.Fatal(err)
	}
	f.mustCreate(t, "root", "root-password", RoleAdmin, "viewer")
	if _, err := f.a.UpdateUser("root", UserPatch{Disabled: ptr(true)}); err != nil {
		t.Fatalf("disabling one of two admins: %v", err)
	}
	for name, change := range map[string]func() error{
		"disable": func() error { _, err := f.a.UpdateUser("admin", UserPatch{Disabled: ptr(true)}); return err },
		"demote":  func() error { _, err := f.a.UpdateUser("admin", UserPatch{Roles: ptr([]string{"viewer"})}); return err },
		"delete":  func() error { return f.a.DeleteUser("admin") },
	} {
		if err := change(); !errors.Is(err, ErrLastAdmin) {
			t.Errorf("%s last admin: err = %v, want ErrLastAdmin", name, err)
		}
	}
	if u, _ := f.a.GetUser("admin"); !isEnabledAdmin(u) {
		t.Fatalf("admin changed anyway: %+v", u)
	}
	// A disabled admin may still be changed freely, and once another admin
	// is enabled the first may go.
	if _, err := f.a.UpdateUser("root", UserPatch{Roles: ptr([]string{"viewer"})}); err != nil {
		t.Errorf("demoting a disabled admin: %v", err)
	}
	if _, err := f.a.UpdateUser("root", UserPatch{Roles: ptr([]string{RoleAdmin}), Disabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if err := f.a.DeleteUser("admin"); err != nil {
		t.Errorf("deleting one of two enabled admins: %v", err)
	}
}

func TestEnsureAdminDoesNotRecreateADeletedBootstrapAdmin(t *testing.T) {
	f := newFixture(t, Options{})
	if _, _, err := f.a.EnsureAdmin("admin-password"); err != nil {
		t.Fatal(err)
	}
	f.mustCreate(t, "root", "root-password", RoleAdmin)
	if err := f.a.DeleteUser("admin"); err != nil {
		t.Fatal(err)
	}
	generated, created, err := f.a.EnsureAdmin("")
	if err != nil || created || generated != "" {
		t.Fatalf("EnsureAdmin = %q, %v, %v; want no-op while root is admin", generated, created, err)
	}
	if _, err := f.a.GetUser("admin"); !errors.Is(err, ErrNotFound) {
		t.Errorf("admin recreated: %v", err)
	}
}

func TestDeleteUserRemovesTheUserTheirSessionsAndTheirTokens(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42", "viewer")
	f.mustCreate(t, "bob", "builder-4242")
	session := f.login(t, "alice", "wonderland-42")
	token, _ := f.mustToken(t, "alice")
	bobToken, _ := f.mustToken(t, "bob")
	if err := f.a.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.GetUser("alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUser after delete: %v", err)
	}
	if keys, _ := f.rawBucket(t, store.BucketSessions); len(keys) != 0 {
		t.Errorf("sessions left: %v", keys)
	}
	if keys, _ := f.rawBucket(t, store.BucketTokens); len(keys) != 1 {
		t.Errorf("tokens left: %v, want only bob's", keys)
	}
	for _, tok := range []string{session, token} {
		if _, err := f.a.Resolve(tok); !errors.Is(err, ErrNoSession) {
			t.Errorf("Resolve after delete: %v", err)
		}
	}
	if _, err := f.a.Resolve(bobToken); err != nil {
		t.Errorf("bob's token broken: %v", err)
	}
	if err := f.a.DeleteUser("alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: err = %v, want ErrNotFound", err)
	}
	// The name is free again and a new alice inherits nothing.
	f.mustCreate(t, "alice", "new-password-1")
	if _, err := f.a.Resolve(token); !errors.Is(err, ErrNoSession) {
		t.Errorf("old token works for the new alice: %v", err)
	}
}

func TestChangePasswordWithTheRightOldPasswordEndsEverySessionAndAPIToken(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	f.mustCreate(t, "bob", "bob-password-1")
	s1 := f.login(t, "alice", "wonderland-42")
	s2 := f.login(t, "alice", "wonderland-42")
	token, _ := f.mustToken(t, "alice")
	bobToken, _ := f.mustToken(t, "bob")
	if err := f.a.ChangePassword("alice", "wonderland-42", "looking-glass-7"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{s1, s2, token} {
		if _, err := f.a.Resolve(s); !errors.Is(err, ErrNoSession) {
			t.Errorf("session or API token survived the password change: %v", err)
		}
	}
	if list, err := f.a.ListTokens("alice"); err != nil || len(list) != 0 {
		t.Errorf("alice's tokens after the change: %v, %v", list, err)
	}
	if _, err := f.a.Resolve(bobToken); err != nil {
		t.Errorf("another user's API token ended with alice's password: %v", err)
	}
	if _, err := f.a.Authenticate("alice", "wonderland-42"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password still works: %v", err)
	}
	if _, err := f.a.Authenticate("alice", "looking-glass-7"); err != nil {
		t.Errorf("new password refused: %v", err)
	}
}

func TestChangePasswordWithAWrongOldPasswordFailsAndChangesNothing(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	s := f.login(t, "alice", "wonderland-42")
	for _, tc := range []struct{ user, old string }{
		{"alice", "wonderland-43"},
		{"ghost", "wonderland-42"},
	} {
		if err := f.a.ChangePassword(tc.user, tc.old, "looking-glass-7"); err != ErrBadCredentials {
			t.Errorf("ChangePassword(%q, %q) err = %v, want exactly ErrBadCredentials", tc.user, tc.old, err)
		}
	}
	if _, err := f.a.Authenticate("alice", "wonderland-42"); err != nil {
		t.Errorf("password changed anyway: %v", err)
	}
	if _, err := f.a.Resolve(s); err != nil {
		t.Errorf("session ended by a failed change: %v", err)
	}
}

func TestChangePasswordToAnInvalidPasswordFailsWithValidationError(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	var ve *ValidationError
	if err := f.a.ChangePassword("alice", "wonderland-42", "short"); !errors.As(err, &ve) || ve.Field != "password" {
		t.Fatalf("err = %v, want ValidationError on password", err)
	}
	if err := f.a.ResetPassword("alice", strings.Repeat("p", 1025)); !errors.As(err, &ve) || ve.Field != "password" {
		t.Fatalf("reset err = %v, want ValidationError on password", err)
	}
}

func TestResetPasswordNeedsNoOldPasswordAndEndsEverySessionAndAPIToken(t *testing.T) {
	f := newFixture(t, Options{})
	f.mustCreate(t, "alice", "wonderland-42")
	s := f.login(t, "alice", "wonderland-42")
	token, _ := f.mustToken(t, "alice")
	if err := f.a.ResetPassword("alice", "reset-by-admin"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{s, token} {
		if _, err := f.a.Resolve(tok); !errors.Is(err, ErrNoSession) {
			t.Errorf("session or API token survived the reset: %v", err)
		}
	}
	if _, err := f.a.Authenticate("alice", "reset-by-admin"); err != nil {
		t.Errorf("new password refused: %v", err)
	}
	if err := f.a.ResetPassword("ghost", "reset-by-admin"); !errors.Is(err, ErrNotFound) {
		t.Errorf("reset of unknown user: err = %v, want ErrNotFound", err)
	}
}
