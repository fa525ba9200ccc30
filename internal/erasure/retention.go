package erasure

import (
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// ForRetention erases one contact inside tx as retention decided, as the
// system, with rule in the erasure log: action consent.RetentionErase
// erases the personal data and keeps the remainder;
// consent.RetentionAnonymise deletes the
// record, leaving the same suppression entry and a ledger tombstone. A
// contact under a legal hold is erased only as far as the hold allows
// (StatusPartlyErased), and the rest waits for the hold to end; deleting
// one is refused with the hold's error. It has the shape of the retention
// package's Eraser (retention.Service.Erase); a run over many contacts is faster with EraseManyTx.
func ForRetention(tx *store.Tx, contactID, action, rule string, now time.Time) error {
	return ForRetentionMany(tx, []string{contactID}, action, rule, now)
}

// ForRetentionMany is ForRetention for every contact in ids, with one
// action: erasing a batch costs about a third of erasing its contacts one
// by one (BenchmarkErase). A contact that does not exist is skipped.
func ForRetentionMany(tx *store.Tx, ids []string, action, rule string, now time.Time) error {
	system := consent.Actor{Kind: consent.ActorSystem}
	switch action {
	case consent.RetentionErase:
		_, err := EraseManyTx(tx, ids, Why{Actor: system, Rule: rule}, now)
		return err
	case consent.RetentionAnonymise:
		for _, id := range ids {
			if err := contact.DeleteTx(tx, id, system, now); err != nil && !errs.Is(err, errs.KindNotFound) {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("erasure: unknown retention action %q", action)
}
