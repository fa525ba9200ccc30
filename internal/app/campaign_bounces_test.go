package app_test

import (
	"context"
	"io"
	"net/http"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// dsn is a delivery status notification as a mail relay sends it back to
// a message's Return-Path.
func dsn(to, recipient, action, status string) string {
	return "From: MAILER-DAEMON@relay.acme.example\r\nTo: " + to + "\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.acme.example\r\n\r\n" +
		"Final-Recipient: rfc822; " + recipient + "\r\nAction: " + action + "\r\nStatus: " + status + "\r\n--B--\r\n"
}

// TestCampaignBouncesComeBackByMail: a bounce a mail relay sends to a
// campaign message's Return-Path, over SMTP to the inbound listener,
// marks the contact's address bounced (hard) or counts a soft bounce, and
// the campaign's report counts it; so does a bounce a mail provider
// posts to the inbound route, and an older server's plain-text bounce. A Return-Path with a made-up tag is refused
// at RCPT, and an automatic reply to a Return-Path changes nothing.
func TestCampaignBouncesComeBackByMail(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		e, addr := startInbound(t, db)
		e.campaignToken()
		e.api("PATCH", "/api/v1/settings", `{"bounce_address":"bounces@acme.example"}`, 200, nil)
		ids := map[string]string{}
		for _, email := range []string{"anna@example.com", "bo@example.com"} {
			var c struct{ ID string }
			e.api("POST", "/api/v1/contacts", `{"email":"`+email+`","consents":[{"purpose":"E-marketing","state":"granted","source":"Web form"}]}`, 201, &c)
			if err := db.Write(ctx, func(tx *store.Tx) error { // set-up only
				return contactstate.SetOptInTx(tx, c.ID, contactstate.DoubleOptIn, time.Now())
			}); err != nil {
				t.Fatal(err)
			}
			ids[email] = c.ID
		}
		before := e.smtp.Received()
		var c campaign.Campaign
		e.api("POST", "/api/v1/campaigns", `{"name":"Spring","condition":"email != \"\"","variants":[{"language":"en","subject":"Spring","html":"<p>Hi</p>"}]}`, 201, &c)
		e.api("POST", "/api/v1/campaigns/"+c.ID+"/send", "", 200, nil)
		returnPath := map[string]string{}
		for _, m := range e.smtp.Wait(t, before+2)[before:] {
			if !strings.HasPrefix(m.From, "bounces+c") || !strings.HasSuffix(m.From, "@acme.example") {
				t.Fatalf("Return-Path %q", m.From)
			}
			returnPath[m.To[0]] = m.From
		}
		waitFor(t, func() bool {
			var p campaign.Progress
			e.api("GET", "/api/v1/campaigns/"+c.ID+"/progress", "", 200, &p)
			return p.Status == campaign.StatusSent
		})

		anna, bo := returnPath["anna@example.com"], returnPath["bo@example.com"]
		at := strings.LastIndexByte(anna, '@')
		other := "a"
		if anna[at-1] == 'a' {
			other = "b"
		}
		forged := anna[:at-1] + other + anna[at:] // one letter of the tag changed
		if got := smtpCode(smtp.SendMail(addr, nil, "", []string{forged}, []byte(dsn(forged, "anna@example.com", "failed", "5.1.1")))); got != 550 {
			t.Fatalf("a Return-Path with a made-up tag: %d, want 550", got)
		}
		if err := smtp.SendMail(addr, nil, "anna@example.com", []string{bo}, []byte("From: bo@example.com\r\nTo: "+bo+"\r\nSubject: Away\r\nAuto-Submitted: auto-replied\r\n\r\nBack on Monday.\r\n")); err != nil {
			t.Fatalf("an automatic reply: %v", err)
		}
		type state struct {
			Deliverability string
			SoftBounces    int
		}
		deliverability := func(email string) (d state) {
			t.Helper()
			if err := db.Read.QueryRowContext(ctx, `SELECT deliverability, soft_bounces FROM contacts WHERE id = $1`, ids[email]).Scan(&d.Deliverability, &d.SoftBounces); err != nil {
				t.Fatal(err)
			}
			return d
		}
		if d := deliverability("bo@example.com"); d.Deliverability != "ok" || d.SoftBounces != 0 {
			t.Fatalf("after an automatic reply: %+v", d)
		}

		if err := smtp.SendMail(addr, nil, "", []string{strings.ToUpper(anna)}, []byte(dsn(anna, "anna@example.com", "failed", "5.1.1"))); err != nil {
			t.Fatalf("a hard bounce: %v", err)
		}
		if err := smtp.SendMail(addr, nil, "", []string{bo}, []byte(dsn(bo, "bo@example.com", "failed", "4.2.2"))); err != nil {
			t.Fatalf("a soft bounce: %v", err)
		}
		if d := deliverability("anna@example.com"); d.Deliverability != "bounced" {
			t.Fatalf("after a hard bounce: %+v", d)
		}
		if d := deliverability("bo@example.com"); d.Deliverability != "ok" || d.SoftBounces != 1 {
			t.Fatalf("after a soft bounce: %+v", d)
		}
		// A mail provider's inbound route passes a bounce on without its
		// envelope: the Return-Path in To says which message it is about.
		provider, _, err := e.a.Tokens.Create(ctx, audit.Actor{Kind: "user"}, "provider", nil, auth.ScopeInbound)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/inbound-email", strings.NewReader(dsn(bo, "bo@example.com", "failed", "4.2.2")))
		req.Header.Set("Authorization", "Bearer "+provider)
		req.Header.Set("Content-Type", "message/rfc822")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 202 || !strings.Contains(string(body), `"outcome":"bounced"`) {
			t.Fatalf("a bounce through the API: %d %s", res.StatusCode, body)
		}
		if d := deliverability("bo@example.com"); d.Deliverability != "ok" || d.SoftBounces != 2 {
			t.Fatalf("after a second soft bounce: %+v", d)
		}

		// An older server's plain-text bounce (qmail's) is read too.
		qmail := "From: MAILER-DAEMON@mx.example.com\r\nTo: " + bo + "\r\nSubject: failure notice\r\n\r\n" +
			"Hi. This is the qmail-send program at mx.example.com.\r\nI'm afraid I wasn't able to deliver your message to the following addresses.\r\n" +
			"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n<bo@example.com>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n"
		if err := smtp.SendMail(addr, nil, "", []string{bo}, []byte(qmail)); err != nil {
			t.Fatalf("a plain-text bounce: %v", err)
		}
		if d := deliverability("bo@example.com"); d.Deliverability != "bounced" {
			t.Fatalf("after a plain-text hard bounce: %+v", d)
		}

		var rep campaign.Report
		e.api("GET", "/api/v1/campaigns/"+c.ID+"/report", "", 200, &rep)
		if rep.Sent != 2 || rep.Bounced != 2 || rep.Delivered != 0 {
			t.Fatalf("report: sent %d, bounced %d, delivered %d", rep.Sent, rep.Bounced, rep.Delivered)
		}

		// Each address the bounces marked bounced has its event, the soft
		// bounces under the limit none.
		for _, email := range []string{"anna@example.com", "bo@example.com"} {
			var page struct {
				Items []struct {
					Data struct{ From, To, Cause string }
				}
			}
			e.api("GET", "/api/v1/events?type=deliverability.changed&contact="+ids[email], "", 200, &page)
			if len(page.Items) != 1 || page.Items[0].Data.From != "ok" || page.Items[0].Data.To != "bounced" || page.Items[0].Data.Cause != "hard_bounce" {
				t.Errorf("%s: deliverability events %+v, want one: ok to bounced by a hard bounce", email, page.Items)
			}
		}
	})
}
