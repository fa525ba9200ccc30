package consent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/store"
)

// A consent text version is written in one language (the operator's
// default language when it was made) and may have a translation into each
// other supported language. A version never changes once made: adding or
// changing a translation makes a new version with the same text and the
// other translations carried over. So a page that showed version 3 in
// Swedish, or fell back to its English text, names words that are still
// there to read, however the translations change after.

// ShownText is a consent text as a page or email shows it in one language.
type ShownText struct {
	Version int
	// Language is the language of Text: the one asked for when the
	// version has it, else the version's own language (the fallback). A
	// consent record stores it as the language shown.
	Language string
	Text     string
}

// In returns the text of t in lang: the translation, or, when t has none
// into lang, its own text in its own language.
func (t *PurposeText) In(lang string) ShownText {
	if tr, ok := t.Translations[lang]; ok && lang != t.Language {
		return ShownText{Version: t.Version, Language: lang, Text: tr}
	}
	return ShownText{Version: t.Version, Language: t.Language, Text: t.Text}
}

// TextIn returns the purpose's current consent text in lang, or in its
// own language when the current version has no translation into lang.
func (p *Purpose) TextIn(lang string) ShownText {
	t := PurposeText{Version: p.TextVersion, Text: p.Text, Language: p.TextLanguage, Translations: p.Translations}
	return t.In(lang)
}

// setTranslations sets the current version's translations and the
// languages it lacks.
func (p *Purpose) setTranslations(tr map[string]string) {
	if tr == nil {
		tr = map[string]string{}
	}
	p.Translations, p.MissingTranslations = tr, []string{}
	for _, l := range i18n.Languages {
		if _, ok := tr[l]; !ok && l != p.TextLanguage {
			p.MissingTranslations = append(p.MissingTranslations, l)
		}
	}
}

// loadTranslations reads the translations of p's current version.
func (s *Service) loadTranslations(ctx context.Context, q store.Querier, p *Purpose) error {
	tr, err := translations(ctx, q, p.ID, p.TextVersion)
	if err != nil {
		return err
	}
	p.setTranslations(tr)
	return nil
}

func translations(ctx context.Context, q store.Querier, purposeID string, version int) (map[string]string, error) {
	type row struct{ lang, text string }
	rows, err := store.QueryAll(ctx, q, func(r store.Scanner) (row, error) {
		var x row
		return x, r.Scan(&x.lang, &x.text)
	}, `SELECT language, text FROM purpose_text_translations WHERE purpose_id = $1 AND version = $2`, purposeID, version)
	if err != nil {
		return nil, fmt.Errorf("consent: read consent text translations: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.lang] = r.text
	}
	return out, nil
}

// textInQuery reads one version of a purpose's consent text in one
// language ($3), falling back to the version's own language.
const textInQuery = `SELECT t.version, t.language, t.text, tr.text FROM purpose_texts t
	LEFT JOIN purpose_text_translations tr ON tr.purpose_id = t.purpose_id AND tr.version = t.version AND tr.language = $3
	WHERE t.purpose_id = $1 AND t.version = $2`

func scanShown(row store.Scanner, lang string) (ShownText, error) {
	var t ShownText
	var tr sql.NullString
	if err := row.Scan(&t.Version, &t.Language, &t.Text, &tr); err != nil {
		return t, err
	}
	if tr.Valid && lang != t.Language {
		t.Language, t.Text = lang, tr.String
	}
	return t, nil
}

// TextIn returns version of the purpose's consent text in lang (one of
// i18n.Languages), or in the version's own language when it has no
// translation into lang. It returns a not-found error (field
// "text_version") when the purpose has no such version.
func (s *Service) TextIn(ctx context.Context, purposeID string, version int, lang string) (ShownText, error) {
	return TextInVia(ctx, s.DB.Read, purposeID, version, lang)
}

// TextInVia is TextIn reading through q, a snapshot say. An empty lang
// (a record that does not know the language shown) gives the version's
// own text.
func TextInVia(ctx context.Context, q store.Querier, purposeID string, version int, lang string) (ShownText, error) {
	t, err := scanShown(q.QueryRowContext(ctx, textInQuery, purposeID, version, lang), lang)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errs.NotFound("text_version", "text_version")
	}
	if err != nil {
		return t, fmt.Errorf("consent: read consent text: %w", err)
	}
	return t, nil
}

// currentTextsKey keeps, in a write transaction, the current consent texts
// CurrentTextTx has read, by purpose id and language. UpdatePurpose and
// SetTranslation, which make new versions, drop them.
type currentTextsKey struct{}

type textKey struct{ purpose, lang string }

// CurrentTextTx returns the purpose's current consent text in lang inside
// tx: the translation, or the version's own text when it has none into
// lang (ShownText.Language says which). It reads each purpose and language
// once per transaction: the writes of a group commit share it, and on
// PostgreSQL a read is a round trip they all wait for. It returns a
// not-found error (field "purpose") when there is no such purpose.
func CurrentTextTx(tx *store.Tx, purposeID, lang string) (ShownText, error) {
	kept, _ := tx.Local(currentTextsKey{}).(map[textKey]ShownText)
	k := textKey{purposeID, lang}
	if t, ok := kept[k]; ok {
		return t, nil
	}
	t, err := scanShown(tx.Row(`SELECT t.version, t.language, t.text, tr.text FROM purposes p
		JOIN purpose_texts t ON t.purpose_id = p.id AND t.version = p.current_version
		LEFT JOIN purpose_text_translations tr ON tr.purpose_id = t.purpose_id AND tr.version = t.version AND tr.language = $2
		WHERE p.id = $1`, purposeID, lang), lang)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errs.NotFound("purpose", "purpose")
	}
	if err != nil {
		return t, fmt.Errorf("consent: read consent text: %w", err)
	}
	next := make(map[textKey]ShownText, len(kept)+1) // a copy: a savepoint's rewind restores the old map
	maps.Copy(next, kept)
	next[k] = t
	tx.SetLocal(currentTextsKey{}, next)
	return t, nil
}

// SetTranslation sets the translation into lang of version of the
// purpose's consent text, which must be the current version: a
// translation is of the words it translates. As a version never changes,
// the translation makes a new version with the same text and the other
// translations, which becomes the current one; a translation equal to the
// one there changes nothing. It returns the current version, or an error
// naming the field: "language" (not supported, or the text's own),
// "text" (empty or too long), "version" (no such version: not found; an
// older one: conflict).
// The purpose is named by id or name; an unknown one is a not-found error
// (field "purpose"). The new version is a change of the purpose by by in
// the audit log.
func (s *Service) SetTranslation(ctx context.Context, by audit.Actor, purpose string, version int, lang, text string) (*PurposeText, error) {
	if !slices.Contains(i18n.Languages, lang) {
		return nil, errs.Invalid("language", "must be one of %s", strings.Join(i18n.Languages, ", "))
	}
	if err := errs.TrimText("text", &text, 10000); err != nil {
		return nil, err
	}
	found, err := s.findPurpose(ctx, purpose)
	if err != nil {
		return nil, err
	}
	var out *PurposeText
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		p, err := scanPurpose(tx.QueryRow(purposeSelect+" WHERE p.id = $1", found.ID))
		if err != nil {
			return err
		}
		switch {
		case version < 1 || version > p.TextVersion:
			return errs.NotFound("text_version", "version")
		case version < p.TextVersion:
			return errs.Conflict("text_version_not_current", "version",
				"version %d is not the current consent text (version %d); translate the current one", version, p.TextVersion)
		case lang == p.TextLanguage:
			return errs.Invalid("language", "%s is the language the consent text itself is written in; change the text to make a new version", lang)
		}
		tr, err := translations(ctx, tx, p.ID, p.TextVersion)
		if err != nil {
			return err
		}
		if old, ok := tr[lang]; ok && old == text {
			var at int64
			if err := tx.QueryRow(`SELECT created_at FROM purpose_texts WHERE purpose_id = $1 AND version = $2`, p.ID, p.TextVersion).
				Scan(&at); err != nil {
				return fmt.Errorf("consent: read consent text: %w", err)
			}
			out = &PurposeText{Version: p.TextVersion, Text: p.Text, Language: p.TextLanguage, Translations: tr, CreatedAt: store.FromMicros(at)}
			return nil
		}
		now := s.now()
		p.setTranslations(tr)
		before := p.audited()
		next := maps.Clone(tr)
		next[lang] = text
		out = &PurposeText{Version: p.TextVersion + 1, Text: p.Text, Language: p.TextLanguage, Translations: next, CreatedAt: now}
		if err := insertText(tx, p.ID, out.Version, out.Text, out.Language, now); err != nil {
			return err
		}
		for _, l := range slices.Sorted(maps.Keys(next)) {
			if _, err := tx.Exec(`INSERT INTO purpose_text_translations (purpose_id, version, language, text, created_at)
				VALUES ($1, $2, $3, $4, $5)`, p.ID, out.Version, l, next[l], store.Micros(now)); err != nil {
				return fmt.Errorf("consent: add consent text translation: %w", err)
			}
		}
		if _, err := tx.Exec(`UPDATE purposes SET current_version = $2, updated_at = $3 WHERE id = $1`,
			p.ID, out.Version, store.Micros(now)); err != nil {
			return fmt.Errorf("consent: update purpose: %w", err)
		}
		tx.SetLocal(currentTextsKey{}, nil) // CurrentTextTx reads again
		p.TextVersion = out.Version
		p.setTranslations(next)
		return p.auditTx(tx, by, audit.ActionPurposeChanged, before, now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
