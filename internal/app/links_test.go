package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestEveryUnusableLinkIsGone: every kind of personal link, unknown,
// malformed, expired or used (forged, for the signed links of campaign
// messages), answers 410 Gone with one page, the same bytes for every
// kind and reason, which offers a new link; a confirmation button posted
// with one redirects (303) to /p/link-invalid, which answers the same;
// nothing is written.
func TestEveryUnusableLinkIsGone(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		// The test is one client asking many pages: each request comes
		// from an address of its own, through a trusted proxy, so that
		// the pages' rate limit is not what answers.
		e := start(t, db, func(a *app.App) {
			a.Public.IPs = clientip.Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
		})
		ctx := context.Background()
		var c, req struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"lisa@example.com","first_name":"Lisa"}`, 201, &c)
		e.api("POST", "/api/v1/requests", `{"kind":"erasure","contact_id":"`+c.ID+`"}`, 201, &req)

		// Links made as the services make them, then past their time or
		// used.
		now := time.Now()
		type issued struct{ expired, used string }
		contactLink := func(purpose string) issued {
			var l issued
			var used *auth.ContactToken
			err := db.Write(ctx, func(tx *store.Tx) error {
				var err error
				if l.expired, _, err = auth.IssueContactToken(tx, purpose, c.ID, "", now.Add(-time.Minute), now.Add(-time.Hour)); err != nil {
					return err
				}
				l.used, used, err = auth.IssueContactToken(tx, purpose, c.ID, "", now.Add(time.Hour), now)
				return err
			})
			if err == nil {
				err = db.Write(ctx, func(tx *store.Tx) error { return auth.UseContactToken(tx, used.ID, now) })
			}
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		var request issued
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if request.expired, err = auth.IssueRequestToken(tx, req.ID, now.Add(-time.Minute), now.Add(-time.Hour)); err != nil {
				return err
			}
			request.used, err = auth.IssueRequestToken(tx, req.ID, now.Add(time.Hour), now)
			return err
		})
		if err == nil {
			err = db.Write(ctx, func(tx *store.Tx) error { return auth.UseRequestTokens(tx, req.ID, now) })
		}
		if err != nil {
			t.Fatal(err)
		}

		unknown := strings.Repeat("A", 43)
		forged := "/999999/" + unknown
		type probe struct {
			what, method, path, body string
			want                     int // 303: to /p/link-invalid
		}
		var probes []probe
		for _, k := range []struct {
			kind, prefix, purpose string
			post, body            string // what the page's post is, and its body
			postWant              int
		}{
			{"double opt-in", "/confirm/", auth.PurposeDoubleOptIn, "button", "", http.StatusSeeOther},
			{"preferences page", "/p/", auth.PurposePreferences, "", "", 0},
			{"unsubscribe", "/u/", auth.PurposeUnsubscribe, "one-click", "List-Unsubscribe=One-Click", http.StatusGone},
			{"confirming a change", "/p/confirm/", auth.PurposePreferencesChange, "button", "", http.StatusSeeOther},
			{"confirming a webform post", "/f/confirm/", auth.PurposeWebformConfirmation, "button", "", http.StatusSeeOther},
			{"downloading one's data", "/p/export/", auth.PurposeExport, "download", "format=json", http.StatusGone},
			{"a consent receipt", "/receipt/", auth.PurposeReceipt, "", "", 0},
			{"confirming a request", "/r/", "", "button", "", http.StatusSeeOther},
		} {
			l := request
			if k.purpose != "" {
				l = contactLink(k.purpose)
			}
			for reason, token := range map[string]string{"unknown": unknown, "malformed": "x", "expired": l.expired, "used": l.used} {
				what := k.kind + ", " + reason
				probes = append(probes, probe{what, "GET", k.prefix + token, "", http.StatusGone})
				if k.post != "" {
					probes = append(probes, probe{what + ", " + k.post, "POST", k.prefix + token, k.body, k.postWant})
				}
			}
		}
		for _, m := range []struct{ kind, path string }{
			{"a campaign's unsubscribe", "/m/u" + forged}, {"a campaign's preferences link", "/m/p" + forged},
			{"a campaign's message in the browser", "/m/v" + forged}, {"a campaign's tracked click", "/m/c/999999/0/" + unknown},
		} {
			probes = append(probes, probe{m.kind + ", forged", "GET", m.path, "", http.StatusGone})
		}
		probes = append(probes, probe{"a campaign's unsubscribe, forged, one-click", "POST", "/m/u" + forged, "List-Unsubscribe=One-Click", http.StatusGone},
			probe{"the page confirmation buttons lead to", "GET", "/p/link-invalid", "", http.StatusGone})

		// written is what a request with a link could write.
		written := func() string {
			var b strings.Builder
			for _, q := range []string{`SELECT count(*) FROM tokens WHERE used_at IS NOT NULL`, `SELECT count(*) FROM request_tokens WHERE used_at IS NOT NULL`,
				`SELECT count(*) FROM consent_records`, `SELECT count(*) FROM opt_in_changes`, `SELECT count(*) FROM preference_changes`,
				`SELECT count(*) FROM outbox`, `SELECT count(*) FROM subject_requests WHERE status = 'received'`, `SELECT count(*) FROM access_log`} {
				fmt.Fprintf(&b, "%d ", count(t, db, q))
			}
			return b.String()
		}
		before := written()
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		var page string // the first page, which every other must equal
		for i, p := range probes {
			r, _ := http.NewRequest(p.method, e.srv.URL+p.path, strings.NewReader(p.body))
			if p.method == "POST" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			r.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			r.Header.Set("Accept-Language", "en")
			res, err := noFollow.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			body := string(b)
			if res.StatusCode != p.want {
				t.Errorf("%s (%s %s): %d, want %d: %.300s", p.what, p.method, p.path, res.StatusCode, p.want, body)
				continue
			}
			if p.want == http.StatusSeeOther {
				if to := res.Header.Get("Location"); to != "/p/link-invalid" {
					t.Errorf("%s: redirects to %q, want /p/link-invalid", p.what, to)
				}
				continue
			}
			if page == "" {
				page = body
				if !strings.Contains(page, "<h1>This link cannot be used</h1>") || !strings.Contains(page, `<form method="post" action="/u"`) ||
					!strings.Contains(page, "nothing was changed") {
					t.Fatalf("%s: the page does not say the link cannot be used, or offers no new link: %s", p.what, page)
				}
			}
			if body != page {
				t.Errorf("%s answers another page than %s:\n%s\n%s", p.what, probes[0].what, body, page)
			}
		}
		if after := written(); after != before {
			t.Fatalf("links that cannot be used wrote something: before %s, after %s", before, after)
		}
	})
}
