package mail

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// PruneJob is the scheduled job that removes the content of old email;
// PruneInterval is how often it runs.
const (
	PruneJob      = "mail.remove_content"
	PruneInterval = time.Hour
)

// defaultPruneBatch is how many messages one removal transaction empties:
// small enough that a transaction holds the single writer for a few tens
// of milliseconds, large enough that a backlog of a few hundred thousand
// messages goes in minutes.
const defaultPruneBatch = 500

// Pruner removes the content of messages done with (sent, suppressed or
// failed) once they were queued longer ago than the setting
// sent_body_days: their subject, bodies, headers and link placeholders
// are blanked, their attachments deleted and content_removed_at set.
// The row stays, with who it was for, its kind, its status and reason,
// its times and the address it went to: what proof of a double opt-in,
// the contact's history and export, and reports need. No reader needs the
// bodies (the export never held them), and kept for every message they
// are most of the outbox.
//
// Messages not yet done (queued, sending) keep their content whatever
// their age: the deliverer still needs it.
type Pruner struct {
	DB  *store.DB
	Now func() time.Time
	// Batch is how many messages one transaction empties; 0 means 500.
	Batch int
	// Longest is the longest one transaction of the last Run took, from
	// its start to its commit, for the log and the benchmark.
	Longest time.Duration
}

// Run empties, a batch per transaction, every message due, and returns
// how many it emptied (0 when none was due).
func (p *Pruner) Run(ctx context.Context) (int, error) {
	st, err := settings.Get(ctx, p.DB.Read)
	if err != nil {
		return 0, err
	}
	batch := p.Batch
	if batch <= 0 {
		batch = defaultPruneBatch
	}
	now := store.Now(p.Now)
	cut := store.Micros(now.AddDate(0, 0, -st.SentBodyDays))
	total := 0
	p.Longest = 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		start := time.Now()
		var n int64
		err := p.DB.Write(ctx, func(tx *store.Tx) error {
			res, err := tx.Exec(p.statement(), store.Micros(now), cut, batch)
			if err != nil {
				return fmt.Errorf("mail: remove old content: %w", err)
			}
			if n, err = res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			return p.removeAttachments(tx)
		})
		if err != nil {
			return total, err
		}
		p.Longest = max(p.Longest, time.Since(start))
		total += int(n)
		if int(n) < batch {
			return total, nil
		}
	}
}

// pruneKept are the outbox columns a message keeps when its content is
// removed; every other column is content (pruneBlanked). Between them
// they name every column of the table: a column added to outbox must be
// added to one of them (a test checks).
var (
	pruneKept = []string{"id", "contact_id", "kind", "to_address", "language", "conversation_id", "status", "reason", "attempts",
		"run_at", "locked_until", "claimed_by", "subject_id", "created_at", "sent_at", "message_id", "consent_purpose_id", "consent_state"}
	pruneBlanked = map[string]string{"subject": "''", "text_body": "''", "html_body": "''", "headers": "'{}'", "links": "'[]'",
		"content_removed_at": "$1"}
)

// pruneDue selects, at $2 the cut and $3 the batch size, the messages
// whose content goes. It reads the front of outbox_content_kept (the
// messages whose content is still there, oldest first); the rows emptied
// leave that index, so each batch starts at the front again without
// reading them. Old messages not yet done stay there and are read past.
const pruneDue = `SELECT %s FROM outbox WHERE content_removed_at IS NULL AND created_at < $2
	AND status IN ('sent', 'suppressed', 'failed') ORDER BY created_at LIMIT $3`

// removeAttachments deletes, after a batch was emptied, the attachments
// of the messages whose content is gone. It reads outbox_attachments,
// which holds only the attachments of messages whose content is kept,
// and each one's message by its key: never the whole outbox.
func (p *Pruner) removeAttachments(tx *store.Tx) error {
	_, err := tx.Exec(`DELETE FROM outbox_attachments WHERE outbox_id IN (SELECT a.outbox_id FROM outbox_attachments a
		JOIN outbox o ON o.id = a.outbox_id WHERE o.content_removed_at IS NOT NULL)`)
	if err != nil {
		return fmt.Errorf("mail: remove old attachments: %w", err)
	}
	return nil
}

// statement is the statement that empties one batch. On PostgreSQL an
// UPDATE: the old row versions, with their TOAST, are dead and VACUUM
// (autovacuum) makes their space reusable. On SQLite an UPDATE would
// leave each emptied row alone on the page its content filled, a page
// nothing else is ever written to again (rows go at the end of the
// table); INSERT OR REPLACE instead deletes each row, which frees its
// pages for new rows, and writes the row's remainder again, densely, at
// the end. Only outbox_attachments refers to outbox rows, and a batch
// deletes the attachments of the rows it emptied (removeAttachments)
// whether or not the replacement's delete cascaded to them.
func (p *Pruner) statement() string {
	if p.DB.Dialect == store.Postgres {
		set := make([]string, 0, len(pruneBlanked))
		for _, col := range slices.Sorted(maps.Keys(pruneBlanked)) {
			set = append(set, col+" = "+pruneBlanked[col])
		}
		return `UPDATE outbox SET ` + strings.Join(set, ", ") + ` WHERE id IN (` + fmt.Sprintf(pruneDue, "id") + `)`
	}
	cols, vals := slices.Clone(pruneKept), slices.Clone(pruneKept)
	for _, col := range slices.Sorted(maps.Keys(pruneBlanked)) {
		cols, vals = append(cols, col), append(vals, pruneBlanked[col])
	}
	return `INSERT OR REPLACE INTO outbox (` + strings.Join(cols, ", ") + `) ` + fmt.Sprintf(pruneDue, strings.Join(vals, ", "))
}
