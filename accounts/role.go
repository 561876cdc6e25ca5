package accounts

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// Role errors; match them with errors.Is.
var (
	// ErrRoleNotFound reports that the role does not exist.
	ErrRoleNotFound = errors.New("role not found")
	// ErrRoleExists reports that a role with that name already exists.
	ErrRoleExists = errors.New("role already exists")
	// ErrRoleInUse reports that a role cannot be deleted while users still hold it.
	ErrRoleInUse = errors.New("role still held by users")
	// ErrRoleBuiltIn reports that a built-in role (admin, sysadmin, secadmin, auditor) cannot be created or deleted.
	ErrRoleBuiltIn = errors.New("built-in role")
)

const maxRoleDescription = 256

// adminRoleDescription describes RoleAdmin when it has no stored record.
const adminRoleDescription = "Administrators: every permission on every point, user and setting"

// Role is a named set of users that grants refer to; what a role may do is decided by permissions.
type Role struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// CreateRole stores a new role; ErrRoleExists if taken, ErrRoleBuiltIn for
// "admin". The hooks run inside the same transaction; an error from one
// stores nothing.
func (a *Accounts) CreateRole(r Role, also ...store.TxHook) error {
	if !rolePattern.MatchString(r.Name) {
		return &ValidationError{"name", "must match " + rolePattern.String()}
	}
	if err := validateText(r.Description, maxRoleDescription); err != "" {
		return &ValidationError{"description", err}
	}
	if IsBuiltInRole(r.Name) {
		return fmt.Errorf("accounts: role %q: %w", r.Name, ErrRoleBuiltIn)
	}
	err := a.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(store.BucketRoles).Get([]byte(r.Name)) != nil {
			return fmt.Errorf("accounts: role %q: %w", r.Name, ErrRoleExists)
		}
		if err := store.PutJSON(tx, store.BucketRoles, []byte(r.Name), r); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
	if err != nil {
		return err
	}
	slog.Info("role created", "role", r.Name)
	return nil
}

// ListRoles returns every role sorted by name, always including the built-in "admin".
func (a *Accounts) ListRoles() ([]Role, error) {
	roles := make([]Role, 0, len(builtInRoles))
	for name, desc := range builtInRoles {
		roles = append(roles, Role{Name: name, Description: desc})
	}
	err := a.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(store.BucketRoles).ForEach(func(k, _ []byte) error {
			var r Role
			if _, err := store.GetJSON(tx, store.BucketRoles, k, &r); err != nil {
				return err
			}
			if !IsBuiltInRole(r.Name) {
				roles = append(roles, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(roles, func(x, y Role) int { return strings.Compare(x.Name, y.Name) })
	return roles, nil
}

// DeleteRole removes a role no user holds; ErrRoleInUse otherwise,
// ErrRoleBuiltIn for a built-in role. The hooks run inside the same
// transaction (a caller removes what refers to the role there); an error
// from one keeps the role.
func (a *Accounts) DeleteRole(name string, also ...store.TxHook) error {
	if IsBuiltInRole(name) {
		return fmt.Errorf("accounts: role %q: %w", name, ErrRoleBuiltIn)
	}
	var holders int
	err := a.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketRoles)
		if name == "" || b.Get([]byte(name)) == nil {
			return fmt.Errorf("accounts: role %q: %w", name, ErrRoleNotFound)
		}
		// Checked in the same transaction as the delete, so a concurrent
		// CreateUser or UpdateUser cannot grant the role in between.
		err := forEachUser(tx, func(rec userRecord) error {
			if slices.Contains(rec.Roles, name) {
				holders++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if holders > 0 {
			return fmt.Errorf("accounts: role %q held by %d users: %w", name, holders, ErrRoleInUse)
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		return store.RunHooks(tx, also)
	})
	if err != nil {
		return err
	}
	slog.Info("role deleted", "role", name)
	return nil
}

// checkRolesExist refuses roles that are neither built in nor stored.
func checkRolesExist(tx *bbolt.Tx, roles []string) error {
	b := tx.Bucket(store.BucketRoles)
	for _, r := range roles {
		if !IsBuiltInRole(r) && b.Get([]byte(r)) == nil {
			return &ValidationError{"roles", fmt.Sprintf("unknown role %q", r)}
		}
	}
	return nil
}

// validateText checks free text shown to people; it returns the problem or "".
func validateText(s string, maxRunes int) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(s) > maxRunes:
		return fmt.Sprintf("must be at most %d characters", maxRunes)
	case containsControl(s):
		return "must not contain control characters"
	}
	return ""
}
