package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store/storetest"
)

// TestAnalyzeReplansLookups shows why an import calls Analyze on
// PostgreSQL. Its lookup of a chunk's addresses, once planned for any
// values while the contacts table was empty, scans the whole table however
// large it grows, until the table's statistics change; after Analyze it
// uses the address index.
func TestAnalyzeReplansLookups(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	conn, err := db.Read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	plan := func() string {
		t.Helper()
		var lines []string
		rows, err := conn.QueryContext(ctx, `EXPLAIN EXECUTE probe_lookup('{k1,k2}')`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
		return strings.Join(lines, "\n")
	}
	// Autovacuum would analyze the table on its own a while after the
	// insert below.
	if _, err := conn.ExecContext(ctx, `ALTER TABLE contacts SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	// A busy server may still plan the statement again meanwhile (the
	// other tests' schemas come and go, and a backend that falls behind
	// on catalog changes drops every cached plan): then the table is
	// emptied and the hazard shown again.
	for attempt := 1; ; attempt++ {
		for _, q := range []string{
			`DEALLOCATE ALL`,
			`TRUNCATE contacts CASCADE`,
			// What PostgreSQL does to a statement after a few runs, at once.
			`SET plan_cache_mode = force_generic_plan`,
			`PREPARE probe_lookup(text[]) AS SELECT * FROM contacts WHERE email_key = ANY($1)`,
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatal(q, err)
			}
		}
		if p := plan(); !strings.Contains(p, "Seq Scan") {
			t.Fatalf("planned on an empty table, expected a full scan:\n%s", p)
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO contacts (id, ref, kind, email, email_key, created_at, updated_at)
			SELECT 'c' || i, 'r' || i, 'lead', 'a' || i || '@example.org', 'a' || i || '@example.org', 0, 0 FROM generate_series(1, 20000) i`); err != nil {
			t.Fatal(err)
		}
		p := plan()
		if strings.Contains(p, "Seq Scan") {
			break
		}
		if attempt == 5 {
			t.Fatalf("the cached plan changed by itself five times; the test no longer shows the hazard:\n%s", p)
		}
		t.Logf("attempt %d: the server planned the statement again meanwhile", attempt)
	}
	if err := db.Analyze(ctx, "contacts"); err != nil {
		t.Fatal(err)
	}
	if p := plan(); strings.Contains(p, "Seq Scan") || !strings.Contains(p, "contacts_email_key_key") {
		t.Fatalf("after Analyze, expected the lookup to use the index:\n%s", p)
	}
	if err := db.Analyze(ctx, "contacts; DROP TABLE x"); err == nil {
		t.Fatal("a table name that is not one was accepted")
	}
}
