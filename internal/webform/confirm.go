package webform

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// A post about an address Consentry already knows may come from anyone: it
// changes nothing until the owner of the address confirms it. What it
// carried is held (the fields, the boxes checked, the lists), and the
// address is emailed a link that applies exactly that, once: the double
// opt-in email when the marketing box was checked, else an email asking to
// confirm the changes. A newer post about the same address supersedes the
// held one.

// Statuses of a post held for confirmation.
const (
	StatusPending    = "pending"
	StatusConfirmed  = "confirmed"
	StatusSuperseded = "superseded"
)

// ConfirmHours is how long the link confirming a post without the
// marketing box works, as long as the link confirming a change on the
// preferences page. With the marketing box the link is the double opt-in
// email's, and works as long as an invitation does
// (double_opt_in_expiry_days).
const ConfirmHours = 48

// MaxHeldPerDay bounds the posts about one known address that are held,
// and so the confirmation emails sent to it, in any 24 hours, across
// instances: past it, a post about that address is answered as any other
// and writes nothing, so that a form cannot be used to flood someone's
// inbox. Below it, each post supersedes the one held before.
const MaxHeldPerDay = 3

// held is what a post about a known address carried, as stored until it
// is confirmed: the field values (contact.Held, sensitive values sealed)
// and, for the pages and the email, the form's labels.
type held struct {
	Form      string        `json:"form"` // the webform's id
	Lang      string        `json:"lang"` // the language the form was shown in
	Fields    []heldField   `json:"fields,omitempty"`
	Values    contact.Held  `json:"values"`
	Marketing *heldConsent  `json:"marketing,omitempty"`
	Consents  []heldConsent `json:"consents,omitempty"`
	Lists     []heldList    `json:"lists,omitempty"`
}

// heldField is a field as the form labelled it, with the value posted; the
// value of a sensitive field is left out.
type heldField struct {
	Name      string `json:"name"`
	Label     string `json:"label,omitempty"` // "" for the catalog's label
	Value     string `json:"value,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
	Boolean   bool   `json:"boolean,omitempty"`
}

// heldConsent is a checked consent box: its purpose and the text version
// and language the form showed; for the marketing box, the language its
// confirmation email quotes the text in, which the link confirms.
type heldConsent struct {
	PurposeID    string `json:"purpose_id"`
	Name         string `json:"name"`
	TextVersion  int    `json:"text_version"`
	TextLanguage string `json:"text_language,omitempty"` // "" in posts held before texts had languages: the version's own
}

// heldList is a checked list box.
type heldList struct {
	ListID string `json:"list_id"`
	Name   string `json:"name"`
}

// box is a checked consent box of a post: the purpose as the form read it,
// the text version the form showed (0: the current one) and the language
// of the text shown.
type box struct {
	purpose *consent.Purpose
	version int
	lang    string
}

// held is the box as a held post keeps it.
func (b box) held() heldConsent {
	v := b.version
	if v == 0 {
		v = b.purpose.TextVersion
	}
	return heldConsent{PurposeID: b.purpose.ID, Name: b.purpose.Name, TextVersion: v, TextLanguage: b.lang}
}

// hold keeps, inside tx, what a post carried for the known contact u,
// supersedes the post held for them before, and queues the email with the
// link that confirms it; consentText is the version of the marketing
// box's text the form showed, with its translations, which the email
// quotes in its own language. A post that carries nothing but the address,
// or one past MaxHeldPerDay, writes nothing.
func (s *Service) hold(tx *store.Tx, f *loaded, sub *Submission, up *contact.Upsert, u contact.UpsertResult, marketing *box,
	consentText *consent.PurposeText, consents []box, subscribe []*lists.List, lang string, now time.Time) error {
	h := held{Form: f.w.ID, Lang: lang}
	for _, fd := range f.w.Fields {
		if fd.Name == "email" {
			continue
		}
		v := strings.TrimSpace(sub.Form.Get(inputName(fd.Name)))
		if v == "" {
			continue
		}
		hf := heldField{Name: fd.Name, Label: fd.Label, Value: v}
		if d := f.defs[fd.Name]; d != nil {
			hf.Sensitive, hf.Boolean = d.Sensitive, d.Type == contact.TypeBoolean
			switch {
			case hf.Sensitive:
				hf.Value = ""
			case hf.Boolean:
				hf.Value = fmt.Sprint(v == "true") // as the post sets it
			}
		}
		h.Fields = append(h.Fields, hf)
	}
	var quoted string
	if marketing != nil {
		// The email quotes the text in its own language, and its link
		// confirms what it quoted.
		m := marketing.held()
		t := consentText.In(emailLang(u.Contact, &h))
		m.TextLanguage, quoted = t.Language, t.Text
		h.Marketing = &m
	}
	for _, b := range consents {
		h.Consents = append(h.Consents, b.held())
	}
	for _, l := range subscribe {
		h.Lists = append(h.Lists, heldList{ListID: l.ID, Name: l.Name})
	}
	if len(h.Fields) == 0 && h.Marketing == nil && len(h.Consents) == 0 && len(h.Lists) == 0 {
		return nil // nothing to confirm
	}
	id := u.Key.ID
	var recent int
	if err := tx.Row(`SELECT count(*) FROM webform_confirmations WHERE contact_id = $1 AND requested_at > $2`,
		id, store.Micros(now.Add(-24*time.Hour))).Scan(&recent); err != nil {
		return fmt.Errorf("webform: count held posts: %w", err)
	}
	if recent >= MaxHeldPerDay {
		return nil
	}
	if err := supersede(tx, id, now); err != nil {
		return err
	}
	holdID := uuid.Must(uuid.NewV7()).String()
	var err error
	if h.Values, err = up.Hold(tx, id, holdID, now); err != nil {
		return err
	}
	raw, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("webform: encode held post: %w", err)
	}
	expires := now.Add(ConfirmHours * time.Hour)
	if h.Marketing != nil {
		st, err := settings.InTx(tx)
		if err != nil {
			return err
		}
		expires = now.Add(time.Duration(st.DoubleOptInExpiryDays) * 24 * time.Hour)
	}
	if err := tx.ExecLater(store.Prefix("webform: hold post"), `INSERT INTO webform_confirmations (id, contact_id, webform_id, submission,
		status, requested_at, expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		holdID, id, f.w.ID, string(raw), StatusPending, store.Micros(now), store.Micros(expires), cleanIP(sub.IP), cleanUA(sub.UserAgent)); err != nil {
		return err
	}
	return s.sendConfirmation(tx, u.Contact, &h, holdID, quoted, expires, now)
}

// versionShown is version of purpose p's consent text, with its
// translations, as the form showed it: the one the form read (version 0
// or the current one), or an older one (the text changed while the form
// was open), read from the database. It returns nil when p has no such
// version, which the consent record then refuses.
func (s *Service) versionShown(ctx context.Context, p *consent.Purpose, version int) (*consent.PurposeText, error) {
	if version == 0 || version == p.TextVersion {
		return &consent.PurposeText{Version: p.TextVersion, Text: p.Text, Language: p.TextLanguage, Translations: p.Translations}, nil
	}
	if version < 0 || version > p.TextVersion {
		return nil, nil
	}
	texts, err := s.Consent.PurposeTexts(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	for _, t := range texts {
		if t.Version == version {
			return &t, nil
		}
	}
	return nil, nil
}

// emailLang is the language of the email that confirms a held post: the
// contact's, or the form's for a contact without one.
func emailLang(c *contact.Contact, h *held) string {
	if c.Language == "" {
		return h.Lang
	}
	return i18n.Match(c.Language, "")
}

// sendConfirmation queues the email to the contact c that carries the
// link confirming a held post: for the marketing box the double opt-in
// email, quoting consentText and listing what else the post asks for;
// else the list of changes to confirm. The email is of the confirmation
// kind: the contact asked for it (or someone did in their name), and for
// a contact who opted out, following it is the only way back in (R1).
// The link's token is issued as the email is sent (mail.Link).
func (s *Service) sendConfirmation(tx *store.Tx, c *contact.Contact, h *held, holdID, consentText string, expires, now time.Time) error {
	lang := emailLang(c, h)
	link := mail.NewLink(auth.PurposeWebformConfirmation, holdID, expires)
	subject := i18n.T(lang, "email.webform_confirm.subject")
	if h.Marketing != nil {
		subject = i18n.T(lang, "email.doi.subject")
	}
	from, err := settings.ControllerInTx(tx, s.Sender)
	if err != nil {
		return err
	}
	text, html, err := s.Mail.Render("webform_confirm", map[string]any{"Lang": lang, "Name": c.FirstName,
		"Marketing": h.Marketing != nil, "ConsentText": consentText, "Lines": h.lines(lang, false, h.Marketing == nil),
		"Link": strings.TrimRight(s.BaseURL, "/") + "/f/confirm/" + link.Placeholder, "ValidUntil": expires.Format("2006-01-02"),
		"Sender": from})
	if err != nil {
		return fmt.Errorf("webform: render email: %w", err)
	}
	_, err = mail.Enqueue(tx, mail.Message{ContactID: c.ID, Kind: mail.KindConfirmation, Language: lang, Subject: subject,
		Text: text, HTML: html, SubjectID: holdID, Links: []mail.Link{link}}, now)
	return err
}

// lines describes a held post in lang, one line per part, as its email and
// pages show it: with the values posted when values is set (the pages,
// reached only by the link), else only what the fields are (the email,
// which anyone could have caused); the marketing box when withMarketing.
func (h *held) lines(lang string, values, withMarketing bool) []string {
	var out []string
	var names []string
	for _, f := range h.Fields {
		label := f.Label
		if label == "" {
			label = i18n.T(lang, "webform.field."+f.Name)
		}
		if !values {
			names = append(names, label)
			continue
		}
		v := f.Value
		switch {
		case f.Sensitive:
			v = i18n.T(lang, "webform.line.hidden")
		case f.Boolean:
			v = i18n.T(lang, "webform.line."+v)
		}
		out = append(out, i18n.T(lang, "webform.line.field", label, v))
	}
	if len(names) > 0 {
		out = append(out, i18n.T(lang, "webform.line.fields", strings.Join(names, ", ")))
	}
	if h.Marketing != nil && withMarketing {
		out = append(out, i18n.T(lang, "webform.line.marketing", h.Marketing.Name))
	}
	for _, c := range h.Consents {
		out = append(out, i18n.T(lang, "webform.line.consent", c.Name))
	}
	for _, l := range h.Lists {
		out = append(out, i18n.T(lang, "webform.line.list", l.Name))
	}
	return out
}

// supersede ends the contact's held posts inside tx: their links stop
// working and their emails, if not yet sent, are not sent.
func supersede(tx *store.Tx, contactID string, now time.Time) error {
	ids, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT id FROM webform_confirmations WHERE contact_id = $1 AND status = $2`, contactID, StatusPending)
	if err != nil {
		return fmt.Errorf("webform: read held posts: %w", err)
	}
	for _, id := range ids {
		if err := tx.ExecLater(store.Prefix("webform: supersede held post"), `UPDATE webform_confirmations SET status = $2, ended_at = $3
			WHERE id = $1`, id, StatusSuperseded, store.Micros(now)); err != nil {
			return err
		}
		if err := auth.EndContactTokensTx(tx, id, auth.PurposeWebformConfirmation, now); err != nil {
			return err
		}
		if err := mail.Cancel(tx, id, "superseded"); err != nil {
			return err
		}
	}
	return nil
}

// Confirmation is a held post as its link shows it.
type Confirmation struct {
	ID        string
	ContactID string
	// Lang is the contact's language, for the page.
	Lang  string
	held  held
	token *auth.ContactToken
}

// Lines describes what confirming applies, in lang, with the values
// posted.
func (c *Confirmation) Lines(lang string) []string { return c.held.lines(lang, true, true) }

// ErrNoConfirmation means a confirmation link is unknown, used, expired or
// for a post that was superseded or applied. The page says the same for
// all of these.
var ErrNoConfirmation = errors.New("webform: no held post for this link")

// ErrNotApplied means a held post can no longer be applied: the contact
// stopped processing since it was posted, or a purpose it consents to (or
// the "Web form" source) is gone. Nothing was changed, and the link still
// shows the post.
var ErrNotApplied = errs.Refused("webform_not_applied", "", "the contact's record no longer allows what the form asked for")

// Pending returns, without changing anything, what a confirmation link
// would apply, or ErrNoConfirmation.
func (s *Service) Pending(ctx context.Context, secret string) (*Confirmation, error) {
	return s.pending(readQuerier{ctx, s.DB.Read}, secret)
}

// Confirmed returns the post of the contact confirmed as confirmation id,
// for the page a confirmation redirects to (which the confirmation's
// session names); ErrNoConfirmation when the contact confirmed no such
// post, or it was purged since.
func (s *Service) Confirmed(ctx context.Context, contactID, id string) (*Confirmation, error) {
	c := &Confirmation{ID: id, ContactID: contactID}
	if err := c.load(readQuerier{ctx, s.DB.Read}, StatusConfirmed, s.now()); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads c's post and its contact's language through q, from the row
// in status (a pending one only while unexpired by now), and returns
// ErrNoConfirmation when there is no such row. A contact without a
// language gets the form's.
func (c *Confirmation) load(q rowQuerier, status string, now time.Time) error {
	query := `SELECT w.submission, c.language FROM webform_confirmations w JOIN contacts c ON c.id = w.contact_id
		WHERE w.id = $1 AND w.contact_id = $2 AND w.status = $3`
	args := []any{c.ID, c.ContactID, status}
	if status == StatusPending {
		query += ` AND w.expires_at > $4`
		args = append(args, store.Micros(now))
	}
	var raw, lang string
	err := q.QueryRow(query, args...).Scan(&raw, &lang)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoConfirmation
	}
	if err != nil {
		return fmt.Errorf("webform: read held post: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &c.held); err != nil {
		return fmt.Errorf("webform: decode held post: %w", err)
	}
	c.Lang = i18n.Match(lang, "")
	if lang == "" {
		c.Lang = c.held.Lang
	}
	return nil
}

type rowQuerier interface {
	QueryRow(string, ...any) *sql.Row
}

type readQuerier struct {
	ctx context.Context
	db  *sql.DB
}

func (q readQuerier) QueryRow(query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(q.ctx, query, args...)
}

func (s *Service) pending(q rowQuerier, secret string) (*Confirmation, error) {
	now := s.now()
	t, err := auth.FindContactToken(q, auth.PurposeWebformConfirmation, secret, now)
	if errors.Is(err, auth.ErrNoToken) {
		return nil, ErrNoConfirmation
	}
	if err != nil {
		return nil, err
	}
	c := &Confirmation{ID: t.SubjectID, ContactID: t.ContactID, token: t}
	if err := c.load(q, StatusPending, now); err != nil {
		return nil, err
	}
	return c, nil
}

// Evidence is what the confirming request showed.
type Evidence struct {
	IP        string
	UserAgent string
}

// Confirm applies the post behind a confirmation link, exactly as it was
// held and once, in one transaction: a granted consent record for each
// checked box (actor the contact, source "Web form", method
// webform_confirmed, this click's IP address and user agent, the link's
// token id, the text version and language the form showed, or for the
// marketing box the email quoted) with its ledger event; the
// fields; for the marketing box the opt-in status single_opt_in_webform,
// which lifts an opt-out (R1), then double_opt_in, as the link is the
// double opt-in email's (R3), with the contact's open invitations
// superseded; and the list subscriptions. It returns the applied post,
// ErrNoConfirmation for a link that applies nothing, or ErrNotApplied
// when the contact's record no longer allows it (nothing is changed).
func (s *Service) Confirm(ctx context.Context, secret string, ev Evidence) (*Confirmation, error) {
	c, err := s.Pending(ctx, secret)
	if err != nil {
		return nil, err
	}
	actor := consent.Actor{Kind: consent.ActorContact, ID: c.ContactID}
	evidence := consent.Evidence{Method: consent.MethodWebformConfirmed, IP: cleanIP(ev.IP), UserAgent: cleanUA(ev.UserAgent), TokenID: c.token.ID}
	boxes := c.held.Consents
	if m := c.held.Marketing; m != nil {
		boxes = append([]heldConsent{*m}, boxes...)
	}
	prepared := make([]*consent.Prepared, len(boxes))
	for i, b := range boxes {
		shownIn := b.TextLanguage
		if shownIn == "" { // held before texts had languages: the form showed the version's own text
			t, err := s.Consent.TextIn(ctx, b.PurposeID, b.TextVersion, "")
			if errs.As(err) != nil {
				return nil, ErrNotApplied
			}
			if err != nil {
				return nil, fmt.Errorf("webform: confirm: %w", err)
			}
			shownIn = t.Language
		}
		prepared[i], err = s.Consent.Prepare(ctx, consent.RecordInput{Purpose: b.PurposeID, State: consent.StateGranted, Source: SourceWebForm,
			TextVersion: b.TextVersion, TextLanguage: shownIn, Actor: actor, Evidence: evidence})
		if errs.As(err) != nil {
			return nil, ErrNotApplied // the purpose or the "Web form" source is gone since
		}
		if err != nil {
			return nil, fmt.Errorf("webform: confirm: %w", err)
		}
	}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		again, err := s.pending(tx, secret)
		if err != nil {
			return err
		}
		if again.ID != c.ID {
			return ErrNoConfirmation
		}
		if err := auth.UseContactToken(tx, c.token.ID, now); err != nil {
			return ErrNoConfirmation
		}
		res, err := tx.Exec(`UPDATE webform_confirmations SET status = $2, ended_at = $3 WHERE id = $1 AND status = $4`,
			c.ID, StatusConfirmed, store.Micros(now), StatusPending)
		if err != nil {
			return fmt.Errorf("webform: mark held post confirmed: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNoConfirmation
		}
		return s.apply(tx, c, actor, evidence, prepared, now)
	})
	if errs.Is(err, errs.KindLocked) || errs.Is(err, errs.KindRefused) {
		return nil, ErrNotApplied
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// apply writes a confirmed post inside tx; see Confirm. The consents come
// first, so that a field whose storage the post consents to is stored.
func (s *Service) apply(tx *store.Tx, c *Confirmation, actor consent.Actor, ev consent.Evidence, prepared []*consent.Prepared, now time.Time) error {
	k, err := contactstate.Load(tx, c.ContactID)
	if err != nil {
		return err
	}
	if k.ProcessingStopped {
		return contactstate.ErrProcessingStopped()
	}
	for _, pr := range prepared {
		r, err := pr.Apply(tx, k, now)
		if err != nil {
			return err
		}
		if s.AfterGrant != nil && r != nil && r.State == consent.StateGranted {
			if err := s.AfterGrant(tx, r, c.Lang, now); err != nil {
				return err
			}
		}
	}
	if err := s.Contacts.ApplyHeld(tx, c.ContactID, c.ID, c.held.Values, now); err != nil {
		return err
	}
	if c.held.Marketing != nil {
		ch, err := s.Consent.ApplyOptIn(tx, k, consent.OptInInput{Status: contactstate.SingleOptInWebform, Channel: consent.ChannelWebform,
			Actor: actor, Evidence: ev}, now)
		if err != nil {
			return err
		}
		if ch != nil {
			k.OptIn = ch.To
		}
		if _, err := s.Consent.ApplyOptIn(tx, k, consent.OptInInput{Status: contactstate.DoubleOptIn, Channel: consent.ChannelConfirmation,
			Actor: actor, Evidence: ev}, now); err != nil {
			return err
		}
		if err := optin.SupersedeTx(tx, c.ContactID, now); err != nil {
			return err
		}
	}
	for _, l := range c.held.Lists {
		if err := lists.SetLater(tx, c.ContactID, l.ListID, lists.Subscribed, lists.SourceWebform, now); err != nil {
			return err
		}
	}
	return nil
}

// HeldPost is a webform post about a known address, for the operator.
type HeldPost struct {
	ID          string     `json:"id"`
	Webform     string     `json:"webform_id"`
	Status      string     `json:"status" enum:"pending,confirmed,superseded"`
	RequestedAt time.Time  `json:"requested_at"`
	ExpiresAt   time.Time  `json:"expires_at" doc:"when its link stops working"`
	EndedAt     *time.Time `json:"ended_at,omitempty" doc:"when it was confirmed or superseded"`
}

// HeldPosts lists the webform posts about the contact's address that were
// held for confirmation, newest first; none is an empty slice. A held post
// whose link is never followed stays pending until housekeeping deletes it
// after its link expired.
func (s *Service) HeldPosts(ctx context.Context, contactID string) ([]HeldPost, error) {
	out, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (HeldPost, error) {
		var p HeldPost
		var at, expires int64
		var ended sql.NullInt64
		if err := row.Scan(&p.ID, &p.Webform, &p.Status, &at, &expires, &ended); err != nil {
			return p, err
		}
		p.RequestedAt, p.ExpiresAt = store.FromMicros(at), store.FromMicros(expires)
		if ended.Valid {
			t := store.FromMicros(ended.Int64)
			p.EndedAt = &t
		}
		return p, nil
	}, `SELECT id, webform_id, status, requested_at, expires_at, ended_at FROM webform_confirmations WHERE contact_id = $1
		ORDER BY requested_at DESC, id DESC`, contactID)
	if err != nil {
		return nil, fmt.Errorf("webform: list held posts: %w", err)
	}
	return out, nil
}

// DeleteEndedTx deletes, inside tx, the held posts that ended (confirmed
// or superseded) or whose link expired before before: what they carried
// is applied or void, and they hold personal data. It returns how many it
// deleted.
func DeleteEndedTx(tx *store.Tx, before time.Time) (int64, error) {
	res, err := tx.Exec(`DELETE FROM webform_confirmations WHERE ended_at < $1 OR expires_at < $1`, store.Micros(before))
	if err != nil {
		return 0, fmt.Errorf("webform: delete ended held posts: %w", err)
	}
	return res.RowsAffected()
}

// ForgetContactsTx deletes, inside tx, every post held for the contacts in
// ids, when their personal data is erased: what they carried is personal
// and will never be applied.
func ForgetContactsTx(tx *store.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(1, ids)
	return tx.ExecLater(store.Prefix("webform: forget held posts"), `DELETE FROM webform_confirmations WHERE contact_id IN (`+ph+`)`, args...)
}
