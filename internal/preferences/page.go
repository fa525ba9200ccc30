// Package preferences is the contact's own side of Consentry: the
// preferences page where they manage their email, their consents and their
// record (SPEC R1, R7-R10, R15-R17), the changes they ask for there, which
// take effect only once confirmed by a link emailed to the address on file,
// and the unsubscribe links of marketing email (B4).
//
// The package has no HTTP in it: internal/public serves the pages.
package preferences

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
)

// Service builds the page, records and confirms changes, and handles
// unsubscribes.
type Service struct {
	DB       *store.DB
	Consent  *consent.Service
	Contacts *contact.Service
	Lists    *lists.Service
	Log      *slog.Logger
	Now      func() time.Time
	BaseURL  string
	Sender   string
	Mail     *mail.Templates // renders the access, link and confirmation emails
	// Notify tells the operator of the requests the page records
	// (requests.NotifyOperator); nil tells no one.
	Notify requests.Notifier
	// Exports builds the download a contact asks for (export.go).
	Exports *export.Service
	// AfterGrant, when set, runs inside the transaction of each confirmed
	// change for every consent it grants, with the record and the
	// contact's language, for what a confirmed consent causes (a receipt
	// email, receipts.Service.EmailTx). An error aborts the change.
	AfterGrant func(tx *store.Tx, r *consent.Record, lang string, now time.Time) error
}

// Page is what one contact sees on their preferences page.
type Page struct {
	Contact *contact.Contact
	// Full is false for a contact the access condition leaves out: they
	// see only the email section (R17).
	Full bool
	// OptedOut is set when the contact opted out themselves; it cannot be
	// undone here (R1), only by a webform post the contact confirms by the
	// link emailed to them.
	OptedOut bool
	// OptedOutByUser is set when a user opted the contact out.
	OptedOutByUser    bool
	Lists             []ListChoice
	Consents          []ConsentChoice
	ProcessingStopped bool
	ErasureRequested  bool
	AllowStop         bool
	AllowErasure      bool
	Statement         string
	Policies          []Link
	// Data is the personal data held about the contact, sensitive values
	// masked (GDPR Art. 15); Correctable the details they may correct
	// themselves (Art. 16). Both are empty on a page that is not Full.
	Data        []DataItem
	Correctable []CorrectableItem
	// Waiting is the change the contact asked for whose confirmation link
	// still works, shown on the page so that a second save is not taken
	// for a lost one; nil when none waits.
	Waiting *Waiting
}

// Waiting is a change asked for on the page and not yet confirmed.
type Waiting struct {
	Change Change
	// SentAt is when it was asked for, which is when its confirmation
	// email was queued.
	SentAt time.Time
}

// DataItem is one piece of personal data shown to the contact: a core
// field (Name set, labelled in the page's language) or a custom field
// (Label, the operator's words).
type DataItem struct {
	Name, Label, Value string
}

// CorrectableItem is a core field the contact may correct, with its value
// and the form input's attributes.
type CorrectableItem struct {
	Name, Value, InputType, Autocomplete string
	MaxLength                            int
}

// ListChoice is a public list with the contact's subscription.
type ListChoice struct {
	ID          string
	Name        string
	Description string
	Subscribed  bool
}

// ConsentChoice is one consent the page asks for, with the contact's state.
type ConsentChoice struct {
	PurposeID   string
	Name        string
	Description string
	Text        string // the consent text shown
	TextVersion int
	// TextLanguage is the language of Text: the page's language when the
	// version has a translation into it, else the version's own (see
	// Page.Localize).
	TextLanguage string
	texts        consent.PurposeText
	// State is the current state: granted, withdrawn or none.
	State string
	// Selected is the answer the page shows chosen: the contact's current
	// state (granted or withdrawn), or "" for a contact with no record.
	// No answer is ever preselected (R12): a default does not choose.
	Selected string
	// YesFirst lists "Yes" before "No": the offer's default decides only
	// the order of the answers, never which one is chosen.
	YesFirst bool
	// Fields are the labels of sensitive fields this consent covers:
	// withdrawing it erases them (R8).
	Fields []string
}

// compile checks a condition against the current fields, purposes and
// lists, as a caller who may not reveal sensitive values.
func (s *Service) compile(ctx context.Context, src string) (*filter.Condition, error) {
	return s.Contacts.Condition(ctx, src, false)
}

// Build returns the page for a contact, read now. It returns a not-found
// error when the contact does not exist.
func (s *Service) Build(ctx context.Context, contactID string) (*Page, error) {
	c, err := s.Contacts.Get(ctx, contactID)
	if err != nil {
		return nil, err
	}
	cfg, err := GetConfig(ctx, s.DB.Read)
	if err != nil {
		return nil, err
	}
	current, err := s.Consent.CurrentConsents(ctx, contactID)
	if err != nil {
		return nil, err
	}
	subs, err := lists.Subscriptions(ctx, s.DB.Read, contactID)
	if err != nil {
		return nil, err
	}
	states := map[string]string{}
	byPurpose := map[string]consent.Current{}
	for _, cur := range current {
		byPurpose[cur.PurposeID] = cur
		if cur.State != consent.StateNone {
			states[cur.PurposeID] = cur.State
		}
	}
	subject := contact.Subject(c, states, lists.SubscribedIDs(subs))
	p := &Page{Contact: c, OptedOut: c.OptInStatus == contactstate.OptOutContact, OptedOutByUser: c.OptInStatus == contactstate.OptOutUser,
		ProcessingStopped: c.ProcessingStoppedAt != nil, ErasureRequested: c.ErasureRequestedAt != nil,
		AllowStop: cfg.AllowStopProcessing, AllowErasure: cfg.AllowErasure, Statement: cfg.Statement, Policies: cfg.Policies}
	p.Full, err = s.matches(ctx, cfg.AccessCondition, subject)
	if err != nil {
		return nil, err
	}
	if p.Waiting, err = s.waiting(ctx, contactID); err != nil {
		return nil, err
	}
	all, err := s.Lists.All(ctx)
	if err != nil {
		return nil, err
	}
	subscribed := lists.SubscribedIDs(subs)
	for _, l := range all {
		if l.Public || subscribed[l.ID] {
			p.Lists = append(p.Lists, ListChoice{ID: l.ID, Name: l.Name, Description: l.Description, Subscribed: subscribed[l.ID]})
		}
	}
	if !p.Full {
		return p, nil
	}
	if err := s.addData(ctx, p); err != nil {
		return nil, err
	}
	storage, err := s.storageFields(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range cfg.Offers {
		ok, err := s.matches(ctx, o.Condition, subject)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		pur, err := s.Consent.Purpose(ctx, o.Purpose)
		if err != nil {
			return nil, err
		}
		cur := byPurpose[pur.ID]
		ch := ConsentChoice{PurposeID: pur.ID, Name: pur.Name, Description: pur.Description, Text: pur.Text,
			TextVersion: pur.TextVersion, TextLanguage: pur.TextLanguage, State: cur.State,
			texts: consent.PurposeText{Version: pur.TextVersion, Text: pur.Text, Language: pur.TextLanguage, Translations: pur.Translations}, Selected: cur.State, YesFirst: pur.DefaultSelected, Fields: storage[pur.ID]}
		if o.DefaultSelected != nil {
			ch.YesFirst = *o.DefaultSelected
		}
		if ch.State == "" || ch.State == consent.StateNone {
			ch.State, ch.Selected = consent.StateNone, ""
		}
		p.Consents = append(p.Consents, ch)
	}
	return p, nil
}

// Retype shows typed, the "Correct my details" form as the contact posted
// it (core field name: value), in that form in place of the values on
// file, so that a refused correction comes back as typed and the contact
// sees what to fix. A field the post did not carry keeps its value on
// file; a nil typed changes nothing.
func (p *Page) Retype(typed map[string]string) {
	for i, c := range p.Correctable {
		if v, ok := typed[c.Name]; ok {
			p.Correctable[i].Value = v
		}
	}
}

// Localize shows the consent texts in lang: each in its translation into
// lang, or in its own language when its version has none (the page then
// shows that text, and the consent records name its language).
func (p *Page) Localize(lang string) {
	for i := range p.Consents {
		t := p.Consents[i].texts.In(lang)
		p.Consents[i].Text, p.Consents[i].TextLanguage = t.Text, t.Language
	}
}

// matches evaluates a condition of the settings for one contact; empty
// matches everyone. A condition that no longer compiles (a field was
// removed) matches no one, so the page shows less rather than more.
func (s *Service) matches(ctx context.Context, src string, subject *filter.Subject) (bool, error) {
	if src == "" {
		return true, nil
	}
	cond, err := s.compile(ctx, src)
	if err != nil {
		s.Log.Warn("preferences page condition no longer compiles", "err", err)
		return false, nil
	}
	return cond.Match(subject), nil
}

// storageFields maps purpose ids to the labels of the fields whose storage
// they cover.
// dataFields are the core fields the page shows the contact.
var dataFields = []string{"email", "first_name", "last_name", "phone", "country", "region", "language"}

// addData fills in the personal data the page shows and the details the
// contact may correct. Custom fields come in the order they were defined;
// sensitive ones are masked (Contact is read masked).
func (s *Service) addData(ctx context.Context, p *Page) error {
	for _, name := range dataFields {
		f, _ := contact.LookupCoreField(name)
		p.Data = append(p.Data, DataItem{Name: name, Value: f.Value(p.Contact)})
	}
	defs, err := s.Contacts.Fields(ctx)
	if err != nil {
		return err
	}
	for _, d := range defs {
		if v, ok := p.Contact.Fields[d.Name]; ok {
			p.Data = append(p.Data, DataItem{Label: d.Label, Value: fmt.Sprint(v)})
		}
	}
	for _, f := range contact.CorrectableFields() {
		p.Correctable = append(p.Correctable, CorrectableItem{Name: f.Name, Value: f.Value(p.Contact), InputType: f.InputType,
			Autocomplete: f.Autocomplete, MaxLength: f.MaxLength})
	}
	return nil
}

func (s *Service) storageFields(ctx context.Context) (map[string][]string, error) {
	defs, err := s.Contacts.Fields(ctx)
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, d := range defs {
		if d.StoragePurpose != "" {
			m[d.StoragePurpose] = append(m[d.StoragePurpose], d.Label)
		}
	}
	return m, nil
}
