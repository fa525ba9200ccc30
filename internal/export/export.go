// Package export builds a contact's access export (GDPR Art. 15 and 20,
// SPEC R20): every field, the consents with their full history, evidence
// and the exact consent text shown, the sources, the opt-in history, list
// subscriptions, the emails sent, who accessed the data, the contact's
// requests and legal holds; written as JSON with a versioned schema
// (docs/export.md), as a zip of CSV files, or as an Excel workbook, one
// file or sheet per section.
//
// Everything is read in one snapshot (store.DB.Snapshot), so the sections
// agree with one another however long the reading takes and whatever is
// written meanwhile. Sensitive values are masked unless the viewer may see
// them in the clear; then each value shown is written to the access log,
// together with an entry for the export itself, before a byte of the
// export is returned. If the entries cannot be written, nothing is shown.
//
// It also writes the contact list's export (list.go): the contacts a
// condition selects, one row each in chosen columns, as CSV or Excel,
// sensitive values masked, read a page at a time and written as they are
// read; each such export is one access-log entry (ListAccessField).
//
// The package knows nothing of HTTP: the API, the admin pages and the
// preferences page call Build and Write, PrepareList and ListExport.Write.
package export

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/store"
)

// SchemaVersion names the shape of the export, in the JSON and in the
// "about" section of the other formats. A change that removes or renames
// anything gets a new version; new sections or columns do not.
const SchemaVersion = "consentry.export/1"

// AccessField is the field an access-log entry names for an export: the
// export as a whole was seen, whatever it held in the clear.
const AccessField = "(export)"

// Export is a contact's data as of one moment. Its JSON is the documented
// schema (docs/export.md); CSV and Excel carry the same sections as
// tables.
type Export struct {
	Schema      string    `json:"schema" doc:"the version of this shape: consentry.export/1"`
	GeneratedAt time.Time `json:"generated_at"`
	// Masked is set when sensitive values are masked: the export was made
	// for someone who may not see them.
	Masked         bool            `json:"masked" doc:"sensitive values are masked"`
	Contact        Contact         `json:"contact"`
	Fields         []Field         `json:"fields" doc:"custom fields with a value"`
	Consents       []Consent       `json:"consents" doc:"the current state for each purpose with a consent record"`
	ConsentHistory []ConsentRecord `json:"consent_history" doc:"every consent record, oldest first"`
	ConsentTexts   []ConsentText   `json:"consent_texts" doc:"the exact consent texts the records name, by purpose, version and language"`
	Sources        []Source        `json:"sources" doc:"where the consents and list subscriptions came from"`
	OptInHistory   []OptInChange   `json:"opt_in_history" doc:"every change of the email opt-in status, oldest first"`
	Lists          []Subscription  `json:"list_subscriptions"`
	Emails         []Email         `json:"emails" doc:"every email queued for the contact, newest first"`
	AccessLog      []Access        `json:"access_log" doc:"who saw the contact's sensitive values or exported their data, and when, oldest first"`
	Requests       []Request       `json:"requests" doc:"the contact's data subject requests, open ones first"`
	Holds          []Hold          `json:"holds" doc:"legal holds on the contact's data"`
}

// Contact is the contact's core record.
type Contact struct {
	ID                  string     `json:"id"`
	Kind                string     `json:"kind"`
	Email               string     `json:"email"`
	FirstName           string     `json:"first_name"`
	LastName            string     `json:"last_name"`
	Phone               string     `json:"phone"`
	Country             string     `json:"country"`
	Region              string     `json:"region"`
	Language            string     `json:"language"`
	Stage               string     `json:"stage"`
	Owner               string     `json:"owner"`
	OptInStatus         string     `json:"opt_in_status"`
	Deliverability      string     `json:"deliverability"`
	LedgerRef           string     `json:"ledger_ref" doc:"the random reference that stands for the contact in the consent ledger"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	ProcessingStoppedAt *time.Time `json:"processing_stopped_at,omitempty"`
	ErasureRequestedAt  *time.Time `json:"erasure_requested_at,omitempty"`
}

// Field is a custom field's value.
type Field struct {
	Name      string `json:"name"`
	Label     string `json:"label"`
	Type      string `json:"type"`
	Personal  bool   `json:"personal"`
	Sensitive bool   `json:"sensitive"`
	Value     string `json:"value"`
	Masked    bool   `json:"masked" doc:"the value is masked (sensitive, and the export is masked)"`
}

// Consent is the current state of one purpose.
type Consent struct {
	PurposeID  string     `json:"purpose_id"`
	Purpose    string     `json:"purpose"`
	State      string     `json:"state" doc:"granted, withdrawn, or none once a granted consent expired"`
	Expired    bool       `json:"expired,omitempty"`
	LegalBasis string     `json:"legal_basis"`
	RecordID   string     `json:"record_id"`
	Since      time.Time  `json:"since"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// ConsentRecord is one consent record with its evidence.
type ConsentRecord struct {
	ID           string    `json:"id"`
	RecordedAt   time.Time `json:"recorded_at"`
	PurposeID    string    `json:"purpose_id"`
	Purpose      string    `json:"purpose"`
	State        string    `json:"state"`
	LegalBasis   string    `json:"legal_basis"`
	Source       string    `json:"source"`
	TextVersion  int       `json:"text_version"`
	TextLanguage string    `json:"text_language" doc:"the language the text was shown in; empty when not known (the text's own language was shown)"`
	// CollectedAt is when the consent was given, as an imported file
	// says; nil for a record made as the consent was given (recorded_at).
	CollectedAt *time.Time `json:"collected_at,omitempty" doc:"when the consent was collected, as the imported file says; empty when the record was made as it was given"`
	Notice      string     `json:"notice" doc:"the notice shown, as an import described it, for a record with no text version (0)"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	ActorKind   string     `json:"actor_kind"`
	ActorID     string     `json:"actor_id"`
	Method      string     `json:"evidence_method"`
	ImportID    string     `json:"evidence_import_id" doc:"the import the record came with (evidence_method import)"`
	IP          string     `json:"evidence_ip"`
	UserAgent   string     `json:"evidence_user_agent"`
	TokenID     string     `json:"evidence_token_id"`
	LedgerSeq   int64      `json:"ledger_seq"`
}

// ConsentText is one consent text as shown: the purpose, the version and
// the language a record names, with the words.
type ConsentText struct {
	PurposeID    string `json:"purpose_id"`
	Purpose      string `json:"purpose"`
	Version      int    `json:"version"`
	ShownIn      string `json:"shown_language" doc:"the language the records name (empty: not known)"`
	TextLanguage string `json:"text_language" doc:"the language of text: shown_language, or the version's own when it had no translation"`
	Text         string `json:"text"`
}

// Source is where data came from, with how often and when.
type Source struct {
	Source  string    `json:"source"`
	UsedFor string    `json:"used_for" doc:"consent_records or list_subscriptions"`
	Count   int       `json:"count"`
	FirstAt time.Time `json:"first_at"`
	LastAt  time.Time `json:"last_at"`
}

// OptInChange is one change of the email opt-in status.
type OptInChange struct {
	ID         string    `json:"id"`
	RecordedAt time.Time `json:"recorded_at"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	ActorKind  string    `json:"actor_kind"`
	ActorID    string    `json:"actor_id"`
	Method     string    `json:"evidence_method"`
	ImportID   string    `json:"evidence_import_id" doc:"the import whose row made the change (evidence_method import)"`
	IP         string    `json:"evidence_ip"`
	UserAgent  string    `json:"evidence_user_agent"`
	TokenID    string    `json:"evidence_token_id"`
	LedgerSeq  int64     `json:"ledger_seq"`
}

// Subscription is the contact's choice for one list.
type Subscription struct {
	List      string    `json:"list"`
	Status    string    `json:"status"`
	Source    string    `json:"source"`
	ChangedAt time.Time `json:"changed_at"`
}

// Email is one email queued for the contact: what, when and whether it
// went. Bodies are not exported; what they said is in the subject and
// kind. An email whose content was removed (the setting sent_body_days)
// has an empty subject and says when it was removed.
type Email struct {
	ID               string     `json:"id"`
	Kind             string     `json:"kind"`
	Subject          string     `json:"subject"`
	Status           string     `json:"status"`
	CreatedAt        time.Time  `json:"created_at"`
	SentAt           *time.Time `json:"sent_at,omitempty"`
	ContentRemovedAt *time.Time `json:"content_removed_at,omitempty"`
}

// Access is one access-log entry: who saw which value of the contact, or
// exported their data, when, and why. The viewer's network address is
// theirs, not the contact's, and is left out.
type Access struct {
	At        time.Time `json:"at"`
	ActorKind string    `json:"actor_kind"`
	ActorID   string    `json:"actor_id"`
	Field     string    `json:"field" doc:"the field revealed, or (export)"`
	What      string    `json:"what" doc:"what happened, in words: Revealed National ID, Downloaded the contact's data (access export)"`
	Reason    string    `json:"reason" doc:"why the value was revealed, as the user or API client gave it; empty when none was given, and for exports"`
}

// AccessWhat says an access-log entry in words, for the admin's access
// log and the export alike: a reveal names the field by label (its name
// when labels has none, as for a field since deleted), an export says so,
// an export of the contact list says what it held (its reason), and a
// look-up, which concerns no one contact, says what it compared.
func AccessWhat(e contact.AccessEntry, labels map[string]string) string {
	label := labels[e.Field]
	if label == "" {
		label = e.Field
	}
	switch {
	case e.Field == ListAccessField:
		return "Exported the contact list: " + e.Reason
	case e.ContactID == "":
		return "Looked up contacts by " + label + ": a search or filter compared a value with it; no value was shown"
	case e.Field == AccessField:
		return "Downloaded the contact's data (access export)"
	}
	return "Revealed " + label
}

// accessOf is an access-log entry as the export shows it.
func accessOf(e contact.AccessEntry, labels map[string]string) Access {
	return Access{At: e.At, ActorKind: e.Actor.Kind, ActorID: e.Actor.ID, Field: e.Field, What: AccessWhat(e, labels), Reason: e.Reason}
}

// Request is one data subject request.
type Request struct {
	ID              string     `json:"id"`
	Kind            string     `json:"kind"`
	Channel         string     `json:"channel"`
	Status          string     `json:"status"`
	Reason          string     `json:"reason,omitempty"`
	Note            string     `json:"note,omitempty"`
	ReceivedAt      time.Time  `json:"received_at"`
	DueAt           time.Time  `json:"due_at"`
	ExtendedAt      *time.Time `json:"extended_at,omitempty"`
	ExtensionReason string     `json:"extension_reason,omitempty"`
	ClosedAt        *time.Time `json:"closed_at,omitempty"`
}

// Hold is a legal hold on the contact's data.
type Hold struct {
	ID         string     `json:"id"`
	Reason     string     `json:"reason"`
	LegalBasis string     `json:"legal_basis"`
	SetByKind  string     `json:"set_by_kind"`
	SetAt      time.Time  `json:"set_at"`
	Until      *time.Time `json:"until,omitempty"`
	LiftedAt   *time.Time `json:"lifted_at,omitempty"`
	LiftReason string     `json:"lift_reason,omitempty"`
}

// Viewer is who the export is for.
type Viewer struct {
	Actor consent.Actor
	// Clear shows sensitive values in the clear, each written to the
	// access log: a user or token that may reveal, or the contact
	// themself.
	Clear bool
	IP    string
	// Done, when set, runs inside the transaction that writes the access
	// log, so that what the export fulfils (an access request) is
	// recorded with it, or not at all.
	Done func(tx *store.Tx, now time.Time) error
}

// Service builds exports.
type Service struct {
	DB       *store.DB
	Contacts *contact.Service // opens sensitive values
	Now      func() time.Time
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

// Build reads the contact's data in one snapshot, writes the access-log
// entries for what v will see (and runs v.Done) in one transaction, and
// returns the export. It returns a not-found error when there is no such
// contact, and writes nothing then.
func (s *Service) Build(ctx context.Context, contactID string, v Viewer) (*Export, error) {
	now := s.now()
	e := &Export{Schema: SchemaVersion, GeneratedAt: now, Masked: !v.Clear}
	var clear map[string]string
	labels := map[string]string{}
	err := s.DB.Snapshot(ctx, func(q store.Querier) error {
		c, defs, err := contact.ReadIn(ctx, q, contactID)
		if err != nil {
			return err
		}
		if v.Clear {
			if clear, err = s.Contacts.OpenValuesIn(ctx, q, contactID, defs); err != nil {
				return err
			}
		}
		for _, d := range defs {
			labels[d.Name] = d.Label
		}
		e.setContact(c, defs, clear)
		return e.read(ctx, q, contactID, now, labels)
	})
	if err != nil {
		return nil, err
	}
	logged := []contact.AccessEntry{{At: now, Actor: v.Actor, ContactID: contactID, Field: AccessField, IP: v.IP}}
	for _, f := range e.Fields {
		if _, ok := clear[f.Name]; ok {
			logged = append(logged, contact.AccessEntry{At: now, Actor: v.Actor, ContactID: contactID, Field: f.Name, IP: v.IP})
		}
	}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		for _, a := range logged {
			if err := contact.LogAccessTx(tx, a); err != nil {
				return err
			}
		}
		if v.Done != nil {
			return v.Done(tx, now)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export: log access: %w", err)
	}
	for _, a := range logged { // the export shows its own entries
		e.AccessLog = append(e.AccessLog, accessOf(a, labels))
	}
	return e, nil
}

// setContact fills the contact and its fields: clear holds the clear
// values of sensitive fields, nil when they stay masked.
func (e *Export) setContact(c *contact.Contact, defs []*contact.FieldDefinition, clear map[string]string) {
	e.Contact = Contact{ID: c.ID, Kind: c.Kind, Email: c.Email, FirstName: c.FirstName, LastName: c.LastName, Phone: c.Phone,
		Country: c.Country, Region: c.Region, Language: c.Language, Stage: c.Stage, Owner: c.Owner, OptInStatus: c.OptInStatus,
		Deliverability: c.Deliverability, LedgerRef: c.LedgerRef, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		ProcessingStoppedAt: c.ProcessingStoppedAt, ErasureRequestedAt: c.ErasureRequestedAt}
	e.Fields = []Field{}
	for _, d := range defs {
		v, ok := c.Fields[d.Name]
		if !ok || v == nil {
			continue
		}
		f := Field{Name: d.Name, Label: d.Label, Type: d.Type, Personal: d.Personal, Sensitive: d.Sensitive, Value: fieldText(v),
			Masked: d.Sensitive}
		if cv, ok := clear[d.Name]; ok {
			f.Value, f.Masked = cv, false
		}
		e.Fields = append(e.Fields, f)
	}
}

// fieldText writes a custom field's value as text: a number in digits
// (never 1e+06), true or false, a string as it is; no value is empty.
func fieldText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		return formatNumber(x)
	}
	return fmt.Sprint(v)
}
