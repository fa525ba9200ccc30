package erasure

import (
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// ForRetentionMany erases the contacts in ids inside tx as retention
// decided, as the system, with rule in the erasure log: action
// consent.RetentionErase erases the personal data and keeps the remainder
// (one batch, about a third of the cost of erasing the contacts one by
// one, BenchmarkErase); consent.RetentionAnonymise deletes each record,
// leaving the same suppression entry and a ledger tombstone. A contact
// under a legal hold is erased only as far as the hold allows and the rest
// waits for the hold to end; deleting one is refused with the hold's error
// (retention leaves held contacts out). A contact that does not exist is
// skipped. It is the retention package's Eraser.
func ForRetentionMany(tx *store.Tx, ids []string, action, rule string, now time.Time) error {
	system := consent.Actor{Kind: consent.ActorSystem}
	if len(ids) == 0 {
		return nil
	}
	switch action {
	case consent.RetentionErase:
		_, err := EraseManyTx(tx, ids, Why{Actor: system, Rule: rule}, now)
		return err
	case consent.RetentionAnonymise:
		for _, id := range ids {
			if err := DeleteTx(tx, id, system, now); err != nil && !errs.Is(err, errs.KindNotFound) {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("erasure: unknown retention action %q", action)
}
