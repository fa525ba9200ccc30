package webform_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webform"
	"github.com/consentry/consentry/internal/webform/webformtest"
)

func base() webform.Definition {
	return webform.Definition{Name: "contact us", Title: "Contact us", PrivacyPolicyURL: "https://acme.example/privacy",
		Fields: []webform.Field{{Name: "first_name"}}}
}

// TestDefinitionValidation refuses what R12 forbids (pre-checked boxes, no
// privacy policy link) and what cannot work, naming the field by its path.
func TestDefinitionValidation(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := webformtest.New(db)
		ctx := context.Background()
		private, public := "Staff only", "Offers"
		no := false
		if _, err := s.Lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: &private, Public: &no}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: &public}); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, field string
			change      func(d *webform.Definition)
		}{
			{"no privacy link", "privacy_policy_url", func(d *webform.Definition) { d.PrivacyPolicyURL = "" }},
			{"privacy link over http", "privacy_policy_url", func(d *webform.Definition) { d.PrivacyPolicyURL = "http://acme.example/privacy" }},
			{"privacy link not a URL", "privacy_policy_url", func(d *webform.Definition) { d.PrivacyPolicyURL = "privacy.html" }},
			{"pre-checked consent", "consents[1].checked", func(d *webform.Definition) {
				d.Consents = []webform.ConsentBox{{Purpose: "Sales and service"}, {Purpose: "E-marketing", Checked: true}}
			}},
			{"pre-checked marketing", "marketing.checked", func(d *webform.Definition) { d.Marketing = &webform.MarketingBox{Checked: true} }},
			{"pre-checked list", "lists[0].checked", func(d *webform.Definition) { d.Lists = []webform.ListBox{{List: "Offers", Checked: true}} }},
			{"unknown purpose", "consents[0].purpose", func(d *webform.Definition) { d.Consents = []webform.ConsentBox{{Purpose: "Nope"}} }},
			{"purpose twice", "consents[0].purpose", func(d *webform.Definition) {
				d.Marketing, d.Consents = &webform.MarketingBox{}, []webform.ConsentBox{{Purpose: "E-marketing"}}
			}},
			{"private list", "lists[0].list", func(d *webform.Definition) { d.Lists = []webform.ListBox{{List: "Staff only"}} }},
			{"unknown field", "fields[1].name", func(d *webform.Definition) { d.Fields = append(d.Fields, webform.Field{Name: "shoe_size"}) }},
			{"field not for forms", "fields[1].name", func(d *webform.Definition) { d.Fields = append(d.Fields, webform.Field{Name: "opt_in_status"}) }},
			{"no title", "title", func(d *webform.Definition) { d.Title = " " }},
			{"other language", "language", func(d *webform.Definition) { d.Language = "de" }},
			{"redirect over http", "redirect_url", func(d *webform.Definition) { d.RedirectURL = "http://acme.example/thanks" }},
		}
		for _, c := range cases {
			d := base()
			c.change(&d)
			_, err := s.Create(ctx, audit.Actor{Kind: "user"}, d)
			if e := errs.As(err); e == nil || e.Field != c.field {
				t.Errorf("%s: got %v, want an error on %s", c.name, err, c.field)
			} else if c.field == "consents[1].checked" && !strings.Contains(e.Message, "never pre-checked") {
				t.Errorf("%s: message %q does not say why", c.name, e.Message)
			}
		}
		var n int
		db.Read.QueryRow(`SELECT count(*) FROM webforms`).Scan(&n)
		if n != 0 {
			t.Fatalf("refused definitions stored %d forms", n)
		}

		d := base()
		d.PrivacyPolicyURL = "http://localhost:3000/privacy"
		d.Marketing = &webform.MarketingBox{}
		d.Lists = []webform.ListBox{{List: "offers"}}
		w, err := s.Create(ctx, audit.Actor{Kind: "user"}, d)
		if err != nil {
			t.Fatal(err)
		}
		if w.Fields[0].Name != "email" || !w.Fields[0].Required || w.Marketing.Purpose != optin.EMarketing || w.Lists[0].Label != "Offers" {
			t.Fatalf("stored definition: %+v", w.Definition)
		}
		if _, err := s.Create(ctx, audit.Actor{Kind: "user"}, d); !errs.Is(err, errs.KindConflict) {
			t.Fatalf("same name again: %v", err)
		}
		w2, err := s.Update(ctx, audit.Actor{Kind: "user"}, "CONTACT US", []byte(`{"marketing": null, "title": "Write to us"}`))
		if err != nil || w2.Marketing != nil || w2.Title != "Write to us" || len(w2.Lists) != 1 {
			t.Fatalf("patch: %+v %v", w2, err)
		}
		if _, err := s.Update(ctx, audit.Actor{Kind: "user"}, w.ID, []byte(`{"consents": [{"purpose": "E-marketing", "checked": true}]}`)); errs.As(err) == nil || errs.As(err).Field != "consents[0].checked" {
			t.Fatalf("patch that pre-checks: %v", err)
		}
		if _, err := s.Update(ctx, audit.Actor{Kind: "user"}, w.ID, []byte(`{"colour": "red"}`)); errs.As(err) == nil || errs.As(err).Field != "colour" {
			t.Fatalf("patch with an unknown key: %v", err)
		}
		snippet, err := s.Snippet(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`<form method="post" action="https://consent.example/f/` + w.ID + `"`, `href="http://localhost:3000/privacy"`,
			`<div hidden>`, `name="website"`} {
			if !strings.Contains(snippet, want) {
				t.Errorf("snippet lacks %s:\n%s", want, snippet)
			}
		}
		for _, never := range []string{"<script", " checked", "style="} {
			if strings.Contains(snippet, never) {
				t.Errorf("snippet has %q:\n%s", never, snippet)
			}
		}
		if err := s.Delete(ctx, audit.Actor{Kind: "user"}, w.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, w.ID); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

func post(email string, extra ...string) url.Values {
	v := url.Values{"email": {email}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Add(extra[i], extra[i+1])
	}
	return v
}

// TestSubmission writes the lead, the consent records with their evidence,
// the opt-in status, the double opt-in email and the subscription in one
// go; a known address gets the same result, and nothing of it changes the
// contact: it is held, and the address is emailed a link to confirm it.
func TestSubmission(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := webformtest.New(db)
		w := webformtest.Form(t, s)
		ctx := context.Background()
		sub := webform.Submission{Form: post("Anna@Example.com", "first_name", "Anna", "marketing.checked", "yes", "marketing.version", "1",
			"consents[0].checked", "yes", "lists[0].checked", "yes"), IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (test)"}
		first, err := s.Submit(ctx, w.ID, sub)
		if err != nil {
			t.Fatal(err)
		}
		people, _, err := s.Contacts.List(ctx, contactListQuery("anna@example.com"))
		if err != nil || len(people) != 1 {
			t.Fatalf("contacts: %v %v", people, err)
		}
		c := people[0]
		if c.Kind != "lead" || c.FirstName != "Anna" || c.Language != "en" || c.OptInStatus != contactstate.SingleOptInWebform {
			t.Fatalf("lead: %+v", c)
		}
		hist, err := s.Consent.History(ctx, c.ID)
		if err != nil || len(hist) != 2 {
			t.Fatalf("history: %+v %v", hist, err)
		}
		for _, r := range hist {
			if r.State != consent.StateGranted || r.Source != "Web form" || r.Evidence.Method != consent.MethodWebform ||
				r.Evidence.IP != "203.0.113.7" || r.Evidence.UserAgent != "Mozilla/5.0 (test)" || r.Actor.Kind != consent.ActorContact || r.TextVersion != 1 || r.TextLanguage != "en" {
				t.Fatalf("record: %+v", r)
			}
		}
		invs, err := s.OptIn.Invitations(ctx, c.ID)
		if err != nil || len(invs) != 1 || invs[0].Trigger != optin.TriggerWebform {
			t.Fatalf("invitations: %+v %v", invs, err)
		}
		var queued int
		db.Read.QueryRow(`SELECT count(*) FROM outbox WHERE contact_id = $1 AND kind = 'double_opt_in' AND status = 'queued'`, c.ID).Scan(&queued)
		subs, _ := lists.Subscriptions(ctx, db.Read, c.ID)
		if queued != 1 || len(subs) != 1 || subs[0].State != lists.Subscribed || subs[0].Source != lists.SourceWebform {
			t.Fatalf("queued %d, subscriptions %+v", queued, subs)
		}
		if held, err := s.HeldPosts(ctx, c.ID); err != nil || len(held) != 0 {
			t.Fatalf("a new address's post was held: %+v %v", held, err)
		}

		// The same address again, in another case, with only a last name:
		// held, and the contact as it was.
		before := webformtest.Rows(t, db)
		again := webform.Submission{Form: post("ANNA@example.com", "first_name", "", "last_name", "Berg"), IP: "203.0.113.8"}
		second, err := s.Submit(ctx, w.ID, again)
		if err != nil {
			t.Fatal(err)
		}
		if *first != *second {
			t.Fatalf("known address answered %+v, new one %+v", second, first)
		}
		c2, _ := s.Contacts.Get(ctx, c.ID)
		if c2.FirstName != "Anna" || c2.LastName != "" || c2.Email != "Anna@Example.com" || !c2.UpdatedAt.Equal(c.UpdatedAt) {
			t.Fatalf("after the second post: %+v", c2)
		}
		if hist, _ := s.Consent.History(ctx, c.ID); len(hist) != 2 {
			t.Fatalf("the second post recorded something: %d records", len(hist))
		}
		held, err := s.HeldPosts(ctx, c.ID)
		if err != nil || len(held) != 1 || held[0].Status != webform.StatusPending || held[0].Webform != w.ID {
			t.Fatalf("held posts: %+v %v", held, err)
		}
		// The held post and its email, nothing else.
		if after := webformtest.Rows(t, db); after != before+2 {
			t.Fatalf("the known address's post wrote %d rows, want 2", after-before)
		}
		var kind, body, links string
		if err := db.Read.QueryRow(`SELECT kind, text_body, links FROM outbox WHERE subject_id = $1`, held[0].ID).Scan(&kind, &body, &links); err != nil {
			t.Fatal(err)
		}
		if kind != "confirmation" || !strings.Contains(body, "https://consent.example/f/confirm/link-") || !strings.Contains(body, "Last name") ||
			strings.Contains(body, "Berg") || !strings.Contains(body, "Hello Anna,") || !strings.Contains(links, "webform_confirmation") {
			t.Fatalf("confirmation email (%s):\n%s", kind, body)
		}
	})
}

// TestKnownAddressPostHoldsTheOptOutLift: R1 now means the contact, by the
// link emailed to them: a post with the marketing box about a contact who
// opted out changes nothing, invites nothing, and emails the double opt-in
// email with the link that would apply it.
func TestKnownAddressPostHoldsTheOptOutLift(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := webformtest.New(db)
		w := webformtest.Form(t, s)
		ctx := context.Background()
		if _, err := s.Submit(ctx, w.ID, webform.Submission{Form: post("bo@example.com")}); err != nil {
			t.Fatal(err)
		}
		people, _, _ := s.Contacts.List(ctx, contactListQuery("bo@example.com"))
		id := people[0].ID
		if _, err := s.Consent.SetOptIn(ctx, id, consent.OptInInput{Status: contactstate.OptOutContact, Channel: consent.ChannelContact,
			Actor: consent.Actor{Kind: consent.ActorContact}, Evidence: consent.Evidence{Method: consent.MethodPreferencesPage}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Submit(ctx, w.ID, webform.Submission{Form: post("bo@example.com", "marketing.checked", "yes")}); err != nil {
			t.Fatal(err)
		}
		c, _ := s.Contacts.Get(ctx, id)
		invs, _ := s.OptIn.Invitations(ctx, id)
		if c.OptInStatus != contactstate.OptOutContact || len(invs) != 0 {
			t.Fatalf("after a post with the marketing box: %s, %d invitations", c.OptInStatus, len(invs))
		}
		var subject, body string
		if err := db.Read.QueryRow(`SELECT subject, text_body FROM outbox WHERE contact_id = $1 AND kind = 'confirmation'`, id).Scan(&subject, &body); err != nil {
			t.Fatal(err)
		}
		if subject != "Please confirm your subscription" || !strings.Contains(body, "/f/confirm/link-") {
			t.Fatalf("email %q:\n%s", subject, body)
		}
	})
}

// TestSubmissionsThatWriteNothing: a honeypot hit, a limited address and a
// contact who stopped processing get the ordinary result and write
// nothing; a post with errors is refused with every error named and
// writes nothing.
func TestSubmissionsThatWriteNothing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := webformtest.New(db)
		w := webformtest.Form(t, s)
		ctx := context.Background()
		if _, err := s.Submit(ctx, w.ID, webform.Submission{Form: post("cy@example.com")}); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			k, err := contactstate.LoadByEmail(tx, "cy@example.com")
			if err != nil {
				return err
			}
			return contactstate.StopProcessingTx(tx, k.ID, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		want, _ := s.Submit(ctx, w.ID, webform.Submission{Form: post("dee@example.com")})
		before := webformtest.Rows(t, db)
		taken := []struct {
			name string
			sub  webform.Submission
		}{
			{"honeypot", webform.Submission{Form: post("eve@example.com", "website", "http://spam.example", "marketing.checked", "yes")}},
			{"limited address", webform.Submission{Form: post("Fay@example.com", "marketing.checked", "yes"),
				AllowAddress: func(key string) bool { return key != "fay@example.com" }}},
			{"processing stopped", webform.Submission{Form: post("CY@example.com", "first_name", "Cy", "marketing.checked", "yes", "consents[0].checked", "yes")}},
		}
		for _, c := range taken {
			got, err := s.Submit(ctx, w.ID, c.sub)
			if err != nil || *got != *want {
				t.Errorf("%s: %+v %v, want %+v", c.name, got, err, want)
			}
		}
		refused := []struct {
			name   string
			form   url.Values
			fields []string
		}{
			{"no email", url.Values{"first_name": {"Gus"}}, []string{"email"}},
			{"bad email", post("not an address", "marketing.checked", "yes"), []string{"email"}},
			{"email with a zero-width space", post("\u200blen@example.com", "marketing.checked", "yes"), []string{"email"}},
			{"email with a soft hyphen", post("le\u00adn@example.com", "marketing.checked", "yes"), []string{"email"}},
			{"version that does not exist", post("hal@example.com", "consents[0].checked", "yes", "consents[0].version", "7"), []string{"consents[0].version"}},
			{"checkbox value", post("ida@example.com", "marketing.checked", "on"), []string{"marketing.checked"}},
			{"field twice", post("jo@example.com", "email", "kim@example.com", "first_name", "\x00"), []string{"email", "first_name"}},
		}
		for _, c := range refused {
			_, err := s.Submit(ctx, w.ID, webform.Submission{Form: c.form})
			var inv *webform.Invalid
			if !errors.As(err, &inv) || len(inv.Errors) != len(c.fields) {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			for _, f := range c.fields {
				if inv.Errors[f] == nil {
					t.Errorf("%s: no error on %s: %v", c.name, f, err)
				}
			}
		}
		if after := webformtest.Rows(t, db); after != before {
			t.Fatalf("%d rows written", after-before)
		}
		if _, err := s.Submit(ctx, "no such form", webform.Submission{Form: post("x@example.com")}); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("unknown form: %v", err)
		}
	})
}

// TestTextVersionShown records the consent text version the form showed,
// not the one current when the post arrives.
func TestTextVersionShown(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := webformtest.New(db)
		w := webformtest.Form(t, s)
		ctx := context.Background()
		text := "We may share your name with our partners, who are listed on our site."
		if _, err := s.Consent.UpdatePurpose(ctx, audit.Actor{Kind: "user"}, w.Consents[0].Purpose, consent.PurposeInput{Text: &text}); err != nil {
			t.Fatal(err)
		}
		for email, version := range map[string]string{"old@example.com": "1", "new@example.com": ""} {
			if _, err := s.Submit(ctx, w.ID, webform.Submission{Form: post(email, "consents[0].checked", "yes", "consents[0].version", version)}); err != nil {
				t.Fatal(err)
			}
		}
		var versions string
		rows, err := db.Read.Query(`SELECT r.text_version FROM consent_records r JOIN contacts c ON c.id = r.contact_id ORDER BY c.email_key`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			rows.Scan(&v)
			versions += string(rune('0' + v))
		}
		if versions != "21" { // new@ then old@
			t.Fatalf("text versions recorded: %q", versions)
		}
		view, err := s.Page(ctx, w.ID, "")
		if err != nil || view.Consents[0].Version != 2 || view.Consents[0].Text != text {
			t.Fatalf("page shows %+v %v", view.Consents, err)
		}
	})
}

// TestInvitationOfANewLead: the double opt-in email of a lead the
// submission created (written without reading the lead back) goes to its
// contact, in the form's language, with the E-marketing text current when
// it is written, and its invitation records that text's version; a known
// contact gets the double opt-in email of a held post instead, in their own
// language, with the text the form showed, and no invitation.
func TestInvitationOfANewLead(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := webformtest.New(db)
		w := webformtest.Form(t, s)
		ctx := context.Background()
		text := "Nyheter och erbjudanden från oss, högst en gång i veckan."
		if _, err := s.Consent.UpdatePurpose(ctx, audit.Actor{Kind: "user"}, optin.EMarketing, consent.PurposeInput{Text: &text}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Contacts.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("known@example.com"), FirstName: ptr("Kim"),
			Language: ptr("nl")}}); err != nil {
			t.Fatal(err)
		}
		for _, email := range []string{"Nils@Example.com", "known@example.com"} {
			if _, err := s.Submit(ctx, w.ID, webform.Submission{Lang: "sv", Form: post(email, "first_name", "Nils",
				"marketing.checked", "yes", "marketing.version", "2")}); err != nil {
				t.Fatal(err)
			}
			people, _, err := s.Contacts.List(ctx, contactListQuery(strings.ToLower(email)))
			if err != nil || len(people) != 1 {
				t.Fatalf("%s: %v %v", email, people, err)
			}
			c := people[0]
			invs, err := s.OptIn.Invitations(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var lang, body string
			if err := db.Read.QueryRow(`SELECT language, text_body FROM outbox WHERE contact_id = $1 AND kind IN ('double_opt_in', 'confirmation')`, c.ID).
				Scan(&lang, &body); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(body, text) {
				t.Fatalf("%s: email in %s:\n%s", email, lang, body)
			}
			if c.Email == "Nils@Example.com" {
				if len(invs) != 1 || invs[0].TextVersion != 2 || invs[0].Status != optin.StatusInvited || lang != "sv" ||
					!strings.Contains(body, "Nils") || !strings.Contains(body, "/confirm/") {
					t.Fatalf("the new lead: invitations %+v, email in %q:\n%s", invs, lang, body)
				}
				continue
			}
			// Greeted by the name on file, not the one posted.
			if len(invs) != 0 || lang != "nl" || !strings.Contains(body, "Beste Kim,") || strings.Contains(body, "Nils") || !strings.Contains(body, "/f/confirm/") {
				t.Fatalf("the known contact: invitations %+v, email in %q:\n%s", invs, lang, body)
			}
		}
	})
}

func contactListQuery(email string) contact.ListQuery { return contact.ListQuery{Email: email} }

func ptr[T any](v T) *T { return &v }
