package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/logtest"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

// syncBuffer is a log sink the workers and the test can share.
type syncBuffer = logtest.Buffer

type env struct {
	t     testing.TB
	a     *app.App
	srv   *httptest.Server
	smtp  *mailtest.Server
	token string
	log   *syncBuffer
}

// start runs the whole service, workers included, with email going over
// SMTP to a real server in the test, and links pointing at the test server.
// Each of before runs on the built service before its workers start (to
// give the services a clock of the test's, say).
func start(t testing.TB, db *store.DB, before ...func(*app.App)) *env {
	e := &env{t: t, smtp: mailtest.Start(t), log: &syncBuffer{}}
	var handler http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	keyset, master := vaulttest.Files(t)
	cfg := &config.Config{BaseURL: e.srv.URL, SMTPURL: e.smtp.URL(), SMTPConnections: 2, MailFrom: "Acme <privacy@acme.example>",
		KeysetFile: keyset, MasterKey: master}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(e.log, nil)), db)
	if err != nil {
		t.Fatal(err)
	}
	handler = a.Handler()
	for _, f := range before {
		f(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.Start(ctx)
	t.Cleanup(func() { cancel(); a.Wait() })
	e.a = a
	secret, _, err := a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "test", nil, operatorScopes...)
	if err != nil {
		t.Fatal(err)
	}
	e.token = secret
	return e
}

// operatorScopes are the scopes of the token the tests call the API with:
// the operator's, who changes settings, purposes and legal holds and
// erases contacts as well as syncing them.
var operatorScopes = []string{auth.ScopeAdmin, auth.ScopeErasure}

// ledgerVerifies checks the ledger through the API, failing the test when
// it does not verify.
func (e *env) ledgerVerifies() {
	e.t.Helper()
	var rep struct {
		OK      bool
		Problem any
	}
	e.api("GET", "/api/v1/ledger/verify", "", 200, &rep)
	if !rep.OK {
		e.t.Fatalf("the ledger does not verify: %+v", rep.Problem)
	}
}

// api calls the REST API and decodes the answer into out.
func (e *env) api(method, path, body string, want int, out any) {
	e.t.Helper()
	res, b := e.call(method, path, body)
	if res.StatusCode != want {
		e.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// call sends an API request with e's token and returns the answer, its
// body read.
func (e *env) call(method, path, body string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// page fetches a public page as a browser would.
func (e *env) page(method, url, acceptLanguage string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (test)")
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, h := range []string{"Content-Security-Policy", "Referrer-Policy", "Cache-Control"} {
		if res.Header.Get(h) == "" {
			e.t.Fatalf("%s %s: no %s header", method, url, h)
		}
	}
	return res.StatusCode, string(b)
}

// TestDoubleOptInOverSMTP follows a double opt-in as a contact would: the
// email arrives over SMTP, the link opens a page that changes nothing, the
// button confirms, and the link works once.
func TestDoubleOptInOverSMTP(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var c struct {
			ID          string
			OptInStatus string `json:"opt_in_status"`
		}
		e.api("POST", "/api/v1/contacts", `{"email":"anna@example.com","kind":"lead","first_name":"Anna","language":"sv"}`, 201, &c)
		var res struct {
			Invited int
			Skipped map[string]int
		}
		e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+c.ID+`"]}`, 200, &res)
		if res.Invited != 1 {
			t.Fatalf("invite: %+v", res)
		}
		// The consent text changes after the email went out: the record must
		// still name the version the email showed, and its language: the
		// text has no Swedish translation, so the email quoted the English.
		e.api("PATCH", "/api/v1/purposes/E-marketing", `{"text":"A newer text nobody was shown"}`, 200, nil)

		msg := e.smtp.Wait(t, 1)[0]
		if msg.To[0] != "anna@example.com" || msg.Subject != "Bekräfta din prenumeration" {
			t.Fatalf("email: to %v, subject %q", msg.To, msg.Subject)
		}
		links := msg.Links()
		if len(links) != 1 || !strings.HasPrefix(links[0], e.srv.URL+"/confirm/") || !strings.Contains(msg.Text, "Yes, I would like to receive") {
			t.Fatalf("email text: %q", msg.Text)
		}
		link := links[0]

		// Opening the link, as a mail scanner would, confirms nothing.
		if code, body := e.page("GET", link, ""); code != 200 || !strings.Contains(body, `<form method="post"`) || !strings.Contains(body, "Bekräfta min prenumeration") {
			t.Fatalf("confirm page: %d %s", code, body)
		}
		e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &c)
		if c.OptInStatus != "none" {
			t.Fatalf("opening the link changed the status to %s", c.OptInStatus)
		}

		// Confirming redirects (post/redirect/get) to a page with no
		// token in its address, which a reload shows again and which
		// confirms nothing more.
		v := e.visitor()
		if to := v.redirectOf(link, url.Values{}); to != e.srv.URL+"/p/confirmed" {
			t.Fatalf("confirming redirects to %s", to)
		}
		for range 2 {
			if code, body := v.get(e.srv.URL + "/p/confirmed"); code != 200 || !strings.Contains(body, "Din prenumeration är bekräftad") ||
				!strings.Contains(body, `<a href="/p" id="back">Tillbaka till dina inställningar</a>`) {
				t.Fatalf("confirmed: %d %s", code, body)
			}
		}
		// Another browser's session says nothing about this confirmation.
		if _, body := e.visitor().get(e.srv.URL + "/p/confirmed"); strings.Contains(body, "bekräftad") {
			t.Fatalf("the confirmed page without the session: %s", body)
		}
		// The page that says so leads to the contact's preferences.
		if code, body := v.get(e.srv.URL + "/p"); code != 200 || !strings.Contains(body, `id="save"`) {
			t.Fatalf("back from the confirmed page: %d %s", code, body)
		}
		e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &c)
		if c.OptInStatus != "double_opt_in" {
			t.Fatalf("after confirming the status is %s", c.OptInStatus)
		}
		var consents struct {
			Current []struct{ Purpose, State, Source string }
			History []struct {
				Purpose, State, Source string
				TextVersion            int    `json:"text_version"`
				TextLanguage           string `json:"text_language"`
				Actor                  struct{ Kind string }
				Evidence               struct {
					Method, IP          string
					UserAgent           string `json:"user_agent"`
					ConfirmationTokenID string `json:"confirmation_token_id"`
				}
			}
		}
		e.api("GET", "/api/v1/contacts/"+c.ID+"/consents", "", 200, &consents)
		if len(consents.History) != 1 {
			t.Fatalf("history: %+v", consents.History)
		}
		h := consents.History[0]
		if h.Purpose != "E-marketing" || h.State != "granted" || h.Source != "Double opt-in email" || h.TextVersion != 1 || h.TextLanguage != "en" ||
			h.Actor.Kind != "contact" || h.Evidence.Method != "double_opt_in_link" || h.Evidence.IP != "127.0.0.1" ||
			h.Evidence.UserAgent != "Mozilla/5.0 (visitor)" || h.Evidence.ConfirmationTokenID == "" {
			t.Fatalf("consent record: %+v", h)
		}
		var inv []struct{ Status string }
		e.api("GET", "/api/v1/contacts/"+c.ID+"/double-opt-in", "", 200, &inv)
		if len(inv) != 1 || inv[0].Status != "confirmed" {
			t.Fatalf("invitation: %+v", inv)
		}
		var rep struct {
			OK     bool
			Events int
		}
		e.api("GET", "/api/v1/ledger/verify", "", 200, &rep)
		if !rep.OK || rep.Events != 2 { // the opt-in change and the consent record
			t.Fatalf("ledger: %+v", rep)
		}

		// The link works once; a used, an unknown and a malformed link all
		// get the same page, 410 Gone.
		if to := e.visitor().redirectOf(link, url.Values{}); to != e.srv.URL+"/p/link-invalid" {
			t.Fatalf("a used link redirects to %s", to)
		}
		usedCode, used := e.page("POST", link, "en")
		unknownCode, unknown := e.page("GET", e.srv.URL+"/confirm/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "en")
		malformedCode, malformed := e.page("GET", e.srv.URL+"/confirm/x", "en")
		if !strings.Contains(used, "This link cannot be used") || used != unknown || unknown != malformed ||
			usedCode != http.StatusGone || unknownCode != http.StatusGone || malformedCode != http.StatusGone {
			t.Fatalf("the pages of links that cannot be used differ, or are not 410 (%d %d %d):\n%s\n%s\n%s",
				usedCode, unknownCode, malformedCode, used, unknown, malformed)
		}
		// No link token in the log.
		secret := link[strings.LastIndexByte(link, '/')+1:]
		if strings.Contains(e.log.String(), secret) {
			t.Fatal("the log holds a link token")
		}
	})
}

// TestInformedBouncesAndBlocklist turns on the right-to-be-informed email,
// then follows a contact through a hard bounce and the blocklist, checking
// what the outbox did with each email and why.
func TestInformedBouncesAndBlocklist(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.api("PATCH", "/api/v1/settings", `{"double_opt_in_reminder_days": 20}`, 400, nil) // must stay under the expiry days
		e.api("PATCH", "/api/v1/settings", `{"right_to_be_informed": true, "soft_bounce_limit": 2}`, 200, nil)
		// A purpose on consent that Bo is not asked about must not be
		// listed to him; one on another legal basis applies to everyone.
		e.api("POST", "/api/v1/purposes", `{"name":"Share with partners","legal_basis":"consent","text":"We may share your details with partners."}`, 201, nil)
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"bo@example.com","first_name":"Bo","language":"nl","country":"NL",
			"consents":[{"purpose":"E-marketing","state":"granted","source":"Web form"}]}`, 201, &c)
		msg := e.smtp.Wait(t, 1)[0]
		if msg.Subject != "Wat wij over u bewaren, en waarom" || len(msg.Links()) != 1 || !strings.Contains(msg.Links()[0], "/p/") ||
			!strings.Contains(msg.Text, "E-marketing (uw toestemming)") || !strings.Contains(msg.Text, "Sales and service (") ||
			strings.Contains(msg.Text, "Share with partners") || !strings.Contains(msg.Text, "land") ||
			!strings.Contains(msg.Text, "Acme heeft uw gegevens geregistreerd") {
			t.Fatalf("informed email: %q\n%s", msg.Subject, msg.Text)
		}

		var d struct{ Deliverability string }
		e.api("POST", "/api/v1/bounces", `{"email":"BO@example.com","type":"soft"}`, 200, &d)
		if d.Deliverability != "ok" {
			t.Fatalf("one soft bounce: %s", d.Deliverability)
		}
		e.api("POST", "/api/v1/bounces", `{"email":"bo@example.com","type":"soft"}`, 200, &d)
		if d.Deliverability != "bounced" {
			t.Fatalf("two soft bounces with a limit of two: %s", d.Deliverability)
		}
		e.api("POST", "/api/v1/bounces", `{"email":"nobody@example.com","type":"hard"}`, 422, nil)
		e.api("POST", "/api/v1/bounces", `{"email":"bo@example.com","type":"medium"}`, 400, nil)

		// The double opt-in email is not even queued for a bounced address.
		var res struct{ Skipped map[string]int }
		e.api("POST", "/api/v1/double-opt-in", `{"filter":"country == \"NL\""}`, 200, &res)
		if res.Skipped["bounced"] != 1 {
			t.Fatalf("invite a bounced address: %+v", res)
		}
		e.api("DELETE", "/api/v1/contacts/"+c.ID+"/blocklist", "", 200, &d) // clears the bounce
		e.api("POST", "/api/v1/contacts/"+c.ID+"/blocklist", "", 200, &d)
		if d.Deliverability != "blocklisted" {
			t.Fatalf("blocklist: %s", d.Deliverability)
		}
		// Queued while fine, blocklisted before sending: the gate stops it
		// at send time.
		e.api("DELETE", "/api/v1/contacts/"+c.ID+"/blocklist", "", 200, nil)
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			_, err := e.a.OptIn.InviteTx(tx, c.ID, "api", time.Now())
			if err != nil {
				return err
			}
			st, err := contactstate.Load(tx, c.ID)
			if err != nil {
				return err
			}
			return contactstate.SetBlocklistedTx(tx, &st, true, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		var emails []struct{ Kind, Status, Reason string }
		deadline := time.Now().Add(20 * time.Second)
		for {
			e.api("GET", "/api/v1/contacts/"+c.ID+"/emails", "", 200, &emails)
			if emails[0].Status != "queued" && emails[0].Status != "sending" || time.Now().After(deadline) {
				break
			}
			e.a.Deliverer.RunDue(context.Background())
		}
		if len(emails) != 2 || emails[0].Kind != "double_opt_in" || emails[0].Status != "suppressed" || emails[0].Reason != "blocklisted" ||
			emails[1].Kind != "right_to_be_informed" || emails[1].Status != "sent" {
			t.Fatalf("emails: %+v", emails)
		}
	})
}
