package workflow

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// WebhookCall calls the webhook endpoint endpointID with event e inside tx:
// it queues a delivery in the run's transaction, so that the call is made
// exactly when the run commits, or, to an endpoint turned off, once it is
// turned on again, as every delivery to it waits. note, for the run log,
// says why the call is not made at once ("" when it is). Package webhook
// provides it (QueueTx); the app passes it to the Runner. An errs.Error (an
// endpoint deleted) fails the run; any other error fails the whole
// transaction.
type WebhookCall func(tx *store.Tx, endpointID string, e events.Event) (note string, err error)

// act carries out rule's actions for run inside tx, in order, and records
// on run what was done and how it ended. The events the actions write
// count one more workflow action behind them (events.SetDepth). An action
// refused for a reason of the domain (errs.Error: a locked record, a
// webhook endpoint gone) ends the run as failed with that reason, keeping
// what the actions before it did; any other error is returned, and the
// transaction fails.
func (r *Runner) act(tx *store.Tx, rule *Rule, run *Run, now time.Time) error {
	var exists int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM contacts WHERE id = $1`, run.ContactID).Scan(&exists); err != nil {
		return fmt.Errorf("workflow: read contact: %w", err)
	}
	if exists == 0 {
		run.Status, run.Outcome = StatusSkipped, "the contact no longer exists"
		return nil
	}
	if why, err := consentGone(tx, run, now); err != nil || why != "" {
		run.Status, run.Outcome = StatusSkipped, why
		return err
	}
	events.SetDepth(tx, run.depth+1)
	defer events.SetDepth(tx, 0)
	for i, a := range rule.Actions {
		d, err := r.perform(tx, a, run, now)
		if e := errs.As(err); e != nil {
			run.Status, run.Outcome = StatusFailed, fmt.Sprintf("actions[%d] (%s): %s", i, a.Type, e.Error())
			return nil
		}
		if err != nil {
			return err
		}
		d.Action, d.Type = i, a.Type
		run.Done = append(run.Done, d)
	}
	run.Status, run.Outcome = StatusDone, fmt.Sprintf("%d of %d actions done", len(run.Done), len(rule.Actions))
	return nil
}

// perform carries out one action.
func (r *Runner) perform(tx *store.Tx, a Action, run *Run, now time.Time) (Done, error) {
	id := run.ContactID
	switch a.Type {
	case EmailContact:
		email, err := r.emailContact(tx, a, id, restsOn(run), now)
		return Done{EmailID: email}, err
	case EmailAddress:
		email, err := emailPartner(tx, a, id, restsOn(run), now)
		return Done{EmailID: email}, err
	case Webhook:
		if r.Webhook == nil {
			return Done{}, errs.Refused("webhooks_off", "endpoint_id", "webhook endpoints cannot be called here")
		}
		note, err := r.Webhook(tx, a.EndpointID, run.event())
		return Done{EndpointID: a.EndpointID, Note: note}, err
	case ListAdd:
		return Done{ListID: a.List}, lists.SetLater(tx, id, a.List, lists.Subscribed, lists.SourceWorkflow, now)
	case ListRemove:
		return Done{ListID: a.List}, lists.UnsubscribeTx(tx, id, a.List, lists.SourceWorkflow, now, r.Withdraw)
	case SetField:
		return Done{Field: a.Field}, contact.SetFieldTx(tx, id, a.Field, a.Value, now)
	case DoubleOptIn:
		skip, err := r.OptIn.InviteTx(tx, id, optin.TriggerWorkflow, now)
		if skip != "" {
			return Done{Note: "not invited: " + skip}, err
		}
		return Done{}, err
	case NotifyUsers:
		return r.notifyUsers(tx, a, id, now)
	}
	return Done{}, fmt.Errorf("workflow: unknown action type %q", a.Type)
}

// emailContact queues the email of an email_contact action, as
// mail.KindWorkflow: the send gate decides when it goes whether it may
// (R2, and the ground of marketing email, mail.Ground). The names are merged now; the preferences link is a personal link
// whose token is issued as the email is sent, and the unsubscribe link and
// List-Unsubscribe headers are added then (mail.IsMarketing). A text that
// does not hold the unsubscribe link gets it at the end, after the
// preferences footer when the operator turned that on (as email written by
// users has it).
//
// A run set off by a consent event queues the email resting on that
// consent (restsOn): it does not go if the consent changed before.
func (r *Runner) emailContact(tx *store.Tx, a Action, contactID string, rests *mail.ConsentState, now time.Time) (string, error) {
	c, _, err := contact.ReadIn(context.Background(), tx, contactID)
	if err != nil {
		return "", err
	}
	st, err := settings.InTx(tx)
	if err != nil {
		return "", err
	}
	cfg, err := preferences.GetConfig(context.Background(), tx)
	if err != nil {
		return "", err
	}
	prefURL, prefLink := preferences.PageLink(r.BaseURL, st, now)
	// As a campaign fills them in (percent-encoded inside an address);
	// the unsubscribe link is left for the outbox.
	tags := map[string]string{campaign.TagFirstName: c.FirstName, campaign.TagLastName: c.LastName, campaign.TagPreferencesURL: prefURL}
	subject := campaign.FillTags(a.Subject, false, tags)
	text := campaign.FillTags(a.Text, false, tags)
	body := campaign.FillTags(a.HTML, true, tags)
	var links []mail.Link
	// The placeholder, not the address: inside another address the
	// address is percent-encoded, the placeholder's characters are not.
	if strings.Contains(text, prefLink.Placeholder) || strings.Contains(body, prefLink.Placeholder) {
		links = append(links, prefLink)
	}
	text, footer, err := preferences.AppendFooterTx(tx, r.BaseURL, cfg.Footer, text, now)
	if err != nil {
		return "", err
	}
	links = append(links, footer...)
	if !strings.Contains(text, mail.UnsubscribeURL) {
		text = strings.TrimRight(text, "\n") + "\n\nUnsubscribe: " + mail.UnsubscribeURL + "\n"
	}
	if body != "" && !strings.Contains(body, mail.UnsubscribeURL) {
		body += `<p><a href="` + mail.UnsubscribeURL + `">Unsubscribe</a></p>`
	}
	return mail.Enqueue(tx, mail.Message{ContactID: contactID, Kind: mail.KindWorkflow, Language: i18n.Match(c.Language, ""),
		Subject: subject, Text: text, HTML: body, Links: links, Consent: rests}, now)
}

// emailPartner queues the email of an email_address action: the
// introduction, then each picked field as "label: value", a sensitive one
// masked as the contact package shows it. A field deleted since the rule
// was saved is left out. The email is mail.KindPartner, to the action's
// address and about the contact, so the send gate stops it if the contact
// stops processing or asks to be erased before it goes; and, for a run
// set off by a consent event, if the consent changed (restsOn): a partner
// gets nothing about a contact who withdrew before it went.
func emailPartner(tx *store.Tx, a Action, contactID string, rests *mail.ConsentState, now time.Time) (string, error) {
	c, defs, err := contact.ReadIn(context.Background(), tx, contactID)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if a.Text != "" {
		b.WriteString(strings.TrimRight(a.Text, "\n") + "\n\n")
	}
	for _, name := range a.Fields {
		if f, ok := contact.LookupCoreField(name); ok {
			b.WriteString(f.Label + ": " + f.Value(c) + "\n")
			continue
		}
		for _, d := range defs {
			if d.Name == name {
				b.WriteString(labelOf(d) + ": " + valueText(c.Fields[name]) + "\n")
			}
		}
	}
	return mail.Enqueue(tx, mail.Message{Kind: mail.KindPartner, To: a.To, ContactID: contactID, Language: "en",
		Subject: a.Subject, Text: b.String(), Consent: rests}, now)
}

// valueText writes a custom field's value as a person reads it; a value
// never set is empty.
func valueText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		if v {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprint(v)
}

// notifyUsers emails the operator's privacy address the action's subject
// and text and a link to the contact in the admin pages: no personal data,
// since the address may be a shared mailbox. With no privacy address set,
// nobody is emailed and the run notes it.
func (r *Runner) notifyUsers(tx *store.Tx, a Action, contactID string, now time.Time) (Done, error) {
	text := a.Text
	if text != "" {
		text = strings.TrimRight(text, "\n") + "\n\n"
	}
	text += "Contact: " + r.BaseURL + "/admin/contacts/" + contactID + "\n"
	if len(a.Roles) > 0 {
		to, err := auth.AddressesOfRolesTx(tx, a.Roles)
		if err != nil {
			return Done{}, err
		}
		if len(to) == 0 {
			return Done{Note: "no user has the roles " + strings.Join(a.Roles, ", ")}, nil
		}
		var d Done
		for _, addr := range to {
			id, err := mail.Enqueue(tx, mail.Message{Kind: mail.KindOperator, To: addr, Language: "en", Subject: a.Subject, Text: text}, now)
			if err != nil {
				return Done{}, err
			}
			d.EmailIDs = append(d.EmailIDs, id)
		}
		return d, nil
	}
	st, err := settings.InTx(tx)
	if err != nil {
		return Done{}, err
	}
	if st.PrivacyAddress == "" {
		return Done{Note: "no privacy address is set"}, nil
	}
	id, err := mail.Enqueue(tx, mail.Message{Kind: mail.KindOperator, To: st.PrivacyAddress, Language: "en", Subject: a.Subject, Text: text}, now)
	return Done{EmailID: id}, err
}
