package app_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestPreferencesPageMakesRequests: "Erase my data" and "Stop processing",
// confirmed by email, each record a verified request from the preferences
// page in the same transaction as the change, and the privacy address is
// emailed over SMTP with a link to the request and no personal data. The
// restriction is done at once, since the lock applies at once; the erasure
// waits for the operator. The ledger verifies.
func TestPreferencesPageMakesRequests(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.api("PATCH", "/api/v1/settings", `{"privacy_address":"privacy@acme.example"}`, 200, nil)
		id, link := pageSetUp(e)
		v := e.visitor()
		v.get(link)
		confirm := func(action string, n int) {
			t.Helper()
			v.post(e.srv.URL+"/p", url.Values{"action": {action}})
			for _, m := range e.smtp.Wait(t, n) {
				if l := confirmLinkRE.FindString(m.Text); l != "" && m.To[0] == "lena@example.com" && strings.Contains(m.Text, map[string]string{"erase": "Erase", "stop": "Stop"}[action]) {
					e.page("POST", e.srv.URL+l, "en")
					return
				}
			}
			t.Fatalf("no confirmation email for %s", action)
		}
		toOperator := func(msgs []mailtest.Message, requestID string) {
			t.Helper()
			for _, m := range msgs {
				if m.To[0] == "privacy@acme.example" && strings.Contains(m.Text, "/admin/requests/"+requestID) {
					if strings.Contains(m.Text+m.HTML+m.Subject, "lena") {
						t.Fatalf("the operator's email names the contact: %s", m.Text)
					}
					return
				}
			}
			t.Fatalf("no email to the privacy address about %s", requestID)
		}

		confirm("erase", 1)
		var page api.RequestPage
		e.api("GET", "/api/v1/requests?contact="+id, "", 200, &page)
		if len(page.Items) != 1 {
			t.Fatalf("after erase: %d requests", len(page.Items))
		}
		erasure := page.Items[0]
		if erasure.Kind != requests.KindErasure || erasure.Channel != requests.ChannelPreferences || erasure.Status != requests.StatusVerified ||
			erasure.Actor.Kind != "contact" || erasure.ClosedAt != nil {
			t.Fatalf("erasure request: %+v", erasure)
		}
		toOperator(e.smtp.Wait(t, 2), erasure.ID)

		confirm("stop", 3)
		e.api("GET", "/api/v1/requests?contact="+id+"&kind=restriction", "", 200, &page)
		if len(page.Items) != 1 {
			t.Fatalf("after stop: %d restriction requests", len(page.Items))
		}
		restriction := page.Items[0]
		if restriction.Status != requests.StatusDone || restriction.ClosedAt == nil || restriction.Channel != requests.ChannelPreferences {
			t.Fatalf("restriction request: %+v", restriction)
		}
		toOperator(e.smtp.Wait(t, 4), restriction.ID)
		// Created and done: two ledger events for the restriction, one for
		// the erasure.
		if n := count(t, db, `SELECT count(*) FROM ledger_events WHERE kind = 'request'`); n != 3 {
			t.Fatalf("%d request events in the ledger, want 3", n)
		}
		e.ledgerVerifies()
	})
}

// TestRequestForms posts every form of a request's page as a browser
// without JavaScript would, on both databases: each success redirects to
// the page with its notice, each refusal shows the error next to its field
// and changes nothing; an address-only request is linked to the contact
// that has the address; only users who handle requests see the pages.
func TestRequestForms(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"noor@example.com"}`, 201, &c)
		var r requests.Request
		e.api("POST", "/api/v1/requests", `{"kind":"rectification","address":"Noor@example.com"}`, 201, &r)
		e.api("GET", "/api/v1/requests/"+r.ID, "", 200, &r) // as stored, to the microsecond
		page := e.srv.URL + "/admin/requests/" + r.ID
		post := func(action string, form url.Values, wantCode int, want string) string {
			t.Helper()
			code, body := admin.post(page+"/"+action, form)
			if code != wantCode || !strings.Contains(body, want) {
				t.Fatalf("%s %v: %d, want %d with %q: %s", action, form, code, wantCode, want, body)
			}
			if code == 200 && v(admin) != page+"?done="+action {
				t.Fatalf("%s did not redirect to the page: %s", action, v(admin))
			}
			return body
		}
		unchanged := func() {
			t.Helper()
			var now requests.Request
			e.api("GET", "/api/v1/requests/"+r.ID, "", 200, &now)
			if !now.UpdatedAt.Equal(r.UpdatedAt) {
				t.Fatalf("a refused form changed the request: %+v", now)
			}
		}
		// The page finds the contact with the address and offers it.
		if _, body := admin.get(page); !strings.Contains(body, `value="`+c.ID+`"`) || !strings.Contains(body, "a contact has this address") {
			t.Fatalf("the page does not offer the contact with the address: %s", body)
		}
		post("extend", url.Values{"months": {"3"}, "extend_reason": {"many"}}, 400, `id="months-error"`)
		post("extend", url.Values{"months": {"1"}, "extend_reason": {" "}}, 400, `id="extend_reason-error"`)
		post("status", url.Values{"status": {"partly_done"}}, 400, `id="reason-error"`)
		post("status", url.Values{"status": {"lost"}}, 400, `id="status-error"`)
		post("contact", url.Values{"contact": {"nobody@example.com"}}, 400, `id="contact-error"`)
		post("contact", url.Values{"contact": {"no-such-id"}}, 422, `id="contact-error"`)
		unchanged()
		post("note", url.Values{"note": {"Wants the surname spelled Al-Sayed"}}, 200, "Note saved.")
		post("extend", url.Values{"months": {"2"}, "extend_reason": {"Records on paper in two offices"}}, 200, "Due date extended.")
		post("extend", url.Values{"months": {"1"}, "extend_reason": {"again"}}, 409, "already extended")
		post("contact", url.Values{"contact": {"NOOR@example.com"}}, 200, "Linked to the contact.")
		post("status", url.Values{"status": {"done"}}, 200, "Status changed.")
		r = requests.Request{ID: r.ID}
		e.api("GET", "/api/v1/requests/"+r.ID, "", 200, &r)
		if r.ContactID != c.ID || r.Status != requests.StatusDone || r.Note == "" || r.ExtendedAt == nil || r.Address != "" {
			t.Fatalf("after the forms: %+v", r)
		}
		// A new request for an address no contact has stays about the address.
		code, body := admin.post(e.srv.URL+"/admin/requests", url.Values{"kind": {"access"}, "contact": {"unknown@example.org"}})
		if code != 200 || !strings.Contains(body, "Request recorded.") || !strings.Contains(body, "unknown@example.org (no contact linked yet)") {
			t.Fatalf("new request by address: %d %s", code, body)
		}
		if code, body := admin.post(e.srv.URL+"/admin/requests", url.Values{"kind": {"everything"}, "contact": {c.ID}}); code != 400 || !strings.Contains(body, `id="kind-error"`) {
			t.Fatalf("new request of an unknown kind: %d %s", code, body)
		}
		if code, body := admin.post(e.srv.URL+"/admin/requests", url.Values{"kind": {"access"}, "contact": {""}}); code != 400 || !strings.Contains(body, `id="contact-error"`) {
			t.Fatalf("new request about nobody: %d %s", code, body)
		}
		if code, _ := admin.get(e.srv.URL + "/admin/requests/nope"); code != 404 {
			t.Fatalf("an unknown request: %d", code)
		}
		// An agent neither sees nor reaches the requests.
		agent := e.signIn(admin, "agent@acme.example", "agent")
		if _, body := agent.get(e.srv.URL + "/admin/"); strings.Contains(body, "/admin/requests") {
			t.Fatal("an agent is shown the requests")
		}
		if code, _ := agent.get(e.srv.URL + "/admin/requests"); code != 403 {
			t.Fatalf("an agent reaches the requests: %d", code)
		}
		if code, _ := agent.post(page+"/note", url.Values{"note": {"x"}}); code != 403 {
			t.Fatalf("an agent changes a request: %d", code)
		}
		if _, body := agent.get(e.srv.URL + "/admin/contacts/" + c.ID); strings.Contains(body, `id="requests"`) {
			t.Fatal("an agent sees the record's requests")
		}
	})
}

// v is where a visitor ended up after redirects.
func v(x *visitor) string { return x.last.Request.URL.String() }

// TestPrivacySettingsForm: the settings page saves the privacy address, the
// erasure keywords, the grace period and the fields kept after erasure,
// and refuses a bad address next to its field, saving nothing.
func TestPrivacySettingsForm(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		form := url.Values{"privacy_address": {"privacy@acme.example"}, "erasure_keywords": {"delete, Wissen  radera"},
			"retention_grace_days": {"14"}, "kept_after_erasure_shown": {"1"}, "kept_after_erasure": {"country"}}
		if code, body := admin.post(e.srv.URL+"/admin/settings", form); code != 200 || !strings.Contains(body, "Settings saved.") {
			t.Fatalf("save: %d %s", code, body)
		}
		var st struct {
			PrivacyAddress     string   `json:"privacy_address"`
			ErasureKeywords    []string `json:"erasure_keywords"`
			RetentionGraceDays int      `json:"retention_grace_days"`
			KeptAfterErasure   []string `json:"kept_after_erasure"`
		}
		e.api("GET", "/api/v1/settings", "", 200, &st)
		if st.PrivacyAddress != "privacy@acme.example" || strings.Join(st.ErasureKeywords, " ") != "DELETE WISSEN RADERA" && strings.Join(st.ErasureKeywords, " ") != "delete Wissen radera" ||
			st.RetentionGraceDays != 14 || strings.Join(st.KeptAfterErasure, " ") != "country" {
			t.Fatalf("saved: %+v", st)
		}
		form.Set("privacy_address", "Privacy <privacy@acme.example>")
		form.Set("retention_grace_days", "20")
		if code, body := admin.post(e.srv.URL+"/admin/settings", form); code != 400 || !strings.Contains(body, `id="privacy_address-error"`) {
			t.Fatalf("bad address: %d %s", code, body)
		}
		e.api("GET", "/api/v1/settings", "", 200, &st)
		if st.RetentionGraceDays != 14 {
			t.Fatal("a refused settings form saved something")
		}
		// Unticking every box keeps nothing after erasure.
		form.Set("privacy_address", "")
		form.Del("kept_after_erasure")
		admin.post(e.srv.URL+"/admin/settings", form)
		e.api("GET", "/api/v1/settings", "", 200, &st)
		if len(st.KeptAfterErasure) != 0 || st.PrivacyAddress != "" {
			t.Fatalf("after unticking: %+v", st)
		}
	})
}
