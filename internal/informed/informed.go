// Package informed sends the optional "right to be informed" email (SPEC
// R14): a newly registered contact is told what is stored about them, for
// which purposes and on what legal basis, with a link to their preferences
// page.
package informed

import (
	"fmt"
	"sort"
	"time"

	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Service queues the email.
type Service struct {
	BaseURL string
	Sender  string
}

type purpose struct{ Name, Basis, Description string }

// AfterCreate is a contact.Service hook: when the setting is on, it queues
// the email for the contact just created, in the same transaction, with a
// preferences link valid for the configured time.
func (s *Service) AfterCreate(tx *store.Tx, c *contact.Contact, now time.Time) error {
	st, err := settings.InTx(tx)
	if err != nil || !st.RightToBeInformed {
		return err
	}
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
		return fmt.Errorf("informed: read fields: %w", err)
	}
	for rows.Next() {
		var n, l string
		if err := rows.Scan(&n, &l); err != nil {
			rows.Close()
			return fmt.Errorf("informed: read fields: %w", err)
		}
		labels[n] = l
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("informed: read fields: %w", err)
	}
	var custom []string
	for name := range c.Fields {
		custom = append(custom, labels[name])
	}
	sort.Strings(custom)
	fields = append(fields, custom...)
	var purposes []purpose
	rows, err = tx.Query(`SELECT name, legal_basis, description FROM purposes ORDER BY name_key`)
	if err != nil {
		return fmt.Errorf("informed: read purposes: %w", err)
	}
	for rows.Next() {
		var p purpose
		var basis string
		if err := rows.Scan(&p.Name, &basis, &p.Description); err != nil {
			rows.Close()
			return fmt.Errorf("informed: read purposes: %w", err)
		}
		p.Basis = i18n.T(lang, "basis."+basis)
		purposes = append(purposes, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("informed: read purposes: %w", err)
	}
	url, link := preferences.PageLink(s.BaseURL, st, now)
	text, html, err := mail.Render("right_to_be_informed", map[string]any{"Lang": lang, "Name": c.FirstName, "Fields": fields,
		"Purposes": purposes, "Link": url, "Sender": s.Sender})
	if err != nil {
		return fmt.Errorf("informed: render email: %w", err)
	}
	_, err = mail.Enqueue(tx, mail.Message{ContactID: c.ID, Kind: mail.KindInformed, Language: lang,
		Subject: i18n.T(lang, "email.informed.subject"), Text: text, HTML: html, Links: []mail.Link{link}}, now)
	return err
}
