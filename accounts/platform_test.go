package accounts

import (
	"errors"
	"testing"
	"time"
)

// newPlatform stores an upstream platform's account and a person with the
// same password a guesser would try, for comparison.
func newPlatform(t *testing.T, f fixture) User {
	t.Helper()
	u, err := f.a.CreateUser(User{Username: "city-platform", DisplayName: "市级平台", Kind: KindPlatform, Roles: []string{"viewer"}}, "")
	if err != nil {
		t.Fatalf("CreateUser(platform): %v", err)
	}
	if !u.IsPlatform() || u.Kind != "platform" {
		t.Fatalf("created %+v, want kind platform", u)
	}
	return u
}

func TestPlatformAccountNeverLogsInAndAnswersLikeAnUnknownUser(t *testing.T) {
	f := newFixture(t, Options{})
	newPlatform(t, f)
	// The first unknown-user check also computes the dummy hash once.
	_, _, _, _ = f.a.Login("warm-up", "warm-up-password")
	for _, pw := range []string{"", "anything-at-all", "city-platform"} {
		before := f.a.PasswordHashes()
		_, _, _, err := f.a.Login("city-platform", pw)
		if !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Login(platform, %q) = %v, want ErrBadCredentials", pw, err)
		}
		// The same argon2 work as for a user who does not exist: neither
		// the answer nor the time tells a platform from a stranger.
		if n := f.a.PasswordHashes() - before; n != 1 {
			t.Errorf("Login(platform) ran %d password hashes, want 1 (as for an unknown user)", n)
		}
		before = f.a.PasswordHashes()
		_, _, _, errUnknown := f.a.Login("nobody-here", pw)
		if errUnknown == nil || errUnknown.Error() != err.Error() {
			t.Errorf("unknown user answers %v, platform %v: they must read the same", errUnknown, err)
		}
		if n := f.a.PasswordHashes() - before; n != 1 {
			t.Errorf("Login(unknown) ran %d password hashes", n)
		}
	}
	if _, err := f.a.Authenticate("city-platform", ""); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate(platform) = %v", err)
	}
}

func TestPlatformAccountHoldsNoPasswordTokenOrStreamKey(t *testing.T) {
	f := newFixture(t, Options{})
	newPlatform(t, f)
	if _, _, err := f.a.CreateToken("city-platform", "integration", time.Time{}); !errors.Is(err, ErrPlatformAccount) {
		t.Errorf("CreateToken(platform) = %v, want ErrPlatformAccount", err)
	}
	if toks, err := f.a.ListTokens("city-platform"); err != nil || len(toks) != 0 {
		t.Errorf("ListTokens = %v, %v", toks, err)
	}
	// RTSP Digest asks for the stream key: refused as a bad credential.
	if _, err := f.a.StreamKey("city-platform"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("StreamKey(platform) = %v, want ErrBadCredentials", err)
	}
	if _, err := f.a.RotateStreamKey("city-platform"); !errors.Is(err, ErrPlatformAccount) {
		t.Errorf("RotateStreamKey(platform) = %v, want ErrPlatformAccount", err)
	}
	if f.a.VerifyStreamKey("city-platform", "") {
		t.Error("VerifyStreamKey(platform, \"\") = true")
	}
	if c := f.a.RTSPCredential("city-platform", "x", true); c != "" {
		t.Errorf("RTSPCredential(platform) = %q, want none", c)
	}
	if err := f.a.ResetPassword("city-platform", "a-fine-password"); !errors.Is(err, ErrPlatformAccount) {
		t.Errorf("ResetPassword(platform) = %v, want ErrPlatformAccount", err)
	}
	if err := f.a.ChangePassword("city-platform", "", "a-fine-password"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("ChangePassword(platform) = %v, want ErrBadCredentials", err)
	}
	if _, _, _, err := f.a.Login("city-platform", "a-fine-password"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Login after refused reset = %v", err)
	}
}

func TestPlatformAccountCreationRules(t *testing.T) {
	f := newFixture(t, Options{})
	var ve *ValidationError
	if _, err := f.a.CreateUser(User{Username: "city-a", Kind: KindPlatform}, "a-password-given"); !errors.As(err, &ve) || ve.Field != "password" {
		t.Errorf("platform with a password: %v, want a password ValidationError", err)
	}
	for _, r := range []string{RoleAdmin, RoleSysAdmin, RoleSecAdmin, RoleAuditor} {
		if _, err := f.a.CreateUser(User{Username: "city-b", Kind: KindPlatform, Roles: []string{r}}, ""); !errors.As(err, &ve) || ve.Field != "roles" {
			t.Errorf("platform with role %s: %v, want a roles ValidationError", r, err)
		}
	}
	if _, err := f.a.CreateUser(User{Username: "city-c", Kind: "robot"}, ""); !errors.As(err, &ve) || ve.Field != "kind" {
		t.Errorf("kind robot: %v, want a kind ValidationError", err)
	}
	// A person still needs a password.
	if _, err := f.a.CreateUser(User{Username: "person-d"}, ""); !errors.As(err, &ve) || ve.Field != "password" {
		t.Errorf("person without password: %v", err)
	}
	newPlatform(t, f)
	admin := []string{RoleAdmin}
	if _, err := f.a.UpdateUser("city-platform", UserPatch{Roles: &admin}); !errors.As(err, &ve) || ve.Field != "roles" {
		t.Errorf("making a platform admin: %v, want a roles ValidationError", err)
	}
	if u, _ := f.a.GetUser("city-platform"); u.IsAdmin() || u.Kind != KindPlatform {
		t.Errorf("after refused update: %+v", u)
	}
	users, err := f.a.ListUsers()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, u := range users {
		kinds[u.Username] = u.Kind
	}
	if kinds["city-platform"] != KindPlatform {
		t.Errorf("ListUsers kinds = %v", kinds)
	}
}
