package mail_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestEnqueueAddressing: a message goes to a fixed address only for the
// kinds that have one, never with a contact too, and carries personal
// links without a contact only as a request confirmation whose links are
// the request's.
func TestEnqueueAddressing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		now := time.Now()
		reqLink := mail.NewLink(auth.PurposeRequestConfirmation, "r1", now.Add(time.Hour))
		prefsLink := mail.NewLink(auth.PurposePreferences, "", now.Add(time.Hour))
		for _, c := range []struct {
			name string
			m    mail.Message
			ok   bool
		}{
			{"operator", mail.Message{Kind: mail.KindOperator, To: "privacy@acme.example"}, true},
			{"request confirmation to a stranger", mail.Message{Kind: mail.KindRequestConfirmation, To: "x@example.org", Links: []mail.Link{reqLink}}, true},
			{"request confirmation with another link", mail.Message{Kind: mail.KindRequestConfirmation, To: "x@example.org", Links: []mail.Link{prefsLink}}, false},
			{"operator with a link", mail.Message{Kind: mail.KindOperator, To: "privacy@acme.example", Links: []mail.Link{reqLink}}, false},
			{"fixed address of another kind", mail.Message{Kind: mail.KindConfirmation, To: "x@example.org"}, false},
			{"request confirmation without an address", mail.Message{Kind: mail.KindRequestConfirmation, Links: []mail.Link{reqLink}}, false},
			// A partner's email is about a contact, to the partner, and never
			// carries the contact's personal links.
			{"partner without a contact", mail.Message{Kind: mail.KindPartner, To: "leads@partner.example"}, false},
			{"partner without an address", mail.Message{Kind: mail.KindPartner, ContactID: "c1"}, false},
			{"partner with a link", mail.Message{Kind: mail.KindPartner, To: "leads@partner.example", ContactID: "c1", Links: []mail.Link{prefsLink}}, false},
		} {
			err := db.Write(context.Background(), func(tx *store.Tx) error {
				c.m.Subject, c.m.Text = "s", "t"
				_, err := mail.Enqueue(tx, c.m, now)
				return err
			})
			if (err == nil) != c.ok {
				t.Errorf("%s: %v", c.name, err)
			}
		}
	})
}
