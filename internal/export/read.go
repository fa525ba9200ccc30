package export

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
)

// read fills every section but the contact's own fields through q, one
// snapshot, with the reads of the packages that own the tables; labels
// are the fields' labels by name, for the access log in words.
func (e *Export) read(ctx context.Context, q store.Querier, contactID string, now time.Time, labels map[string]string) error {
	history, err := consent.HistoryIn(ctx, q, contactID)
	if err != nil {
		return err
	}
	if err := e.setConsents(ctx, q, history, now); err != nil {
		return err
	}
	optIns, err := consent.OptInHistoryIn(ctx, q, contactID)
	if err != nil {
		return err
	}
	e.OptInHistory = make([]OptInChange, len(optIns))
	for i, c := range optIns {
		e.OptInHistory[i] = OptInChange{ID: c.ID, RecordedAt: c.RecordedAt, From: c.From, To: c.To, ActorKind: c.Actor.Kind,
			ActorID: c.Actor.ID, Method: c.Evidence.Method, IP: c.Evidence.IP, UserAgent: c.Evidence.UserAgent,
			TokenID: c.Evidence.TokenID, ImportID: c.Evidence.ImportID, LedgerSeq: c.LedgerSeq}
	}
	subs, err := lists.Subscriptions(ctx, q, contactID)
	if err != nil {
		return fmt.Errorf("export: read list subscriptions: %w", err)
	}
	e.Lists = make([]Subscription, len(subs))
	for i, s := range subs {
		e.Lists[i] = Subscription{List: s.List, Status: s.State, Source: s.Source, ChangedAt: s.ChangedAt}
	}
	e.setSources(history, subs)
	emails, err := mail.ContactEntriesIn(ctx, q, contactID)
	if err != nil {
		return fmt.Errorf("export: read emails: %w", err)
	}
	e.Emails = make([]Email, len(emails))
	for i, m := range emails {
		e.Emails[i] = Email{ID: m.ID, Kind: m.Kind, Subject: m.Subject, Status: m.Status, CreatedAt: m.CreatedAt, SentAt: m.SentAt,
			ContentRemovedAt: m.ContentRemovedAt}
	}
	access, err := contact.AccessLogOf(ctx, q, contactID)
	if err != nil {
		return err
	}
	e.AccessLog = make([]Access, len(access))
	for i, a := range access {
		e.AccessLog[i] = accessOf(a, labels)
	}
	if e.Requests, err = readRequests(ctx, q, contactID, now); err != nil {
		return err
	}
	e.Holds, err = readHolds(ctx, q, contactID)
	return err
}

// setConsents fills the history, the current state of each purpose (its
// last record) and the texts the records name.
func (e *Export) setConsents(ctx context.Context, q store.Querier, history []consent.Record, now time.Time) error {
	e.ConsentHistory = make([]ConsentRecord, len(history))
	e.Consents, e.ConsentTexts = []Consent{}, []ConsentText{}
	current := map[string]int{} // purpose id: index in Consents
	type textKey struct {
		purpose string
		version int
		lang    string
	}
	texts := map[textKey]bool{}
	for i, r := range history {
		e.ConsentHistory[i] = ConsentRecord{ID: r.ID, RecordedAt: r.RecordedAt, CollectedAt: r.Evidence.CollectedAt, PurposeID: r.PurposeID,
			Purpose: r.PurposeName, State: r.State, LegalBasis: r.LegalBasis, Source: r.Source, TextVersion: r.TextVersion,
			TextLanguage: r.TextLanguage, Notice: r.Evidence.Notice, ExpiresAt: r.ExpiresAt, ActorKind: r.Actor.Kind, ActorID: r.Actor.ID,
			Method: r.Evidence.Method, IP: r.Evidence.IP, UserAgent: r.Evidence.UserAgent, TokenID: r.Evidence.TokenID,
			ImportID: r.Evidence.ImportID, LedgerSeq: r.LedgerSeq}
		c := Consent{PurposeID: r.PurposeID, Purpose: r.PurposeName, State: r.State, LegalBasis: r.LegalBasis, RecordID: r.ID,
			Since: r.RecordedAt, ExpiresAt: r.ExpiresAt}
		if c.State == consent.StateGranted && c.ExpiresAt != nil && !c.ExpiresAt.After(now) {
			c.State, c.Expired = consent.StateNone, true
		}
		if j, ok := current[r.PurposeID]; ok {
			e.Consents[j] = c // history is in ledger order: the later record wins
		} else {
			current[r.PurposeID] = len(e.Consents)
			e.Consents = append(e.Consents, c)
		}
		k := textKey{r.PurposeID, r.TextVersion, r.TextLanguage}
		if texts[k] || r.TextVersion < 1 {
			continue
		}
		texts[k] = true
		t, err := consent.TextInVia(ctx, q, r.PurposeID, r.TextVersion, r.TextLanguage)
		if err != nil {
			return fmt.Errorf("export: consent text %s v%d: %w", r.PurposeName, r.TextVersion, err)
		}
		e.ConsentTexts = append(e.ConsentTexts, ConsentText{PurposeID: r.PurposeID, Purpose: r.PurposeName, Version: t.Version,
			ShownIn: r.TextLanguage, TextLanguage: t.Language, Text: t.Text})
	}
	return nil
}

// setSources counts where the consent records and list subscriptions came
// from, in the order each source was first seen.
func (e *Export) setSources(history []consent.Record, subs []lists.Subscription) {
	e.Sources = []Source{}
	seen := map[[2]string]int{}
	add := func(name, usedFor string, at time.Time) {
		k := [2]string{name, usedFor}
		i, ok := seen[k]
		if !ok {
			i = len(e.Sources)
			seen[k] = i
			e.Sources = append(e.Sources, Source{Source: name, UsedFor: usedFor, FirstAt: at, LastAt: at})
		}
		s := &e.Sources[i]
		s.Count++
		if at.Before(s.FirstAt) {
			s.FirstAt = at
		}
		if at.After(s.LastAt) {
			s.LastAt = at
		}
	}
	for _, r := range history {
		add(r.Source, "consent_records", r.RecordedAt)
	}
	for _, s := range subs {
		add(s.Source, "list_subscriptions", s.ChangedAt)
	}
}

// readRequests reads the contact's requests a page at a time.
func readRequests(ctx context.Context, q store.Querier, contactID string, now time.Time) ([]Request, error) {
	out := []Request{}
	const page = 500
	for offset := 0; ; offset += page {
		rs, err := requests.List(ctx, q, requests.Query{ContactID: contactID, Limit: page, Offset: offset}, now)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			out = append(out, Request{ID: r.ID, Kind: r.Kind, Channel: r.Channel, Status: r.Status, Reason: r.Reason, Note: r.Note,
				ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, ExtendedAt: r.ExtendedAt, ExtensionReason: r.ExtensionReason, ClosedAt: r.ClosedAt})
		}
		if len(rs) < page {
			return out, nil
		}
	}
}

// readHolds reads the contact's legal holds, newest first. The export
// reads the table itself: the holds package, which writes it, lands
// separately, and these columns are the table's (migration 00012).
func readHolds(ctx context.Context, q store.Querier, contactID string) ([]Hold, error) {
	out, err := store.QueryAll(ctx, q, func(row store.Scanner) (Hold, error) {
		var h Hold
		var set int64
		var until, lifted sql.NullInt64
		err := row.Scan(&h.ID, &h.Reason, &h.LegalBasis, &h.SetByKind, &set, &until, &lifted, &h.LiftReason)
		h.SetAt, h.Until, h.LiftedAt = store.FromMicros(set), optionalTime(until), optionalTime(lifted)
		return h, err
	}, `SELECT id, reason, legal_basis, set_by_kind, set_at, until_at, lifted_at, lift_reason FROM legal_holds
		WHERE contact_id = $1 ORDER BY set_at DESC, id DESC`, contactID)
	if err != nil {
		return nil, fmt.Errorf("export: read legal holds: %w", err)
	}
	return out, nil
}

func optionalTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

// formatNumber writes a number field's value as digits, never 1e+06.
func formatNumber(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
