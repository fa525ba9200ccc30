package app_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

const privacyAddress = "privacy@acme.example"

// startInbound runs the service with its inbound SMTP listener and a
// privacy address set, and returns the listener's address.
func startInbound(t testing.TB, db *store.DB) (*env, string) {
	e := start(t, db, func(a *app.App) { a.Config.InboundSMTPAddr = "127.0.0.1:0" })
	e.api("PATCH", "/api/v1/settings", `{"privacy_address":"`+privacyAddress+`"}`, 200, nil)
	return e, e.a.InboundSMTP.BoundAddr().String()
}

func rawMessage(from, subject string) string {
	return "From: " + from + "\r\nTo: Acme Privacy <" + privacyAddress + ">\r\nSubject: " + subject + "\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease erase everything you hold about me.\r\n"
}

// smtpCode is the reply code of an SMTP error, 0 for none.
func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func (e *env) openRequests() []*requests.Request {
	e.t.Helper()
	rs, err := requests.List(context.Background(), e.a.DB.Read, requests.Query{}, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

// TestRequestByEmailOverSMTP: a message to the privacy address, delivered
// over a real SMTP connection with an RFC 2047 subject, records an erasure
// request and emails the sender a link; opening the link confirms
// nothing, its button does, after which the operator hears of it. Bad
// messages get SMTP's answers and record nothing.
func TestRequestByEmailOverSMTP(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, addr := startInbound(t, db)
		if err := smtp.SendMail(addr, nil, "sam@example.org", []string{privacyAddress},
			[]byte(rawMessage(`"`+privacyAddress+`" <Sam@Example.org>`, "=?UTF-8?B?UkFERVJB?= mina uppgifter"))); err != nil {
			t.Fatal(err)
		}
		msg := e.smtp.Wait(t, 1)[0]
		if msg.To[0] != "sam@example.org" || msg.Subject != "Bekräfta din begäran om radering" || len(msg.Links()) != 1 {
			t.Fatalf("confirmation: %v %q %q", msg.To, msg.Subject, msg.Text)
		}
		link := msg.Links()[0]
		if !strings.HasPrefix(link, e.srv.URL+"/r/") {
			t.Fatalf("link %s", link)
		}
		rs := e.openRequests()
		if len(rs) != 1 || rs[0].Status != requests.StatusReceived || rs[0].Address != "sam@example.org" || rs[0].Channel != requests.ChannelEmail {
			t.Fatalf("requests %+v", rs)
		}
		// A mail scanner opening the link confirms nothing.
		if code, body := e.page("GET", link, ""); code != 200 || !strings.Contains(body, `<form method="post"`) ||
			!strings.Contains(body, "Bekräfta min begäran om radering") {
			t.Fatalf("page: %d %s", code, body)
		}
		if s := e.openRequests()[0].Status; s != requests.StatusReceived {
			t.Fatalf("opening the link: %s", s)
		}
		// The button posts, and is redirected to the answer.
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := noFollow.Post(link, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/r/confirmed?lang=sv" {
			t.Fatalf("post: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if code, body := e.page("GET", e.srv.URL+"/r/confirmed?lang=sv", ""); code != 200 || !strings.Contains(body, "Din begäran är bekräftad") {
			t.Fatalf("answer: %d %s", code, body)
		}
		if s := e.openRequests()[0].Status; s != requests.StatusVerified {
			t.Fatalf("after the button: %s", s)
		}
		// A used link's button redirects, as every confirmation post does,
		// to the page that says the link cannot be used.
		res, err = noFollow.Post(link, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/p/link-invalid") {
			t.Fatalf("second post: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if code, body := e.page("POST", link, ""); code != http.StatusGone || !strings.Contains(body, "cannot be used") && !strings.Contains(body, "kan inte") {
			t.Fatalf("second post, redirect followed: %d %s", code, body)
		}
		// The operator is told, at the privacy address.
		if told := e.smtp.Wait(t, 2)[1]; told.To[0] != privacyAddress || !strings.Contains(told.Subject, "erasure") {
			t.Fatalf("operator: %v %q", told.To, told.Subject)
		}

		// SMTP's answers to what is not a request.
		cases := []struct {
			name string
			to   string
			raw  string
			code int
		}{
			{"another recipient", "someone@acme.example", rawMessage("x@example.org", "DELETE"), 550},
			{"two From headers", privacyAddress, "From: a@example.org\r\n" + rawMessage("b@example.org", "DELETE"), 550},
			{"no From", privacyAddress, "To: " + privacyAddress + "\r\nSubject: DELETE\r\n\r\nx\r\n", 550},
			{"malformed MIME", privacyAddress, "From: a@example.org\r\nTo: " + privacyAddress + "\r\nSubject: DELETE\r\n" +
				"Content-Type: multipart/mixed\r\n\r\nx\r\n", 550},
			{"oversize", privacyAddress, rawMessage("big@example.org", "DELETE") + strings.Repeat("0123456789abcdef\r\n", inbound.MaxMessageBytes/18+1), 552},
		}
		for _, c := range cases {
			if got := smtpCode(smtp.SendMail(addr, nil, "a@example.org", []string{c.to}, []byte(c.raw))); got != c.code {
				t.Errorf("%s: SMTP answered %d, want %d", c.name, got, c.code)
			}
		}
		if n := len(e.openRequests()); n != 1 {
			t.Fatalf("%d requests after the refused messages", n)
		}
	})
}

// TestRequestByEmailThroughTheAPI: a mail provider's inbound route posts
// the raw message with a token of the inbound scope, which opens nothing
// else; an ordinary token may not post inbound email.
func TestRequestByEmailThroughTheAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, _ := startInbound(t, db)
		provider, _, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "provider", nil, auth.ScopeInbound)
		if err != nil {
			t.Fatal(err)
		}
		post := func(token, contentType, body string) (int, string) {
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/inbound-email", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", contentType)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		msg := rawMessage("Joost <joost@example.nl>", "Verwijder mijn gegevens")
		if code, body := post(provider, "message/rfc822", msg); code != 202 || !strings.Contains(body, `"outcome":"requested"`) {
			t.Fatalf("provider: %d %s", code, body)
		}
		if code, body := post(provider, "message/rfc822", msg); code != 202 || !strings.Contains(body, `"outcome":"limited"`) {
			t.Fatalf("again within the day: %d %s", code, body)
		}
		if code, _ := post(e.token, "message/rfc822", msg); code != 403 {
			t.Fatalf("ordinary token: %d", code)
		}
		if code, body := post(provider, "text/plain", msg); code != 400 || !strings.Contains(body, "Content-Type") {
			t.Fatalf("wrong type: %d %s", code, body)
		}
		if code, body := post(provider, "message/rfc822", "From: a@x.example\r\nFrom: b@x.example\r\n\r\n"); code != 400 || !strings.Contains(body, `"field":"from"`) {
			t.Fatalf("two From: %d %s", code, body)
		}
		if code, body := post(provider, "message/rfc822", msg+strings.Repeat("x", inbound.MaxMessageBytes)); code != 413 || !strings.Contains(body, "message_too_large") ||
			!strings.Contains(body, "larger than 1 MiB") {
			t.Fatalf("oversize: %d %s", code, body)
		}
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/contacts", nil)
		req.Header.Set("Authorization", "Bearer "+provider)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 403 {
			t.Fatalf("the inbound token read contacts: %d", res.StatusCode)
		}
		if msg := e.smtp.Wait(t, 1)[0]; msg.To[0] != "joost@example.nl" || msg.Subject != "Bevestig uw verzoek tot verwijdering" {
			t.Fatalf("%v %q", msg.To, msg.Subject)
		}
		if code, body := post(provider, "message/rfc822", rawMessage("q@example.org", "A question")); code != 202 || !strings.Contains(body, `"outcome":"ignored"`) {
			t.Fatalf("no keyword: %d %s", code, body)
		}
		e.api("PATCH", "/api/v1/settings", `{"privacy_address":""}`, 200, nil)
		if code, body := post(provider, "message/rfc822", rawMessage("r@example.org", "DELETE")); code != 422 || !strings.Contains(body, "inbound_off") {
			t.Fatalf("off: %d %s", code, body)
		}
	})
}
