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

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// signInServer is the admin UI on db, with no user yet.
func signInServer(t testing.TB, db *store.DB) *Server {
	s, err := New(&Server{DB: db, Users: &auth.Users{DB: db, Now: time.Now}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSignInKeepsBoundedMemory: addresses too long to be an account's, in
// bodies large or small, are refused before they become a key of the
// sign-in limit; distinct addresses of a valid length are kept up to the
// limit's maximum only.
func TestSignInKeepsBoundedMemory(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := signInServer(t, db)
		if _, err := s.Users.Create(context.Background(), audit.Actor{Kind: "user"}, auth.NewUser{Email: "ada@acme.example", Role: auth.RoleAdmin, Password: "correct horse battery"}); err != nil {
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

// TestSignInLimitSaysWhenToRetry: a sign-in refused by the limit of its
// client address or of its account says in Retry-After how many seconds
// until that limit lets the next one through, as the limiter counts it;
// a form over its limit is refused 413, naming the limit.
func TestSignInLimitSaysWhenToRetry(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := signInServer(t, db)
		at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		now := func() time.Time { return at }
		s.logins.Now, s.accounts.Now = now, now
		post := func(ip, email string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("POST", "/admin/login", strings.NewReader(url.Values{"email": {email}, "password": {"wrong password"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = ip + ":1234"
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			return rec
		}
		retryAfter := func(rec *httptest.ResponseRecorder, want string) {
			t.Helper()
			if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != want {
				t.Fatalf("%d, Retry-After %q, want 429 and %q", rec.Code, rec.Header().Get("Retry-After"), want)
			}
		}
		// Ten a minute per client address, in bursts of ten.
		for i := range 10 {
			if rec := post("198.51.100.1", fmt.Sprintf("guess%d@acme.example", i)); rec.Code != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %d", i+1, rec.Code)
			}
		}
		retryAfter(post("198.51.100.1", "guess@acme.example"), "6")
		at = at.Add(2500 * time.Millisecond)
		retryAfter(post("198.51.100.1", "guess@acme.example"), "4")
		// One a minute per account, in bursts of ten, from anywhere.
		for i := range 10 {
			if rec := post(fmt.Sprintf("192.0.2.%d", i+1), "ada@acme.example"); rec.Code != http.StatusUnauthorized {
				t.Fatalf("account attempt %d: %d", i+1, rec.Code)
			}
		}
		retryAfter(post("192.0.2.100", "ada@acme.example"), "60")

		big := httptest.NewRequest("POST", "/admin/login", strings.NewReader("email="+strings.Repeat("a", maxLoginBody)))
		big.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, big)
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "more than 16 KiB") {
			t.Fatalf("a form over its limit: %d %s", rec.Code, rec.Body)
		}
	})
}
