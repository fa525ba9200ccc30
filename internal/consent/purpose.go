package consent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Purpose is what data is used for, with its legal basis and the current
// version of its consent text.
type Purpose struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	LegalBasis      string `json:"legal_basis" enum:"@legal_basis"`
	Description     string `json:"description"`
	RetentionDays   int    `json:"retention_days" doc:"how long data kept for this purpose may be kept, in days; 0 means no fixed period"`
	RetentionAction string `json:"retention_action" enum:"@retention_action" doc:"what retention does once the period has passed for every purpose of a contact: erase (personal data erased, the consent records kept as proof) or anonymise (the record and its history removed too)"`
	DefaultSelected bool   `json:"default_selected" doc:"whether the preferences page lists \"Yes\" before \"No\" for this purpose; no answer is ever preselected (R12), and webforms ignore it"`
	MarketingEmail  bool   `json:"marketing_email" doc:"the purpose governs marketing email: a contact's own opt-out (unsubscribe, preferences page) withdraws their consent to it"`
	TextVersion     int    `json:"text_version" doc:"the current consent text version"`
	Text            string `json:"text" doc:"the current consent text"`
	TextLanguage    string `json:"text_language" enum:"@language" doc:"the language text is written in: the operator's default language when the version was made"`
	// Translations and MissingTranslations are about the current version.
	Translations        map[string]string `json:"translations" doc:"the current version's text in other languages, by language"`
	MissingTranslations []string          `json:"missing_translations" doc:"the supported languages the current version has no text in: a page or email in one of them shows text, in text_language, and its consent records say so"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

// AllowsLegalBasis reports whether a consent record of p given its legal
// basis by whoever records it (an import, the API, a user's form) may rest
// on basis. A purpose rests on the one
// legal basis chosen for it, the one its description and the
// preferences page tell the contact (GDPR Art. 13(1)(c)): a record that
// claims another would say that E-marketing, a purpose on consent, may
// go on without it as a legitimate interest.
func (p *Purpose) AllowsLegalBasis(basis string) bool { return basis == p.LegalBasis }

// PurposeText is one version of a purpose's consent text with its
// translations. Versions are never changed or removed, translations
// included, so a consent record's version and language always show what
// was agreed to.
type PurposeText struct {
	Version      int               `json:"version"`
	Text         string            `json:"text"`
	Language     string            `json:"language" enum:"@language" doc:"the language text is written in"`
	Translations map[string]string `json:"translations" doc:"text in other languages, by language"`
	CreatedAt    time.Time         `json:"created_at"`
}

// PurposeInput creates or changes a purpose. Nil fields are left as they are
// (on create: name, legal basis and text are required).
type PurposeInput struct {
	Name            *string `json:"name" required:"create"`
	LegalBasis      *string `json:"legal_basis" required:"create" enum:"@legal_basis"`
	Description     *string `json:"description"`
	RetentionDays   *int    `json:"retention_days"`
	RetentionAction *string `json:"retention_action" enum:"@retention_action"`
	DefaultSelected *bool   `json:"default_selected"`
	MarketingEmail  *bool   `json:"marketing_email"`
	Text            *string `json:"text" required:"create" doc:"a changed text becomes a new version, in the operator's default language and with no translations"`
}

// Service reads and changes purposes, sources, consent records and opt-in
// statuses.
type Service struct {
	DB          *store.DB
	Now         func() time.Time // the clock; tests set their own
	afterRecord []RecordHook
	confirmed   []ConfirmHook
}

// ConfirmHook runs inside the transaction of every double opt-in
// confirmation of a contact's address (an invitation's link or a
// webform's), for what the confirmation settles elsewhere: a re-permission
// email answered (repermission.ConfirmedTx). An error aborts the
// confirmation.
type ConfirmHook func(tx *store.Tx, contactID string, now time.Time) error

// OnConfirm adds hooks that run with every double opt-in confirmation,
// and returns s: it is called where the service is built.
func (s *Service) OnConfirm(hooks ...ConfirmHook) *Service {
	s.confirmed = append(s.confirmed, hooks...)
	return s
}

// RecordHook runs inside the transaction of every consent record, for what
// the change causes (withdrawing a storage consent erases the fields tied
// to it: contact.EraseWithdrawnStorage). An error aborts the change.
type RecordHook func(tx *store.Tx, r *Record) error

// NewService returns a Service on db using the wall clock, running
// afterRecord with every consent record it writes.
func NewService(db *store.DB, afterRecord ...RecordHook) *Service {
	return &Service{DB: db, Now: time.Now, afterRecord: afterRecord}
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

func (in *PurposeInput) validate(create bool) error {
	if create {
		switch {
		case in.Name == nil:
			return errs.Required("name")
		case in.LegalBasis == nil:
			return errs.Required("legal_basis")
		case in.Text == nil:
			return errs.Required("text")
		}
	}
	if err := errs.TrimLine("name", in.Name, 100); err != nil {
		return err
	}
	if in.LegalBasis != nil && !validOneOf(*in.LegalBasis, LegalBases) {
		return errs.Invalid("legal_basis", "must be one of %s", strings.Join(LegalBases, ", "))
	}
	if in.Description != nil {
		if utf8.RuneCountInString(*in.Description) > 2000 {
			return errs.Invalid("description", "must be at most 2000 characters")
		}
		if err := errs.PlainText("description", *in.Description); err != nil {
			return err
		}
	}
	if in.RetentionDays != nil && (*in.RetentionDays < 0 || *in.RetentionDays > 36500) {
		return errs.Invalid("retention_days", "must be between 0 (no fixed period) and 36500")
	}
	if in.RetentionAction != nil && !validOneOf(*in.RetentionAction, RetentionActions) {
		return errs.Invalid("retention_action", "must be one of %s", strings.Join(RetentionActions, ", "))
	}
	return errs.TrimText("text", in.Text, 10000)
}

// mergeInto sets the fields of p that in gives, except the consent text,
// whose versions the callers handle.
func (in *PurposeInput) mergeInto(p *Purpose) {
	if in.Name != nil {
		p.Name = *in.Name
	}
	if in.LegalBasis != nil {
		p.LegalBasis = *in.LegalBasis
	}
	if in.Description != nil {
		p.Description = *in.Description
	}
	if in.RetentionDays != nil {
		p.RetentionDays = *in.RetentionDays
	}
	if in.RetentionAction != nil {
		p.RetentionAction = *in.RetentionAction
	}
	if in.DefaultSelected != nil {
		p.DefaultSelected = *in.DefaultSelected
	}
	if in.MarketingEmail != nil {
		p.MarketingEmail = *in.MarketingEmail
	}
}

// audited is what the audit log keeps of a purpose: what it tells the
// contact and what it does with their data, without the times and ids
// that change with every write.
type auditedPurpose struct {
	Name            string            `json:"name"`
	LegalBasis      string            `json:"legal_basis"`
	Description     string            `json:"description"`
	RetentionDays   int               `json:"retention_days"`
	RetentionAction string            `json:"retention_action"`
	DefaultSelected bool              `json:"default_selected"`
	MarketingEmail  bool              `json:"marketing_email"`
	TextVersion     int               `json:"text_version"`
	Text            string            `json:"text"`
	TextLanguage    string            `json:"text_language"`
	Translations    map[string]string `json:"translations"`
}

func (p *Purpose) audited() auditedPurpose {
	return auditedPurpose{Name: p.Name, LegalBasis: p.LegalBasis, Description: p.Description, RetentionDays: p.RetentionDays,
		RetentionAction: p.RetentionAction, DefaultSelected: p.DefaultSelected, MarketingEmail: p.MarketingEmail,
		TextVersion: p.TextVersion, Text: p.Text, TextLanguage: p.TextLanguage, Translations: p.Translations}
}

// auditTx writes the audit log's entries of a change of p by by, from
// before (nil for a creation) to p as it now is.
func (p *Purpose) auditTx(tx *store.Tx, by audit.Actor, action string, before any, now time.Time) error {
	return audit.RecordTx(tx, by, audit.Object{Kind: audit.KindPurpose, ID: p.ID, Name: p.Name}, action, audit.Changes(before, p.audited()), now)
}

// CreatePurpose adds a purpose with version 1 of its consent text, made
// by by, who the audit log names.
func (s *Service) CreatePurpose(ctx context.Context, by audit.Actor, in PurposeInput) (*Purpose, error) {
	if err := in.validate(true); err != nil {
		return nil, err
	}
	now := s.now()
	p := &Purpose{ID: uuid.Must(uuid.NewV7()).String(), Text: *in.Text, TextVersion: 1, RetentionAction: RetentionErase, CreatedAt: now, UpdatedAt: now}
	in.mergeInto(p)
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		st, err := settings.InTx(tx)
		if err != nil {
			return err
		}
		p.TextLanguage = st.DefaultLanguage
		p.setTranslations(nil)
		_, err = tx.Exec(`INSERT INTO purposes (id, name, name_key, legal_basis, description, retention_days, default_selected,
			marketing_email, current_version, created_at, updated_at, retention_action) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10)`,
			p.ID, p.Name, strings.ToLower(p.Name), p.LegalBasis, p.Description, p.RetentionDays, p.DefaultSelected, p.MarketingEmail,
			store.Micros(now), p.RetentionAction)
		if store.IsUniqueViolation(err) {
			return errs.Conflict("purpose_name_taken", "name", "a purpose named %q already exists", p.Name)
		}
		if err != nil {
			return fmt.Errorf("consent: create purpose: %w", err)
		}
		if err := insertText(tx, p.ID, 1, p.Text, p.TextLanguage, now); err != nil {
			return err
		}
		return p.auditTx(tx, by, audit.ActionPurposeCreated, nil, now)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func insertText(tx *store.Tx, purposeID string, version int, text, lang string, at time.Time) error {
	_, err := tx.Exec(`INSERT INTO purpose_texts (purpose_id, version, text, language, created_at) VALUES ($1, $2, $3, $4, $5)`,
		purposeID, version, text, lang, store.Micros(at))
	if err != nil {
		return fmt.Errorf("consent: add consent text version: %w", err)
	}
	return nil
}

// UpdatePurpose changes the fields set in in, by by, who the audit log
// names for each field that changed. A consent text that differs from the
// current one becomes a new version; the old versions stay.
func (s *Service) UpdatePurpose(ctx context.Context, by audit.Actor, id string, in PurposeInput) (*Purpose, error) {
	if err := in.validate(false); err != nil {
		return nil, err
	}
	var out *Purpose
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		p, err := scanPurpose(tx.QueryRow(purposeSelect+" WHERE p.id = $1", id))
		if err != nil {
			return err
		}
		if err := s.loadTranslations(context.Background(), tx, p); err != nil {
			return err
		}
		before := p.audited()
		now := s.now()
		in.mergeInto(p)
		if in.Text != nil && *in.Text != p.Text {
			// A new text is a new version, written in the default language:
			// the translations were of the old text, so it has none yet.
			st, err := settings.InTx(tx)
			if err != nil {
				return err
			}
			p.TextVersion++
			p.Text, p.TextLanguage = *in.Text, st.DefaultLanguage
			if err := insertText(tx, p.ID, p.TextVersion, p.Text, p.TextLanguage, now); err != nil {
				return err
			}
			p.setTranslations(nil)
		}
		p.UpdatedAt = now
		tx.SetLocal(currentTextsKey{}, nil) // CurrentTextTx reads again
		_, err = tx.Exec(`UPDATE purposes SET name = $2, name_key = $3, legal_basis = $4, description = $5, retention_days = $6,
			default_selected = $7, current_version = $8, updated_at = $9, marketing_email = $10, retention_action = $11 WHERE id = $1`,
			p.ID, p.Name, strings.ToLower(p.Name), p.LegalBasis, p.Description, p.RetentionDays, p.DefaultSelected, p.TextVersion,
			store.Micros(now), p.MarketingEmail, p.RetentionAction)
		if store.IsUniqueViolation(err) {
			return errs.Conflict("purpose_name_taken", "name", "a purpose named %q already exists", p.Name)
		}
		if err != nil {
			return fmt.Errorf("consent: update purpose: %w", err)
		}
		out = p
		return p.auditTx(tx, by, audit.ActionPurposeChanged, before, now)
	})
	return out, err
}

const purposeSelect = `SELECT p.id, p.name, p.legal_basis, p.description, p.retention_days, p.retention_action, p.default_selected, p.marketing_email,
	p.current_version, t.text, t.language, p.created_at, p.updated_at
	FROM purposes p JOIN purpose_texts t ON t.purpose_id = p.id AND t.version = p.current_version`

// scanPurpose returns a not-found error when the row is missing.
func scanPurpose(row store.Scanner) (*Purpose, error) {
	var p Purpose
	var created, updated int64
	err := row.Scan(&p.ID, &p.Name, &p.LegalBasis, &p.Description, &p.RetentionDays, &p.RetentionAction, &p.DefaultSelected, &p.MarketingEmail,
		&p.TextVersion, &p.Text, &p.TextLanguage, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("purpose", "purpose")
	}
	if err != nil {
		return nil, fmt.Errorf("consent: read purpose: %w", err)
	}
	p.CreatedAt, p.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &p, nil
}

// Purpose finds a purpose by id or, failing that, by name regardless of
// case, with the translations of its current consent text. It returns a
// not-found error (field "purpose") when neither matches.
func (s *Service) Purpose(ctx context.Context, idOrName string) (*Purpose, error) {
	p, err := s.findPurpose(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if err := s.loadTranslations(ctx, s.DB.Read, p); err != nil {
		return nil, err
	}
	return p, nil
}

// findPurpose is Purpose without the translations, for a consent record,
// which needs none.
func (s *Service) findPurpose(ctx context.Context, idOrName string) (*Purpose, error) {
	return scanPurpose(s.DB.ReadRow(ctx, purposeSelect+" WHERE p.id = $1 OR p.name_key = $2 ORDER BY p.id = $1 DESC LIMIT 1",
		idOrName, strings.ToLower(strings.TrimSpace(idOrName))))
}

// Purposes lists every purpose by name, with the translations of their
// current consent texts.
func (s *Service) Purposes(ctx context.Context) ([]*Purpose, error) {
	out, err := store.QueryAll(ctx, s.DB.Read, scanPurpose, purposeSelect+" ORDER BY p.name_key")
	if err != nil {
		return nil, fmt.Errorf("consent: list purposes: %w", err)
	}
	type tr struct{ purpose, lang, text string }
	trs, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (tr, error) {
		var t tr
		return t, row.Scan(&t.purpose, &t.lang, &t.text)
	}, `SELECT tr.purpose_id, tr.language, tr.text FROM purpose_text_translations tr
		JOIN purposes p ON p.id = tr.purpose_id AND p.current_version = tr.version`)
	if err != nil {
		return nil, fmt.Errorf("consent: list consent text translations: %w", err)
	}
	byPurpose := map[string]map[string]string{}
	for _, t := range trs {
		if byPurpose[t.purpose] == nil {
			byPurpose[t.purpose] = map[string]string{}
		}
		byPurpose[t.purpose][t.lang] = t.text
	}
	for _, p := range out {
		p.setTranslations(byPurpose[p.ID])
	}
	return out, nil
}

// PurposeTexts returns every consent text version of a purpose, oldest
// first, or a not-found error when the purpose does not exist.
func (s *Service) PurposeTexts(ctx context.Context, purposeID string) ([]PurposeText, error) {
	p, err := s.Purpose(ctx, purposeID)
	if err != nil {
		return nil, err
	}
	out, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (PurposeText, error) {
		t := PurposeText{Translations: map[string]string{}}
		var at int64
		err := row.Scan(&t.Version, &t.Text, &t.Language, &at)
		t.CreatedAt = store.FromMicros(at)
		return t, err
	}, `SELECT version, text, language, created_at FROM purpose_texts WHERE purpose_id = $1 ORDER BY version`, p.ID)
	if err != nil {
		return nil, fmt.Errorf("consent: list consent texts: %w", err)
	}
	type tr struct {
		version    int
		lang, text string
	}
	trs, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (tr, error) {
		var t tr
		return t, row.Scan(&t.version, &t.lang, &t.text)
	}, `SELECT version, language, text FROM purpose_text_translations WHERE purpose_id = $1`, p.ID)
	if err != nil {
		return nil, fmt.Errorf("consent: list consent text translations: %w", err)
	}
	for _, t := range trs {
		if t.version >= 1 && t.version <= len(out) && out[t.version-1].Version == t.version {
			out[t.version-1].Translations[t.lang] = t.text
		}
	}
	return out, nil
}
