package erasure

import (
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
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
	system := consent.Actor{Kind: consent.ActorSystem}
	switch action {
	case consent.RetentionErase:
		_, err := EraseTx(tx, contactID, Why{Actor: system, Rule: rule}, now)
		return err
	case consent.RetentionAnonymise:
		return contact.DeleteTx(tx, contactID, system, now)
	}
	return fmt.Errorf("erasure: unknown retention action %q", action)
}
