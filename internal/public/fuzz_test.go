package public

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webform/webformtest"
)

// FuzzTokenRoutes sends arbitrary tokens to the confirmation routes: never a
// server error, always the same neutral page, and nothing written.
func FuzzTokenRoutes(f *testing.F) {
	db := storetest.OpenSQLite(f)
	cs := consent.NewService(db)
	s := New(&Server{DB: db, Log: slog.New(slog.DiscardHandler),
		OptIn: &optin.Service{DB: db, Consent: cs, Log: slog.New(slog.DiscardHandler), Now: time.Now, BaseURL: "http://x"}})
	s.limiter = newLimiter(1<<30, 1<<30, time.Minute) // the fuzzer is one client sending fast
	for _, seed := range []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x", "%00", "../../etc", "é", ""} {
		f.Add(true, seed)
		f.Add(false, seed)
	}
	count := func() (n int) {
		db.Read.QueryRowContext(context.Background(), `SELECT (SELECT count(*) FROM ledger_events) + (SELECT count(*) FROM tokens WHERE used_at IS NOT NULL)`).Scan(&n)
		return n
	}
	f.Fuzz(func(t *testing.T, post bool, token string) {
		before := count()
		method := "GET"
		if post {
			method = "POST"
		}
		req := httptest.NewRequest(method, "/", nil)
		req.URL = &url.URL{Path: "/confirm/" + token}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d", method, token, rec.Code)
		}
		if count() != before {
			t.Fatalf("%s %q wrote something", method, token)
		}
	})
}

// FuzzWebformPost sends arbitrary bodies to a webform: never a server
// error, and never half a submission. A post that is not taken writes
// nothing; one that is taken leaves the ledger matching the consent state,
// and every contact it set to single_opt_in_webform with an invitation and
// its email.
func FuzzWebformPost(f *testing.F) {
	db := storetest.OpenSQLite(f)
	s, w := webformServer(f, db)
	s.webform.ip = newLimiter(1<<30, 1<<30, time.Minute) // the fuzzer is one client sending fast
	s.webform.address = newAddressLimiter(1<<30, time.Hour)
	for _, seed := range []string{
		"email=a%40example.com&marketing.checked=yes&marketing.version=1&consents%5B0%5D.checked=yes&lists%5B0%5D.checked=yes&first_name=A",
		"email=A%40EXAMPLE.com&last_name=B&consents%5B0%5D.version=1",
		"email=b%40example.com&website=x",
		"email=c%40example.com&email=d%40example.com",
		"email=not-an-address&marketing.checked=yes",
		"email=e%40example.com&marketing.checked=on",
		"email=f%40example.com&consents%5B0%5D.checked=yes&consents%5B0%5D.version=99",
		"email=g%40example.com&consents%5B0%5D.checked=yes&consents%5B0%5D.version=-1",
		"email=h%40example.com&first_name=%00",
		"email=%ff%fe%40example.com",
		"%zz=%",
		"",
		"email=i%40example.com&phone=abc&country=Sweden",
		strings.Repeat("a", 70000),
	} {
		f.Add(seed, "application/x-www-form-urlencoded")
	}
	f.Add("--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nj@example.com\r\n--x--\r\n", "multipart/form-data; boundary=x")
	f.Add(`{"email": "k@example.com"}`, "application/json")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body, contentType string) {
		before := webformtest.Rows(t, db)
		req := httptest.NewRequest("POST", "/f/"+w.ID, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body.String())
		}
		after := webformtest.Rows(t, db)
		if rec.Code != 200 && after != before {
			t.Fatalf("%q: answered %d and wrote %d rows", body, rec.Code, after-before)
		}
		if after == before {
			return
		}
		rep, err := s.Webforms.Consent.VerifyLedger(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("%q: ledger: %+v %v", body, rep, err)
		}
		var orphans int
		if err := db.Read.QueryRow(`SELECT count(*) FROM contacts c WHERE c.opt_in_status = 'single_opt_in_webform' AND NOT EXISTS (
			SELECT 1 FROM optin_invitations i JOIN outbox o ON o.subject_id = i.id WHERE i.contact_id = c.id)`).Scan(&orphans); err != nil || orphans != 0 {
			t.Fatalf("%q: %d contacts opted in without an invitation email (%v)", body, orphans, err)
		}
	})
}
