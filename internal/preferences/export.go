package preferences

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// ExportLinkHours is how long the link to download one's data works. It
// can be used again meanwhile, for each format.
const ExportLinkHours = 48

// ErrNoExport means a download link is unknown, expired or made for
// something else; the page says the same for all of these.
var ErrNoExport = errors.New("preferences: no export for this link")

// RequestExport records the contact's access request ("Download my data"
// on the page) and emails the address on file a link to download their
// data, in one transaction: as every change asked for on the page, the
// data goes only to the address on file (R7), never straight to whoever
// holds the page open. An access request still open from the page is
// reused, so asking again sends a new link and nothing more. The request
// is verified (the page was opened from a link emailed to the contact);
// the operator hears of a new one through Notify. It returns the
// request's id.
func (s *Service) RequestExport(ctx context.Context, contactID, lang string) (string, error) {
	var id string
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		actor := consent.Actor{Kind: consent.ActorContact, ID: contactID}
		open, err := requests.OpenTx(tx, contactID, requests.KindAccess, now)
		if err != nil {
			return err
		}
		id = ""
		for _, r := range open {
			if r.Channel == requests.ChannelPreferences {
				id = r.ID
			}
		}
		if id == "" {
			r, err := requests.CreateTx(tx, requests.New{Kind: requests.KindAccess, Channel: requests.ChannelPreferences,
				ContactID: contactID, Verified: true, Actor: actor}, s.Notify, now)
			if err != nil {
				return err
			}
			id = r.ID
		}
		var first string
		if err := tx.QueryRow(`SELECT first_name FROM contacts WHERE id = $1`, contactID).Scan(&first); err != nil {
			return fmt.Errorf("preferences: read contact: %w", err)
		}
		link := mail.NewLink(auth.PurposeExport, id, now.Add(ExportLinkHours*time.Hour))
		from, err := settings.ControllerInTx(tx, s.Sender)
		if err != nil {
			return err
		}
		text, html, err := s.Mail.Render("export_link", map[string]any{"Lang": lang, "Name": first,
			"Link": s.BaseURL + "/p/export/" + link.Placeholder, "Hours": ExportLinkHours, "Sender": from})
		if err != nil {
			return fmt.Errorf("preferences: render email: %w", err)
		}
		// A confirmation: the contact asked for it, so it reaches them
		// after an opt-out or a stop of processing too (the send gate).
		_, err = mail.Enqueue(tx, mail.Message{ContactID: contactID, Kind: mail.KindConfirmation, Language: lang,
			Subject: i18n.T(lang, "email.export_link.subject"), Text: text, HTML: html, SubjectID: id, Links: []mail.Link{link}}, now)
		return err
	})
	return id, err
}

// ExportLink returns, without changing anything, the contact whose
// download link this is and the language of their pages, or ErrNoExport.
func (s *Service) ExportLink(ctx context.Context, secret string) (contactID, lang string, err error) {
	t, err := auth.FindContactToken(dbQuerier{ctx, s.DB.Read}, auth.PurposeExport, secret, s.now())
	if errors.Is(err, auth.ErrNoToken) {
		return "", "", ErrNoExport
	}
	if err != nil {
		return "", "", err
	}
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT language FROM contacts WHERE id = $1`, t.ContactID).Scan(&lang); err != nil {
		return "", "", ErrNoExport // erased or deleted meanwhile
	}
	return t.ContactID, i18n.Match(lang, ""), nil
}

// Export builds the export a download link gives: the contact's own data
// with their own sensitive values in the clear, each written to the
// access log with the contact as the one who saw it. In the same
// transaction the link is checked again and the contact's open access
// requests are marked done: they have their data. It returns ErrNoExport
// for a link that cannot be used, and writes nothing then.
func (s *Service) Export(ctx context.Context, secret string, ev Evidence) (*export.Export, error) {
	contactID, _, err := s.ExportLink(ctx, secret)
	if err != nil {
		return nil, err
	}
	actor := consent.Actor{Kind: consent.ActorContact, ID: contactID}
	e, err := s.Exports.Build(ctx, contactID, export.Viewer{Actor: actor, Clear: true, IP: ev.IP,
		Done: func(tx *store.Tx, now time.Time) error {
			if _, err := auth.FindContactToken(tx, auth.PurposeExport, secret, now); err != nil {
				return ErrNoExport // it expired, or was ended, meanwhile
			}
			_, err := requests.SetStatusTx(tx, contactID, requests.KindAccess, requests.StatusDone, "", actor, now)
			return err
		}})
	if errors.Is(err, ErrNoExport) {
		return nil, ErrNoExport
	}
	return e, err
}
