package consent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
)

// Record is one consent record: a contact's state for a purpose from a
// moment on, with where it came from and the evidence for it. Records are
// appended, never changed.
type Record struct {
	ID           string     `json:"id"`
	ContactID    string     `json:"contact_id"`
	PurposeID    string     `json:"purpose_id"`
	PurposeName  string     `json:"purpose"`
	State        string     `json:"state" enum:"@consent_state"`
	LegalBasis   string     `json:"legal_basis"`
	Source       string     `json:"source" doc:"the source's name when the record was written"`
	SourceID     string     `json:"source_id"`
	TextVersion  int        `json:"text_version" doc:"the version of the purpose's consent text the contact was shown; 0 for an imported record whose evidence.notice describes the notice shown instead"`
	TextLanguage string     `json:"text_language,omitempty" doc:"the language the consent text was shown in, such as en or sv; empty when not known"`
	RecordedAt   time.Time  `json:"recorded_at"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	Actor        Actor      `json:"actor"`
	Evidence     Evidence   `json:"evidence"`
	LedgerSeq    int64      `json:"ledger_seq" doc:"the position of this change in the consent ledger"`
}

// RecordInput asks to record a consent state for a contact and purpose.
type RecordInput struct {
	Purpose      string     // name or id
	State        string     // granted or withdrawn
	Source       string     // name or id of an active source
	LegalBasis   string     // empty: the purpose's legal basis; any other than the purpose's is refused (Purpose.AllowsLegalBasis)
	TextVersion  int        // 0: the purpose's current consent text
	TextLanguage string     `json:"text_language,omitempty"` // the language the consent text was shown in (en, sv, ...); empty: not known
	ExpiresAt    *time.Time // optional, granted only
	Actor        Actor
	Evidence     Evidence
}

// Prepared is a consent change that has been validated against the current
// purposes and sources and can be applied inside a transaction.
type Prepared struct {
	purpose  *Purpose
	sourceID string
	in       RecordInput
	hooks    []RecordHook
}

// check validates what an input says on its own, without reading, and
// puts its language tag in canonical form (i18n.ParseTag).
func (s *Service) check(in *RecordInput) error {
	if strings.TrimSpace(in.Purpose) == "" {
		return errs.Required("purpose")
	}
	if in.State == "" {
		return errs.Required("state")
	}
	if !validOneOf(in.State, RecordStates) {
		return errs.Invalid("state", "must be granted or withdrawn")
	}
	if strings.TrimSpace(in.Source) == "" {
		return errs.Required("source")
	}
	if in.LegalBasis != "" && !validOneOf(in.LegalBasis, LegalBases) {
		return errs.Invalid("legal_basis", "must be one of %s", strings.Join(LegalBases, ", "))
	}
	if err := checkActor(in.Actor, in.Evidence); err != nil {
		return err
	}
	lang, err := i18n.ParseTag("text_language", in.TextLanguage)
	if err != nil {
		return err
	}
	in.TextLanguage = lang
	if in.ExpiresAt != nil {
		if in.State != StateGranted {
			return errs.Invalid("expires_at", "only a granted consent can expire")
		}
		if !in.ExpiresAt.After(s.Now()) {
			return errs.Invalid("expires_at", "must be in the future")
		}
		t := in.ExpiresAt.UTC().Truncate(time.Microsecond) // as stored
		in.ExpiresAt = &t
	}
	return nil
}

// Prepare validates in and resolves its purpose and source, reading outside
// any transaction so that the write itself stays short.
func (s *Service) Prepare(ctx context.Context, in RecordInput) (*Prepared, error) {
	if err := s.check(&in); err != nil {
		return nil, err
	}
	p, err := s.findPurpose(ctx, in.Purpose)
	if err != nil {
		return nil, err
	}
	src, err := s.ActiveSource(ctx, in.Source)
	if err != nil {
		return nil, err
	}
	return s.resolved(in, p, src)
}

// PrepareResolved is Prepare for a caller that has already read the purpose
// and the active source in.Purpose and in.Source name: a webform reads them
// once for many posts. The caller answers for how fresh they are.
func (s *Service) PrepareResolved(in RecordInput, p *Purpose, src *Source) (*Prepared, error) {
	if err := s.check(&in); err != nil {
		return nil, err
	}
	return s.resolved(in, p, src)
}

// resolved completes a checked input with its purpose and source.
func (s *Service) resolved(in RecordInput, p *Purpose, src *Source) (*Prepared, error) {
	in.Source = src.Name
	if in.LegalBasis == "" {
		in.LegalBasis = p.LegalBasis
	}
	if !p.AllowsLegalBasis(in.LegalBasis) {
		return nil, errs.Invalid("legal_basis", "purpose %q rests on the legal basis %s, so its consents are recorded on that basis, not %s",
			p.Name, p.LegalBasis, in.LegalBasis)
	}
	switch {
	case in.TextVersion == 0 && in.Evidence.Notice != "":
		// Not one of the purpose's texts: the notice describes what the
		// person was shown (an import's provenance), and version 0 says so.
	case in.TextVersion == 0:
		in.TextVersion = p.TextVersion
	case in.TextVersion < 0 || in.TextVersion > p.TextVersion:
		return nil, errs.Invalid("text_version", "purpose %q has consent text versions 1 to %d", p.Name, p.TextVersion)
	}
	return &Prepared{purpose: p, sourceID: src.ID, in: in, hooks: s.afterRecord}, nil
}

// checkActor refuses evidence that the actor cannot have collected: users and
// API clients may record what they entered, imported or relayed, while the
// methods that prove the contact's own action belong to the flows that carry
// those actions out.
func checkActor(a Actor, ev Evidence) error {
	if !validOneOf(a.Kind, ActorKinds) {
		return errs.Invalid("actor", "unknown actor kind %q", a.Kind)
	}
	if !validOneOf(ev.Method, Methods) {
		return errs.Invalid("evidence.method", "must be one of %s", strings.Join(UserMethods, ", "))
	}
	if (a.Kind == ActorUser || a.Kind == ActorAPIToken) && !validOneOf(ev.Method, UserMethods) {
		return errs.Invalid("evidence.method", "a user or API client can record only %s", strings.Join(UserMethods, ", "))
	}
	if ev.IP != "" {
		if _, err := netip.ParseAddr(ev.IP); err != nil {
			return errs.Invalid("evidence.ip", "must be an IPv4 or IPv6 address")
		}
	}
	if len(ev.UserAgent) > 512 {
		return errs.Invalid("evidence.user_agent", "must be at most 512 characters")
	}
	return errs.PlainText("evidence.user_agent", ev.UserAgent)
}

// newRecord is the record p describes for the contact, at ledger position seq.
func (p *Prepared) newRecord(contactID string, now time.Time, seq int64) *Record {
	in := p.in
	return &Record{ID: uuid.Must(uuid.NewV7()).String(), ContactID: contactID, PurposeID: p.purpose.ID,
		PurposeName: p.purpose.Name, State: in.State, LegalBasis: in.LegalBasis, Source: in.Source, SourceID: p.sourceID,
		TextVersion: in.TextVersion, TextLanguage: in.TextLanguage, RecordedAt: now, ExpiresAt: in.ExpiresAt, Actor: in.Actor,
		Evidence: in.Evidence, LedgerSeq: seq}
}

// fence makes a withdrawal of contactID's consent take the send fence
// (store.Tx.Fence): once it commits, no campaign for the purpose reaches
// the contact.
func (p *Prepared) fence(tx *store.Tx, contactID string) {
	if p.in.State != StateGranted {
		tx.Fence(contactID)
	}
}

// expires is the record's expiry as stored: microseconds, or NULL.
func (r *Record) expires() any {
	if r.ExpiresAt == nil {
		return nil
	}
	return store.Micros(*r.ExpiresAt)
}

// args are the record's columns in the order of recordColumns.
func (r *Record) args() []any {
	return []any{r.ID, r.ContactID, r.PurposeID, r.State, r.LegalBasis, r.SourceID, r.Source, r.TextVersion,
		store.Micros(r.RecordedAt), r.expires(), r.Actor.Kind, r.Actor.ID, r.Evidence.Method, r.Evidence.IP,
		r.Evidence.UserAgent, r.Evidence.TokenID, r.LedgerSeq, r.TextLanguage, r.Evidence.ImportID, r.Evidence.collectedAt(),
		r.Evidence.Notice}
}

const recordColumns = `id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version, recorded_at,
	expires_at, actor_kind, actor_id, method, ip, user_agent, token_id, ledger_seq, text_language, import_id, collected_at, notice`

// appendEvent appends the ledger event of r for the contact with ledger
// reference ref, at the position r already holds, and writes its event
// (consent.granted or consent.withdrawn): both ways of writing a record
// end here.
func (r *Record) appendEvent(tx *store.Tx, ref string) error {
	if _, err := ledger.Append(tx, r.event(ref)); err != nil {
		return err
	}
	typ := events.ConsentGranted
	if r.State == StateWithdrawn {
		typ = events.ConsentWithdrawn
	}
	return events.Emit(tx, typ, r.ContactID, events.ConsentData{ContactID: r.ContactID, RecordID: r.ID, PurposeID: r.PurposeID,
		Purpose: r.PurposeName, State: r.State, LegalBasis: r.LegalBasis, SourceID: r.SourceID, Source: r.Source,
		TextVersion: r.TextVersion, Method: r.Evidence.Method, ActorKind: r.Actor.Kind, ExpiresAt: r.ExpiresAt,
		ImportID: r.Evidence.ImportID}, r.RecordedAt)
}

// event is the ledger event r is written with, committing to its evidence.
func (r *Record) event(ref string) *ledger.Event {
	var expires int64
	if r.ExpiresAt != nil {
		expires = store.Micros(*r.ExpiresAt)
	}
	return &ledger.Event{Seq: r.LedgerSeq, RecordedAt: store.Micros(r.RecordedAt), Kind: ledger.KindConsent, ContactRef: ref,
		PurposeID: r.PurposeID, Value: r.State, LegalBasis: r.LegalBasis, SourceID: r.SourceID, TextVersion: r.TextVersion,
		ExpiresAt: expires, ActorKind: r.Actor.Kind, ActorID: r.Actor.ID, Method: r.Evidence.Method, RecordID: r.ID,
		Details: &ledger.Details{IP: r.Evidence.IP, UserAgent: r.Evidence.UserAgent, TokenID: r.Evidence.TokenID,
			TextLanguage: r.TextLanguage, ImportID: r.Evidence.ImportID, CollectedAt: r.Evidence.collectedAtMicros(),
			Notice: r.Evidence.Notice}}
}

// Apply writes the prepared consent record for contact k inside tx, moves the
// contact's current state for the purpose, and appends the ledger event.
func (p *Prepared) Apply(tx *store.Tx, k contactstate.State, now time.Time) (*Record, error) {
	p.fence(tx, k.ID)
	if err := p.allowedFor(k); err != nil {
		return nil, err
	}
	seq, err := ledger.NextSeq(tx)
	if err != nil {
		return nil, err
	}
	r := p.newRecord(k.ID, now, seq)
	// Nothing here reads what these statements return, so on PostgreSQL
	// they wait to go with the transaction's next round trip (ExecLater).
	err = tx.ExecLater(func(err error) error {
		if store.IsForeignKeyViolation(err) {
			return errs.NotFound("contact", "")
		}
		return fmt.Errorf("consent: insert consent record: %w", err)
	}, `INSERT INTO consent_records (`+recordColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`, r.args()...)
	if err != nil {
		return nil, err
	}
	err = tx.ExecLater(store.Prefix("consent: update current consent"), `INSERT INTO consent_current (contact_id, purpose_id, record_id, state, expires_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (contact_id, purpose_id) DO UPDATE SET record_id = excluded.record_id, state = excluded.state,
		expires_at = excluded.expires_at`, r.ContactID, r.PurposeID, r.ID, r.State, r.expires())
	if err != nil {
		return nil, err
	}
	if err := r.appendEvent(tx, k.Ref); err != nil {
		return nil, err
	}
	return r, p.runHooks(tx, r)
}

// allowedFor is the one precondition of a consent change on the contact's
// state: a locked record (the contact stopped processing, R9) takes
// withdrawals, never a new grant; an erased one takes nothing, as its
// evidence would be personal data on a remainder that identifies no one.
// Both ways of writing a record check it.
func (p *Prepared) allowedFor(k contactstate.State) error {
	if k.Erased {
		return contactstate.ErrErased()
	}
	if k.ProcessingStopped && p.in.State == StateGranted {
		return contactstate.ErrProcessingStopped()
	}
	return nil
}

func (p *Prepared) runHooks(tx *store.Tx, r *Record) error {
	for _, h := range p.hooks {
		if err := h(tx, r); err != nil {
			return err
		}
	}
	return nil
}

// applyInOneStatement does what contactstate.Load and Apply do together in
// a single PostgreSQL statement. Each statement is a network round trip to
// PostgreSQL, and the writes of a group commit wait for one another's, so
// this is what lets concurrent consent changes reach thousands per second
// there. (SQLite runs in-process, where three statements cost next to
// nothing.) The statement writes the record whatever the contact's state,
// and returns that state; the precondition (allowedFor) is then checked as
// Apply checks it, and a refusal fails the write, which rolls back what the
// statement wrote.
func (p *Prepared) applyInOneStatement(tx *store.Tx, contactID string, now time.Time) (*Record, error) {
	p.fence(tx, contactID)
	seq, err := ledger.NextSeq(tx)
	if err != nil {
		return nil, err
	}
	r := p.newRecord(contactID, now, seq)
	var ref string
	var stopped, erased bool
	// A missing contact yields no row to insert, and no answer.
	err = tx.QueryRow(`WITH c AS (SELECT id, ref, processing_stopped_at IS NOT NULL AS stopped, erased_at IS NOT NULL AS erased
		FROM contacts WHERE id = $2),
		r AS (INSERT INTO consent_records (`+recordColumns+`)
			SELECT $1, c.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21 FROM c),
		u AS (INSERT INTO consent_current (contact_id, purpose_id, record_id, state, expires_at) SELECT c.id, $3, $1, $4, $10 FROM c
			ON CONFLICT (contact_id, purpose_id) DO UPDATE SET record_id = excluded.record_id, state = excluded.state,
			expires_at = excluded.expires_at)
		SELECT ref, stopped, erased FROM c`, r.args()...).Scan(&ref, &stopped, &erased)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("contact", "")
	}
	if err != nil {
		return nil, fmt.Errorf("consent: record consent: %w", err)
	}
	if err := p.allowedFor(contactstate.State{ID: contactID, Ref: ref, ProcessingStopped: stopped, Erased: erased}); err != nil {
		return nil, err
	}
	if err := r.appendEvent(tx, ref); err != nil {
		return nil, err
	}
	return r, p.runHooks(tx, r)
}

// Record validates in and records it for the contact, with its ledger event,
// in one transaction.
func (s *Service) Record(ctx context.Context, contactID string, in RecordInput) (*Record, error) {
	p, err := s.Prepare(ctx, in)
	if err != nil {
		return nil, err
	}
	var out *Record
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		if tx.Dialect() == store.Postgres {
			out, err = p.applyInOneStatement(tx, contactID, s.now())
			return err
		}
		k, err := contactstate.Load(tx, contactID)
		if err != nil {
			return err
		}
		out, err = p.Apply(tx, k, s.now())
		return err
	})
	return out, err
}

// Current is a contact's state for one purpose. State is "none" and the
// record fields are empty when nothing was ever recorded. A granted consent
// past its expiry counts as none, with Expired set and the record shown.
type Current struct {
	PurposeID   string     `json:"purpose_id"`
	PurposeName string     `json:"purpose"`
	State       string     `json:"state" enum:"@current_consent_state"`
	Expired     bool       `json:"expired,omitempty" doc:"the consent was granted but has expired; state is none"`
	LegalBasis  string     `json:"legal_basis" doc:"the record's legal basis, or the purpose's when there is no record"`
	Source      string     `json:"source,omitempty"`
	TextVersion int        `json:"text_version,omitempty"`
	RecordedAt  *time.Time `json:"recorded_at,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	RecordID    string     `json:"record_id,omitempty"`
}

// CurrentConsents returns the contact's current state for every purpose, by
// purpose name, in one indexed query. It returns a not-found error when the
// contact does not exist.
func (s *Service) CurrentConsents(ctx context.Context, contactID string) ([]Current, error) {
	rows, err := s.DB.Read.QueryContext(ctx, `SELECT p.id, p.name, p.legal_basis, r.state, r.legal_basis, r.source, r.text_version,
		r.recorded_at, cc.expires_at, r.id
		FROM contacts c CROSS JOIN purposes p
		LEFT JOIN consent_current cc ON cc.contact_id = c.id AND cc.purpose_id = p.id
		LEFT JOIN consent_records r ON r.id = cc.record_id
		WHERE c.id = $1 ORDER BY p.name_key`, contactID)
	if err != nil {
		return nil, fmt.Errorf("consent: read current consents: %w", err)
	}
	defer rows.Close()
	out := []Current{}
	for rows.Next() {
		var c Current
		var purposeBasis string
		var state, basis, source, recordID sql.NullString
		var version sql.NullInt64
		var at, expires sql.NullInt64
		if err := rows.Scan(&c.PurposeID, &c.PurposeName, &purposeBasis, &state, &basis, &source, &version, &at, &expires, &recordID); err != nil {
			return nil, fmt.Errorf("consent: read current consent: %w", err)
		}
		c.State, c.LegalBasis = StateNone, purposeBasis
		if state.Valid {
			c.State, c.LegalBasis, c.Source, c.TextVersion, c.RecordID = state.String, basis.String, source.String, int(version.Int64), recordID.String
			t := store.FromMicros(at.Int64)
			c.RecordedAt = &t
			if expires.Valid {
				e := store.FromMicros(expires.Int64)
				c.ExpiresAt = &e
				if c.State == StateGranted && !e.After(s.Now()) {
					c.State, c.Expired = StateNone, true
				}
			}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("consent: read current consents: %w", err)
	}
	if len(out) == 0 {
		return nil, errs.NotFound("contact", "")
	}
	return out, nil
}

// History returns every consent record of the contact, oldest first; an
// empty list when there are none (the caller checks the contact exists).
func (s *Service) History(ctx context.Context, contactID string) ([]Record, error) {
	return HistoryIn(ctx, s.DB.Read, contactID)
}

// HistoryIn is History reading through q, a snapshot say.
func HistoryIn(ctx context.Context, q store.Querier, contactID string) ([]Record, error) {
	out, err := store.QueryAll(ctx, q, scanRecord, recordSelect+` WHERE r.contact_id = $1 ORDER BY r.ledger_seq`, contactID)
	if err != nil {
		return nil, fmt.Errorf("consent: read history: %w", err)
	}
	return out, nil
}

// recordSelect reads consent records with their purpose's name, for
// scanRecord.
const recordSelect = `SELECT r.id, r.contact_id, r.purpose_id, p.name, r.state,
	r.legal_basis, r.source_id, r.source, r.text_version, r.recorded_at, r.expires_at, r.actor_kind, r.actor_id, r.method,
	r.ip, r.user_agent, r.token_id, r.ledger_seq, r.text_language, r.import_id, r.collected_at, r.notice
	FROM consent_records r JOIN purposes p ON p.id = r.purpose_id`

func scanRecord(row store.Scanner) (Record, error) {
	var r Record
	var at int64
	var expires, collected sql.NullInt64
	err := row.Scan(&r.ID, &r.ContactID, &r.PurposeID, &r.PurposeName, &r.State, &r.LegalBasis, &r.SourceID, &r.Source,
		&r.TextVersion, &at, &expires, &r.Actor.Kind, &r.Actor.ID, &r.Evidence.Method, &r.Evidence.IP,
		&r.Evidence.UserAgent, &r.Evidence.TokenID, &r.LedgerSeq, &r.TextLanguage, &r.Evidence.ImportID, &collected, &r.Evidence.Notice)
	r.RecordedAt = store.FromMicros(at)
	if collected.Valid {
		c := store.FromMicros(collected.Int64)
		r.Evidence.CollectedAt = &c
	}
	if expires.Valid {
		e := store.FromMicros(expires.Int64)
		r.ExpiresAt = &e
	}
	return r, err
}

// CurrentTx returns the contact's current consent state for the purpose
// inside tx, and when it was given: the time its record says it was
// collected (an import's provenance), else when it was recorded. ok is
// false when the contact has no consent record for the purpose.
func CurrentTx(tx *store.Tx, contactID, purposeID string) (state string, givenAt time.Time, ok bool, err error) {
	var recorded int64
	var collected sql.NullInt64
	err = tx.Row(`SELECT r.state, r.recorded_at, r.collected_at FROM consent_current c JOIN consent_records r ON r.id = c.record_id
		WHERE c.contact_id = $1 AND c.purpose_id = $2`, contactID, purposeID).Scan(&state, &recorded, &collected)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("consent: read current consent: %w", err)
	}
	if collected.Valid {
		return state, store.FromMicros(collected.Int64), true, nil
	}
	return state, store.FromMicros(recorded), true, nil
}
