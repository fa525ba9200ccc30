package public

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store/storetest"
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
