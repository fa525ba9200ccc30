package preferences

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
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// ConfirmHours is how long the link confirming a change works.
const ConfirmHours = 48

// Statuses of a change asked for on the page.
const (
	StatusPending    = "pending"
	StatusApplied    = "applied"
	StatusSuperseded = "superseded"
)

// Form is what the contact submitted: the whole page's choices.
type Form struct {
	OptOut bool
	// Shown are the lists the page showed, Lists those left checked: a
	// list the page did not show is never changed.
	Shown    map[string]bool
	Lists    map[string]bool   // list id: subscribed; absent is unsubscribed
	Consents map[string]string // purpose id: granted, withdrawn or "" (no choice)
	Versions map[string]int    // purpose id: the consent text version shown
	// Stop and Erase are the buttons, each a change of its own.
	Stop  bool
	Erase bool
	// Correct is the "Correct my details" form, a change of its own;
	// Profile holds its fields as posted, by core field name.
	Correct bool
	Profile map[string]string
}

// Change is exactly what the contact asked for and will confirm: only what
// differs from the state the page showed.
type Change struct {
	OptOut         bool            `json:"opt_out,omitempty"`
	Lists          []ListChange    `json:"lists,omitempty"`
	Consents       []ConsentChange `json:"consents,omitempty"`
	StopProcessing bool            `json:"stop_processing,omitempty"`
	Erasure        bool            `json:"erasure,omitempty"`
	// Profile are corrections of the contact's own details (GDPR Art. 16).
	Profile []Correction `json:"profile,omitempty"`
}

// Correction sets one core field to a new value ("" removes it).
type Correction struct {
	Field string `json:"field"`
	Value string `json:"value"`
}

// ListChange subscribes to or unsubscribes from one list.
type ListChange struct {
	ListID string `json:"list_id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// ConsentChange grants or withdraws one consent, as the text version shown.
type ConsentChange struct {
	PurposeID   string   `json:"purpose_id"`
	Name        string   `json:"name"`
	State       string   `json:"state"`
	TextVersion int      `json:"text_version"`
	Fields      []string `json:"fields,omitempty"` // fields a withdrawal erases
	// TextLanguage is the language of the text the page showed: Diff
	// takes it from the page (Page.Localize).
	TextLanguage string `json:"text_language,omitempty"`
}

// Empty reports whether the change changes nothing.
func (c *Change) Empty() bool {
	return !c.OptOut && len(c.Lists) == 0 && len(c.Consents) == 0 && !c.StopProcessing && !c.Erasure && len(c.Profile) == 0
}

// Diff turns the submitted form into the change it asks for against the page
// the contact was shown. Choices the page did not offer are refused with
// the field named, so nothing can be changed that the contact could not see.
func (p *Page) Diff(f Form) (*Change, error) {
	c := &Change{}
	if f.Correct {
		return p.corrections(f.Profile)
	}
	if f.Stop || f.Erase {
		if f.Stop {
			if !p.Full || !p.AllowStop {
				return nil, errs.Invalid("stop_processing", "is not offered")
			}
			c.StopProcessing = !p.ProcessingStopped
		}
		if f.Erase {
			if !p.Full || !p.AllowErasure {
				return nil, errs.Invalid("erasure", "is not offered")
			}
			c.Erasure = !p.ErasureRequested
		}
		return c, nil
	}
	c.OptOut = f.OptOut && !p.OptedOut
	offered := map[string]bool{}
	for _, l := range p.Lists {
		offered[l.ID] = true
		if !f.Shown[l.ID] {
			continue // added while the page was open: the contact never saw it
		}
		if want := f.Lists[l.ID]; want != l.Subscribed {
			st := lists.Unsubscribed
			if want {
				st = lists.Subscribed
			}
			if want && p.ProcessingStopped {
				// A locked record takes no new subscription (lists.SetLater);
				// leaving a list stays open.
				return nil, errs.WithField(contactstate.ErrProcessingStopped(), errs.Field("list."+l.ID))
			}
			c.Lists = append(c.Lists, ListChange{ListID: l.ID, Name: l.Name, Status: st})
		}
	}
	for id := range f.Lists {
		if !offered[id] || !f.Shown[id] {
			return nil, errs.Invalid("list."+id, "is not a list on this page")
		}
	}
	asked := map[string]bool{}
	for _, ch := range p.Consents {
		asked[ch.PurposeID] = true
		// Only an answer that differs from the contact's current state
		// counts. No answer is preselected (R12), so every answer sent is
		// one the contact chose.
		want := f.Consents[ch.PurposeID]
		if want == "" || want == ch.State {
			continue
		}
		if want != consent.StateGranted && want != consent.StateWithdrawn {
			return nil, errs.Invalid("consent."+ch.PurposeID, "must be granted or withdrawn")
		}
		if want == consent.StateGranted && p.ProcessingStopped {
			return nil, contactstate.ErrProcessingStopped()
		}
		if v := f.Versions[ch.PurposeID]; v != ch.TextVersion {
			return nil, errs.Conflict("consent_text_changed", "consent."+ch.PurposeID, "the consent text changed while the page was open; please read it again")
		}
		cc := ConsentChange{PurposeID: ch.PurposeID, Name: ch.Name, State: want, TextVersion: ch.TextVersion, TextLanguage: ch.TextLanguage}
		if want == consent.StateWithdrawn {
			cc.Fields = ch.Fields
		}
		c.Consents = append(c.Consents, cc)
	}
	for id := range f.Consents {
		if !asked[id] {
			return nil, errs.Invalid("consent."+id, "is not a consent on this page")
		}
	}
	return c, nil
}

// corrections turns the posted "Correct my details" form into the fields
// that differ from what is on file, each checked as it would be stored. A
// field the page does not offer for correction is refused, named.
func (p *Page) corrections(posted map[string]string) (*Change, error) {
	if !p.Full {
		return nil, errs.Invalid("profile", "is not offered")
	}
	c := &Change{}
	offered := map[string]bool{}
	for _, f := range contact.CorrectableFields() {
		offered[f.Name] = true
		v, ok := posted[f.Name]
		if !ok {
			continue
		}
		norm, err := contact.CheckCorrection(f.Name, v)
		if err != nil {
			return nil, err
		}
		if norm != f.Value(p.Contact) {
			c.Profile = append(c.Profile, Correction{Field: f.Name, Value: norm})
		}
	}
	for name := range posted {
		if !offered[name] {
			return nil, errs.Invalid("profile."+name, "is not a detail you can correct here")
		}
	}
	return c, nil
}

// Evidence is where a request came from.
type Evidence struct {
	IP        string
	UserAgent string
}

// Request saves the change as pending, ends any earlier pending change of
// the contact, and emails the address on file a link that confirms it, all
// in one transaction. Nothing changes until the link is used (R7). lang is
// the language the page was shown in, for the email; the consent records
// will name the language each consent text was shown in, as Diff took it
// from the page. It returns the pending change's id.
func (s *Service) Request(ctx context.Context, contactID string, c *Change, lang string, ev Evidence) (string, error) {
	if c.Empty() {
		return "", errs.Invalid("change", "nothing was changed")
	}
	// What will be recorded on confirmation must be recordable now: a
	// change that could never be confirmed is refused before it is emailed.
	if _, err := s.prepare(ctx, contactID, c, consent.Evidence{Method: consent.MethodPreferencesPage}); err != nil {
		return "", err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	id := uuid.Must(uuid.NewV7()).String()
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		if err := supersede(tx, contactID, now); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO preference_changes (id, contact_id, change, status, requested_at, ip, user_agent)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, contactID, string(raw), StatusPending, store.Micros(now), ev.IP, ev.UserAgent)
		if store.IsForeignKeyViolation(err) {
			return errs.NotFound("contact", "")
		}
		if err != nil {
			return fmt.Errorf("preferences: save change: %w", err)
		}
		link := mail.NewLink(auth.PurposePreferencesChange, id, now.Add(ConfirmHours*time.Hour))
		var first string
		if err := tx.QueryRow(`SELECT first_name FROM contacts WHERE id = $1`, contactID).Scan(&first); err != nil {
			return fmt.Errorf("preferences: read contact: %w", err)
		}
		from, err := settings.ControllerInTx(tx, s.Sender)
		if err != nil {
			return err
		}
		text, html, err := s.Mail.Render("preferences_change", map[string]any{"Lang": lang, "Name": first, "Lines": c.Lines(lang),
			"Link": s.BaseURL + "/p/confirm/" + link.Placeholder, "Hours": ConfirmHours, "Sender": from})
		if err != nil {
			return fmt.Errorf("preferences: render email: %w", err)
		}
		_, err = mail.Enqueue(tx, mail.Message{ContactID: contactID, Kind: mail.KindConfirmation, Language: lang,
			Subject: i18n.T(lang, "email.prefs_change.subject"), Text: text, HTML: html, SubjectID: id, Links: []mail.Link{link}}, now)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// supersede ends the contact's pending changes inside tx: their links stop
// working and their emails, if not yet sent, are not sent.
func supersede(tx *store.Tx, contactID string, now time.Time) error {
	rows, err := tx.Query(`SELECT id FROM preference_changes WHERE contact_id = $1 AND status = $2`, contactID, StatusPending)
	if err != nil {
		return fmt.Errorf("preferences: read pending changes: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if _, err := tx.Exec(`UPDATE preference_changes SET status = $2, ended_at = $3 WHERE id = $1`, id, StatusSuperseded, store.Micros(now)); err != nil {
			return fmt.Errorf("preferences: supersede change: %w", err)
		}
		if err := auth.EndContactTokensTx(tx, id, auth.PurposePreferencesChange, now); err != nil {
			return err
		}
		if err := mail.Cancel(tx, id, "superseded"); err != nil {
			return err
		}
	}
	return nil
}

// Lines describes the change in the contact's language, one line per part,
// as the confirmation email and page show it.
func (c *Change) Lines(lang string) []string {
	var out []string
	if c.StopProcessing {
		out = append(out, i18n.T(lang, "prefs.line.stop"))
	}
	if c.Erasure {
		out = append(out, i18n.T(lang, "prefs.line.erase"))
	}
	if c.OptOut {
		out = append(out, i18n.T(lang, "prefs.line.opt_out"))
	}
	for _, pc := range c.Profile {
		label := i18n.T(lang, "prefs.field."+pc.Field)
		if pc.Value == "" {
			out = append(out, i18n.T(lang, "prefs.line.profile_remove", label))
		} else {
			out = append(out, i18n.T(lang, "prefs.line.profile", label, pc.Value))
		}
	}
	for _, l := range c.Lists {
		out = append(out, i18n.T(lang, "prefs.line.list_"+l.Status, l.Name))
	}
	for _, cc := range c.Consents {
		line := i18n.T(lang, "prefs.line.consent_"+cc.State, cc.Name)
		for _, f := range cc.Fields {
			line += " " + i18n.T(lang, "prefs.line.erases", f)
		}
		out = append(out, line)
	}
	return out
}

// Pending is a change waiting for its confirmation link.
type Pending struct {
	ID        string
	ContactID string
	Change    Change
	Lang      string
	token     *auth.ContactToken
}

// ErrNoChange means a confirmation link is unknown, used, expired or for a
// change that was replaced. The page says the same for all of these.
var ErrNoChange = errors.New("preferences: no pending change for this link")

// PendingChange returns, without changing anything, the change a
// confirmation link would apply, or ErrNoChange.
func (s *Service) PendingChange(ctx context.Context, secret string) (*Pending, error) {
	return s.pending(ctx, dbQuerier{ctx, s.DB.Read}, secret)
}

type rowQuerier interface {
	QueryRow(string, ...any) *sql.Row
}

type dbQuerier struct {
	ctx context.Context
	db  *sql.DB
}

func (q dbQuerier) QueryRow(query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(q.ctx, query, args...)
}

func (s *Service) pending(ctx context.Context, q rowQuerier, secret string) (*Pending, error) {
	t, err := auth.FindContactToken(q, auth.PurposePreferencesChange, secret, s.now())
	if errors.Is(err, auth.ErrNoToken) {
		return nil, ErrNoChange
	}
	if err != nil {
		return nil, err
	}
	p := &Pending{ID: t.SubjectID, ContactID: t.ContactID, token: t}
	var raw, status, lang string
	err = q.QueryRow(`SELECT pc.change, pc.status, c.language FROM preference_changes pc JOIN contacts c ON c.id = pc.contact_id
		WHERE pc.id = $1`, t.SubjectID).Scan(&raw, &status, &lang)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && status != StatusPending) {
		return nil, ErrNoChange
	}
	if err != nil {
		return nil, fmt.Errorf("preferences: read change: %w", err)
	}
	return p, p.decode(raw, lang)
}

// decode sets the change from its stored JSON, and the language of the
// contact's pages.
func (p *Pending) decode(raw, lang string) error {
	p.Lang = i18n.Match(lang, "")
	if err := json.Unmarshal([]byte(raw), &p.Change); err != nil {
		return fmt.Errorf("preferences: decode change: %w", err)
	}
	return nil
}

// AppliedChange returns the change changeID of the contact once it was
// applied, for the page that says so after the confirmation redirected to
// it; a change that is not the contact's, or not applied, is ErrNoChange.
func (s *Service) AppliedChange(ctx context.Context, contactID, changeID string) (*Pending, error) {
	p := &Pending{ID: changeID, ContactID: contactID}
	var raw, lang string
	err := s.DB.Read.QueryRowContext(ctx, `SELECT pc.change, c.language FROM preference_changes pc JOIN contacts c ON c.id = pc.contact_id
		WHERE pc.id = $1 AND pc.contact_id = $2 AND pc.status = $3`, changeID, contactID, StatusApplied).Scan(&raw, &lang)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoChange
	}
	if err != nil {
		return nil, fmt.Errorf("preferences: read applied change: %w", err)
	}
	return p, p.decode(raw, lang)
}

// Confirm applies the change behind a confirmation link, exactly as it was
// shown and once, in one transaction: the consent records with their
// evidence (this click's address and user agent, the link's token) and
// ledger events, the opt-out, the list subscriptions, the processing lock
// and the erasure request. It returns the applied change, or ErrNoChange.
func (s *Service) Confirm(ctx context.Context, secret string, ev Evidence) (*Pending, error) {
	p, err := s.PendingChange(ctx, secret)
	if err != nil {
		return nil, err
	}
	actor := consent.Actor{Kind: consent.ActorContact, ID: p.ContactID}
	evidence := consent.Evidence{Method: consent.MethodPreferencesPage, IP: ev.IP, UserAgent: ev.UserAgent, TokenID: p.token.ID}
	prepared, err := s.prepare(ctx, p.ContactID, &p.Change, evidence)
	if err != nil {
		return nil, err
	}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		again, err := s.pending(ctx, tx, secret)
		if err != nil {
			return err
		}
		if again.ID != p.ID {
			return ErrNoChange
		}
		if err := auth.UseContactToken(tx, p.token.ID, now); err != nil {
			return ErrNoChange
		}
		res, err := tx.Exec(`UPDATE preference_changes SET status = $2, ended_at = $3 WHERE id = $1 AND status = $4`,
			p.ID, StatusApplied, store.Micros(now), StatusPending)
		if err != nil {
			return fmt.Errorf("preferences: mark change applied: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNoChange
		}
		if err := s.apply(tx, p, actor, evidence, prepared, now); err != nil {
			return err
		}
		return emitConfirmed(tx, p, now)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// emitConfirmed writes preferences.confirmed for the change p: what it
// covered, by id and name, never a value.
func emitConfirmed(tx *store.Tx, p *Pending, now time.Time) error {
	c := p.Change
	d := events.PreferencesConfirmedData{ContactID: p.ContactID, ChangeID: p.ID, PurposeIDs: []string{}, ListIDs: []string{},
		OptOut: c.OptOut, StopProcessing: c.StopProcessing, Erasure: c.Erasure, Fields: []string{}}
	for _, cc := range c.Consents {
		d.PurposeIDs = append(d.PurposeIDs, cc.PurposeID)
	}
	for _, l := range c.Lists {
		d.ListIDs = append(d.ListIDs, l.ListID)
	}
	for _, pc := range c.Profile {
		d.Fields = append(d.Fields, pc.Field)
	}
	return events.Emit(tx, events.PreferencesConfirmed, p.ContactID, d, now)
}

// prepare validates the consent records a change will write.
func (s *Service) prepare(ctx context.Context, contactID string, c *Change, ev consent.Evidence) ([]*consent.Prepared, error) {
	actor := consent.Actor{Kind: consent.ActorContact, ID: contactID}
	out := make([]*consent.Prepared, len(c.Consents))
	for i, cc := range c.Consents {
		var err error
		out[i], err = s.Consent.Prepare(ctx, consent.RecordInput{Purpose: cc.PurposeID, State: cc.State,
			Source: consent.SourcePreferencesPage, TextVersion: cc.TextVersion, TextLanguage: cc.TextLanguage, Actor: actor, Evidence: ev})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// apply carries out a confirmed change inside tx. A grant on a record whose
// processing was stopped after the change was asked for is refused, and
// then nothing of the change is applied.
func (s *Service) apply(tx *store.Tx, p *Pending, actor consent.Actor, ev consent.Evidence, prepared []*consent.Prepared, now time.Time) error {
	k, err := contactstate.Load(tx, p.ContactID)
	if err != nil {
		return err
	}
	for _, pr := range prepared {
		r, err := pr.Apply(tx, k, now)
		if err != nil {
			return err
		}
		if s.AfterGrant != nil && r != nil && r.State == consent.StateGranted {
			if err := s.AfterGrant(tx, r, p.Lang, now); err != nil {
				return err
			}
		}
	}
	for _, l := range p.Change.Lists {
		// Unsubscribing from a list bound to a purpose withdraws that
		// consent too, with this change's actor and evidence.
		var err error
		if l.Status == lists.Unsubscribed {
			err = lists.UnsubscribeTx(tx, p.ContactID, l.ListID, lists.SourcePreferences, now, s.Consent.PurposeWithdrawal(actor, ev))
		} else {
			err = lists.SetLater(tx, p.ContactID, l.ListID, l.Status, lists.SourcePreferences, now)
		}
		if err != nil {
			return err // (a list deleted meanwhile is simply gone)
		}
	}
	switch {
	case p.Change.StopProcessing:
		if err := s.Consent.StopProcessingTx(tx, k, actor, ev, now); err != nil {
			return err
		}
		// The lock applied above fulfils the restriction at once.
		if err := s.recordRequest(tx, p.ContactID, requests.KindRestriction, "", true, actor, now); err != nil {
			return err
		}
	case p.Change.OptOut:
		if _, err := s.Consent.ApplyOptIn(tx, k, consent.OptInInput{Status: contactstate.OptOutContact, Channel: consent.ChannelContact,
			Actor: actor, Evidence: ev}, now); err != nil {
			return err
		}
	}
	if p.Change.Erasure {
		if err := contactstate.RequestErasureTx(tx, p.ContactID, now); err != nil {
			return err
		}
		if err := s.recordRequest(tx, p.ContactID, requests.KindErasure, "", false, actor, now); err != nil {
			return err
		}
	}
	if len(p.Change.Profile) > 0 {
		return s.correct(tx, p, actor, now)
	}
	return nil
}

// correct applies the contact's corrections and records them as a
// rectification request, done at once: the contact confirmed it by the
// link, and the operator sees that it happened and when.
func (s *Service) correct(tx *store.Tx, p *Pending, actor consent.Actor, now time.Time) error {
	values := make(map[string]string, len(p.Change.Profile))
	fields := make([]string, 0, len(p.Change.Profile))
	for _, pc := range p.Change.Profile {
		values[pc.Field] = pc.Value
		fields = append(fields, pc.Field)
	}
	if err := s.Contacts.CorrectTx(tx, p.ContactID, values, now); err != nil {
		return err
	}
	return s.recordRequest(tx, p.ContactID, requests.KindRectification,
		"Corrected by the contact on the preferences page: "+strings.Join(fields, ", ")+".", true, actor, now)
}

// recordRequest records the data subject request a confirmed change makes,
// as verified, since the contact proved who they are by confirming from
// their own inbox; done closes it at once, when the change itself
// fulfilled it.
func (s *Service) recordRequest(tx *store.Tx, contactID, kind, note string, done bool, actor consent.Actor, now time.Time) error {
	r, err := requests.CreateTx(tx, requests.New{Kind: kind, Channel: requests.ChannelPreferences, ContactID: contactID,
		Verified: true, Actor: actor, Note: note}, s.Notify, now)
	if err != nil || !done {
		return err
	}
	status := requests.StatusDone
	_, err = requests.UpdateTx(tx, r.ID, requests.Change{Status: &status}, actor, now)
	return err
}

// ChangeEntry is a change asked for on the page, for the operator.
type ChangeEntry struct {
	ID          string     `json:"id"`
	Status      string     `json:"status" enum:"pending,applied,superseded"`
	Change      Change     `json:"change"`
	RequestedAt time.Time  `json:"requested_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty" doc:"when it was applied or replaced"`
}

// Changes lists the changes the contact asked for on the page, newest
// first; none is an empty slice. A pending change that is never confirmed
// stays pending, and its link expires.
func (s *Service) Changes(ctx context.Context, contactID string) ([]ChangeEntry, error) {
	return store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (ChangeEntry, error) {
		var e ChangeEntry
		var raw string
		var at int64
		var ended sql.NullInt64
		if err := row.Scan(&e.ID, &e.Status, &raw, &at, &ended); err != nil {
			return e, err
		}
		e.RequestedAt = store.FromMicros(at)
		if ended.Valid {
			t := store.FromMicros(ended.Int64)
			e.EndedAt = &t
		}
		return e, json.Unmarshal([]byte(raw), &e.Change)
	}, `SELECT id, status, change, requested_at, ended_at FROM preference_changes WHERE contact_id = $1 ORDER BY requested_at DESC, id DESC`, contactID)
}

// waiting returns the contact's pending change whose confirmation link
// still works (Request leaves at most one), or nil when there is none: a
// change older than ConfirmHours can no longer be confirmed, so it no
// longer waits.
func (s *Service) waiting(ctx context.Context, contactID string) (*Waiting, error) {
	since := s.now().Add(-ConfirmHours * time.Hour)
	var raw string
	var at int64
	err := s.DB.Read.QueryRowContext(ctx, `SELECT change, requested_at FROM preference_changes
		WHERE contact_id = $1 AND status = $2 AND requested_at > $3 ORDER BY requested_at DESC, id DESC LIMIT 1`,
		contactID, StatusPending, store.Micros(since)).Scan(&raw, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("preferences: read waiting change: %w", err)
	}
	w := &Waiting{SentAt: store.FromMicros(at)}
	if err := json.Unmarshal([]byte(raw), &w.Change); err != nil {
		return nil, fmt.Errorf("preferences: decode change: %w", err)
	}
	return w, nil
}

// ForgetContactsTx deletes, inside tx, the preference changes of the
// contacts in ids, pending or ended, when their personal data is erased:
// they carry the values asked for and the IP address and user agent of
// the request. The consent records the applied ones wrote stay, as the
// proof.
func ForgetContactsTx(tx *store.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(1, ids)
	return tx.ExecLater(store.Prefix("preferences: forget changes"), `DELETE FROM preference_changes WHERE contact_id IN (`+ph+`)`, args...)
}
