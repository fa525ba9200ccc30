package preferences

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// AccessSweepJob is the job kind of the access sweep.
const AccessSweepJob = "preferences.access"

// accessBatch is how many contacts one transaction of the sweep tells.
const accessBatch = 200

// AccessSweep emails every contact who has access to the page and was never
// told a link to it (R15), when the setting is on, and returns how many it
// emailed. Each contact is told once, in the transaction that records it:
// a contact who loses access and regains it is not told again. Erased
// contacts are skipped; the send gate stops the email to anyone who opted
// out or stopped processing.
func (s *Service) AccessSweep(ctx context.Context) (int, error) {
	cfg, err := GetConfig(ctx, s.DB.Read)
	if err != nil || !cfg.AccessEmail {
		return 0, err
	}
	where, args := "TRUE", []any(nil)
	if cfg.AccessCondition != "" {
		cond, err := s.compile(ctx, cfg.AccessCondition)
		if err != nil {
			s.Log.Warn("preferences page access condition no longer compiles; no access emails sent", "err", err)
			return 0, nil
		}
		where, args = cond.SQL(s.DB.Dialect, 1)
	}
	query := `SELECT c.id, c.first_name, c.language FROM contacts c WHERE (` + where + `) AND c.erased_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM preference_access pa WHERE pa.contact_id = c.id) ORDER BY c.id LIMIT ` + fmt.Sprint(accessBatch)
	total := 0
	for {
		type who struct{ id, name, lang string }
		batch, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (who, error) {
			var w who
			return w, row.Scan(&w.id, &w.name, &w.lang)
		}, query, args...)
		if err != nil {
			return total, fmt.Errorf("preferences: select contacts with access: %w", err)
		}
		if len(batch) == 0 {
			return total, nil
		}
		err = s.DB.Write(ctx, func(tx *store.Tx) error {
			st, err := settings.InTx(tx)
			if err != nil {
				return err
			}
			now := s.now()
			for _, w := range batch {
				// Nothing is inserted for a contact deleted meanwhile, or
				// told by another instance.
				res, err := tx.Exec(`INSERT INTO preference_access (contact_id, notified_at) SELECT id, $2 FROM contacts WHERE id = $1
					ON CONFLICT (contact_id) DO NOTHING`, w.id, store.Micros(now))
				if err != nil {
					return fmt.Errorf("preferences: record access email: %w", err)
				}
				if n, _ := res.RowsAffected(); n == 0 {
					continue
				}
				lang := i18n.Match(w.lang, "")
				url, link := PageLink(s.BaseURL, st, now)
				text, html, err := s.Mail.Render("preferences_access", map[string]any{"Lang": lang, "Name": w.name, "Link": url, "Sender": st.Controller(s.Sender)})
				if err != nil {
					return fmt.Errorf("preferences: render email: %w", err)
				}
				if _, err := mail.Enqueue(tx, mail.Message{ContactID: w.id, Kind: mail.KindNotification, Language: lang,
					Subject: i18n.T(lang, "email.prefs_access.subject"), Text: text, HTML: html, Links: []mail.Link{link}}, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += len(batch)
	}
}

// PageLink returns a personal link to the contact's page under baseURL,
// valid for the configured preferences_link_hours, for an email: the URL to
// write in it, with the link's placeholder where the token goes, and the
// link to queue with the email (mail.Message.Links), whose token is issued
// as the email is sent.
func PageLink(baseURL string, st settings.Settings, now time.Time) (url string, link mail.Link) {
	link = mail.NewLink(auth.PurposePreferences, "", pageLinkExpires(st, now))
	return baseURL + "/p/" + link.Placeholder, link
}

// pageLinkExpires is when a personal link to the page made now stops
// working: after the configured preferences_link_hours.
func pageLinkExpires(st settings.Settings, now time.Time) time.Time {
	return now.Add(time.Duration(st.PreferencesLinkHours) * time.Hour)
}

// UserEmail is an email a user writes to one contact.
type UserEmail struct {
	Subject string `json:"subject" required:"true"`
	Text    string `json:"text" required:"true" doc:"plain text"`
}

// QueueUserEmail queues an email written by a user to the contact, with the
// footer linking to the contact's preferences page when the operator turned
// it on (R15). The send gate decides when it goes whether it may (an
// opted-out contact gets nothing, R2). It returns the outbox id.
func (s *Service) QueueUserEmail(ctx context.Context, contactID string, e UserEmail) (string, error) {
	if err := errs.TrimLine("subject", &e.Subject, 200); err != nil {
		return "", err
	}
	if e.Subject == "" {
		return "", errs.Required("subject")
	}
	if strings.TrimSpace(e.Text) == "" {
		return "", errs.Required("text")
	}
	if len(e.Text) > 100000 {
		return "", errs.Invalid("text", "must be at most 100000 bytes")
	}
	cfg, err := GetConfig(ctx, s.DB.Read)
	if err != nil {
		return "", err
	}
	var id string
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		var lang string
		if err := tx.QueryRow(`SELECT language FROM contacts WHERE id = $1`, contactID).Scan(&lang); err != nil {
			return errs.NotFound("contact", "")
		}
		now := s.now()
		text, links, err := AppendFooterTx(tx, s.BaseURL, cfg.Footer, e.Text, now)
		if err != nil {
			return err
		}
		id, err = mail.Enqueue(tx, mail.Message{ContactID: contactID, Kind: mail.KindAdHoc, Language: i18n.Match(lang, ""),
			Subject: e.Subject, Text: text, Links: links}, now)
		return err
	})
	return id, err
}

// Link issues a personal link to the contact's preferences page, valid for
// the configured time, for an integrator to put in its own email. It
// returns a not-found error when the contact does not exist, and the
// locked error contact_erased (contactstate.ErrErased) when their
// personal data was erased: an erasure ends every link, and no new one
// is issued.
func (s *Service) Link(ctx context.Context, contactID string) (string, time.Time, error) {
	var link string
	var expires time.Time
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		var erased bool
		if err := tx.QueryRow(`SELECT erased_at IS NOT NULL FROM contacts WHERE id = $1`, contactID).Scan(&erased); err != nil {
			return errs.NotFound("contact", "")
		}
		if erased {
			return contactstate.ErrErased()
		}
		st, err := settings.InTx(tx)
		if err != nil {
			return err
		}
		// Issued at once: the caller sends the link itself (an
		// integrator's own email), so there is no outbox to fill it in.
		now := s.now()
		expires = pageLinkExpires(st, now)
		secret, _, err := auth.IssueContactToken(tx, auth.PurposePreferences, contactID, "", expires, now)
		link = s.BaseURL + "/p/" + secret
		return err
	})
	return link, expires, err
}

// SendLinkJob is the job kind that emails a new link to the page to an
// address typed in on the page an unsubscribe link that no longer works
// shows (RequestLink). Its payload holds the address: register it with
// jobs.Runner.HandlePersonal, so that the address is forgotten when the
// job is done.
const SendLinkJob = "preferences.send_link"

// sendLinkPayload is what RequestLink leaves for the job.
type sendLinkPayload struct {
	Email string `json:"email"`
	Lang  string `json:"lang"`
}

// RequestLink asks for a fresh personal link to the preferences page to be
// emailed to the contact with this address (SendLink), by a job
// (SendLinkJob, run with RunSendLink). The request writes the job and
// nothing else whether or not the address is a contact's, and reads no
// contact: the work that differs (finding the contact, writing the email)
// happens later, so that neither the answer nor the time it takes tells
// whether the address is known. An address that cannot be one is an
// invalid error on "email", and nothing is written. The caller limits how
// often one address and one client may ask.
func (s *Service) RequestLink(ctx context.Context, email, lang string) error {
	email, err := contact.NormalizeEmail(email)
	if err != nil {
		return err
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		return jobs.Enqueue(tx, jobs.Spec{Kind: SendLinkJob, Payload: sendLinkPayload{Email: email, Lang: lang}, MaxAttempts: 5}, s.now())
	})
}

// RunSendLink does the work of a job RequestLink enqueued: SendLink.
func (s *Service) RunSendLink(ctx context.Context, j *jobs.Job) error {
	var p sendLinkPayload
	if err := j.Decode(&p); err != nil {
		return fmt.Errorf("preferences: read the job of a new link: %w", err)
	}
	return s.SendLink(ctx, p.Email, p.Lang)
}

// SendLink emails a fresh personal link to the preferences page to the
// contact with this address, who asked for it on the page an unsubscribe
// link that no longer works shows (RequestLink); there they can
// unsubscribe. It returns nil whether or not the address is a contact's:
// an unknown or erased address gets nothing. An address that cannot be
// one is an invalid error on "email". The email is a confirmation
// (mail.KindConfirmation): the contact asked for it, so it reaches them
// even after an opt-out or a stop of processing, while a bounced or
// blocklisted address still gets nothing (the send gate).
func (s *Service) SendLink(ctx context.Context, email, lang string) error {
	email, err := contact.NormalizeEmail(email)
	if err != nil {
		return err
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		var id, name, contactLang string
		err := tx.QueryRow(`SELECT id, first_name, language FROM contacts WHERE email_key = $1 AND erased_at IS NULL`,
			strings.ToLower(email)).Scan(&id, &name, &contactLang)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("preferences: find contact by address: %w", err)
		}
		st, err := settings.InTx(tx)
		if err != nil {
			return err
		}
		if contactLang != "" {
			lang = i18n.Match(contactLang, "")
		} else {
			lang = i18n.Match(lang, "")
		}
		now := s.now()
		url, link := PageLink(s.BaseURL, st, now)
		text, html, err := s.Mail.Render("preferences_link", map[string]any{"Lang": lang, "Name": name, "Link": url, "Sender": st.Controller(s.Sender),
			"Hours": st.PreferencesLinkHours})
		if err != nil {
			return fmt.Errorf("preferences: render email: %w", err)
		}
		_, err = mail.Enqueue(tx, mail.Message{ContactID: id, Kind: mail.KindConfirmation, Language: lang,
			Subject: i18n.T(lang, "email.prefs_link.subject"), Text: text, HTML: html, Links: []mail.Link{link}}, now)
		return err
	})
}
