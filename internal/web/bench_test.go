package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/web"
)

// BenchmarkContactListMillion renders the first page of the contact list
// among 1,000,000 contacts, filtered by region == "EU" &&
// consent("E-marketing") == "granted", through the admin handler, and
// reports the server time per page (median and p99). Target: at most
// 100 ms. Later pages cost the same: paging is by key, never by offset.
func BenchmarkContactListMillion(b *testing.B) {
	storetest.Each(b, func(tb testing.TB, db *store.DB) {
		b := tb.(*testing.B)
		contacttest.SeedMillion(b, db, 1_000_000)
		ctx := context.Background()
		cs := consent.NewService(db)
		people := contact.NewService(db, cs)
		ls := &lists.Service{DB: db, Now: time.Now}
		users := &auth.Users{DB: db, Now: time.Now}
		s, err := web.New(&web.Server{DB: db, Users: users, Consent: cs, Contacts: people, Lists: ls,
			OptIn: &optin.Service{DB: db, Consent: cs, Log: slog.New(slog.DiscardHandler), Now: time.Now}})
		if err != nil {
			b.Fatal(err)
		}
		u, err := users.Create(ctx, auth.NewUser{Email: "bench@acme.example", Role: auth.RoleAdmin, Password: "a long enough password"})
		if err != nil {
			b.Fatal(err)
		}
		secret, _, err := users.StartSession(ctx, u.ID)
		if err != nil {
			b.Fatal(err)
		}
		target := "/admin/contacts?filter=" + url.QueryEscape(`region == "EU" && consent("E-marketing") == "granted"`)
		var times []time.Duration
		for b.Loop() {
			req := httptest.NewRequest("GET", target, nil)
			req.AddCookie(&http.Cookie{Name: "consentry_session", Value: secret})
			rec := httptest.NewRecorder()
			t0 := time.Now()
			s.ServeHTTP(rec, req)
			times = append(times, time.Since(t0))
			if rec.Code != 200 || strings.Count(rec.Body.String(), `<td class="state-granted">granted</td>`) != 50 {
				b.Fatalf("page: %d, %d granted rows", rec.Code, strings.Count(rec.Body.String(), "state-granted"))
			}
		}
		slices.Sort(times)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(times[len(times)/2]), "p50-ms")
		b.ReportMetric(ms(times[len(times)*99/100]), "p99-ms")
	})
}
