package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	evt "github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/workflow"
)

// The running service acts on a rule as soon as its event commits: the
// runner is woken by the commit, and the partner's email leaves over SMTP
// with the picked fields, the sensitive one masked.
func TestWorkflowRunsInTheService(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()
		if _, err := e.a.WorkflowRunner.RunDue(ctx); err != nil { // the runner reads from here on
			t.Fatal(err)
		}
		if _, err := e.a.Contacts.CreateField(ctx, contact.FieldInput{Name: ptr("card_number"), Label: ptr("Card number"), Type: ptr("text"),
			Sensitive: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		d, err := workflow.ParseDefinition([]byte(`{"name": "Partner", "trigger": "consent.granted",
			"condition": "event.purpose == \"Share with partners\"",
			"actions": [{"type": "email_address", "to": "leads@partner.example", "subject": "A new lead", "fields": ["first_name", "card_number"]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.a.Workflows.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		email, name := "anna@example.com", "Anna"
		c, err := e.a.Contacts.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email, FirstName: &name,
			Fields: map[string]any{"card_number": "4111111111111111"}}, OptInStatus: contactstate.SingleOptInUser,
			Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return evt.Emit(tx, evt.ConsentGranted, c.ID, map[string]any{"contact_id": c.ID, "purpose": "Share with partners", "state": "granted"}, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		for _, m := range e.smtp.Wait(t, 1) {
			text := strings.ReplaceAll(m.Text, "\r\n", "\n")
			if strings.Join(m.To, ",") != "leads@partner.example" || !strings.Contains(text, "First name: Anna\n") ||
				!strings.Contains(text, "Card number: ••••••••••••1111\n") || strings.Contains(string(m.Raw), "4111111111111111") {
				t.Fatalf("%v:\n%s", m.To, m.Raw)
			}
		}
	})
}
