package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// successEvery is how stale an endpoint's last_success_at may get before
// a success writes it again: at thousands of deliveries a second, each
// writing the endpoint's row would make it the busiest row there is.
const successEvery = time.Minute

// succeeded notes a success to the endpoint id: its failing streak ends.
func (s *Service) succeeded(tx *store.Tx, id string, now time.Time) error {
	_, err := tx.Exec(`UPDATE webhook_endpoints SET last_success_at = $2, failing_since = NULL
		WHERE id = $1 AND (failing_since IS NOT NULL OR last_success_at IS NULL OR last_success_at < $3)`,
		id, store.Micros(now), store.Micros(now.Add(-successEvery)))
	if err != nil {
		return fmt.Errorf("webhook: note a success of %s: %w", id, err)
	}
	return nil
}

// failed notes a failure to the endpoint id, and turns the endpoint off
// when none has succeeded for DisableAfter while they failed, emailing
// the operator's privacy address (the setting privacy_address) why.
// The audit log has the change, by the system. Deliveries to it then wait, pending, with those of the events that
// happen meanwhile (Dispatch), until it is turned on again.
func (s *Service) failed(tx *store.Tx, id string, now time.Time, why string) error {
	if _, err := tx.Exec(`UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1`,
		id, store.Micros(now)); err != nil {
		return fmt.Errorf("webhook: note a failure of %s: %w", id, err)
	}
	after := s.DisableAfter
	if after <= 0 {
		after = DefaultDisableAfter
	}
	e, err := getEndpoint(context.Background(), tx, id) // a Tx reads with its own context
	if err != nil {
		return err
	}
	if !e.Enabled || e.FailingSince == nil || now.Sub(*e.FailingSince) < after {
		return nil
	}
	since := e.FailingSince.Format(time.RFC3339)
	if _, err := tx.Exec(`UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $2, updated_at = $3 WHERE id = $1`,
		id, "no delivery succeeded since "+since, store.Micros(now)); err != nil {
		return fmt.Errorf("webhook: turn %s off: %w", id, err)
	}
	before := e.audited()
	e.Enabled = false
	if err := e.auditTx(tx, audit.Actor{Kind: audit.ActorSystem}, audit.ActionWebhookChanged, audit.Changes(before, e.audited()), now); err != nil {
		return err
	}
	s.log().Warn("webhook endpoint turned off: its deliveries have failed for days", "endpoint", id, "failing_since", since)
	return s.tellOperator(tx, e, since, why, now)
}

// tellOperator emails the privacy address that endpoint e was turned off.
// With no privacy address set, or no templates, nobody is emailed.
func (s *Service) tellOperator(tx *store.Tx, e Endpoint, since, why string, now time.Time) error {
	st, err := settings.InTx(tx)
	if err != nil || st.PrivacyAddress == "" || s.Mail == nil {
		return err
	}
	data := struct {
		Lang, URL, FailingSince, LastError, Link string
		Sender                                   settings.Controller
	}{Lang: "en", URL: e.URL, FailingSince: since, LastError: why, Link: s.BaseURL + "/admin/webhooks/" + e.ID,
		Sender: st.Controller(s.Sender)}
	text, html, err := s.Mail.Render("webhook_disabled", data)
	if err != nil {
		return err
	}
	_, err = mail.Enqueue(tx, mail.Message{Kind: mail.KindOperator, To: st.PrivacyAddress, Language: "en",
		Subject: "Webhook endpoint turned off: " + e.URL, Text: text, HTML: html, SubjectID: e.ID}, now)
	return err
}
