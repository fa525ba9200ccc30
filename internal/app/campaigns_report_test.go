package app_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// campaignSettings is the settings form with good campaign settings:
// tracking on legitimate interests, so that every recipient is tracked.
func campaignSettings() url.Values {
	return url.Values{"sender_name": {"Acme News"}, "sender_address": {"news@acme.example"},
		"postal_address": {"1 Main Street\nSmalltown"}, "bounce_address": {"bounces@acme.example"}, "campaign_rate": {"50"},
		"engagement_tracking": {"legitimate_interests"}, "tracking_purpose": {"E-marketing"}}
}

// waitSent reloads a campaign's page until it says Sent, and returns it.
func waitSent(admin *visitor, page string) string {
	for {
		if _, body := admin.get(page); strings.Contains(body, `<dd id="campaign-status">Sent`) {
			return body
		}
	}
}

var openPixel = regexp.MustCompile(`<img src="http[^"]+/m/o/[^"]+" width="1" height="1"`)

// TestCampaignSettingsAndReport: the settings page refuses a bad sender
// address next to its field, keeping what was typed and saving nothing,
// and saves good campaign settings with a redirect; a campaign sent then
// comes from the saved sender, with the bounce address as its envelope
// sender. Its page draws the report (sent, delivered, opens of the
// tracked recipients) and the audience with the exclusions by reason as
// charts; the preview's HTML is served from its own URL under a strict
// policy of its own; recipients whose outcome is unknown are sent to
// again with the button, after a warning; and a paused campaign's
// audience is fixed with its button.
func TestCampaignSettingsAndReport(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		ana := campaignAudience(e, db)
		ctx := context.Background()

		bad := campaignSettings()
		bad.Set("sender_address", "not an address")
		if code, body := admin.post(e.srv.URL+"/admin/settings", bad); code != 400 || !strings.Contains(body, `id="sender_address-error"`) ||
			!strings.Contains(body, `value="not an address"`) || !strings.Contains(body, `aria-describedby="sender_address-error"`) {
			t.Fatalf("bad sender address: %d %s", code, body)
		}
		if st, err := settings.Get(ctx, db.Read); err != nil || st.SenderName != "" || st.EngagementTracking != settings.TrackingOff {
			t.Fatalf("a refused form saved settings: %+v %v", st.Campaigns, err)
		}
		code, body := admin.post(e.srv.URL+"/admin/settings", campaignSettings())
		if code != 200 || !strings.Contains(body, "Settings saved.") || admin.last.Request.URL.RawQuery != "done=saved" ||
			!strings.Contains(body, `value="news@acme.example"`) || !strings.Contains(body, `value="legitimate_interests" checked`) ||
			!strings.Contains(body, "1 Main Street\nSmalltown</textarea>") || !strings.Contains(body, `<option value="E-marketing" selected>`) {
			t.Fatalf("good campaign settings: %d %s", code, body)
		}

		base := e.srv.URL + "/admin/campaigns"
		admin.post(base, campaignForm("Spring news"))
		page := strings.Split(admin.last.Request.URL.String(), "?")[0]
		id := page[strings.LastIndex(page, "/")+1:]

		// The preview's HTML, from its own URL, under its own policy.
		if _, body := admin.get(page + "?contact=ana@example.com"); !strings.Contains(body, `src="/admin/campaigns/`+id+`/preview/`+ana+`/html"`) ||
			!strings.Contains(admin.last.Header.Get("Content-Security-Policy"), "frame-src 'self'") {
			t.Fatalf("preview frame: %s %s", admin.last.Header, body)
		}
		code, body = admin.get(page + "/preview/" + ana + "/html")
		csp := admin.last.Header.Get("Content-Security-Policy")
		if code != 200 || !strings.Contains(body, "Hello An") || !strings.HasPrefix(csp, "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:;") ||
			strings.Contains(csp, "script") || !strings.Contains(csp, "frame-ancestors 'self'") || !strings.HasPrefix(admin.last.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("preview html: %d %q %s", code, csp, body)
		}
		if code, body := admin.get(page + "/preview/nosuch/html"); code/100 != 4 || strings.Contains(body, "Hello") {
			t.Fatalf("preview html of no contact: %d", code)
		}

		admin.post(page+"/send", nil)
		msgs := e.smtp.Wait(t, 2)
		for _, m := range msgs {
			if got := m.Header.Get("From"); got != `"Acme News" <news@acme.example>` || !strings.HasPrefix(m.From, "bounces+") || !strings.HasSuffix(m.From, "@acme.example") {
				t.Fatalf("sent from %q, envelope %q", got, m.From)
			}
		}
		if !openPixel.MatchString(msgs[0].HTML) {
			t.Fatalf("no open pixel for a tracked recipient: %s", msgs[0].HTML)
		}
		body = waitSent(admin, page)
		// Set-up: ana opened it twice (the tracking links have their own tests).
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`INSERT INTO campaign_events (campaign_no, recipient_id, contact_id, kind, at)
				SELECT campaign_no, id, contact_id, 'open', 1 FROM campaign_recipients r, (SELECT 1 UNION ALL SELECT 2) two WHERE contact_id = $1`, ana)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		body = waitSent(admin, page)
		for _, want := range []string{`<h2 id="report-h">Report</h2>`, "Opens and clicks are of 2 tracked recipients",
			"<desc>Sent: 2 (100% of 2 recipients); Delivered: 2 (100% of 2 recipients); Bounced: 0 (0% of 2 recipients);",
			"<desc>Opened: 1 (50% of 2 tracked recipients); Clicked a link: 0 (0% of 2 tracked recipients).</desc>",
			"<desc>Get it: 2; Left out: Opted out (by the contact): 1; Left out: No consent to the purpose (or objected): 1.</desc>"} {
			if !strings.Contains(body, want) {
				t.Fatalf("report lacks %q: %s", want, body)
			}
		}
		if strings.Contains(body, "retry-unknown") {
			t.Fatal("the retry button shows with no recipient unknown")
		}

		// Set-up: the batch of one recipient ended without an answer.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE campaign_recipients SET status = 'unknown' WHERE contact_id = $1`, ana)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, body := admin.get(page); !strings.Contains(body, "Send to the 1 recipients whose outcome is unknown") || !strings.Contains(body, "may get it twice") {
			t.Fatalf("retry button: %s", body)
		}
		if code, body := admin.post(page+"/retry-unknown", nil); code != 200 || !strings.Contains(body, "queued again") {
			t.Fatalf("retry unknown: %d %s", code, body)
		}
		if m := e.smtp.Wait(t, 3)[2]; m.To[0] != "ana@example.com" {
			t.Fatalf("sent again to %v", m.To)
		}
		if body := waitSent(admin, page); strings.Contains(body, "retry-unknown") || !strings.Contains(body, `<progress id="progress" max="2" value="2"`) {
			t.Fatalf("after sending again: %s", body)
		}

		// Set-up: a campaign paused before its audience was fixed.
		admin.post(base, campaignForm("Autumn news"))
		autumn := strings.Split(admin.last.Request.URL.String(), "?")[0]
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE campaigns SET status = 'paused', started_at = updated_at WHERE name = 'Autumn news'`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, body := admin.get(autumn); !strings.Contains(body, `id="resolve"`) || !strings.Contains(body, "(if sent now)") {
			t.Fatalf("paused campaign: %s", body)
		}
		if code, body := admin.post(autumn+"/resolve", nil); code != 200 || !strings.Contains(body, "The audience is fixed.") ||
			!strings.Contains(body, "(fixed at sending)") || strings.Contains(body, `id="resolve"`) || !strings.Contains(body, "<desc>Get it: 2;") {
			t.Fatalf("fix the audience: %d %s", code, body)
		}

		agent := e.signIn(admin, "agent@acme.example", "agent")
		if code, body := agent.get(page + "/preview/" + ana + "/html"); code != 403 || strings.Contains(body, "Hello") {
			t.Fatalf("agent preview html: %d", code)
		}
	})
}
