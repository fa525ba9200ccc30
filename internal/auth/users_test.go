package auth

import (
	"strings"
	"testing"
)

// TestPasswordHash: argon2id in PHC format, salted, checked in constant
// time; a malformed or foreign hash matches nothing.
func TestPasswordHash(t *testing.T) {
	h := HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if h == HashPassword("correct horse battery") {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if !CheckPassword(h, "correct horse battery") || CheckPassword(h, "correct horse batterY") {
		t.Fatal("check is wrong")
	}
	for _, bad := range []string{"", "x", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", strings.Replace(h, "t=2", "t=0", 1),
		strings.Replace(h, "v=19", "v=16", 1), h[:len(h)-10] + "!!!!!!!!!!", "$2a$10$abcdefghijklmnopqrstuv"} {
		if CheckPassword(bad, "correct horse battery") {
			t.Fatalf("malformed hash %q matched", bad)
		}
	}
}

// TestPermissionTable: only admin and billing reveal; only admin manages
// users; every role sees contacts.
func TestPermissionTable(t *testing.T) {
	for _, role := range Roles {
		if !Can(role, PermViewContacts) {
			t.Errorf("%s cannot see contacts", role)
		}
		if Can(role, PermReveal) != (role == RoleAdmin || role == RoleBilling) {
			t.Errorf("%s reveal: %v", role, Can(role, PermReveal))
		}
		if Can(role, PermUsers) != (role == RoleAdmin) {
			t.Errorf("%s users: %v", role, Can(role, PermUsers))
		}
	}
	if Can("intern", PermViewContacts) {
		t.Error("an unknown role may do something")
	}
}
