package filter_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

func ptr[T any](v T) *T { return &v }

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

var api = consent.Actor{Kind: consent.ActorAPIToken, ID: "t"}

// population fills db with contacts whose fields, consents and opt-in
// statuses are drawn from small sets, so that conditions both match and miss.
func population(t testing.TB, db *store.DB, r *rand.Rand, n int) *contact.Service {
	ctx := context.Background()
	cs := consent.NewService(db)
	people := contact.NewService(db, cs)
	people.Vault = vaulttest.New(t)
	for _, f := range []contact.FieldInput{
		{Name: ptr("segment"), Type: ptr("text")}, {Name: ptr("score"), Type: ptr("number")},
		{Name: ptr("vip"), Type: ptr("boolean")}, {Name: ptr("birthday"), Type: ptr("date")},
		{Name: ptr("national_id"), Type: ptr("text"), Sensitive: ptr(true)},
	} {
		if _, err := people.CreateField(ctx, audit.Actor{Kind: "user"}, f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Share with partners"), LegalBasis: ptr("consent"), Text: ptr("Yes")}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		fields := map[string]any{}
		if r.IntN(3) > 0 {
			fields["segment"] = pick(r, "b2b", "B2B", "b2c", "", "Åsa-b2b")
		}
		if r.IntN(3) > 0 {
			fields["score"] = pick(r, 0.0, 1.5, 7.0, -2.0, 100.0, 0.1)
		}
		if r.IntN(2) > 0 {
			fields["vip"] = r.IntN(2) == 0
		}
		if r.IntN(3) > 0 {
			fields["birthday"] = pick(r, "1985-01-01", "1990-06-15", "2001-12-31", "1970-01-01")
		}
		if r.IntN(3) > 0 {
			fields["national_id"] = pick(r, "198501011234", "199006155678", "200112319999", "197001011234")
		}
		in := contact.Input{
			Email:     ptr(fmt.Sprintf("%s%d@%s", pick(r, "anna", "Bob", "x.y"), i, pick(r, "example.com", "mail.se", "Example.com"))),
			Kind:      ptr(pick(r, "lead", "contact")),
			FirstName: ptr(pick(r, "Anna", "anna", "Åsa", "Bob", "")),
			Country:   ptr(pick(r, "NL", "BE", "SE", "US", "")),
			Region:    ptr(pick(r, "EU", "US", "APAC", "eu", "")),
			Stage:     ptr(pick(r, "lead in", "ready to buy", "lost", "")),
			Fields:    fields,
		}
		nc := contact.NewContact{Input: in, Actor: api, Evidence: consent.Evidence{Method: consent.MethodAPI}}
		nc.OptInStatus = pick(r, "", contactstate.SingleOptInUser, contactstate.OptOutUser)
		for _, p := range []string{"E-marketing", "Share with partners", "Sales and service"} {
			if st := pick(r, "", "", consent.StateGranted, consent.StateWithdrawn); st != "" {
				nc.Consents = append(nc.Consents, consent.RecordInput{Purpose: p, State: st, Source: "API", Actor: api,
					Evidence: consent.Evidence{Method: consent.MethodAPI}})
			}
		}
		// Spread creation times over the last 90 days, and let a quarter of
		// the grants have expired an hour ago.
		at := now.Add(-time.Duration(r.IntN(91*24)) * time.Hour)
		people.Now = func() time.Time { return at }
		c, err := people.Create(ctx, nc)
		if err != nil {
			t.Fatal(err)
		}
		expired := r.IntN(4) == 0
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if !expired {
				return nil
			}
			for _, table := range []string{"consent_current", "consent_records"} {
				if _, err := tx.Exec(`UPDATE `+table+` SET expires_at = $2 WHERE contact_id = $1 AND state = 'granted'`,
					c.ID, store.Micros(now.Add(-time.Hour))); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return people
}

// atoms are the building blocks of generated conditions.
var atoms = []string{
	`region == "EU"`, `region != "EU"`, `region in ["EU", "US"]`, `lower(region) == "eu"`, `region < "F"`, `region >= "US"`,
	`country in ["NL", "BE"]`, `country == ""`, `stage == "ready to buy"`, `stage startsWith "lead"`, `stage endsWith "buy"`,
	`email endsWith "@example.com"`, `email contains "9"`, `lower(email) endsWith "@example.com"`, `email startsWith "x."`,
	`first_name == "Anna"`, `lower(first_name) == "anna"`, `first_name > "B"`, `first_name contains "Ås"`, `first_name endsWith ""`,
	`kind == "lead"`, `optin in ["single_opt_in_user", "double_opt_in"]`, `opt_in_status == "opt_out_user"`, `optin != "none"`,
	`consent("E-marketing") == "granted"`, `consent("E-marketing") != "granted"`, `consent("e-marketing") == "none"`,
	`consent("Share with partners") in ["withdrawn", "none"]`, `consent("Sales and service") in ["granted", "withdrawn"]`,
	`created_at > now() - duration("720h")`, `created_at <= now() - duration("30d")`, `created_at < date("2000-01-01")`,
	`score > 1`, `score <= 7`, `score == 0.1`, `score in [0, 100]`, `score != 1.5`, `score < -1`, `score == nil`, `score != nil`,
	`vip`, `vip == false`, `vip != true`, `vip == nil`,
	`segment == "b2b"`, `segment != "b2b"`, `lower(segment) == "b2b"`, `segment contains "b2"`, `segment == ""`, `segment startsWith "Å"`,
	`segment in ["b2c", ""]`, `segment >= "b"`, `segment == nil`,
	`birthday >= date("1990-01-01")`, `birthday < date("1985-01-01T12:00:00Z")`, `birthday >= date("1985-01-01T12:00:00Z")`,
	`birthday == date("1970-01-01")`, `birthday != date("1970-01-01T01:00:00Z")`, `birthday in [date("2001-12-31"), date("1985-01-01")]`,
	`birthday <= now() - duration("262800h")`, `birthday > date("1990-06-15T00:00:01Z")`,
	`national_id == "198501011234"`, `!(national_id == "198501011234")`, `national_id == "200112319999"`,
	`national_id endsWith "1234"`, `national_id == nil`,
	`true`, `1 > 2`,
}

// constantAtoms match all contacts or none by design.
var constantAtoms = []string{`true`, `1 > 2`, `first_name endsWith ""`, `created_at < date("2000-01-01")`}

// subjectsOf loads every contact as the in-memory evaluation sees it, with
// its current consents and blind indexes, in creation order.
func subjectsOf(t testing.TB, people *contact.Service, db *store.DB) ([]*filter.Subject, []string) {
	ctx := context.Background()
	var subjects []*filter.Subject
	var ids []string
	blind := blindIndexes(t, db)
	after := ""
	for {
		page, next, err := people.List(ctx, contact.ListQuery{Limit: 500, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			cur, err := people.Consent.CurrentConsents(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			states := map[string]string{}
			for _, x := range cur {
				if x.State != consent.StateNone {
					states[x.PurposeID] = x.State
				}
			}
			sub := contact.Subject(c, states, nil)
			sub.Blind = blind[c.ID]
			subjects = append(subjects, sub)
			ids = append(ids, c.ID)
		}
		if after = next; after == "" {
			return subjects, ids
		}
	}
}

// blindIndexes reads each contact's blind indexes, which the in-memory
// evaluation compares as SQL does.
func blindIndexes(t testing.TB, db *store.DB) map[string]map[string]string {
	out := map[string]map[string]string{}
	rows, err := db.Read.Query(`SELECT contact_id, field, blind_index FROM sensitive_values`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, field, idx string
		rows.Scan(&id, &field, &idx)
		if out[id] == nil {
			out[id] = map[string]string{}
		}
		out[id][field] = idx
	}
	return out
}

func generate(r *rand.Rand, depth int) string {
	if depth == 0 || r.IntN(3) == 0 {
		return pick(r, atoms...)
	}
	switch r.IntN(4) {
	case 0:
		return "!(" + generate(r, depth-1) + ")"
	case 1:
		return "(" + generate(r, depth-1) + " || " + generate(r, depth-1) + ")"
	default:
		return generate(r, depth-1) + " && " + generate(r, depth-1)
	}
}

// TestDifferential evaluates many generated conditions over many generated
// contacts in memory and in SQL, and requires the same contacts from each,
// on SQLite and on PostgreSQL.
func TestDifferential(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		r := rand.New(rand.NewPCG(1, 2))
		people := population(t, db, r, 300)
		schema, err := people.ConditionSchema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		subjects, ids := subjectsOf(t, people, db)
		atomHits := map[string]int{}
		for i := range 600 {
			src := generate(r, 3)
			if i < len(atoms) {
				src = atoms[i] // every atom on its own at least once
			}
			cond, err := filter.Compile(src, schema, time.Now())
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			var want []string
			for j, s := range subjects {
				if cond.Match(s) {
					want = append(want, ids[j])
				}
			}
			where, args := cond.SQL(db.Dialect, 1)
			got, err := store.QueryAll(ctx, db.Read, func(row store.Scanner) (string, error) {
				var id string
				return id, row.Scan(&id)
			}, "SELECT c.id FROM contacts c WHERE "+where+" ORDER BY c.id", args...)
			if err != nil {
				t.Fatalf("%s\nSQL: %s\n%v", src, where, err)
			}
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s\nmemory matched %d contacts, SQL %d\nSQL: %s %v", src, len(want), len(got), where, args)
			}
			if i < len(atoms) {
				atomHits[src] = len(want)
			}
		}
		// The population must make each atom discriminate, or the test
		// proves little: every atom but the constant ones matches some
		// contacts and misses others.
		for _, a := range atoms {
			if n := atomHits[a]; (n == 0 || n == len(ids)) && !slices.Contains(constantAtoms, a) {
				t.Errorf("atom %s matched %d of %d contacts", a, n, len(ids))
			}
		}
	})
}
