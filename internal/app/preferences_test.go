package app_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// visitor is a contact's browser without JavaScript: it keeps cookies and
// follows redirects.
type visitor struct {
	e      *env
	client *http.Client
	last   *http.Response
}

func (e *env) visitor() *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{e: e, client: &http.Client{Jar: jar}}
}

// get fetches a page and returns its status and body.
func (v *visitor) get(u string) (int, string) {
	v.e.t.Helper()
	return v.do("GET", u, nil)
}

// post submits a form as the page would.
func (v *visitor) post(u string, form url.Values) (int, string) {
	v.e.t.Helper()
	return v.do("POST", u, form)
}

// crossSitePost posts form as another site's page would (Sec-Fetch-Site
// cross-site), with v's cookies, and returns the status.
func (v *visitor) crossSitePost(u string, form url.Values) int {
	v.e.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := v.client.Do(req)
	if err != nil {
		v.e.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func (v *visitor) do(method, u string, form url.Values) (int, string) {
	v.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	req.Header.Set("User-Agent", "Mozilla/5.0 (visitor)")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := v.client.Do(req)
	if err != nil {
		v.e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	v.last = res
	return res.StatusCode, string(b)
}

// count returns a single number from the database.
func count(t testing.TB, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var confirmLinkRE = regexp.MustCompile(`/p/confirm/[A-Za-z0-9_-]{43}`)

// pageSetUp makes a contact with a card on file (storage consent granted),
// a newsletter they are subscribed to, and a page that offers the storage
// consent; it returns the contact id and a personal link to the page.
func pageSetUp(e *env) (string, string) {
	c := cardOnFile(e, "lena@example.com", "granted")
	e.api("POST", "/api/v1/lists", `{"name":"Newsletter","description":"Monthly news"}`, 201, nil)
	e.api("PUT", "/api/v1/contacts/"+c.ID+"/lists/Newsletter", `{"state":"subscribed"}`, 200, nil)
	e.api("PUT", "/api/v1/settings/preferences-page", `{"access_condition":"","offers":[{"purpose":"Card on file"}],"statement":"We are Acme. See https://acme.example/privacy",
		"policies":[{"title":"Privacy policy","url":"https://acme.example/privacy"}],"footer":{"enabled":false},"access_email":false,
		"allow_stop_processing":true,"allow_erasure":true}`, 200, nil)
	var link struct{ URL string }
	e.api("POST", "/api/v1/contacts/"+c.ID+"/preferences-link", "", 201, &link)
	return c.ID, link.URL
}

func listID(e *env, name string) string {
	var l struct{ ID string }
	e.api("GET", "/api/v1/lists/"+url.PathEscape(name), "", 200, &l)
	return l.ID
}

func purposeID(e *env, name string) string {
	var p struct{ ID string }
	e.api("GET", "/api/v1/purposes/"+url.PathEscape(name), "", 200, &p)
	return p.ID
}

// TestPreferencesChangeTakesEffectOnlyWhenConfirmed follows R7 end to end:
// the link opens a session without the token in the address, a change is
// saved as pending and emailed over SMTP, nothing happens until the link in
// that email is posted, and then exactly that change is applied, once, with
// its evidence and ledger events.
func TestPreferencesChangeTakesEffectOnlyWhenConfirmed(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		id, link := pageSetUp(e)
		card := purposeID(e, "Card on file")
		v := e.visitor()
		code, body := v.get(link)
		if code != 200 || v.last.Request.URL.Path != "/p" || v.last.Request.URL.RawQuery != "" {
			t.Fatalf("opening the link: %d at %s", code, v.last.Request.URL)
		}
		for _, want := range []string{"Card on file", "Keep my card number", "Newsletter", `href="https://acme.example/privacy"`,
			"Stop processing my data", "Erase my data", `<label for="optout">`} {
			if !strings.Contains(body, want) {
				t.Fatalf("page lacks %q:\n%s", want, body)
			}
		}
		u, _ := url.Parse(e.srv.URL + "/p")
		cookies := v.client.Jar.Cookies(u)
		if len(cookies) != 1 || cookies[0].Name != "consentry_prefs" {
			t.Fatalf("cookies: %v", cookies)
		}

		newsletter := listID(e, "Newsletter")
		code, body = v.post(e.srv.URL+"/p", url.Values{"action": {"save"}, "shown": {newsletter}, "list": {newsletter}, "consent." + card: {"withdrawn"}, "v." + card: {"1"}})
		if code != 200 || !strings.Contains(body, "Please check your email") {
			t.Fatalf("saving: %d %s", code, body)
		}
		// Nothing has changed yet.
		var c struct{ Fields map[string]any }
		e.api("GET", "/api/v1/contacts/"+id, "", 200, &c)
		if c.Fields["card_number"] == nil {
			t.Fatal("the change took effect before it was confirmed")
		}
		first := e.smtp.Wait(t, 1)[0]
		firstLink := confirmLinkRE.FindString(first.Text)
		if first.To[0] != "lena@example.com" || firstLink == "" || !strings.Contains(first.Text, `Withdraw consent to “Card on file”`) {
			t.Fatalf("confirmation email: %v %s", first.To, first.Text)
		}

		// A second change replaces the first: its link stops working.
		v.post(e.srv.URL+"/p", url.Values{"action": {"save"}, "shown": {newsletter}, "list": {newsletter}, "consent." + card: {"withdrawn"}, "v." + card: {"1"}})
		second := e.smtp.Wait(t, 2)[1]
		secondLink := e.srv.URL + confirmLinkRE.FindString(second.Text)
		if _, body := e.page("POST", e.srv.URL+firstLink, "en"); !strings.Contains(body, "This link cannot be used") {
			t.Fatalf("a replaced change's link still works: %s", body)
		}

		// Opening the link shows the change and changes nothing.
		if code, body := e.page("GET", secondLink, "en"); code != 200 || !strings.Contains(body, "Withdraw consent to “Card on file”") {
			t.Fatalf("confirmation page: %d %s", code, body)
		}
		if n := count(t, db, `SELECT count(*) FROM consent_records WHERE contact_id = $1`, id); n != 1 {
			t.Fatalf("opening the link recorded something: %d records", n)
		}
		// Confirming redirects (post/redirect/get) to a page with no token
		// in its address, which says what was done and which a reload
		// shows again without applying anything more.
		w := e.visitor()
		if to := w.redirectOf(secondLink, url.Values{}); to != e.srv.URL+"/p/done" {
			t.Fatalf("confirming redirects to %s", to)
		}
		records := count(t, db, `SELECT count(*) FROM consent_records WHERE contact_id = $1`, id)
		for range 2 {
			if code, body := w.get(e.srv.URL + "/p/done"); code != 200 || !strings.Contains(body, "Your choices are saved") ||
				!strings.Contains(body, "Withdraw consent to “Card on file”") {
				t.Fatalf("done: %d %s", code, body)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM consent_records WHERE contact_id = $1`, id); n != records {
			t.Fatalf("reloading the done page recorded again: %d records, %d before", n, records)
		}
		if to := e.visitor().redirectOf(secondLink, url.Values{}); to != e.srv.URL+"/p/link-invalid" {
			t.Fatalf("a used link redirects to %s", to)
		}
		c.Fields = nil
		e.api("GET", "/api/v1/contacts/"+id, "", 200, &c)
		if _, has := c.Fields["card_number"]; has {
			t.Fatalf("withdrawing storage consent on the page kept the value: %v", c.Fields)
		}
		var consents struct {
			History []struct {
				Purpose, State, Source string
				TextLanguage           string `json:"text_language"`
				Actor                  struct{ Kind string }
				Evidence               struct {
					Method, IP          string
					UserAgent           string `json:"user_agent"`
					ConfirmationTokenID string `json:"confirmation_token_id"`
				}
			}
		}
		e.api("GET", "/api/v1/contacts/"+id+"/consents", "", 200, &consents)
		h := consents.History[len(consents.History)-1]
		if h.Purpose != "Card on file" || h.State != "withdrawn" || h.Source != "Preferences page" || h.Actor.Kind != "contact" || h.TextLanguage != "en" ||
			h.Evidence.Method != "preferences_page" || h.Evidence.IP != "127.0.0.1" || h.Evidence.ConfirmationTokenID == "" {
			t.Fatalf("consent record: %+v", h)
		}
		// The field is locked until consent is given again (R8).
		e.api("PATCH", "/api/v1/contacts/"+id, `{"fields":{"card_number":"5500000000000004"}}`, 423, nil)
		// Once only.
		if _, body := e.page("POST", secondLink, "en"); !strings.Contains(body, "This link cannot be used") {
			t.Fatalf("a used link worked again: %s", body)
		}
		var changes []struct{ Status string }
		e.api("GET", "/api/v1/contacts/"+id+"/preference-changes", "", 200, &changes)
		if len(changes) != 2 || changes[0].Status != "applied" || changes[1].Status != "superseded" {
			t.Fatalf("changes: %+v", changes)
		}
		e.ledgerVerifies()
		for _, secret := range []string{link[strings.LastIndexByte(link, '/')+1:], secondLink[strings.LastIndexByte(secondLink, '/')+1:]} {
			if strings.Contains(e.log.String(), secret) {
				t.Fatal("the log holds a link token")
			}
		}
	})
}

// TestListsAndOptOutFromThePage: list subscriptions and the contact's own
// opt-out are changed on the page once confirmed, and that opt-out is
// opt_out_contact (R1), which a user cannot undo.
func TestListsAndOptOutFromThePage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		id, link := pageSetUp(e)
		v := e.visitor()
		v.get(link)
		// A list made public while the page was open was not shown, so
		// saving leaves its subscription alone.
		e.api("POST", "/api/v1/lists", `{"name":"Offers"}`, 201, nil)
		e.api("PUT", "/api/v1/contacts/"+id+"/lists/Offers", `{"status":"subscribed"}`, 200, nil) // the former name of state still works
		form := url.Values{"action": {"save"}, "optout": {"1"}, "shown": {listID(e, "Newsletter")}}
		if code, body := v.post(e.srv.URL+"/p", form); code != 200 || !strings.Contains(body, "Please check your email") {
			t.Fatalf("saving: %d %s", code, body)
		}
		msg := e.smtp.Wait(t, 1)[0]
		for _, want := range []string{"Unsubscribe from all marketing email", "Unsubscribe from “Newsletter”"} {
			if !strings.Contains(msg.Text, want) {
				t.Fatalf("email lacks %q: %s", want, msg.Text)
			}
		}
		e.page("POST", e.srv.URL+confirmLinkRE.FindString(msg.Text), "en")
		var c struct {
			OptInStatus string `json:"opt_in_status"`
		}
		e.api("GET", "/api/v1/contacts/"+id, "", 200, &c)
		if c.OptInStatus != "opt_out_contact" {
			t.Fatalf("opt-in status %s", c.OptInStatus)
		}
		var subs []struct{ List, State, Source string }
		e.api("GET", "/api/v1/contacts/"+id+"/lists", "", 200, &subs)
		if len(subs) != 2 || subs[0].List != "Newsletter" || subs[0].State != "unsubscribed" || subs[0].Source != "preferences_page" ||
			subs[1].List != "Offers" || subs[1].State != "subscribed" {
			t.Fatalf("subscriptions: %+v", subs)
		}
		e.api("POST", "/api/v1/contacts/"+id+"/opt-in", `{"status":"none"}`, 422, nil)
		// The page now says so, and offers no way back but a webform.
		_, body := v.get(e.srv.URL + "/p")
		if !strings.Contains(body, "You have unsubscribed from all our marketing email") || strings.Contains(body, `id="optout"`) {
			t.Fatalf("page after opting out: %s", body)
		}
	})
}

// TestStopProcessingLocksTheRecord: R9 from the page, confirmed by email.
func TestStopProcessingLocksTheRecord(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		id, link := pageSetUp(e)
		v := e.visitor()
		v.get(link)
		v.post(e.srv.URL+"/p", url.Values{"action": {"stop"}})
		msg := e.smtp.Wait(t, 1)[0]
		if !strings.Contains(msg.Text, "Stop processing my data and lock my record") {
			t.Fatalf("email: %s", msg.Text)
		}
		e.page("POST", e.srv.URL+confirmLinkRE.FindString(msg.Text), "en")
		var c struct {
			OptInStatus         string  `json:"opt_in_status"`
			ProcessingStoppedAt *string `json:"processing_stopped_at"`
		}
		e.api("GET", "/api/v1/contacts/"+id, "", 200, &c)
		if c.OptInStatus != "opt_out_contact" || c.ProcessingStoppedAt == nil {
			t.Fatalf("after stopping: %+v", c)
		}
		e.api("PATCH", "/api/v1/contacts/"+id, `{"first_name":"Other"}`, 423, nil)
		e.api("POST", "/api/v1/contacts/"+id+"/consents", `{"purpose":"E-marketing","state":"granted","source":"Email"}`, 423, nil)
		// A withdrawal is still recorded: stopping never blocks saying no.
		e.api("POST", "/api/v1/contacts/"+id+"/consents", `{"purpose":"Card on file","state":"withdrawn","source":"Email"}`, 201, nil)
		// An email written by a user now is not sent, and says why.
		var q struct{ ID string }
		e.api("POST", "/api/v1/contacts/"+id+"/emails", `{"subject":"Hello","text":"A note"}`, 202, &q)
		waitFor(t, func() bool {
			return count(t, db, `SELECT count(*) FROM outbox WHERE id = $1 AND status = 'suppressed' AND reason = $2`, q.ID, mail.ReasonProcessingStopped) == 1
		})
		_, body := v.get(e.srv.URL + "/p")
		if !strings.Contains(body, "You asked us to stop processing your data") || strings.Contains(body, `value="stop"`) {
			t.Fatalf("page after stopping: %s", body)
		}
		// Nor does a locked record take a new list subscription, through
		// the API or on the page, which does not offer it; leaving a list
		// stays open.
		e.api("POST", "/api/v1/lists", `{"name":"Offers"}`, 201, nil)
		e.api("PUT", "/api/v1/contacts/"+id+"/lists/Offers", `{"state":"subscribed"}`, 423, nil)
		news, offers := listID(e, "Newsletter"), listID(e, "Offers")
		if _, body = v.get(e.srv.URL + "/p"); !strings.Contains(body, `name="list" value="`+offers+`" disabled`) ||
			strings.Contains(body, `name="list" value="`+news+`" checked disabled`) {
			t.Fatalf("the page of a locked record offers a new list, or keeps the contact on one: %s", body)
		}
		code, body := v.post(e.srv.URL+"/p", url.Values{"action": {"save"}, "shown": {news, offers}, "list": {news, offers}})
		if code != http.StatusLocked || !strings.Contains(body, "we cannot record a new consent or list subscription") {
			t.Fatalf("subscribing on the page of a locked record: %d %s", code, body)
		}
		var subs []struct{ List, State string }
		e.api("GET", "/api/v1/contacts/"+id+"/lists", "", 200, &subs)
		if len(subs) != 1 || subs[0].List != "Newsletter" || subs[0].State != "subscribed" {
			t.Fatalf("subscriptions of the locked record: %+v", subs)
		}
		e.api("PUT", "/api/v1/contacts/"+id+"/lists/Newsletter", `{"state":"unsubscribed"}`, 200, nil)
		// Stopping does not stop the contact's other rights: the
		// confirmation of an erasure request still reaches them.
		v.post(e.srv.URL+"/p", url.Values{"action": {"erase"}})
		msg = e.smtp.Wait(t, 2)[1]
		e.page("POST", e.srv.URL+confirmLinkRE.FindString(msg.Text), "en")
		var erased struct {
			ErasureRequestedAt *string `json:"erasure_requested_at"`
		}
		e.api("GET", "/api/v1/contacts/"+id, "", 200, &erased)
		if erased.ErasureRequestedAt == nil {
			t.Fatal("a contact who stopped processing could not ask for erasure")
		}
	})
}

// TestEraseMyDataSetsErasureRequested: R10 from the page.
func TestEraseMyDataSetsErasureRequested(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		id, link := pageSetUp(e)
		v := e.visitor()
		v.get(link)
		v.post(e.srv.URL+"/p", url.Values{"action": {"erase"}})
		msg := e.smtp.Wait(t, 1)[0]
		e.page("POST", e.srv.URL+confirmLinkRE.FindString(msg.Text), "en")
		var c struct {
			ErasureRequestedAt *string `json:"erasure_requested_at"`
		}
		e.api("GET", "/api/v1/contacts/"+id, "", 200, &c)
		if c.ErasureRequestedAt == nil {
			t.Fatal("erasure was not requested")
		}
	})
}

// TestRefusedChoicesWriteNothing: a choice the page did not offer, a stale
// consent text, a cross-site post and a post without a session are refused,
// and nothing is written or emailed.
func TestRefusedChoicesWriteNothing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		_, link := pageSetUp(e)
		card := purposeID(e, "Card on file")
		marketing := purposeID(e, "E-marketing")
		newsletter := listID(e, "Newsletter")
		v := e.visitor()
		v.get(link)
		writes := func() int {
			return count(t, db, `SELECT (SELECT count(*) FROM preference_changes) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM consent_records)`)
		}
		before := writes()
		for _, tc := range []struct {
			form url.Values
			code int
			want string
		}{
			{url.Values{"shown": {newsletter}, "list": {newsletter}, "consent." + marketing: {"granted"}, "v." + marketing: {"1"}}, 400, "This choice cannot be made here"},
			{url.Values{"shown": {newsletter}, "list": {newsletter}, "consent." + card: {"maybe"}, "v." + card: {"1"}}, 400, "This choice cannot be made here"},
			{url.Values{"shown": {newsletter}, "list": {newsletter}, "consent." + card: {"withdrawn"}, "v." + card: {"7"}}, 409, "The text of this consent changed"},
			{url.Values{"shown": {newsletter}, "list": {newsletter, "no-such-list"}}, 400, "This choice cannot be made here"},
			{url.Values{"shown": {newsletter}, "list": {newsletter}}, 200, "You did not change anything"},
		} {
			code, body := v.post(e.srv.URL+"/p", tc.form)
			if code != tc.code || !strings.Contains(body, tc.want) || !strings.Contains(body, `role="alert"`) && tc.code != 200 {
				t.Fatalf("%v: %d %s", tc.form, code, body)
			}
		}
		// A post from another site is refused by cross-origin protection.
		if code := v.crossSitePost(e.srv.URL+"/p", url.Values{"optout": {"1"}}); code != 403 {
			t.Fatalf("cross-site post: %d", code)
		}
		// Without a session there is no page to post to.
		if code, body := e.visitor().post(e.srv.URL+"/p", url.Values{"optout": {"1"}}); code != 200 || !strings.Contains(body, "Open the link in your email") {
			t.Fatalf("post without a session: %d %s", code, body)
		}
		if writes() != before {
			t.Fatal("a refused request wrote something")
		}
	})
}

// TestPageAccessAndOffersFollowConditions: R15-R17. A contact outside the
// access condition sees only the email section; a consent is offered only
// to those its condition selects, with its default selection; those who
// gain access are emailed a link once.
func TestPageAccessAndOffersFollowConditions(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.api("POST", "/api/v1/purposes", `{"name":"Card on file","legal_basis":"consent","text":"Keep my card number"}`, 201, nil)
		e.api("POST", "/api/v1/purposes", `{"name":"Share with partners","legal_basis":"consent","text":"Share my details with partners"}`, 201, nil)
		var eu, us, buyer struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"eu@example.com","region":"EU","language":"sv"}`, 201, &eu)
		e.api("POST", "/api/v1/contacts", `{"email":"us@example.com","region":"US"}`, 201, &us)
		e.api("POST", "/api/v1/contacts", `{"email":"buyer@example.com","region":"EU","stage":"ready to buy"}`, 201, &buyer)
		e.api("PUT", "/api/v1/settings/preferences-page", `{"access_condition":"region == \"EU\"","access_email":true,
			"offers":[{"purpose":"Card on file","condition":"stage == \"ready to buy\""},{"purpose":"Share with partners","default_selected":true}],
			"statement":"","policies":[],"footer":{"enabled":false},"allow_stop_processing":false,"allow_erasure":false}`, 200, nil)
		e.api("PUT", "/api/v1/settings/preferences-page", `{"access_condition":"regoin == \"EU\"","access_email":true,"offers":[],"statement":"","policies":[],
			"footer":{"enabled":false},"allow_stop_processing":false,"allow_erasure":false}`, 400, nil)

		// Access emails go to the two EU contacts, once, in their language.
		msgs := e.smtp.Wait(t, 2)
		to := map[string]string{}
		for _, m := range msgs {
			to[m.To[0]] = m.Subject
		}
		if to["eu@example.com"] != "Din sida för integritetsinställningar" || to["buyer@example.com"] != "Your privacy preferences page" {
			t.Fatalf("access emails: %v", to)
		}
		if n, err := e.a.Prefs.AccessSweep(context.Background()); err != nil || n != 0 {
			t.Fatalf("a second sweep emailed %d (%v)", n, err)
		}

		open := func(id string) string {
			var link struct{ URL string }
			e.api("POST", "/api/v1/contacts/"+id+"/preferences-link", "", 201, &link)
			_, body := e.visitor().get(link.URL)
			return body
		}
		usPage, euPage, buyerPage := open(us.ID), open(eu.ID), open(buyer.ID)
		if strings.Contains(usPage, "Share with partners") || strings.Contains(usPage, "Stop processing") || !strings.Contains(usPage, `id="email"`) {
			t.Fatalf("page without access: %s", usPage)
		}
		if !strings.Contains(euPage, "Share with partners") || strings.Contains(euPage, "Card on file") || !strings.Contains(euPage, "Dina samtycken") {
			t.Fatalf("EU page: %s", euPage)
		}
		if !strings.Contains(buyerPage, "Card on file") {
			t.Fatalf("buyer page lacks the card consent: %s", buyerPage)
		}
		// No answer is preselected (R12), whatever the default: it only
		// puts "Yes" first.
		share := purposeID(e, "Share with partners")
		yes, no := `id="c-`+share+`-yes"`, `id="c-`+share+`-no"`
		if !strings.Contains(euPage, yes) || !strings.Contains(euPage, no) || strings.Index(euPage, yes) > strings.Index(euPage, no) {
			t.Fatalf("the answers of a purpose offered with default yes, yes first: %s", euPage)
		}
		if regexp.MustCompile(`name="consent\.` + share + `" value="[a-z]+" checked`).MatchString(euPage) {
			t.Fatalf("an answer is preselected for a contact with no record: %s", euPage)
		}
		// Choosing "yes" is a change, confirmed by email, that records the
		// grant.
		var link struct{ URL string }
		e.api("POST", "/api/v1/contacts/"+eu.ID+"/preferences-link", "", 201, &link)
		v := e.visitor()
		v.get(link.URL)
		if _, body := v.post(e.srv.URL+"/p", url.Values{"consent." + share: {"granted"}, "v." + share: {"1"}}); !strings.Contains(body, "Titta i din e-post") {
			t.Fatalf("choosing yes where the default is yes: %s", body)
		}
		confirm := confirmLinkRE.FindString(e.smtp.Wait(t, 3)[2].Text)
		if confirm == "" {
			t.Fatal("no confirmation link")
		}
		if code, body := e.page("POST", e.srv.URL+confirm, "sv"); code != 200 {
			t.Fatalf("confirming: %d %s", code, body)
		}
		var consents struct {
			Current []struct{ Purpose, State string }
		}
		e.api("GET", "/api/v1/contacts/"+eu.ID+"/consents", "", 200, &consents)
		granted := false
		for _, c := range consents.Current {
			granted = granted || c.Purpose == "Share with partners" && c.State == "granted"
		}
		if !granted {
			t.Fatalf("no grant after confirming: %+v", consents.Current)
		}
		// Now the contact's own answer shows as chosen.
		_, again := v.get(e.srv.URL + "/p")
		if !strings.Contains(again, yes+` name="consent.`+share+`" value="granted" checked`) {
			t.Fatalf("the current state is not shown chosen: %s", again)
		}
		// A purpose without a default lists "No" first, and nothing chosen.
		card := purposeID(e, "Card on file")
		if i, j := strings.Index(buyerPage, `id="c-`+card+`-no"`), strings.Index(buyerPage, `id="c-`+card+`-yes"`); i < 0 || j < i ||
			regexp.MustCompile(`name="consent\.`+card+`" value="[a-z]+" checked`).MatchString(buyerPage) {
			t.Fatalf("a purpose without a default: %s", buyerPage)
		}
	})
}

// TestOneClickUnsubscribe: a marketing email carries List-Unsubscribe and
// List-Unsubscribe-Post (RFC 8058); posting List-Unsubscribe=One-Click to
// it opts the contact out at once, and opening it leads to the page.
func TestOneClickUnsubscribe(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"ola@example.com"}`, 201, &c)
		// Marketing email needs a consent to a marketing purpose.
		e.api("POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"E-marketing","state":"granted","source":"Email"}`, 201, nil)
		err := db.Write(context.Background(), func(tx *store.Tx) error {
			if err := contactstate.SetOptInTx(tx, c.ID, contactstate.DoubleOptIn, time.Now()); err != nil {
				return err
			}
			_, err := mail.Enqueue(tx, mail.Message{ContactID: c.ID, Kind: mail.KindCampaign, Subject: "News",
				Text: "Our news.\n\nUnsubscribe: " + mail.UnsubscribeURL + "\n"}, time.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		msg := e.smtp.Wait(t, 1)[0]
		header := msg.Header.Get("List-Unsubscribe")
		if !strings.HasPrefix(header, "<"+e.srv.URL+"/u/") || msg.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Fatalf("headers: %q %q", header, msg.Header.Get("List-Unsubscribe-Post"))
		}
		link := strings.Trim(header, "<>")
		if !strings.Contains(msg.Text, link) || strings.Contains(msg.Text, mail.UnsubscribeURL) {
			t.Fatalf("body link: %s", msg.Text)
		}
		if n := count(t, db, `SELECT count(*) FROM outbox WHERE text_body LIKE $1`, "%"+link+"%"); n != 0 {
			t.Fatal("the outbox keeps the unsubscribe link")
		}
		// Opening the link leads to the email section of the page.
		v := e.visitor()
		if code, body := v.get(link); code != 200 || v.last.Request.URL.Path != "/p" || !strings.Contains(body, `id="email"`) {
			t.Fatalf("opening the unsubscribe link: %d %s", code, v.last.Request.URL)
		}
		// The one-click post needs its body.
		res, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("x=1"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Fatalf("post without List-Unsubscribe=One-Click: %d", res.StatusCode)
		}
		// RFC 8058 asks for multipart/form-data.
		var mp bytes.Buffer
		mw := multipart.NewWriter(&mp)
		mw.WriteField("List-Unsubscribe", "One-Click")
		mw.Close()
		req, _ := http.NewRequest("POST", link, &mp)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Sec-Fetch-Site", "cross-site") // as a mail provider's fetch might say
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("one-click: %d", res.StatusCode)
		}
		var got struct {
			OptInStatus string `json:"opt_in_status"`
		}
		e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &got)
		if got.OptInStatus != "opt_out_contact" {
			t.Fatalf("after one-click: %s", got.OptInStatus)
		}
		var hist struct {
			History []struct {
				To       string
				Evidence struct{ Method string }
			}
		}
		e.api("GET", "/api/v1/contacts/"+c.ID+"/opt-in", "", 200, &hist)
		if last := hist.History[len(hist.History)-1]; last.To != "opt_out_contact" || last.Evidence.Method != "unsubscribe_link" {
			t.Fatalf("opt-in history: %+v", hist.History)
		}
	})
}

// TestUserEmailCarriesTheFooter: an email written by a user gets the
// operator's footer with the contact's personal link, which opens the page.
func TestUserEmailCarriesTheFooter(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"per@example.com"}`, 201, &c)
		e.api("PUT", "/api/v1/settings/preferences-page", `{"access_condition":"","offers":[],"statement":"","policies":[],"access_email":false,"allow_stop_processing":false,"allow_erasure":false,
			"footer":{"enabled":true,"text":"See what we keep about you.","link_text":"Your privacy preferences"}}`, 200, nil)
		e.api("POST", "/api/v1/contacts/"+c.ID+"/emails", `{"subject":"Your order","text":"It ships today."}`, 202, nil)
		e.api("POST", "/api/v1/contacts/"+c.ID+"/emails", `{"subject":"","text":"x"}`, 400, nil)
		msg := e.smtp.Wait(t, 1)[0]
		if !strings.Contains(msg.Text, "It ships today.") || !strings.Contains(msg.Text, "See what we keep about you.") || !strings.Contains(msg.Text, "Your privacy preferences: "+e.srv.URL+"/p/") {
			t.Fatalf("email: %s", msg.Text)
		}
		v := e.visitor()
		if code, body := v.get(msg.Links()[0]); code != 200 || !strings.Contains(body, "Your privacy preferences") {
			t.Fatalf("footer link: %d %s", code, body)
		}
	})
}

// waitFor waits until cond holds, for work done by the background workers
// that leaves no other trace to wait on (a suppressed email is never
// delivered), failing after 30 seconds.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		<-tick.C
	}
}
