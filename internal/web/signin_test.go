package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestSignInKeepsBoundedMemory: addresses too long to be an account's, in
// bodies large or small, are refused before they become a key of the
// sign-in limit; distinct addresses of a valid length are kept up to the
// limit's maximum only.
func TestSignInKeepsBoundedMemory(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		users := &auth.Users{DB: db, Now: time.Now}
		s, err := New(&Server{DB: db, Users: users})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := users.Create(context.Background(), auth.NewUser{Email: "ada@acme.example", Role: auth.RoleAdmin, Password: "correct horse battery"}); err != nil {
			t.Fatal(err)
		}
		post := func(ip string, form url.Values) int {
			req := httptest.NewRequest("POST", "/admin/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = ip + ":1234"
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			return rec.Code
		}
		for i := range 200 {
			ip := fmt.Sprintf("198.51.%d.%d", i/250, i%250+1) // a fresh client address each, so the address limit lets it through
			huge := strings.Repeat("a", 300+i) + "@example.com"
			if code := post(ip, url.Values{"email": {huge}, "password": {"whatever it is"}}); code != http.StatusUnauthorized {
				t.Fatalf("a %d-byte address: %d", len(huge), code)
			}
		}
		if code := post("203.0.113.1", url.Values{"email": {strings.Repeat("a", 8<<20)}, "password": {"x"}}); code != http.StatusRequestEntityTooLarge {
			t.Fatalf("an 8 MiB address: %d", code)
		}
		if n := s.accounts.Len(); n != 0 {
			t.Fatalf("addresses too long for an account were kept: %d keys", n)
		}
		s.accounts.WithMaxKeys(5)
		for i := range 20 {
			post(fmt.Sprintf("192.0.2.%d", i+1), url.Values{"email": {fmt.Sprintf("guess%d@acme.example", i)}, "password": {"wrong password"}})
		}
		if n := s.accounts.Len(); n != 5 {
			t.Fatalf("the account limit holds %d keys, want its maximum 5", n)
		}
		// The account itself still signs in.
		if code := post("192.0.2.200", url.Values{"email": {"ada@acme.example"}, "password": {"correct horse battery"}}); code != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", code)
		}
	})
}
