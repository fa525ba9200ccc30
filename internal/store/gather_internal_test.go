package store

import "testing"

// TestMergeTakesInsertsApart: a single-row INSERT merges with its
// placeholders numbered on and quoted text left alone; statements that
// are not one row of VALUES never merge.
func TestMergeTakesInsertsApart(t *testing.T) {
	s := shapeOf(`INSERT INTO t (a, b, c) VALUES ($1, '$1 it''s', $2, $2) ON CONFLICT (a) DO UPDATE SET b = excluded.b`)
	if s == nil {
		t.Fatal("a single-row INSERT did not parse")
	}
	want := `INSERT INTO t (a, b, c) VALUES ($1, '$1 it''s', $2, $2),($3, '$1 it''s', $4, $4) ON CONFLICT (a) DO UPDATE SET b = excluded.b`
	if got := s.text(2, Postgres); got != want {
		t.Errorf("two rows:\n%s\nwant\n%s", got, want)
	}
	want = `INSERT INTO t (a, b, c) VALUES (?, '$1 it''s', ?, ?),(?, '$1 it''s', ?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b`
	if got := s.text(2, SQLite); got != want {
		t.Errorf("two rows on SQLite:\n%s\nwant\n%s", got, want)
	}
	for _, q := range []string{
		`UPDATE t SET a = $1`,
		`INSERT INTO t (a) SELECT $1`,
		`INSERT INTO t (a) VALUES ($1), ($2)`,
		`INSERT INTO t (a) VALUES ($1) RETURNING a`,
		`INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE SET a = $2`,
		`INSERT INTO t (a) VALUES ('x')`,
	} {
		if shapeOf(q) != nil {
			t.Errorf("%s: merged", q)
		}
	}
	var run []laterStmt
	for i := range 300 {
		run = append(run, laterStmt{query: `INSERT INTO t (a) VALUES ($1)`, args: []any{i}, gatherRow: i + 1},
			laterStmt{query: `UPDATE t SET a = $1`, args: []any{i}, gatherRow: i + 1})
	}
	out := merge(run, SQLite)
	// 300 inserts as 256 + 16 + 16 + 4 + 4 + 4 rows, then the 300 updates.
	if len(out) != 6+300 || len(out[0].args) != 256 || len(out[5].args) != 4 || out[6].query != `UPDATE t SET a = $1` {
		t.Errorf("merged into %d statements; first %d args", len(out), len(out[0].args))
	}
}
