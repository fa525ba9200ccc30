package optin

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func newTestService(t testing.TB, db *store.DB) *Service {
	t.Helper()
	tmpl, err := mail.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	return &Service{DB: db, Consent: consent.NewService(db), Log: slog.New(slog.DiscardHandler), Now: time.Now,
		BaseURL: "https://consent.example", Sender: "Acme & Co", Mail: tmpl}
}

// TestCopiedEmailIsTheRenderedOne: an invitation copied from a rendering
// shared with others is, byte for byte, the email rendered for its own
// link, whatever the name and consent text hold (characters HTML escapes,
// a format verb, nothing), in each language, invitation and reminder.
func TestCopiedEmailIsTheRenderedOne(t *testing.T) {
	s := newTestService(t, nil)
	b := s.newBodies()
	expires := time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC)
	from := settings.Controller{Name: s.Sender, PostalAddress: "1 <Main> Street\nSpringfield", PrivacyEmail: "dpo@acme.example"}
	names := []string{"", "Anna", `Zoë <b>"O'Hara"</b> & +%s`, b.stand}
	texts := []string{"I agree to receive news.", `Nyheter & <erbjudanden> "per e-post" %d`}
	for _, lang := range i18n.Languages {
		for _, name := range names {
			for _, text := range texts {
				for _, c := range []struct {
					reminder bool
					trigger  string
				}{{false, TriggerUser}, {true, TriggerUser}, {false, TriggerRepermission}, {true, TriggerRepermission}} {
					reminder, repermission := c.reminder, c.trigger == TriggerRepermission
					for range 2 { // the second time from what the first kept
						r := &recipient{id: "c1", name: name, lang: lang}
						m, err := b.linkMessage(r, from, "inv-1", c.trigger, text, expires, reminder)
						if err != nil {
							t.Fatal(err)
						}
						if len(m.Links) != 1 || m.Links[0].SubjectID != "inv-1" || !m.Links[0].Expires.Equal(expires) {
							t.Fatalf("links %+v", m.Links)
						}
						data := map[string]any{"Lang": lang, "Name": name, "Reminder": reminder, "Repermission": repermission, "ConsentText": text,
							"Link": s.BaseURL + "/confirm/" + m.Links[0].Placeholder, "ValidUntil": "2026-12-24", "Sender": from}
						text, html, err := s.Mail.Render("double_opt_in", data)
						if err != nil {
							t.Fatal(err)
						}
						subject := i18n.T(lang, "email.doi.subject")
						switch {
						case repermission && reminder:
							subject = i18n.T(lang, "email.repermission.reminder_subject")
						case repermission:
							subject = i18n.T(lang, "email.repermission.subject")
						case reminder:
							subject = i18n.T(lang, "email.reminder.subject")
						}
						if name == b.stand {
							// A name that is the stand-in itself becomes the link:
							// the stand-in is random, and no name holds it.
							continue
						}
						if m.Text != text || m.HTML != html || m.Subject != subject || m.Language != lang || m.SubjectID != "inv-1" ||
							m.ContactID != "c1" || m.Kind != mail.KindDoubleOptIn {
							t.Fatalf("%s %q reminder=%v: copied email differs from the rendered one:\n%s\n---\n%s", lang, name, reminder, m.HTML, html)
						}
					}
				}
			}
		}
	}
	if want := len(i18n.Languages) * len(names) * len(texts) * 4; len(b.memo) != want {
		t.Fatalf("%d renderings kept, want one per distinct email, %d", len(b.memo), want)
	}
	// Each copy has its own link.
	r := &recipient{id: "c1", name: "Anna", lang: "en"}
	m1, _ := b.linkMessage(r, settings.Controller{Name: "Acme"}, "inv-1", TriggerUser, texts[0], expires, false)
	m2, _ := b.linkMessage(r, settings.Controller{Name: "Acme"}, "inv-2", TriggerUser, texts[0], expires, false)
	if m1.Links[0].Placeholder == m2.Links[0].Placeholder || !strings.Contains(m2.Text, m2.Links[0].Placeholder) ||
		strings.Contains(m2.Text, m1.Links[0].Placeholder) || strings.Contains(m2.HTML, b.stand) {
		t.Fatal("two invitations share a link")
	}

	// Rendering ahead stops while every email is found rendered, and
	// starts again when one is not.
	b.worthWarming()
	if _, err := b.linkMessage(r, settings.Controller{Name: "Acme"}, "inv-3", TriggerUser, texts[0], expires, false); err != nil || b.worthWarming() {
		t.Fatalf("worth rendering ahead after a batch that found everything rendered (%v)", err)
	}
	if _, err := b.linkMessage(&recipient{id: "c2", name: "Britta", lang: "en"}, settings.Controller{Name: "Acme"}, "inv-4", TriggerUser, texts[0], expires, false); err != nil || !b.worthWarming() {
		t.Fatalf("not worth rendering ahead after a batch that rendered (%v)", err)
	}
}

// TestRenderedAheadIsOnlyAHint: emails rendered ahead of a batch, outside
// its transaction, are used only when the transaction finds the contact
// as it was: a contact renamed in between gets the email with the new
// name, and one who opted out in between gets none.
func TestRenderedAheadIsOnlyAHint(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		s := newTestService(t, db)
		write := func(fn func(tx *store.Tx) error) {
			t.Helper()
			if err := db.Write(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		write(func(tx *store.Tx) error {
			_, err := tx.Exec(`INSERT INTO contacts (id, ref, kind, email, email_key, first_name, created_at, updated_at) VALUES
				('c0', 'r0', 'lead', 'c0@example.com', 'c0@example.com', 'Anna', 1, 1),
				('c1', 'r1', 'lead', 'c1@example.com', 'c1@example.com', 'Berit', 1, 1),
				('c2', 'r2', 'lead', 'c2@example.com', 'c2@example.com', 'Cecilia', 1, 1)`)
			return err
		})
		b := s.newBodies()
		invite := func(ids ...string) *Result {
			t.Helper()
			var res *Result
			write(func(tx *store.Tx) error {
				var err error
				res, err = s.inviteAll(tx, ids, TriggerAPI, s.now(), b)
				return err
			})
			return res
		}
		invite("c0") // the first batch: what it shows is what the next is rendered with
		b.warm(ctx, []string{"c1", "c2"})
		if len(b.memo) != 3 {
			t.Fatalf("%d renderings after rendering ahead, want 3", len(b.memo))
		}
		write(func(tx *store.Tx) error {
			if _, err := tx.Exec(`UPDATE contacts SET first_name = 'Bodil' WHERE id = 'c1'`); err != nil {
				return err
			}
			_, err := tx.Exec(`UPDATE contacts SET opt_in_status = 'opt_out_contact' WHERE id = 'c2'`)
			return err
		})
		if res := invite("c1", "c2"); res.Invited != 1 || res.Skipped[SkipOptedOut] != 1 {
			t.Fatalf("second batch: %+v", res)
		}
		var text string
		if err := db.Read.QueryRow(`SELECT text_body FROM outbox WHERE contact_id = 'c1'`).Scan(&text); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "Bodil") || strings.Contains(text, "Berit") {
			t.Fatalf("email to the renamed contact:\n%s", text)
		}
		var n int
		if err := db.Read.QueryRow(`SELECT count(*) FROM outbox WHERE contact_id = 'c2'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d emails to the contact who opted out (%v)", n, err)
		}
	})
}
