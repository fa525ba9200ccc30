package export_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// History sizes of the benchmark: 10,000 history records in all.
const (
	benchConsentRecords = 7000
	benchOptInChanges   = 3000
)

// seedHistory gives the fixture's contact a long history with set-based
// inserts: consent records alternating between the two purposes and
// between granted and withdrawn, in English and Swedish, with evidence,
// and opt-in changes.
func seedHistory(b *testing.B, db *store.DB, fx fixture) {
	series, from := storetest.Series(db)
	for _, step := range []struct {
		q    string
		args []any
	}{
		{series + `INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version, recorded_at,
			expires_at, actor_kind, actor_id, method, ip, user_agent, token_id, ledger_seq, text_language)
			SELECT 'bench-r' || i, $2, CASE WHEN i % 2 = 0 THEN $3 ELSE '01930000-0000-7000-8000-000000000001' END,
			CASE WHEN i % 3 = 0 THEN 'withdrawn' ELSE 'granted' END, 'consent', '01930000-0000-7000-8001-000000000001', 'Web form',
			1, 1000000 + i, NULL, 'contact', $2, 'webform', '192.0.2.' || (i % 250), 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', '',
			100000 + i, CASE WHEN i % 2 = 0 THEN 'sv' ELSE 'en' END ` + from, []any{benchConsentRecords, fx.contactID, fx.purposeID}},
		{series + `INSERT INTO opt_in_changes (id, contact_id, from_status, to_status, recorded_at, actor_kind, actor_id, method, ip, user_agent,
			token_id, ledger_seq) SELECT 'bench-o' || i, $2, 'opt_out_user', 'none', 1000000 + i, 'user', 'agent-1', 'entered_by_user',
			'', '', '', 200000 + i ` + from, []any{benchOptInChanges, fx.contactID}},
	} {
		if err := db.Write(context.Background(), func(tx *store.Tx) error { _, err := tx.Exec(step.q, step.args...); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

// countingWriter counts what is written, like a client that reads fast.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkExport builds and writes the export of a contact with 10,000
// history records (7,000 consent records, 3,000 opt-in changes) in each
// format, as the contact's own export (values decrypted, access logged).
// Target: at most 1 s each.
func BenchmarkExport(b *testing.B) {
	storetest.Each(b, func(b testing.TB, db *store.DB) {
		bb := b.(*testing.B)
		fx := setUp(bb, db)
		seedHistory(bb, db, fx)
		self := consent.Actor{Kind: consent.ActorContact, ID: fx.contactID}
		for _, f := range []export.Format{export.JSON, export.CSV, export.XLSX} {
			bb.Run(string(f), func(b *testing.B) {
				var size int64
				for b.Loop() {
					e, err := fx.svc.Build(context.Background(), fx.contactID, export.Viewer{Actor: self, Clear: true})
					if err != nil {
						b.Fatal(err)
					}
					if n := len(e.ConsentHistory) + len(e.OptInHistory); n < 10000 {
						b.Fatalf("%d history records", n)
					}
					w := &countingWriter{}
					if err := e.Write(w, f); err != nil {
						b.Fatal(err)
					}
					size = w.n
				}
				b.ReportMetric(float64(size)/1e6, "MB/file")
			})
		}
	})
}

// BenchmarkListExportMillion exports 1,000,000 contacts as CSV in the
// contact list's default columns (email, names, kind, opt-in status and
// the consent state for each of the purposes), as an operator's export of
// the whole list, and reports the seconds per export, the file's size
// and the peak heap while it runs (sampled every 10 ms): the contacts are
// read a page at a time and written as they come, never held. Target: at
// most 20 s.
func BenchmarkListExportMillion(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		const n = 1_000_000
		contacttest.SeedMillion(b, db, n)
		svc := &export.Service{DB: db, Contacts: contact.NewService(db, consent.NewService(db)), Now: time.Now}
		ctx := context.Background()
		var size int64
		var peak uint64
		stop, sampled := make(chan struct{}), make(chan struct{})
		go func() { // the peak heap, while the benchmark runs
			defer close(sampled)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		runtime.GC()
		b.ResetTimer()
		for b.Loop() {
			x, err := svc.PrepareList(ctx, export.ListRequest{Format: "csv", Asker: contact.Asker{Actor: agent}})
			if err != nil {
				b.Fatal(err)
			}
			w := &lineCounter{}
			if err := x.Write(ctx, w, nil); err != nil {
				b.Fatal(err)
			}
			if x.Contacts != n || w.lines != n+1 {
				b.Fatalf("%d contacts, %d lines", x.Contacts, w.lines)
			}
			size = w.n
		}
		close(stop)
		<-sampled
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/export")
		b.ReportMetric(float64(size)/1e6, "MB/file")
		b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
	})
}

// lineCounter counts what is written, and its lines.
type lineCounter struct{ n, lines int64 }

func (w *lineCounter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	w.lines += int64(bytes.Count(p, []byte("\n")))
	return len(p), nil
}
