package campaign_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

// fixture is the services a campaign needs, over one database, with email
// going to a real SMTP server in the test.
type fixture struct {
	t      testing.TB
	db     *store.DB
	cs     *consent.Service
	people *contact.Service
	lists  *lists.Service
	svc    *campaign.Service
	sender *campaign.Sender
	smtp   *mailtest.Server
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	f := &fixture{t: t, db: db, smtp: mailtest.Start(t)}
	f.cs = consent.NewService(db)
	f.people = contact.NewService(db, f.cs)
	f.lists = &lists.Service{DB: db, Now: time.Now}
	f.people.Lists = func(ctx context.Context) (filter.Lists, error) { return f.lists.Names(ctx) }
	f.svc = &campaign.Service{DB: db, Now: time.Now, Purposes: f.cs, Lists: f.lists,
		Condition: func(ctx context.Context, src string) (*filter.Condition, error) {
			return f.people.Condition(ctx, src, false)
		}}
	tr, err := mail.NewSMTP(f.smtp.URL(), 4) // the default of CONSENTRY_SMTP_CONNECTIONS
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	f.sender = &campaign.Sender{Service: f.svc, Links: &campaign.Links{DB: db, BaseURL: "https://consent.example"}, Transport: tr,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), From: "Acme <news@acme.example>", Domain: "acme.example",
		Lease: time.Minute, Budget: 25 * time.Millisecond, Poll: time.Second} // as the app
	return f
}

// person creates a contact with an opt-in status and, when marketing is
// set, a granted E-marketing consent.
func (f *fixture) person(email, first, lang, status string, marketing bool) string {
	f.t.Helper()
	ctx := context.Background()
	in := contact.NewContact{Input: contact.Input{Email: ptr(email), FirstName: ptr(first), Language: ptr(lang)},
		Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: "api"}}
	if marketing {
		in.Consents = []consent.RecordInput{{Purpose: "E-marketing", State: consent.StateGranted, Source: "API",
			Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: "api"}}}
	}
	c, err := f.people.Create(ctx, in)
	if err != nil {
		f.t.Fatal(err)
	}
	// Set-up only: a status such as double_opt_in is reached through its
	// own flow, which other packages test.
	if err := f.db.Write(ctx, func(tx *store.Tx) error { return contactstate.SetOptInTx(tx, c.ID, status, time.Now()) }); err != nil {
		f.t.Fatal(err)
	}
	return c.ID
}

func (f *fixture) subscribe(contactID, list, status string) {
	f.t.Helper()
	if _, err := f.lists.Set(context.Background(), contactID, list, status, lists.SourceAPI, nil); err != nil {
		f.t.Fatal(err)
	}
}

// startAll creates a campaign to every contact with an address and starts
// sending it; f.run then sends it.
func (f *fixture) startAll() *campaign.Campaign {
	f.t.Helper()
	ctx := context.Background()
	c, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("All"), Condition: ptr(`email != ""`),
		Variants: &[]campaign.Variant{{Language: "en", Subject: "Hi", HTML: "<p>Hi</p>"}}})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.Send(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// pausedWithAudience makes Anna and Bo, reachable, starts a campaign to
// everyone, pauses it (checking a paused campaign sends nothing) and fixes
// its audience, so that a test can change Bo between the audience and the
// sending. It returns the campaign and Bo's id.
func (f *fixture) pausedWithAudience() (*campaign.Campaign, string) {
	f.t.Helper()
	ctx := context.Background()
	f.person("anna@example.com", "Anna", "en", contactstate.DoubleOptIn, true)
	bo := f.person("bo@example.com", "Bo", "en", contactstate.DoubleOptIn, true)
	c := f.startAll()
	if _, err := f.svc.Pause(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
		f.t.Fatal(err)
	}
	f.run()
	if n := f.smtp.Received(); n != 0 {
		f.t.Fatalf("a paused campaign sent %d", n)
	}
	if a, err := f.svc.Resolve(ctx, c.ID); err != nil || a.Recipients != 2 {
		f.t.Fatalf("resolve: %+v %v", a, err)
	}
	return c, bo
}

func (f *fixture) run() {
	f.t.Helper()
	if _, err := f.sender.RunDue(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// TestCampaignAudienceAndSending: the audience excludes each contact for
// its reason, the preview counts them without writing, and sending
// reaches exactly the others, each in their language, with the list
// headers, a per-message Return-Path and their own unsubscribe link.
func TestCampaignAudienceAndSending(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		if _, err := f.lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("News")}); err != nil {
			t.Fatal(err)
		}
		anna := f.person("anna@example.com", "Anna", "sv-SE", contactstate.DoubleOptIn, true) // reads the sv variant
		bo := f.person("bo@example.com", "Bo", "en", contactstate.DoubleOptIn, true)
		cleo := f.person("cleo@example.com", "Cleo", "en", contactstate.SingleOptInUser, true)
		dan := f.person("dan@example.com", "Dan", "nl", contactstate.DoubleOptIn, false)
		eva := f.person("eva@example.com", "Eva", "en", contactstate.OptOutContact, true)
		finn := f.person("finn@example.com", "Finn", "en", contactstate.DoubleOptIn, true)
		f.person("gus@example.com", "Gus", "en", contactstate.DoubleOptIn, true) // not on the list
		for _, id := range []string{anna, bo, cleo, dan, eva} {
			f.subscribe(id, "News", lists.Subscribed)
		}
		f.subscribe(finn, "News", lists.Unsubscribed)

		_, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("Spring"), Lists: &[]string{"News"},
			Variants: &[]campaign.Variant{{Language: "en", Subject: "Hello {{first_name}}", HTML: `<p>Hi {{ first_name }}, see <a href="https://acme.example/spring">spring</a>.</p><p><a href="{{unsubscribe_url}}">Leave</a></p>`},
				{Language: "sv", Subject: "Hej {{first_name}}", HTML: `<p>Hej {{first_name}}</p>`}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("Bad"), Lists: &[]string{"News"},
			Variants: &[]campaign.Variant{{Language: "en", Subject: "Hi {{firstname}}", HTML: "<p>x</p>"}}})
		if e := errs.As(err); e == nil || e.Field != "variants[0].subject" || !strings.Contains(e.Message, "{{firstname}}") {
			t.Fatalf("an unknown tag: %v", err)
		}
		all, err := f.svc.List(ctx)
		if err != nil || len(all) != 1 {
			t.Fatalf("campaigns: %v %v", all, err)
		}
		c := all[0]

		a, err := f.svc.Preview(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{campaign.ReasonNotOptedIn: 1, campaign.ReasonNoConsent: 1, campaign.ReasonOptedOutContact: 1, campaign.ReasonListUnsubscribed: 1}
		if a.Selected != 6 || a.Recipients != 2 || a.Resolved {
			t.Fatalf("preview: %+v", a)
		}
		for r, n := range a.Excluded {
			if want[r] != n {
				t.Errorf("preview: %s = %d, want %d", r, n, want[r])
			}
		}

		if _, err := f.svc.Send(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
			t.Fatal(err)
		}
		f.run()
		msgs := f.smtp.Wait(t, 2)
		if len(msgs) != 2 {
			t.Fatalf("%d messages", len(msgs))
		}
		byTo := map[string]mailtest.Message{}
		for _, m := range msgs {
			byTo[m.To[0]] = m
		}
		if m := byTo["anna@example.com"]; m.Subject != "Hej Anna" {
			t.Errorf("anna got %q", m.Subject)
		}
		m := byTo["bo@example.com"]
		if m.Subject != "Hello Bo" || !strings.Contains(m.HTML, `href="https://acme.example/spring"`) {
			t.Errorf("bo got %q: %s", m.Subject, m.HTML)
		}
		unsub := m.Header.Get("List-Unsubscribe")
		if !strings.HasPrefix(unsub, "<https://consent.example/m/u/") || m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" ||
			!strings.Contains(m.HTML, strings.Trim(unsub, "<>")) || !strings.Contains(m.Text, strings.Trim(unsub, "<>")) {
			t.Errorf("unsubscribe: %q in %s", unsub, m.Text)
		}
		if !strings.Contains(m.Header.Get("List-Id"), ".acme.example>") || !strings.HasPrefix(m.From, "news+c") {
			t.Errorf("List-Id %q, Return-Path %q", m.Header.Get("List-Id"), m.From)
		}

		p, err := f.svc.Progress(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != campaign.StatusSent || p.Recipients[campaign.RecipientSent] != 2 || p.Recipients[campaign.RecipientExcluded] != 4 {
			t.Fatalf("progress: %+v", p)
		}
		if _, err := f.svc.Update(ctx, audit.Actor{Kind: "user"}, c.ID, campaign.Input{Name: ptr("Changed")}); !errs.Is(err, errs.KindConflict) {
			t.Fatalf("changing a sent campaign: %v", err)
		}
	})
}

// TestCampaignGateAtSendTime: a revocation that commits after the
// audience was fixed stops the message; the recipient is suppressed with
// the reason.
func TestCampaignGateAtSendTime(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		c, bo := f.pausedWithAudience()
		if _, err := f.svc.Resume(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.cs.Record(ctx, bo, consent.RecordInput{Purpose: "E-marketing", State: consent.StateWithdrawn, Source: "API",
			Actor: consent.Actor{Kind: consent.ActorContact, ID: bo}, Evidence: consent.Evidence{Method: "api"}}); err != nil {
			t.Fatal(err)
		}
		f.run()
		msgs := f.smtp.Wait(t, 1)
		if len(msgs) != 1 || msgs[0].To[0] != "anna@example.com" {
			t.Fatalf("sent to %v", msgs)
		}
		p, err := f.svc.Progress(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Recipients[campaign.RecipientSent] != 1 || p.Recipients[campaign.RecipientSuppressed] != 1 {
			t.Fatalf("progress: %+v", p)
		}
		var reason string
		if err := db.Read.QueryRowContext(ctx, `SELECT reason FROM campaign_recipients WHERE contact_id = $1`, bo).Scan(&reason); err != nil ||
			reason != campaign.ReasonNoConsent {
			t.Fatalf("bo suppressed for %q (%v)", reason, err)
		}
	})
}

// TestCampaignReport: the report counts what was sent, what the mail
// server refused as a bounce, and why recipients were suppressed.
func TestCampaignReport(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.smtp.Unknown = map[string]bool{"gone@example.com": true}
		f.person("anna@example.com", "Anna", "en", contactstate.DoubleOptIn, true)
		gone := f.person("gone@example.com", "Gone", "en", contactstate.DoubleOptIn, true)
		c := f.startAll()
		f.run()
		r, err := f.svc.Report(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 1 || r.Bounced != 1 || r.Delivered != 1 || r.Campaign.Status != campaign.StatusSent {
			t.Fatalf("report: %+v", r)
		}
		var deliverability string
		if err := db.Read.QueryRowContext(ctx, `SELECT deliverability FROM contacts WHERE id = $1`, gone).Scan(&deliverability); err != nil || deliverability != "bounced" {
			t.Fatalf("the refused address is %q (%v)", deliverability, err)
		}
	})
}

// TestCampaignHoldSetWhileSending: a legal hold set after the audience
// was fixed (when no hold was in force, so the audience's test left holds
// out) still stops the message at sending.
func TestCampaignHoldSetWhileSending(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		c, bo := f.pausedWithAudience()
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := holds.SetTx(tx, bo, holds.New{Reason: "A dispute", LegalBasis: "legal_claims"}, consent.Actor{Kind: consent.ActorSystem}, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Resume(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
			t.Fatal(err)
		}
		f.run()
		if msgs := f.smtp.Wait(t, 1); len(msgs) != 1 || msgs[0].To[0] != "anna@example.com" {
			t.Fatalf("sent to %v", msgs)
		}
		var reason string
		if err := db.Read.QueryRowContext(ctx, `SELECT reason FROM campaign_recipients WHERE contact_id = $1`, bo).Scan(&reason); err != nil || reason != campaign.ReasonHeld {
			t.Fatalf("bo: %q %v", reason, err)
		}
	})
}

// TestCampaignRetriesWithBackoff: a recipient the mail server refuses for
// now is tried again after a backoff, not at once; the campaign is sent
// only once they have their message.
func TestCampaignRetriesWithBackoff(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		clock := time.Now()
		f.svc.Now = func() time.Time { return clock }
		f.smtp.SetBusy("bo@example.com", true)
		f.person("anna@example.com", "Anna", "en", contactstate.DoubleOptIn, true)
		f.person("bo@example.com", "Bo", "en", contactstate.DoubleOptIn, true)
		c := f.startAll()
		f.run()
		if msgs := f.smtp.Wait(t, 1); len(msgs) != 1 || msgs[0].To[0] != "anna@example.com" {
			t.Fatalf("first run sent %v", msgs)
		}
		p, err := f.svc.Progress(ctx, c.ID)
		if err != nil || p.Status != campaign.StatusSending || p.Recipients[campaign.RecipientRetry] != 1 {
			t.Fatalf("after a refusal: %+v %v", p, err)
		}
		f.run() // the backoff has not passed: nothing more
		if n := f.smtp.Received(); n != 1 {
			t.Fatalf("retried at once: %d messages", n)
		}
		f.smtp.SetBusy("bo@example.com", false)
		clock = clock.Add(time.Hour)
		f.run()
		if msgs := f.smtp.Wait(t, 2); msgs[1].To[0] != "bo@example.com" {
			t.Fatalf("retry sent %v", msgs)
		}
		if p, err := f.svc.Progress(ctx, c.ID); err != nil || p.Status != campaign.StatusSent || p.Recipients[campaign.RecipientSent] != 2 {
			t.Fatalf("after the retry: %+v %v", p, err)
		}
	})
}

// TestRenderDraftIsWhatIsSaved: a draft that is not saved renders, for
// each contact, exactly as the same content renders once saved (subject,
// both bodies, language, reason and tracking); for the example contact in
// the language being edited; without an audience for the example only;
// and an unknown tag is refused naming the variant's field. Nothing is
// written.
func TestRenderDraftIsWhatIsSaved(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		anna := f.person("anna@example.com", "Anna", "en", contactstate.DoubleOptIn, true)
		sven := f.person("sven@example.com", "Sven", "sv", contactstate.DoubleOptIn, false)
		ctx := context.Background()
		in := campaign.Input{Name: ptr("Spring"), Condition: ptr(`email != ""`), Variants: &[]campaign.Variant{
			{Language: "en", Subject: "Hi {{first_name}}", HTML: `<p>Hi {{ first_name }}, <a href="https://acme.example/spring">spring</a></p>`},
			{Language: "sv", Subject: "Hej {{first_name}}", HTML: "<p>Hej {{first_name}}</p>", Text: "Hej {{first_name}}, {{preferences_url}}"}}}
		c, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, in)
		if err != nil {
			t.Fatal(err)
		}
		campaigns := func() int {
			var n int
			if err := db.Read.QueryRow(`SELECT (SELECT count(*) FROM campaigns) + (SELECT count(*) FROM campaign_variants) + (SELECT count(*) FROM campaign_recipients)`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := campaigns()
		for _, id := range []string{anna, sven} {
			saved, err := f.sender.Render(ctx, c.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			draft, err := f.sender.RenderDraft(ctx, in, "nl", id)
			if err != nil {
				t.Fatal(err)
			}
			if *draft != *saved {
				t.Fatalf("as %s, the draft renders\n%+v\nand the saved campaign\n%+v", id, draft, saved)
			}
		}
		if r, _ := f.sender.Render(ctx, c.ID, sven); r.Reason != campaign.ReasonNoConsent || r.Language != "sv" || r.Subject != "Hej Sven" {
			t.Fatalf("as sven: %+v", r)
		}
		ex, err := f.sender.RenderDraft(ctx, in, "sv", "")
		if err != nil || ex.Subject != "Hej Alex" || ex.Language != "sv" || ex.ContactID != "" || ex.Reason != "" {
			t.Fatalf("as the example in Swedish: %+v %v", ex, err)
		}
		// No audience yet: the example renders, a contact cannot be read by the rules.
		none := in
		none.Condition = ptr("")
		if ex, err := f.sender.RenderDraft(ctx, none, "en", ""); err != nil || ex.Subject != "Hi Alex" {
			t.Fatalf("the example without an audience: %+v %v", ex, err)
		}
		if _, err := f.sender.RenderDraft(ctx, none, "en", anna); errs.As(err) == nil || errs.As(err).Field != "lists" {
			t.Fatalf("a contact without an audience: %v", err)
		}
		bad := in
		bad.Variants = &[]campaign.Variant{(*in.Variants)[0], {Language: "sv", Subject: "Hej", HTML: "<p>{{fornamn}}</p>"}}
		if _, err := f.sender.RenderDraft(ctx, bad, "en", ""); errs.As(err) == nil || errs.As(err).Field != "variants[1].html" || errs.As(err).Code != "unknown_tag" {
			t.Fatalf("an unknown tag: %v", err)
		}
		if _, err := f.sender.RenderDraft(ctx, campaign.Input{Condition: ptr(`email != ""`)}, "en", ""); errs.As(err) == nil || errs.As(err).Field != "variants" {
			t.Fatalf("no content: %v", err)
		}
		if _, err := f.sender.RenderDraft(ctx, in, "en", "no-such-contact"); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("an unknown contact: %v", err)
		}
		if n := campaigns(); n != before {
			t.Fatalf("the drafts wrote: %d rows, then %d", before, n)
		}
	})
}

// TestCampaignFooterNamesTheOperator: the built-in layout's footer and the
// plain-text part name the operator: the organisation while no campaign
// sender name is set, then the sender name, with the postal address, the
// website and the privacy contact; with none of it set, no empty label is left.
func TestCampaignFooterNamesTheOperator(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		in := campaign.Input{Name: ptr("Spring"), Variants: &[]campaign.Variant{{Language: "en", Subject: "Hi", HTML: "<p>Hi</p>"}}}
		render := func() *campaign.Rendered {
			t.Helper()
			r, err := f.sender.RenderDraft(ctx, in, "en", "")
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := render(); strings.Contains(r.Text, "Privacy contact") || strings.Contains(r.HTML, "Privacy contact") {
			t.Fatalf("with no identity set: %s", r.Text)
		}
		if _, err := settings.Update(ctx, db, settings.Patch{PrivacyAddress: ptr("dpo@acme.example"), IdentityPatch: settings.IdentityPatch{
			OrganisationName: ptr("Acme Ltd"), PostalAddress: ptr("1 Main Street"), PrivacyContactName: ptr("Dana Protector")}}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		r := render()
		if !strings.Contains(r.HTML, "<p>Acme Ltd<br>1 Main Street<br></p>\n<p>Privacy contact: Dana Protector &lt;dpo@acme.example&gt;</p>") ||
			!strings.Contains(r.Text, "--\nAcme Ltd\n1 Main Street\nPrivacy contact: Dana Protector <dpo@acme.example>\n") {
			t.Fatalf("footer:\n%s\n%s", r.HTML, r.Text)
		}
		if _, err := settings.Update(ctx, db, settings.Patch{CampaignsPatch: settings.CampaignsPatch{SenderName: ptr("Acme News")}}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if r := render(); !strings.Contains(r.HTML, "<p>Acme News<br>1 Main Street<br></p>") || !strings.Contains(r.Text, "--\nAcme News\n") {
			t.Fatalf("with a sender name:\n%s\n%s", r.HTML, r.Text)
		}
		// The website, linked in the HTML footer and written out in the
		// plain text; an address with markup in it stays an address.
		if _, err := settings.Update(ctx, db, settings.Patch{IdentityPatch: settings.IdentityPatch{Website: ptr(`https://acme.example/"a<b`)}}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		r = render()
		if !strings.Contains(r.HTML, `1 Main Street<br><a href="https://acme.example/%22a%3Cb">acme.example/%22a%3Cb</a></p>`) ||
			!strings.Contains(r.Text, "--\nAcme News\nhttps://acme.example/%22a%3Cb\n1 Main Street\n") {
			t.Fatalf("with a website:\n%s\n%s", r.HTML, r.Text)
		}
	})
}
