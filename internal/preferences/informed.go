package preferences

import (
	"fmt"
	"sort"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

type informedPurpose struct{ Name, Basis, Description string }

// InformOnCreate returns the contact.Service hook that sends the optional
// "right to be informed" email (R14) to a newly registered contact: what is
// stored about them, the purposes that apply to them (those they consented
// to, and those whose legal basis is not consent) each with its legal
// basis, who the controller is with their postal address and privacy
// contact (GDPR Art. 13; the settings' organisation, else sender), and a
// link to their preferences page. The email is composed just before the creating transaction commits,
// so that consents recorded with the contact, after the hook ran, are
// included.
func InformOnCreate(tmpl *mail.Templates, baseURL, sender string) func(tx *store.Tx, c *contact.Contact, now time.Time) error {
	return func(tx *store.Tx, c *contact.Contact, now time.Time) error {
		st, err := settings.InTx(tx)
		if err != nil || !st.RightToBeInformed {
			return err
		}
		tx.BeforeCommit(func(tx *store.Tx) error { return queueInformed(tx, tmpl, c, st, baseURL, sender, now) })
		return nil
	}
}

func queueInformed(tx *store.Tx, tmpl *mail.Templates, c *contact.Contact, st settings.Settings, baseURL, sender string, now time.Time) error {
	lang := i18n.Match(c.Language, "")
	fields := []string{i18n.T(lang, "field.email")}
	for _, f := range []struct{ name, value string }{{"first_name", c.FirstName}, {"last_name", c.LastName}, {"phone", c.Phone},
		{"country", c.Country}, {"region", c.Region}, {"language", c.Language}} {
		if f.value != "" {
			fields = append(fields, i18n.T(lang, "field."+f.name))
		}
	}
	labels := map[string]string{}
	rows, err := tx.Query(`SELECT name, label FROM field_definitions`)
	if err != nil {
		return fmt.Errorf("preferences: read fields: %w", err)
	}
	for rows.Next() {
		var n, l string
		if err := rows.Scan(&n, &l); err != nil {
			rows.Close()
			return fmt.Errorf("preferences: read fields: %w", err)
		}
		labels[n] = l
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("preferences: read fields: %w", err)
	}
	var custom []string
	for name := range c.Fields {
		custom = append(custom, labels[name])
	}
	sort.Strings(custom)
	fields = append(fields, custom...)
	// The purposes that apply: a consent the contact has granted (and that
	// has not expired), with the record's legal basis, and every purpose
	// whose legal basis is not consent.
	var purposes []informedPurpose
	rows, err = tx.Query(`SELECT p.name, COALESCE(r.legal_basis, p.legal_basis), p.description
		FROM purposes p
		LEFT JOIN consent_current cc ON cc.purpose_id = p.id AND cc.contact_id = $1
			AND cc.state = $2 AND (cc.expires_at IS NULL OR cc.expires_at > $4)
		LEFT JOIN consent_records r ON r.id = cc.record_id
		WHERE cc.record_id IS NOT NULL OR p.legal_basis <> $3
		ORDER BY p.name_key`, c.ID, consent.StateGranted, consent.BasisConsent, store.Micros(now))
	if err != nil {
		return fmt.Errorf("preferences: read purposes: %w", err)
	}
	for rows.Next() {
		var p informedPurpose
		var basis string
		if err := rows.Scan(&p.Name, &basis, &p.Description); err != nil {
			rows.Close()
			return fmt.Errorf("preferences: read purposes: %w", err)
		}
		p.Basis = i18n.T(lang, "basis."+basis)
		purposes = append(purposes, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("preferences: read purposes: %w", err)
	}
	url, link := PageLink(baseURL, st, now)
	text, html, err := tmpl.Render("right_to_be_informed", map[string]any{"Lang": lang, "Name": c.FirstName, "Fields": fields,
		"Purposes": purposes, "Link": url, "Sender": st.Controller(sender)})
	if err != nil {
		return fmt.Errorf("preferences: render the right-to-be-informed email: %w", err)
	}
	_, err = mail.Enqueue(tx, mail.Message{ContactID: c.ID, Kind: mail.KindInformed, Language: lang,
		Subject: i18n.T(lang, "email.informed.subject"), Text: text, HTML: html, Links: []mail.Link{link}}, now)
	return err
}
