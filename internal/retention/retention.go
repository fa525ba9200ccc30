// Package retention erases contacts whose data is no longer needed for any
// purpose (SPEC R23). Each purpose has a retention period, counted from the
// last event that kept it alive for a contact: the latest consent record
// (a grant or a withdrawal), or the end of a contract or of a consent's
// validity when that is later. A contact is due once every purpose they
// have a record for has a period and has passed it, and no legal hold
// keeps them. A contact who let a re-permission email's days pass without
// confirming (repermission_lapsed) is no longer kept by the records of
// purposes that govern marketing email written before that.
//
// Due contacts are first flagged (retention_due, usable in conditions)
// and listed for review; after the grace period (the setting
// retention_grace_days) the next run erases them, as the purposes' retention
// action says. Every run re-checks each contact inside the transaction that
// erases it, so a consent given during the grace period saves them.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Eraser erases the contacts in ids inside tx as retention decided, all
// with one action (one of consent.RetentionActions), writing their erasure
// log entries with rule (erasure.ForRetentionMany).
type Eraser func(tx *store.Tx, ids []string, action, rule string, now time.Time) error

// Rule is what the erasure log names as the cause of a retention erasure.
const Rule = "retention"

// RunInterval is how often the scheduled job flags and erases.
const RunInterval = time.Hour

// Job is the name of the scheduled job that flags due contacts and erases
// those whose grace period has passed.
const Job = "retention"

// FlagAndRun is the scheduled job's work: flag, then erase what is due.
func (s *Service) FlagAndRun(ctx context.Context) error {
	if _, _, err := s.Flag(ctx); err != nil {
		return err
	}
	n, err := s.Run(ctx)
	if n > 0 && s.Log != nil {
		s.Log.Info("retention erased contacts", "contacts", n)
	}
	return err
}

// Service flags and erases due contacts.
type Service struct {
	DB    *store.DB
	Erase Eraser
	Log   *slog.Logger
	Now   func() time.Time
	// Chunk is how many contacts one flagging step reads; Batch how many
	// one erasing transaction starts with. The batch then adapts so that
	// a transaction holds the writer for about Budget.
	Chunk, Batch int
	Budget       time.Duration
	// Longest is the longest an erasing transaction of the last Run took,
	// from its start to its commit, for the log and the benchmark.
	Longest time.Duration
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

const dayMicros = int64(24 * time.Hour / time.Microsecond)

// lapsedMarketing holds, in dueQuery, for a record of a purpose that
// governs marketing email written no later than the contact's
// re-permission lapsed (contacts.repermission_lapsed_at, package
// repermission): the contact was asked to confirm it again and let the
// days pass, so the record keeps them no longer; its purpose counts as
// passed from the lapse, whatever its period. A record written after the
// lapse (a new consent) counts as any other.
const lapsedMarketing = `p.marketing_email AND c.repermission_lapsed_at IS NOT NULL AND r.recorded_at <= c.repermission_lapsed_at`

// dueQuery selects, among the contacts the subquery ids names, those due
// at $1, with whether every purpose of theirs says anonymise. A purpose with
// no period (0 days) keeps a contact for as long as it has a record for it,
// unless the record lapsed with a re-permission (lapsedMarketing).
func dueQuery(ids string) string {
	return `SELECT cc.contact_id, MIN(CASE WHEN p.retention_action = '` + consent.RetentionAnonymise + `' THEN 1 ELSE 0 END)
		FROM consent_current cc
		JOIN consent_records r ON r.id = cc.record_id
		JOIN purposes p ON p.id = cc.purpose_id
		JOIN contacts c ON c.id = cc.contact_id
		WHERE cc.contact_id IN (` + ids + `)
		AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.contact_id = cc.contact_id AND h.lifted_at IS NULL
			AND (h.until_at IS NULL OR h.until_at > $1))
		GROUP BY cc.contact_id
		HAVING MIN(CASE WHEN ` + lapsedMarketing + ` THEN 1 ELSE p.retention_days END) > 0
		AND MAX(CASE WHEN ` + lapsedMarketing + ` THEN c.repermission_lapsed_at
			WHEN r.expires_at IS NOT NULL AND r.expires_at > r.recorded_at THEN r.expires_at + p.retention_days * ` + fmt.Sprint(dayMicros) + `
			ELSE r.recorded_at + p.retention_days * ` + fmt.Sprint(dayMicros) + ` END) <= $1`
}

// due returns, of the contacts ids names (a subquery over $2...), those due
// at now, each with its action.
func due(ctx context.Context, q store.Querier, ids string, now time.Time, args ...any) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, dueQuery(ids), append([]any{store.Micros(now)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("retention: find due contacts: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id string
		var anonymise int
		if err := rows.Scan(&id, &anonymise); err != nil {
			return nil, fmt.Errorf("retention: find due contacts: %w", err)
		}
		out[id] = consent.RetentionErase
		if anonymise == 1 {
			out[id] = consent.RetentionAnonymise
		}
	}
	return out, rows.Err()
}

// Flag walks every contact not yet erased, a chunk at a time, flags those
// now due and clears the flag of those no longer due. It returns how many
// it flagged and cleared.
func (s *Service) Flag(ctx context.Context) (flagged, cleared int, err error) {
	chunk := s.Chunk
	if chunk <= 0 {
		chunk = 2000
	}
	now := s.now()
	after := ""
	for {
		type row struct {
			id      string
			flagged bool
		}
		page, err := store.QueryAll(ctx, s.DB.Read, func(sc store.Scanner) (row, error) {
			var r row
			return r, sc.Scan(&r.id, &r.flagged)
		}, `SELECT id, retention_due_at IS NOT NULL FROM contacts WHERE erased_at IS NULL AND id > $1 ORDER BY id LIMIT $2`, after, chunk)
		if err != nil {
			return flagged, cleared, fmt.Errorf("retention: read contacts: %w", err)
		}
		if len(page) == 0 {
			return flagged, cleared, nil
		}
		after = page[len(page)-1].id
		dueNow, err := due(ctx, s.DB.Read, `SELECT id FROM contacts WHERE erased_at IS NULL AND id >= $2 AND id <= $3`, now,
			page[0].id, after)
		if err != nil {
			return flagged, cleared, err
		}
		var set, clear []string
		for _, r := range page {
			_, isDue := dueNow[r.id]
			switch {
			case isDue && !r.flagged:
				set = append(set, r.id)
			case !isDue && r.flagged:
				clear = append(clear, r.id)
			}
		}
		if len(set)+len(clear) > 0 {
			err := s.DB.Write(ctx, func(tx *store.Tx) error {
				if err := contactstate.SetRetentionDueTx(tx, set, now); err != nil {
					return err
				}
				return contactstate.ClearRetentionDueTx(tx, clear)
			})
			if err != nil {
				return flagged, cleared, err
			}
			flagged, cleared = flagged+len(set), cleared+len(clear)
		}
		if len(page) < chunk {
			return flagged, cleared, nil
		}
	}
}

// Run erases the contacts flagged at least the grace period ago that are
// still due, in transactions of an adaptive batch size that each hold the
// writer for about Budget. It returns how many it erased.
func (s *Service) Run(ctx context.Context) (int, error) {
	st, err := settings.Get(ctx, s.DB.Read)
	if err != nil {
		return 0, err
	}
	batch, budget := s.Batch, s.Budget
	if batch <= 0 {
		batch = 25 // the first transaction finds the caches cold
	}
	if budget <= 0 {
		budget = 40 * time.Millisecond
	}
	total := 0
	after := ""
	s.Longest = 0
	for {
		now := s.now()
		cut := now.AddDate(0, 0, -st.RetentionGraceDays)
		ids, err := store.QueryAll(ctx, s.DB.Read, func(sc store.Scanner) (string, error) {
			var id string
			return id, sc.Scan(&id)
		}, `SELECT id FROM contacts WHERE retention_due_at IS NOT NULL AND retention_due_at <= $1 AND erased_at IS NULL AND id > $2
			ORDER BY id LIMIT $3`, store.Micros(cut), after, batch)
		if err != nil {
			return total, fmt.Errorf("retention: read due contacts: %w", err)
		}
		if len(ids) == 0 {
			return total, nil
		}
		after = ids[len(ids)-1]
		start := time.Now()
		n := 0
		err = s.DB.Write(ctx, func(tx *store.Tx) error {
			n = 0
			args := make([]any, len(ids))
			for i, id := range ids {
				args[i] = id
			}
			still, err := due(ctx, tx, store.Placeholders(2, len(ids)), now, args...)
			if err != nil {
				return err
			}
			var saved []string
			byAction := map[string][]string{}
			for _, id := range ids {
				action, ok := still[id]
				if !ok {
					saved = append(saved, id)
					continue
				}
				byAction[action] = append(byAction[action], id)
				n++
			}
			for _, action := range consent.RetentionActions {
				if err := s.Erase(tx, byAction[action], action, Rule, now); err != nil {
					return fmt.Errorf("retention: %s: %w", action, err)
				}
			}
			return contactstate.ClearRetentionDueTx(tx, saved)
		})
		if err != nil {
			return total, err
		}
		total += n
		took := time.Since(start)
		s.Longest = max(s.Longest, took)
		batch = adapt(batch, took, budget)
	}
}

// adapt scales the batch so that the next transaction takes about budget,
// growing at most fourfold and never below 1 or above 1000.
func adapt(batch int, took, budget time.Duration) int {
	if took <= 0 {
		return min(batch*4, 1000)
	}
	next := int(float64(batch) * float64(budget) / float64(took))
	return max(1, min(next, batch*4, 1000))
}

// Due is a contact flagged for retention, for the review page.
type Due struct {
	ContactID string    `json:"contact_id"`
	FlaggedAt time.Time `json:"flagged_at" doc:"when every purpose had passed its retention period"`
	EraseFrom time.Time `json:"erase_from" doc:"the first run at or after this time erases the contact, unless it is no longer due"`
}

// Preview lists up to limit flagged contacts in the order runs take them,
// with when each becomes erasable, and counts those a run at the given time
// would erase. None is an empty slice.
func (s *Service) Preview(ctx context.Context, at time.Time, limit int) ([]Due, int, error) {
	st, err := settings.Get(ctx, s.DB.Read)
	if err != nil {
		return nil, 0, err
	}
	grace := time.Duration(st.RetentionGraceDays) * 24 * time.Hour
	var n int
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM contacts WHERE retention_due_at IS NOT NULL AND retention_due_at <= $1
		AND erased_at IS NULL`, store.Micros(at.Add(-grace))).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("retention: count: %w", err)
	}
	list, err := store.QueryAll(ctx, s.DB.Read, func(sc store.Scanner) (Due, error) {
		var d Due
		var flagged int64
		err := sc.Scan(&d.ContactID, &flagged)
		d.FlaggedAt = store.FromMicros(flagged)
		d.EraseFrom = d.FlaggedAt.Add(grace)
		return d, err
	}, `SELECT id, retention_due_at FROM contacts WHERE retention_due_at IS NOT NULL AND erased_at IS NULL
		ORDER BY retention_due_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("retention: preview: %w", err)
	}
	return list, n, nil
}
