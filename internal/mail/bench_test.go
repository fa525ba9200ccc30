package mail_test

import (
	"context"
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

// seedOutbox queues n messages, one per contact, with set-based inserts.
func seedOutbox(b *testing.B, db *store.DB, n int) {
	series, from := storetest.Series(db)
	text := strings.Repeat("Our autumn news, with a link to your preferences page: https://consent.example/p/abc\n", 12)
	for _, q := range []string{
		series + `INSERT INTO contacts (id, ref, kind, email, email_key, fields, opt_in_status, created_at, updated_at)
			SELECT 'c' || i, 'r' || i, 'contact', 'c' || i || '@example.com', 'c' || i || '@example.com', '{}', 'double_opt_in', 0, 0 ` + from,
		series + `INSERT INTO outbox (id, contact_id, kind, to_address, language, subject, text_body, html_body, headers, status, run_at, created_at)
			SELECT 'm' || i, 'c' || i, 'campaign', '', 'en', 'Autumn news', $2, '', '{}', 'queued', 0, 0 ` + from,
	} {
		args := []any{n}
		if strings.Contains(q, "$2") {
			args = append(args, text)
		}
		if err := db.Write(context.Background(), func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
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
		seedOutbox(b, db, n)
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
