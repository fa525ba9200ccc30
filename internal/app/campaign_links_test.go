package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// campaignPerson creates a contact with double opt-in and granted
// consents to the purposes named.
func campaignPerson(t testing.TB, e *env, email string, purposes ...string) string {
	t.Helper()
	ctx := context.Background()
	in := contact.NewContact{Input: contact.Input{Email: ptr(email), FirstName: ptr(strings.Split(email, "@")[0]), Language: ptr("en")},
		Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: "api"}}
	for _, p := range purposes {
		in.Consents = append(in.Consents, consent.RecordInput{Purpose: p, State: consent.StateGranted, Source: "API",
			Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: "api"}})
	}
	c, err := e.a.Contacts.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// Set-up only: double opt-in is reached through its own flow, tested
	// elsewhere.
	if err := e.a.DB.Write(ctx, func(tx *store.Tx) error {
		return contactstate.SetOptInTx(tx, c.ID, contactstate.DoubleOptIn, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

const offer = "https://acme.example/offer?a=1&b=2"

// sendCampaign creates and sends a campaign to the lists (or, with none,
// to the contacts the condition selects) and returns the messages once
// want of them have arrived in all.
func sendCampaign(t testing.TB, e *env, name string, listNames []string, cond string, want int) []mailtest.Message {
	t.Helper()
	ctx := context.Background()
	in := campaign.Input{Name: ptr(name), Variants: &[]campaign.Variant{{Language: "en", Subject: "News for {{first_name}}",
		HTML: `<html><body><p>Hi {{first_name}}, see <a href="https://acme.example/offer?a=1&amp;b=2">the offer</a>.</p></body></html>`}}}
	if len(listNames) > 0 {
		in.Lists = &listNames
	}
	if cond != "" {
		in.Condition = ptr(cond)
	}
	c, err := e.a.Campaigns.Create(ctx, audit.Actor{Kind: "user"}, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Campaigns.Send(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
		t.Fatal(err)
	}
	msgs := e.smtp.Wait(t, want)
	// The outcomes (sent, tracked) are recorded once the messages are
	// handed over.
	waitFor(t, func() bool {
		got, err := e.a.Campaigns.Get(ctx, c.ID)
		return err == nil && got.Status == campaign.StatusSent
	})
	return msgs
}

// messageTo returns the message to addr among msgs.
func messageTo(t testing.TB, msgs []mailtest.Message, addr, subject string) mailtest.Message {
	t.Helper()
	for _, m := range msgs {
		if strings.Contains(m.Header.Get("To"), addr) && strings.Contains(m.Header.Get("Subject"), subject) {
			return m
		}
	}
	t.Fatalf("no message %q to %s", subject, addr)
	return mailtest.Message{}
}

func oneClick(t testing.TB, link string) int {
	t.Helper()
	res, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func unsubscribeLink(m mailtest.Message) string {
	return strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
}

func optInStatus(t testing.TB, e *env, id string) string {
	t.Helper()
	var s string
	if err := e.a.DB.Read.QueryRow(`SELECT opt_in_status FROM contacts WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func events(t testing.TB, e *env, contactID, kind string) int {
	t.Helper()
	var n int
	if err := e.a.DB.Read.QueryRow(`SELECT count(*) FROM campaign_events WHERE contact_id = $1 AND kind = $2`, contactID, kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCampaignUnsubscribe: the one-click link of a campaign to a list
// unsubscribes from that list only and leaves the opt-in status; the page
// asks first and leads to the preferences; a campaign without lists opts
// out; a tampered link, or one of an erased contact, changes nothing and
// is refused alike.
func TestCampaignUnsubscribe(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()
		for _, n := range []string{"News", "Other"} {
			if _, err := e.a.Lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr(n)}); err != nil {
				t.Fatal(err)
			}
		}
		anna := campaignPerson(t, e, "anna@example.com", "E-marketing")
		for _, l := range []string{"News", "Other"} {
			if _, err := e.a.Lists.Set(ctx, anna, l, lists.Subscribed, lists.SourceAPI, nil); err != nil {
				t.Fatal(err)
			}
		}
		m := sendCampaign(t, e, "Spring", []string{"News"}, "", 1)[0]
		link := unsubscribeLink(m)
		if !strings.HasPrefix(link, e.srv.URL+"/m/u/") {
			t.Fatalf("List-Unsubscribe: %q", link)
		}

		// The page asks, names the list, and leads to the preferences.
		status, body := e.page("GET", link, "en")
		if status != 200 || !strings.Contains(body, "Unsubscribe from News?") || !strings.Contains(body, `href="/m/p/`) {
			t.Fatalf("unsubscribe page: %d %s", status, body)
		}
		prefs := body[strings.Index(body, `href="/m/p/`)+6:]
		prefs = prefs[:strings.Index(prefs, `"`)]
		res, err := noFollow.Get(e.srv.URL + prefs)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/p#email" || len(res.Cookies()) == 0 {
			t.Fatalf("preferences link: %d %q", res.StatusCode, res.Header.Get("Location"))
		}

		// A tampered signature, or a link of a recipient that does not
		// exist: the one-click is refused (410, never the 200 of an
		// unsubscribe done) with the page of a link that cannot be used,
		// and changes nothing.
		bad := link[:len(link)-2] + "AA"
		refusedOneClick := func(link string) string {
			t.Helper()
			res, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusGone || !strings.Contains(string(b), "This link cannot be used") {
				t.Fatalf("one-click on %s: %d %s", link, res.StatusCode, b)
			}
			return string(b)
		}
		tampered := refusedOneClick(bad)
		if nobody := refusedOneClick(e.srv.URL + "/m/u/999999/" + strings.Repeat("A", 43)); nobody != tampered {
			t.Fatalf("a link of nobody answers otherwise than a tampered one:\n%s\n%s", nobody, tampered)
		}
		if status, body := e.page("GET", bad, "en"); status >= 500 || strings.Contains(body, "News") {
			t.Fatalf("tampered page: %d %s", status, body)
		}
		if n := events(t, e, anna, campaign.EventUnsubscribe); n != 0 {
			t.Fatalf("%d unsubscribes after a tampered link", n)
		}

		if got := oneClick(t, link); got != 200 {
			t.Fatalf("one-click: %d", got)
		}
		subs, err := lists.Subscriptions(ctx, e.a.DB.Read, anna)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			want := lists.Subscribed
			if s.List == "News" {
				want = lists.Unsubscribed
				if s.Source != lists.SourceCampaign {
					t.Errorf("News: source %q", s.Source)
				}
			}
			if s.State != want {
				t.Errorf("%s: %s, want %s", s.List, s.State, want)
			}
		}
		if got := optInStatus(t, e, anna); got != contactstate.DoubleOptIn {
			t.Errorf("opt-in status %s after unsubscribing from a list", got)
		}
		if n := events(t, e, anna, campaign.EventUnsubscribe); n != 1 {
			t.Errorf("%d unsubscribe events, want 1", n)
		}

		// View in the browser: the message as sent, under a strict policy.
		rid := strings.Split(strings.TrimPrefix(link, e.srv.URL+"/m/u/"), "/")[0]
		var id int64
		fmt.Sscan(rid, &id)
		view, err := e.a.CampaignLinks.URL(ctx, campaign.LinkView, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		res, err = http.Get(view)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), "Hi anna") || !strings.Contains(res.Header.Get("Content-Security-Policy"), "sandbox") {
			t.Fatalf("view: %d %q %s", res.StatusCode, res.Header.Get("Content-Security-Policy"), b)
		}

		// A campaign without lists: the one-click opts out.
		bo := campaignPerson(t, e, "bo@example.com", "E-marketing")
		e.api("PATCH", "/api/v1/contacts/"+bo, `{"language":"nl"}`, 200, nil)
		msgs := sendCampaign(t, e, "Condition", nil, `email == "bo@example.com"`, 2)
		boLink := unsubscribeLink(messageTo(t, msgs, "bo@example.com", "News for bo"))
		// His unsubscribe page is in his language, whatever the browser's.
		if status, body := e.page("GET", boLink, "en"); status != 200 || !strings.Contains(body, `<html lang="nl"`) {
			t.Fatalf("a Dutch contact's unsubscribe page: %d %s", status, body)
		}
		if got := oneClick(t, boLink); got != 200 {
			t.Fatalf("one-click: %d", got)
		}
		if got := optInStatus(t, e, bo); got != contactstate.OptOutContact {
			t.Errorf("opt-in status %s after the one-click of a campaign without lists", got)
		}

		// Once Bo is erased, his message's links lead to nobody's page.
		var boRecipient int64
		fmt.Sscan(strings.Split(strings.TrimPrefix(boLink, e.srv.URL+"/m/u/"), "/")[0], &boRecipient)
		boPrefs, err := e.a.CampaignLinks.URL(ctx, campaign.LinkPreferences, boRecipient, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.a.Erasure.Erase(ctx, bo, erasure.Why{Actor: consent.Actor{Kind: consent.ActorSystem}}); err != nil {
			t.Fatal(err)
		}
		res, err = noFollow.Get(boPrefs)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusSeeOther || len(res.Cookies()) != 0 {
			t.Fatalf("an erased contact's preferences link: %d %q, cookies %v", res.StatusCode, res.Header.Get("Location"), res.Cookies())
		}
		if status, body := e.page("GET", boLink, "en"); status >= 500 || strings.Contains(body, "Unsubscribe from") {
			t.Fatalf("an erased contact's unsubscribe page: %d %s", status, body)
		}
		// Its one-click is refused as a forged link's is, so that the
		// answer does not tell that the signature was good.
		if erased := refusedOneClick(boLink); erased != tampered {
			t.Fatalf("an erased contact's one-click answers otherwise than a tampered link:\n%s\n%s", erased, tampered)
		}

		// Past the setting unsubscribe_link_days (365 by default), the
		// links answer 410 with the page of a link that cannot be used,
		// and change nothing.
		old := store.Micros(time.Now().AddDate(0, 0, -400))
		if err := e.a.DB.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE campaign_recipients SET sent_at = $1`, old)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if status, body := e.page("GET", link, "en"); status != http.StatusGone || body != tampered {
			t.Errorf("expired unsubscribe page: %d, not the page of a tampered link: %s", status, body)
		}
		if got := oneClick(t, link); got != http.StatusGone {
			t.Errorf("expired one-click: %d", got)
		}
		if n := events(t, e, anna, campaign.EventUnsubscribe); n != 1 {
			t.Errorf("%d unsubscribe events after an expired link, want 1", n)
		}
	})
}

// TestCampaignTracking: with tracking off nothing is tracked; with
// tracking by consent, only the contacts who granted it get the pixel and
// wrapped links, whose open and click are recorded, the click leading to
// the operator's address. Once a contact withdraws the tracking consent,
// their opens are no longer recorded.
func TestCampaignTracking(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()
		if _, err := e.a.Lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("News")}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.a.Consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Engagement tracking"), LegalBasis: ptr("consent"),
			Text: ptr("We count the opens and clicks of our email.")}); err != nil {
			t.Fatal(err)
		}
		cleo := campaignPerson(t, e, "cleo@example.com", "E-marketing", "Engagement tracking")
		dan := campaignPerson(t, e, "dan@example.com", "E-marketing")
		eve := campaignPerson(t, e, "eve@example.com", "E-marketing", "Engagement tracking")
		for _, id := range []string{cleo, dan, eve} {
			if _, err := e.a.Lists.Set(ctx, id, "News", lists.Subscribed, lists.SourceAPI, nil); err != nil {
				t.Fatal(err)
			}
		}
		msgs := sendCampaign(t, e, "Off", []string{"News"}, "", 3)
		for _, m := range msgs {
			if strings.Contains(m.HTML, "/m/o/") || strings.Contains(m.HTML, "/m/c/") || !strings.Contains(m.HTML, `href="https://acme.example/offer?a=1&amp;b=2"`) {
				t.Fatalf("tracking is off, yet: %s", m.HTML)
			}
		}

		if _, err := settings.Update(ctx, e.a.DB, settings.Patch{CampaignsPatch: settings.CampaignsPatch{EngagementTracking: ptr(settings.TrackingConsent)}}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		msgs = sendCampaign(t, e, "Tracked", []string{"News"}, "", 6)
		if m := messageTo(t, msgs[3:], "dan@example.com", "News"); strings.Contains(m.HTML, "/m/o/") || strings.Contains(m.HTML, "/m/c/") {
			t.Fatalf("no consent to tracking, yet: %s", m.HTML)
		}
		m := messageTo(t, msgs[3:], "cleo@example.com", "News")
		pix := attr(t, m.HTML, `src="`+e.srv.URL+"/m/o/")
		click := attr(t, m.HTML, `href="`+e.srv.URL+"/m/c/")

		res, err := http.Get(pix)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/gif" || res.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("pixel: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		res, err = noFollow.Get(click)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != offer {
			t.Fatalf("click: %d %q", res.StatusCode, res.Header.Get("Location"))
		}
		waitFor(t, func() bool {
			return events(t, e, cleo, campaign.EventOpen) == 1 && events(t, e, cleo, campaign.EventClick) == 1
		})

		// Cleo withdraws the tracking consent: her next open is not
		// recorded. Eve's, asked for after it, shows the tracker has
		// written what came before.
		if _, err := e.a.Consent.Record(ctx, cleo, consent.RecordInput{Purpose: "Engagement tracking", State: consent.StateWithdrawn, Source: "API",
			Actor: consent.Actor{Kind: consent.ActorContact, ID: cleo}, Evidence: consent.Evidence{Method: "api"}}); err != nil {
			t.Fatal(err)
		}
		evePix := attr(t, messageTo(t, msgs[3:], "eve@example.com", "News").HTML, `src="`+e.srv.URL+"/m/o/")
		for _, u := range []string{pix, evePix} {
			res, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
		waitFor(t, func() bool { return events(t, e, eve, campaign.EventOpen) == 1 })
		if n := events(t, e, cleo, campaign.EventOpen); n != 1 {
			t.Fatalf("%d opens of Cleo's after she withdrew the tracking consent, want the 1 before", n)
		}

		// A tampered click link leads nowhere.
		if res, err := noFollow.Get(click[:len(click)-2] + "AA"); err != nil || res.StatusCode == http.StatusFound || res.StatusCode >= 500 {
			t.Fatalf("tampered click: %v %v", res, err)
		}
		// Erasing the contact erases their events.
		if err := e.a.Contacts.Delete(ctx, cleo, consent.Actor{Kind: consent.ActorSystem}); err != nil {
			t.Fatal(err)
		}
		if n := events(t, e, cleo, campaign.EventOpen) + events(t, e, cleo, campaign.EventClick); n != 0 {
			t.Fatalf("%d events left after deletion", n)
		}
	})
}

// attr returns the address that follows prefix in html, unescaped.
func attr(t testing.TB, html, prefix string) string {
	t.Helper()
	i := strings.Index(html, prefix)
	if i < 0 {
		t.Fatalf("no %s in %s", prefix, html)
	}
	s := html[i+strings.Index(prefix, `"`)+1:]
	s = s[:strings.Index(s, `"`)]
	u, err := url.Parse(strings.ReplaceAll(s, "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// BenchmarkCampaignTrackingEvents records opens through HTTP, from
// parallel clients, for a tracked recipient; events/s counts the events
// written to the database, the flush included.
func BenchmarkCampaignTrackingEvents(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		// The clients come through a trusted proxy, each request from its
		// own address, so that the per-client limit (which mail providers'
		// image proxies also meet) stays out of the measurement.
		e := start(b, db, func(a *app.App) {
			a.Public.IPs = clientip.Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
		})
		ctx := context.Background()
		if _, err := e.a.Lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("News")}); err != nil {
			b.Fatal(err)
		}
		if _, err := settings.Update(ctx, e.a.DB, settings.Patch{CampaignsPatch: settings.CampaignsPatch{EngagementTracking: ptr(settings.TrackingLegitimate)}}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
			b.Fatal(err)
		}
		id := campaignPerson(b, e, "cleo@example.com", "E-marketing")
		if _, err := e.a.Lists.Set(ctx, id, "News", lists.Subscribed, lists.SourceAPI, nil); err != nil {
			b.Fatal(err)
		}
		m := sendCampaign(b, e, "Bench", []string{"News"}, "", 1)[0]
		pix := attr(b, m.HTML, `src="`+e.srv.URL+"/m/o/")
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.ResetTimer()
		start := time.Now()
		b.SetParallelism(16) // many clients at once, as proxies are
		var seq atomic.Uint32
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", pix, nil)
				n := seq.Add(1)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255))
				res, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Errorf("pixel: %d", res.StatusCode)
					return
				}
			}
		})
		waitFor(b, func() bool { return events(b, e, id, campaign.EventOpen) >= b.N })
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
}
