package filter_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// FuzzCompile feeds arbitrary text to the condition language. It must never
// panic; text that does not compile must give a filter.Error; and every
// condition that compiles must run as SQL without an error and select the
// same contacts as the in-memory evaluation.
func FuzzCompile(f *testing.F) {
	for _, a := range atoms {
		f.Add(a)
	}
	for _, s := range []string{`region == "EU" && stage == "ready to buy"`, `!(email endsWith "@example.com") || score > 1e308`,
		`consent("E-marketing") == "granted" && optin in ["double_opt_in", "single_opt_in_user"]`, `created_at > now() - duration("720h")`,
		`country in ["NL", "BE"] && !(email endsWith "@example.com")`, `(((`, `"\u0000" == region`, `score / 0 > 1`, `-duration("1h")`,
		`region in []`, `lower("ÅB") == lower(region)`, `let x = 1; x`, `region?.x`, `[1, "a"]`, `birthday == date("9999-12-31")`} {
		f.Add(s)
	}
	ctx := context.Background()
	// The same population on each database there is: SQLite always,
	// PostgreSQL when CONSENTRY_TEST_POSTGRES is set.
	type target struct {
		db       *store.DB
		schema   *filter.Schema
		subjects []*filter.Subject
		ids      []string
	}
	var targets []*target
	dbs := []*store.DB{storetest.OpenSQLite(f)}
	if storetest.PostgresURL() != "" {
		dbs = append(dbs, storetest.OpenPostgres(f))
	}
	for _, db := range dbs {
		people := population(f, db, rand.New(rand.NewPCG(3, 4)), 40)
		schema, err := people.ConditionSchema(ctx)
		if err != nil {
			f.Fatal(err)
		}
		tg := &target{db: db, schema: schema}
		tg.subjects, tg.ids = subjectsOf(f, people, db)
		targets = append(targets, tg)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, src string) {
		for _, tg := range targets {
			cond, err := filter.Compile(src, tg.schema, now)
			if err != nil {
				var fe *filter.Error
				if !errors.As(err, &fe) || fe.Position < 1 || fe.Message == "" {
					t.Fatalf("%q: error without position and message: %v", src, err)
				}
				return
			}
			var want []string
			for i, s := range tg.subjects {
				if cond.Match(s) {
					want = append(want, tg.ids[i])
				}
			}
			where, args := cond.SQL(tg.db.Dialect, 1)
			got, err := store.QueryAll(ctx, tg.db.Read, func(row store.Scanner) (string, error) {
				var id string
				return id, row.Scan(&id)
			}, "SELECT c.id FROM contacts c WHERE "+where+" ORDER BY c.id", args...)
			if err != nil {
				t.Fatalf("%s: %q compiled but its SQL failed: %v\n%s", tg.db.Dialect, src, err, where)
			}
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: %q: memory matched %d, SQL %d\n%s %v", tg.db.Dialect, src, len(want), len(got), where, args)
			}
		}
	})
}
