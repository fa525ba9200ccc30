package campaign_test

import (
	"context"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestCampaignCarriesItsUnsubscribeLink: content whose HTML part would
// reach a recipient without their unsubscribe link (a template without
// {{unsubscribe_url}} and a body without it) is refused when saved, when
// sent, and when the template loses the link a campaign relies on, each
// time naming the field and saying what is missing; nothing is written.
// A body that carries the link is sent with it in both parts, beside the
// List-Unsubscribe header.
func TestCampaignCarriesItsUnsubscribeLink(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.person("anna@example.com", "Anna", "en", contactstate.DoubleOptIn, true)
		bare, err := f.svc.CreateTemplate(ctx, audit.Actor{Kind: "user"}, campaign.TemplateInput{Name: ptr("Bare"), HTML: ptr("<html><body>{{content}}</body></html>")})
		if err != nil {
			t.Fatal(err)
		}
		missing := func(err error, field string) {
			t.Helper()
			e := errs.As(err)
			if e == nil || e.Field != field || e.Code != "unsubscribe_link_missing" || !strings.Contains(e.Message, "{{unsubscribe_url}}") {
				t.Fatalf("want a refusal on %s naming {{unsubscribe_url}}, got %v", field, err)
			}
		}
		in := campaign.Input{Name: ptr("Spring"), TemplateID: ptr(bare.ID), Condition: ptr(`email != ""`),
			Variants: &[]campaign.Variant{{Language: "en", Subject: "Hi", HTML: "<p>Hi {{first_name}}</p>"},
				{Language: "sv", Subject: "Hej", HTML: `<p>Hej</p><p><a href="{{unsubscribe_url}}">Avsluta</a></p>`}}}
		_, err = f.svc.Create(ctx, audit.Actor{Kind: "user"}, in)
		missing(err, "variants[0].html")
		if all, err := f.svc.List(ctx); err != nil || len(all) != 0 {
			t.Fatalf("a refused campaign was saved: %v %v", all, err)
		}

		(*in.Variants)[0].HTML = `<p>Hi {{first_name}}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>`
		c, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, in)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Update(ctx, audit.Actor{Kind: "user"}, c.ID, campaign.Input{Variants: &[]campaign.Variant{{Language: "en", Subject: "Hi", HTML: "<p>Hi</p>"}}})
		missing(err, "variants[0].html")

		// A template the campaign relies on keeps the link; one a campaign
		// does not rely on may lose it.
		linked, err := f.svc.CreateTemplate(ctx, audit.Actor{Kind: "user"}, campaign.TemplateInput{Name: ptr("Linked"),
			HTML: ptr(`<div>{{content}}</div><p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>`)})
		if err != nil {
			t.Fatal(err)
		}
		relying, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("Autumn"), TemplateID: ptr(linked.ID), Condition: ptr(`email != ""`),
			Variants: &[]campaign.Variant{{Language: "en", Subject: "Autumn", HTML: "<p>Autumn</p>"}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.UpdateTemplate(ctx, audit.Actor{Kind: "user"}, linked.ID, campaign.TemplateInput{HTML: ptr("<div>{{content}}</div>")})
		missing(err, "html")
		if got, _ := f.svc.Template(ctx, linked.ID); !strings.Contains(got.HTML, "{{unsubscribe_url}}") {
			t.Fatalf("a refused change was saved: %s", got.HTML)
		}

		// A template saved without the link before a campaign relied on it
		// (changed behind the campaign's back here): sending is refused.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE campaign_templates SET html = '<div>{{content}}</div>' WHERE id = $1`, linked.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Send(ctx, audit.Actor{Kind: "user"}, relying.ID)
		missing(err, "variants[0].html")

		if _, err := f.svc.Send(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
			t.Fatal(err)
		}
		f.run()
		m := f.smtp.Wait(t, 1)[0]
		link := strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
		if !strings.HasPrefix(link, "https://consent.example/m/u/") || !strings.Contains(m.HTML, `href="`+link+`"`) || !strings.Contains(m.Text, link) {
			t.Fatalf("the unsubscribe link %q in\n%s\n%s", link, m.HTML, m.Text)
		}
		if n := f.smtp.Received(); n != 1 {
			t.Fatalf("%d messages: the campaign refused at sending went out", n)
		}
	})
}
