package campaign_test

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// benchContacts is how many contacts the campaign benchmarks seed:
// CONSENTRY_BENCH_CONTACTS, or 100,000 so that go test -bench finishes
// in minutes. The figure does not depend on b.N.
func benchContacts(b *testing.B) int {
	if v := os.Getenv("CONSENTRY_BENCH_CONTACTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("CONSENTRY_BENCH_CONTACTS: %v", err)
		}
		return n
	}
	return 100_000
}

// BenchmarkCampaignSend sends a campaign to every seeded contact through
// a real SMTP server that only counts, from Send to the last message
// accepted, audience resolution included. It reports messages a second,
// the peak resident memory of the process and how much the database grew.
func BenchmarkCampaignSend(b *testing.B) {
	storetest.Each(b, func(tb testing.TB, db *store.DB) {
		b := tb.(*testing.B)
		ctx := context.Background()
		n := benchContacts(b)
		f := newFixture(b, db)
		f.smtp.Count = true
		contacttest.SeedReachable(b, db, n)
		before := dbSize(b, db)
		b.ResetTimer()
		var took, cpu time.Duration
		var latencies []time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			c, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("All " + strconv.Itoa(i)), Condition: ptr(`email != ""`),
				Variants: &[]campaign.Variant{{Language: "en", Subject: "Hi {{first_name}}", HTML: `<p>Hi {{first_name}}, see <a href="https://acme.example/x">this</a>.</p>`}}})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start, cpu0 := time.Now(), processCPU()
			if _, err := f.svc.Send(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			lat := make(chan []time.Duration)
			go func() { lat <- consentChanges(b, f, n, stop) }()
			f.run()
			took += time.Since(start)
			cpu += processCPU() - cpu0
			close(stop)
			latencies = append(latencies, <-lat...)
		}
		b.StopTimer()
		if got := f.smtp.Received(); got > n*b.N {
			b.Fatalf("%d messages for %d recipients", got, n*b.N)
		}
		slices.Sort(latencies)
		if len(latencies) > 0 {
			b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "consent-change-p99-ms")
		}
		b.ReportMetric(float64(n*b.N)/took.Seconds(), "msgs/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "CPU-µs/msg")
		b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(dbSize(b, db)-before)/(1<<20)/float64(b.N), "db-growth-MiB/campaign")
	})
}

// consentChanges records consent changes of random contacts, one every
// 10 ms, until stop, and returns how long each took: what an operator or a
// contact waits for while a campaign sends. Half are withdrawals, which
// take the send fence and so wait for the batch being handed over.
func consentChanges(b *testing.B, f *fixture, n int, stop <-chan struct{}) []time.Duration {
	var out []time.Duration
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return out
		case <-tick.C:
		}
		state := consent.StateGranted
		if i%2 == 0 {
			state = consent.StateWithdrawn
		}
		start := time.Now()
		_, err := f.cs.Record(context.Background(), "c"+strconv.Itoa(1+rand.IntN(n)), consent.RecordInput{Purpose: "E-marketing", State: state,
			Source: "API", Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: "api"}})
		if err != nil {
			b.Error(err)
			return out
		}
		out = append(out, time.Since(start))
	}
}

// BenchmarkAudiencePreview counts a campaign's audience by reason over
// the seeded contacts: a campaign for E-marketing, and one for "Sales and
// service", whose audience is also checked, contact by contact, for a
// withdrawal of E-marketing (the purpose that governs marketing email).
func BenchmarkAudiencePreview(b *testing.B) {
	storetest.Each(b, func(tb testing.TB, db *store.DB) {
		b := tb.(*testing.B)
		ctx := context.Background()
		n := benchContacts(b)
		f := newFixture(b, db)
		contacttest.SeedReachable(b, db, n)
		for _, purpose := range []string{"E-marketing", "Sales and service"} {
			c, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("All"), Condition: ptr(`email != ""`), Purpose: ptr(purpose),
				Variants: &[]campaign.Variant{{Language: "en", Subject: "Hi", HTML: "<p>Hi</p>"}}})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(purpose, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					a, err := f.svc.Preview(ctx, c.ID)
					if err != nil || a.Recipients != int64(n) {
						b.Fatalf("preview: %+v %v", a, err)
					}
				}
			})
		}
	})
}

// processCPU is the CPU time this process has used, user and system, the
// SMTP server in the test included: a figure that depends less on what
// else the machine runs than the wall time does.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is the process's peak resident memory in bytes (VmHWM), or 0
// where /proc does not give it.
func peakRSS(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// dbSize is the size of the database in bytes: the SQLite file with its
// write-ahead log, or on PostgreSQL the campaign tables with their indexes.
func dbSize(b *testing.B, db *store.DB) int64 {
	ctx := context.Background()
	var size int64
	q := `SELECT pg_total_relation_size('campaign_recipients') + pg_total_relation_size('campaign_batches') + pg_total_relation_size('campaigns')`
	if db.Dialect == store.SQLite {
		q = `SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`
	}
	if err := db.Read.QueryRowContext(ctx, q).Scan(&size); err != nil {
		b.Fatal(err)
	}
	return size
}
