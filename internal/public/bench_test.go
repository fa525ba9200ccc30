package public

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// BenchmarkWebformSubmissions posts the form of webformtest.Form through
// the public server's handler from 32 concurrent clients, each post a new
// address with every box checked: a lead, two consent records, the opt-in
// status, a double opt-in email queued and a list subscription, in one
// transaction each. It reports submissions per second and the p50 and p99
// latency of one post.
//
// The rate limits are set out of the way for the benchmark (it measures
// the write path, not the limiter): the per-client and per-address
// limiters are replaced with ones that allow everything, and each post
// carries a new address anyway.
func BenchmarkWebformSubmissions(b *testing.B) {
	storetest.Each(b, func(tb testing.TB, db *store.DB) {
		b := tb.(*testing.B)
		s, w := webformServer(b, db)
		s.webform.ip = newLimiter(1<<30, 1<<30, time.Minute)
		s.webform.address = newAddressLimiter(1<<30, time.Hour)
		s.webform.quantum = 0 // throughput, not the time of one answer
		const clients = 32
		path := "/f/" + w.ID
		var next atomic.Int64
		lat := make([][]time.Duration, clients)
		var failed atomic.Value
		var wg sync.WaitGroup
		run := int64(time.Now().UnixNano())
		b.ResetTimer()
		start := time.Now()
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > int64(b.N) {
						return
					}
					form := url.Values{"email": {fmt.Sprintf("p%d-%d@example.com", run, i)}, "first_name": {"Ann"},
						"marketing.checked": {"yes"}, "marketing.version": {"1"}, "consents[0].checked": {"yes"},
						"consents[0].version": {"1"}, "lists[0].checked": {"yes"}}
					req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("User-Agent", "Mozilla/5.0 (bench)")
					req.RemoteAddr = fmt.Sprintf("10.1.%d.%d:40000", c, i%250)
					rec := httptest.NewRecorder()
					t0 := time.Now()
					s.ServeHTTP(rec, req)
					lat[c] = append(lat[c], time.Since(t0))
					if rec.Code != 303 { // a post redirects to the form's page of thanks
						failed.Store(fmt.Sprintf("status %d: %s", rec.Code, rec.Body.String()))
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		if f := failed.Load(); f != nil {
			b.Fatal(f)
		}
		all := slices.Concat(lat...)
		slices.Sort(all)
		pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "subs/s")
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
	})
}
