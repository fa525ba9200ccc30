package repermission

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
)

const dayMicros = int64(24 * time.Hour / time.Microsecond)

// BatchTx records, inside the transaction of a batch of the double opt-in
// run bulk (optin.Service.AfterBatch), which contacts of the re-permission
// run it belongs to were invited (their days start now) and which the
// invitation skipped, and why (their state changed since the run started).
// With done, the last batch, the run waits for answers, or is done when
// none is awaited. A double opt-in run that is not a re-permission run's
// changes nothing here.
func BatchTx(tx *store.Tx, bulk string, outcomes map[string]string, done bool, now time.Time) error {
	var id, skippedJSON string
	var days int
	err := tx.QueryRow(`SELECT id, days, skipped FROM repermission_runs WHERE bulk_id = $1`, bulk).Scan(&id, &days, &skippedJSON)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not a re-permission run's: nothing to record
	}
	if err != nil {
		return fmt.Errorf("repermission: read run: %w", err)
	}
	skipped := map[string]int{}
	if err := json.Unmarshal([]byte(skippedJSON), &skipped); err != nil {
		return fmt.Errorf("repermission: read run: %w", err)
	}
	byReason := map[string][]string{}
	for contact, reason := range outcomes {
		byReason[reason] = append(byReason[reason], contact)
	}
	invited := byReason[""]
	if len(invited) > 0 {
		cond, args := store.Among(tx.Dialect(), 4, invited)
		if _, err := tx.Exec(`UPDATE repermission_contacts SET invited_at = $2, lapse_due_at = $3 WHERE run_id = $1 AND contact_id `+cond,
			append([]any{id, store.Micros(now), store.Micros(now) + int64(days)*dayMicros}, args...)...); err != nil {
			return fmt.Errorf("repermission: record invitations: %w", err)
		}
	}
	for reason, ids := range byReason {
		if reason == "" {
			continue
		}
		skipped[reason] += len(ids)
		cond, args := store.Among(tx.Dialect(), 3, ids)
		if _, err := tx.Exec(`UPDATE repermission_contacts SET skip_reason = $2 WHERE run_id = $1 AND contact_id `+cond,
			append([]any{id, reason}, args...)...); err != nil {
			return fmt.Errorf("repermission: record skipped contacts: %w", err)
		}
	}
	sj, _ := json.Marshal(skipped)
	status := StatusInviting
	if done {
		status = StatusWaiting
	}
	if _, err := tx.Exec(`UPDATE repermission_runs SET invited = invited + $2, skipped = $3, status = $4, invited_at = $5 WHERE id = $1`,
		id, len(invited), string(sj), status, store.Micros(now)); err != nil {
		return fmt.Errorf("repermission: record progress: %w", err)
	}
	return settle(tx, id, now)
}

// FailedTx records, inside the transaction that marks the double opt-in
// run bulk failed (optin.Service.AfterFailed), that the contacts of the
// re-permission run it belongs to whom it had not invited yet are not
// asked (SkipRunFailed), so that a later run may ask them; those it
// invited still confirm or lapse. A double opt-in run that is not a
// re-permission run's changes nothing here.
func FailedTx(tx *store.Tx, bulk string, now time.Time) error {
	var id, skippedJSON string
	err := tx.QueryRow(`SELECT id, skipped FROM repermission_runs WHERE bulk_id = $1`, bulk).Scan(&id, &skippedJSON)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("repermission: read run: %w", err)
	}
	skipped := map[string]int{}
	if err := json.Unmarshal([]byte(skippedJSON), &skipped); err != nil {
		return fmt.Errorf("repermission: read run: %w", err)
	}
	res, err := tx.Exec(`UPDATE repermission_contacts SET skip_reason = $2 WHERE run_id = $1 AND skip_reason = '' AND invited_at IS NULL`,
		id, SkipRunFailed)
	if err != nil {
		return fmt.Errorf("repermission: release contacts not asked: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return err
	}
	skipped[SkipRunFailed] += int(n)
	sj, _ := json.Marshal(skipped)
	if _, err := tx.Exec(`UPDATE repermission_runs SET skipped = $2 WHERE id = $1`, id, string(sj)); err != nil {
		return fmt.Errorf("repermission: record progress: %w", err)
	}
	return nil
}

// settle ends a waiting run once every contact it invited has confirmed
// or lapsed.
func settle(tx *store.Tx, id string, now time.Time) error {
	if _, err := tx.Exec(`UPDATE repermission_runs SET status = $2, finished_at = $3
		WHERE id = $1 AND status = $4 AND invited = confirmed + lapsed`, id, StatusDone, store.Micros(now), StatusWaiting); err != nil {
		return fmt.Errorf("repermission: end run: %w", err)
	}
	return nil
}

// ConfirmedTx records, inside the transaction of a double opt-in
// confirmation of the contact's address (a consent.ConfirmHook: an
// invitation's link, the re-permission email's or a later one, or a
// webform's), that every run that invited the contact and awaits their
// answer has it; a contact who had lapsed counts as confirmed from now
// and loses the flag. A contact no run invited changes nothing.
func ConfirmedTx(tx *store.Tx, contactID string, now time.Time) error {
	type open struct {
		run    string
		lapsed bool
	}
	rows, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (open, error) {
		var o open
		return o, row.Scan(&o.run, &o.lapsed)
	}, `SELECT run_id, lapsed_at IS NOT NULL FROM repermission_contacts WHERE contact_id = $1 AND invited_at IS NOT NULL AND confirmed_at IS NULL`,
		contactID)
	if err != nil {
		return fmt.Errorf("repermission: read invited runs: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.Exec(`UPDATE repermission_contacts SET confirmed_at = $2 WHERE contact_id = $1 AND invited_at IS NOT NULL AND confirmed_at IS NULL`,
		contactID, store.Micros(now)); err != nil {
		return fmt.Errorf("repermission: record confirmation: %w", err)
	}
	wasLapsed := false
	for _, o := range rows {
		lapsed := 0
		if o.lapsed {
			lapsed, wasLapsed = 1, true
		}
		if _, err := tx.Exec(`UPDATE repermission_runs SET confirmed = confirmed + 1, lapsed = lapsed - $2 WHERE id = $1`, o.run, lapsed); err != nil {
			return fmt.Errorf("repermission: count confirmation: %w", err)
		}
		if err := settle(tx, o.run, now); err != nil {
			return err
		}
	}
	if wasLapsed {
		return contactstate.ClearRepermissionLapsedTx(tx, []string{contactID})
	}
	return nil
}

// sweepBatch is how many contacts one transaction of Sweep lapses.
const sweepBatch = 500

// Sweep removes the runs whose start was cut off (statusPreparing, after
// preparingFor), then lapses the invited contacts whose days ran out without a
// confirmation: each is marked lapsed, counted in its run and flagged
// (repermission_lapsed), a batch to a transaction. A contact who has,
// since the invitation, granted a consent to a purpose that governs
// marketing email another way (a user recording a consent given by
// phone, say) holds a valid consent, and counts as confirmed at that
// consent's time instead. It returns how many contacts it lapsed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	if err := s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`DELETE FROM repermission_runs WHERE status = $1 AND created_at < $2`, statusPreparing,
			store.Micros(s.now().Add(-preparingFor)))
		return err
	}); err != nil {
		return 0, fmt.Errorf("repermission: remove runs whose start was cut off: %w", err)
	}
	total := 0
	for {
		n, more, err := s.sweepOnce(ctx)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

func (s *Service) sweepOnce(ctx context.Context) (lapsed int, more bool, err error) {
	now := s.now()
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		type due struct {
			run, contact string
			consented    *int64
		}
		list, err := store.QueryAll(ctx, tx, func(row store.Scanner) (due, error) {
			var d due
			return d, row.Scan(&d.run, &d.contact, &d.consented)
		}, `SELECT rc.run_id, rc.contact_id, (SELECT MAX(r.recorded_at) FROM consent_current cc
				JOIN consent_records r ON r.id = cc.record_id JOIN purposes p ON p.id = cc.purpose_id
				WHERE cc.contact_id = rc.contact_id AND p.marketing_email AND cc.state = $2
				AND (cc.expires_at IS NULL OR cc.expires_at > $1) AND r.recorded_at > rc.invited_at)
			FROM repermission_contacts rc
			WHERE rc.lapse_due_at <= $1 AND rc.confirmed_at IS NULL AND rc.lapsed_at IS NULL
			ORDER BY rc.lapse_due_at LIMIT $3`, store.Micros(now), consent.StateGranted, sweepBatch)
		if err != nil {
			return fmt.Errorf("repermission: find lapsed contacts: %w", err)
		}
		more = len(list) == sweepBatch
		lapsedBy, confirmedBy := map[string]int{}, map[string]int{}
		var flag []string
		for _, d := range list {
			if d.consented != nil {
				if _, err := tx.Exec(`UPDATE repermission_contacts SET confirmed_at = $3 WHERE run_id = $1 AND contact_id = $2`,
					d.run, d.contact, *d.consented); err != nil {
					return fmt.Errorf("repermission: record consent: %w", err)
				}
				confirmedBy[d.run]++
				continue
			}
			if _, err := tx.Exec(`UPDATE repermission_contacts SET lapsed_at = $3 WHERE run_id = $1 AND contact_id = $2`,
				d.run, d.contact, store.Micros(now)); err != nil {
				return fmt.Errorf("repermission: lapse: %w", err)
			}
			lapsedBy[d.run]++
			flag = append(flag, d.contact)
		}
		runs := map[string]bool{}
		for r := range lapsedBy {
			runs[r] = true
		}
		for r := range confirmedBy {
			runs[r] = true
		}
		ids := make([]string, 0, len(runs))
		for r := range runs {
			ids = append(ids, r)
		}
		sort.Strings(ids)
		for _, r := range ids {
			if _, err := tx.Exec(`UPDATE repermission_runs SET lapsed = lapsed + $2, confirmed = confirmed + $3 WHERE id = $1`,
				r, lapsedBy[r], confirmedBy[r]); err != nil {
				return fmt.Errorf("repermission: count lapsed: %w", err)
			}
			if err := settle(tx, r, now); err != nil {
				return err
			}
		}
		lapsed = len(flag)
		sort.Strings(flag)
		flag = distinct(flag)
		return contactstate.SetRepermissionLapsedTx(tx, flag, now)
	})
	if err != nil {
		return 0, false, err
	}
	if lapsed > 0 && s.Log != nil {
		s.Log.Info("re-permission lapsed", "contacts", lapsed)
	}
	return lapsed, more, nil
}

// distinct returns sorted ids without repeats.
func distinct(sorted []string) []string {
	out := sorted[:0]
	for i, id := range sorted {
		if i == 0 || id != sorted[i-1] {
			out = append(out, id)
		}
	}
	return out
}
