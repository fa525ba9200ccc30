package mail_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// seed is what seedOutbox stores: contacts contacts, and messages
// messages spread over them in turn, of kind and status, the first queued
// at created (micros) and each next a millisecond later; a sent message
// has its address and sent time.
type seed struct {
	contacts, messages int
	kind, status       string
	created            int64
	subject, text      string
	html, headers      string
	links              string
}

// seedOutbox stores s with set-based inserts.
func seedOutbox(b *testing.B, db *store.DB, s seed) {
	series, from := storetest.Series(db)
	if s.headers == "" {
		s.headers = "{}"
	}
	if s.links == "" {
		s.links = "[]"
	}
	to := "''"
	if s.status == mail.StatusSent {
		to = "'c' || ((i - 1) % $2 + 1) || '@example.com'"
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{series + `INSERT INTO contacts (id, ref, kind, email, email_key, fields, opt_in_status, created_at, updated_at)
			SELECT 'c' || i, 'r' || i, 'contact', 'c' || i || '@example.com', 'c' || i || '@example.com', '{}', 'double_opt_in', 0, 0 ` + from,
			[]any{s.contacts}},
		{series + `INSERT INTO outbox (id, contact_id, kind, to_address, language, subject, text_body, html_body, headers, links, status, run_at,
			created_at, sent_at)
			SELECT 'm' || i, 'c' || ((i - 1) % $2 + 1), $3, ` + to + `, 'en', $4, $5, $6, $7, $8, $9, CAST($10 AS BIGINT) + i * 1000, CAST($10 AS BIGINT) + i * 1000,
				CASE WHEN $9 = 'sent' THEN CAST($10 AS BIGINT) + i * 1000 + 60000000 END ` + from,
			[]any{s.messages, s.contacts, s.kind, s.subject, s.text, s.html, s.headers, s.links, s.status, s.created}},
	} {
		if err := db.Write(context.Background(), func(tx *store.Tx) error { _, err := tx.Exec(q.sql, q.args...); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

// peakRSS is the process's peak resident memory in MB (VmHWM), or 0 where
// /proc is not there.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkDelivery delivers queued campaign email through the gate to an
// SMTP server on loopback over 8 connections. Target: at least 5,000
// messages/s with peak memory at most 150 MB. The SMTP server runs in the
// same process, so its work and memory are counted too.
func BenchmarkDelivery(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		const n = 20000
		seedOutbox(b, db, seed{contacts: n, messages: n, kind: mail.KindCampaign, status: mail.StatusQueued, subject: "Autumn news",
			text: strings.Repeat("Our autumn news, with a link to your preferences page: https://consent.example/p/abc\n", 12)})
		srv := mailtest.Start(b)
		srv.Count = true
		tr, err := mail.NewSMTP(srv.URL(), 8)
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		d := newDeliverer(db, tr, time.Now)
		d.Batch = 500
		b.ResetTimer()
		start := time.Now()
		for b.Loop() {
			if _, err := d.RunDue(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		elapsed := time.Since(start)
		if got := srv.Received(); got != n {
			b.Fatalf("server received %d of %d", got, n)
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(peakRSS(), "peak-MB")
	})
}

// words returns n pseudo-random words, the same on every run: text that
// compresses as prose does, where repeated lines would compress to nothing
// in PostgreSQL's TOAST.
func words(n int) string {
	vocab := strings.Fields(`please confirm your subscription to our newsletter by clicking the link below you receive this
		email because someone entered this address on the form of our website if it was not you ignore it and nothing happens
		we keep your consent record with the time and the page as proof thank you privacy policy preferences unsubscribe`)
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		out[i] = vocab[r.IntN(len(vocab))]
	}
	return strings.Join(out, " ")
}

// BenchmarkPrune seeds 150,000 contacts and 300,000 messages sent two
// months ago, each of about 3.5 kB of content as a double opt-in
// invitation has (text and HTML bodies, headers, a link), and removes
// their content in one run with the default setting (30 days). It reports
// messages emptied per second, the longest transaction, and the size of
// the database (SQLite: the file, and the part of it in use; PostgreSQL:
// the schema's tables with their TOAST and indexes) before, after the run,
// and after VACUUM (on PostgreSQL also VACUUM FULL, which returns the
// space to the system). Run it once per database:
//
//	go test -run '^$' -bench BenchmarkPrune -benchtime 1x -timeout 60m ./internal/mail/
//
// With -v it logs the plan of the query that picks each batch.
func BenchmarkPrune(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		ctx := context.Background()
		const contacts, n = 150_000, 300_000
		text := words(170)
		html := "<!doctype html><html><body><table><tr><td><p>" + strings.ReplaceAll(words(340), " the ", " <b>the</b> ") +
			`</p><p><a href="https://consent.example/confirm/link-0123456789abcdef01234567">Confirm</a></p></td></tr></table></body></html>`
		links := `[{"placeholder":"link-0123456789abcdef01234567","purpose":"double_opt_in","subject_id":"0190a4c2-0000-7000-8000-000000000001","expires":"2026-01-01T00:00:00Z"}]`
		for range b.N {
			b.StopTimer()
			exec(b, db, `DELETE FROM outbox`)
			exec(b, db, `DELETE FROM contacts`)
			seedOutbox(b, db, seed{contacts: contacts, messages: n, kind: mail.KindDoubleOptIn, status: mail.StatusSent,
				created: store.Micros(time.Now().AddDate(0, -2, 0)), subject: "Please confirm your subscription", text: text, html: html,
				headers: `{"Auto-Submitted":"auto-generated"}`, links: links})
			exec(b, db, `ANALYZE`) // as autovacuum would have
			logPlan(b, db)
			before := dbSize(b, db)
			p := &mail.Pruner{DB: db, Now: time.Now}
			b.StartTimer()
			start := time.Now()
			got, err := p.Run(ctx)
			took := time.Since(start)
			b.StopTimer()
			if err != nil || got != n {
				b.Fatalf("pruned %d of %d: %v", got, n, err)
			}
			after := dbSize(b, db)
			vacuum(b, db, "VACUUM")
			vacuumed := dbSize(b, db)
			b.ReportMetric(float64(n)/took.Seconds(), "msgs/s")
			b.ReportMetric(float64(p.Longest.Microseconds())/1000, "longest-tx-ms")
			b.ReportMetric(before.total, "MB-before")
			b.ReportMetric(after.total, "MB-after")
			b.ReportMetric(after.used, "MB-in-use-after")
			b.ReportMetric(vacuumed.total, "MB-after-vacuum")
			if db.Dialect == store.Postgres {
				vacuum(b, db, "VACUUM FULL")
				b.ReportMetric(dbSize(b, db).total, "MB-after-vacuum-full")
			}
		}
	})
}

// size is a database's size in MB: total is what it takes on disk, used
// the part that holds data (on SQLite, the pages not on the free list; on
// PostgreSQL the same as total, as free space inside tables is not told).
type size struct{ total, used float64 }

func dbSize(b *testing.B, db *store.DB) size {
	b.Helper()
	const mb = 1 << 20
	if db.Dialect == store.Postgres {
		var bytes int64
		if err := db.Read.QueryRow(`SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
			JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = current_schema() AND c.relkind = 'r'`).Scan(&bytes); err != nil {
			b.Fatal(err)
		}
		return size{float64(bytes) / mb, float64(bytes) / mb}
	}
	if err := db.Checkpoint(context.Background()); err != nil {
		b.Fatal(err)
	}
	var pages, free, pageSize int64
	if err := db.Read.QueryRow(`SELECT (SELECT page_count FROM pragma_page_count()), (SELECT freelist_count FROM pragma_freelist_count()),
		(SELECT page_size FROM pragma_page_size())`).Scan(&pages, &free, &pageSize); err != nil {
		b.Fatal(err)
	}
	return size{float64(pages*pageSize) / mb, float64((pages-free)*pageSize) / mb}
}

// vacuum runs stmt (VACUUM, VACUUM FULL) outside a transaction: on SQLite
// through a connection of its own, as the service's are a reader and the
// writer's transactions.
func vacuum(b *testing.B, db *store.DB, stmt string) {
	b.Helper()
	if db.Dialect == store.Postgres {
		if _, err := db.Read.Exec(stmt); err != nil {
			b.Fatal(err)
		}
		return
	}
	var path string
	if err := db.Read.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
		b.Fatal(err)
	}
	conn, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec(stmt); err != nil {
		b.Fatal(err)
	}
}

// logPlan logs how the database finds and empties a batch.
func logPlan(b *testing.B, db *store.DB) {
	b.Helper()
	q := `EXPLAIN QUERY PLAN `
	if db.Dialect == store.Postgres {
		q = `EXPLAIN `
	}
	q += (&mail.Pruner{DB: db}).Statement()
	rows, err := db.Read.Query(q, store.Micros(time.Now()), store.Micros(time.Now().AddDate(0, 0, -30)), 500)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		plan = append(plan, fmt.Sprint(vals[len(vals)-1]))
	}
	b.Logf("%s plan:\n%s", db.Dialect, strings.Join(plan, "\n"))
}
