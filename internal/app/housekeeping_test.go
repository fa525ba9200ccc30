package app

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func TestHousekeepingDeletesOnlyWhatIsOld(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		old, recent := store.Micros(now.Add(-40*24*time.Hour)), store.Micros(now.Add(-time.Hour))
		seed(t, db, []seedRow{
			{`INSERT INTO contacts (id, ref, kind, email, email_key, created_at, updated_at) VALUES ('c', 'r', 'lead', 'a@b.example', 'a@b.example', 0, 0)`, nil},
			{`INSERT INTO jobs (id, kind, status, run_at, max_attempts, created_at, finished_at) VALUES ('j1', 'x', 'done', 0, 1, 0, $1), ('j2', 'x', 'done', 0, 1, 0, $2), ('j3', 'x', 'pending', 0, 1, 0, NULL)`, []any{old, recent}},
			{`INSERT INTO tokens (id, purpose, contact_id, hash, expires_at, created_at) VALUES ('t1', 'p', 'c', 'h1', $1, 0), ('t2', 'p', 'c', 'h2', $2, 0)`, []any{old, store.Micros(now.Add(time.Hour))}},
			{`INSERT INTO mailbox (id, outbox_id, to_address, from_address, subject, text_body, delivered_at) VALUES ('m1', 'o', 'a', 'b', 's', 't', $1), ('m2', 'o2', 'a', 'b', 's', 't', $2)`, []any{old, recent}},
			{`INSERT INTO webform_confirmations (id, contact_id, webform_id, submission, status, requested_at, expires_at, ended_at)
				VALUES ('w1', 'c', 'f', '{}', 'confirmed', $1, $2, $1), ('w2', 'c', 'f', '{}', 'pending', $1, $1, NULL),
				('w3', 'c', 'f', '{}', 'pending', $2, $3, NULL)`, []any{old, recent, store.Micros(now.Add(time.Hour))}},
		})
		if err := housekeeping(ctx, db, now); err != nil {
			t.Fatal(err)
		}
		var n int
		db.Read.QueryRow(`SELECT (SELECT count(*) FROM jobs) * 1000 + (SELECT count(*) FROM tokens) * 100 + (SELECT count(*) FROM mailbox) * 10
			+ (SELECT count(*) FROM webform_confirmations)`).Scan(&n)
		if n != 2111 { // two jobs, one token, one message, one held post (still pending, its link working) left
			t.Fatalf("left %d (jobs*1000 + tokens*100 + mailbox*10 + held posts)", n)
		}
	})
}

// seedRow is a statement with its arguments, to fill tables for a test.
type seedRow struct {
	sql  string
	args []any
}

// seed runs rows in one write, failing the test on an error.
func seed(t testing.TB, db *store.DB, rows []seedRow) {
	t.Helper()
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		for _, q := range rows {
			if _, err := tx.Exec(q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
