package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/pressly/goose/v3/lock"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// On PostgreSQL a migration takes its schema's lock, so that instances
// starting together take turns, and only when there is something to
// migrate: while another session holds a schema's migration lock (an
// instance migrating it), an instance restarting on the schema, up to
// date, goes ahead, and so does a migration of another schema of the
// database. Before, every restart took one lock for the whole database,
// tried every five seconds: an instance killed and restarted while tests
// of other schemas migrated waited for them over half a minute.
func TestMigrationLockIsTheSchemasAndOnlyForMigrating(t *testing.T) {
	db := storetest.OpenPostgres(t)
	// A guard against waiting forever, not a measure: a Migrate that
	// waited for the lock would wait ten minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	holder, err := db.Read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	// The schema's lock, and goose's own (what every schema's migration
	// took before), as another instance migrating would hold them.
	for _, key := range []int64{store.MigrateKey(db), lock.DefaultLockID} {
		if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			t.Fatal(err)
		}
		defer holder.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, key)
	}

	if n, err := db.Migrate(ctx); err != nil || n != 0 {
		t.Fatalf("a restart on the up-to-date schema whose lock is held: %d, %v", n, err)
	}
	other := storetest.OpenPostgres(t) // migrates a fresh schema
	if store.MigrateKey(other) == store.MigrateKey(db) {
		t.Fatal("two schemas share a migration lock")
	}
	if n, err := other.MigrationsBehind(ctx); err != nil || n != 0 {
		t.Fatalf("the other schema, migrated while this one's lock was held: %d behind, %v", n, err)
	}
}
