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

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/tally"
	"github.com/consentry/consentry/internal/tally/tallytest"
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
		target := "/admin/contacts?filter=" + url.QueryEscape(`region == "EU" && consent("E-marketing") == "granted"`)
		benchPage(b, db, target, func(body string) bool {
			return strings.Count(body, `<td class="state-granted">granted</td>`) == 50
		})
	})
}

// BenchmarkDashboardMillion renders the dashboard among 1,000,000 contacts
// spread over the six opt-in statuses, with 90 days of daily figures, and
// reports the server time per page (median and p99), and how long the
// periodic job takes to count the day's figures (count-ms).
func BenchmarkDashboardMillion(b *testing.B) {
	storetest.Each(b, func(tb testing.TB, db *store.DB) {
		b := tb.(*testing.B)
		contacttest.SeedMillion(b, db, 1_000_000)
		spreadOptIns(b, db)
		ctx := context.Background()
		now := time.Now().UTC()
		t0 := time.Now()
		if err := (&tally.Service{DB: db, Consent: consent.NewService(db), Now: func() time.Time { return now }}).Count(ctx); err != nil {
			b.Fatal(err)
		}
		counted := time.Since(t0)
		// The 89 days before: today's figures again.
		before := make([]int, 89)
		for i := range before {
			before[i] = i + 1
		}
		tallytest.Repeat(b, db, now, before...)
		benchPage(b, db, "/admin/?days=90", func(body string) bool {
			return strings.Contains(body, "1,000,000 contacts") && strings.Count(body, "<tr><th scope=\"row\">") == 90
		})
		b.ReportMetric(float64(counted.Microseconds())/1000, "count-ms")
	})
}

// spreadOptIns gives the seeded contacts every opt-in status, and
// analyses the table again as autovacuum would after such a change.
func spreadOptIns(b *testing.B, db *store.DB) {
	ctx := context.Background()
	if err := db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`UPDATE contacts SET opt_in_status = CASE CAST(substr(id, 2) AS INTEGER) % 6
			WHEN 0 THEN 'none' WHEN 1 THEN 'single_opt_in_user' WHEN 2 THEN 'single_opt_in_webform'
			WHEN 3 THEN 'double_opt_in' WHEN 4 THEN 'opt_out_user' ELSE 'opt_out_contact' END`)
		if err != nil {
			return err
		}
		_, err = tx.Exec("ANALYZE")
		return err
	}); err != nil {
		b.Fatal(err)
	}
}

// benchPage serves target to a signed-in admin in a loop, checks each page
// with ok, and reports the server time per page (median and p99).
func benchPage(b *testing.B, db *store.DB, target string, ok func(body string) bool) {
	ctx := context.Background()
	cs := consent.NewService(db)
	people := contact.NewService(db, cs)
	ls := &lists.Service{DB: db, Now: time.Now}
	users := &auth.Users{DB: db, Now: time.Now}
	s, err := web.New(&web.Server{DB: db, Users: users, Consent: cs, Contacts: people, Lists: ls,
		OptIn:    &optin.Service{DB: db, Consent: cs, Log: slog.New(slog.DiscardHandler), Now: time.Now},
		Requests: &requests.Service{DB: db, Now: time.Now}, Tally: &tally.Service{DB: db, Consent: cs, Now: time.Now}})
	if err != nil {
		b.Fatal(err)
	}
	u, err := users.Create(ctx, audit.Actor{Kind: "user"}, auth.NewUser{Email: "bench@acme.example", Role: auth.RoleAdmin, Password: "a long enough password"})
	if err != nil {
		b.Fatal(err)
	}
	secret, _, err := users.StartSession(ctx, u.ID)
	if err != nil {
		b.Fatal(err)
	}
	var times []time.Duration
	for b.Loop() {
		req := httptest.NewRequest("GET", target, nil)
		req.AddCookie(&http.Cookie{Name: "consentry_session", Value: secret})
		rec := httptest.NewRecorder()
		t0 := time.Now()
		s.ServeHTTP(rec, req)
		times = append(times, time.Since(t0))
		if rec.Code != 200 || !ok(rec.Body.String()) {
			b.Fatalf("page %s: %d\n%s", target, rec.Code, rec.Body.String())
		}
	}
	slices.Sort(times)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(times[len(times)/2]), "p50-ms")
	b.ReportMetric(ms(times[len(times)*99/100]), "p99-ms")
}
