package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
)

// countingReceiver answers 204 to everything and counts, keeping when
// each change (data.n) arrived when at is set.
func countingReceiver(b testing.TB, at []atomic.Int64) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if at != nil {
			var env struct {
				Data struct {
					N int `json:"text_version"` // the change's number, written there by the benchmark
				} `json:"data"`
			}
			json.Unmarshal(body, &env)
			at[env.Data.N].CompareAndSwap(0, time.Now().UnixNano())
		}
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	return srv, &n
}

func startWorker(b testing.TB, db *store.DB, url string) (*webhook.Service, func()) {
	svc := &webhook.Service{DB: db, Now: time.Now, Policy: webhook.Policy{AllowHTTPLocalhost: true}}
	if _, _, err := svc.Create(context.Background(), audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: url}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); webhook.NewWorker(svc).Run(ctx) }()
	return svc, func() { cancel(); <-done }
}

// BenchmarkDeliveries measures deliveries per second to one local
// receiver: b.N changes about as many contacts, committed before the
// clock starts, made into deliveries and sent.
func BenchmarkDeliveries(b *testing.B) {
	storetest.Each(b, func(b testing.TB, db *store.DB) {
		bb := b.(*testing.B)
		srv, n := countingReceiver(b, nil)
		_, stop := startWorker(b, db, srv.URL)
		defer stop()
		// Let the worker settle before the events arrive.
		ctx := context.Background()
		// Written while the worker waits: 500 changes to a transaction.
		var ready sync.WaitGroup
		bb.StopTimer()
		for i := 0; i < bb.N; i += 500 {
			ready.Add(1)
			go func() {
				defer ready.Done()
				if err := db.Write(ctx, func(tx *store.Tx) error {
					for j := i; j < min(i+500, bb.N); j++ {
						if err := events.Emit(tx, events.ConsentGranted, fmt.Sprintf("contact-%d", j), events.ConsentData{ContactID: fmt.Sprintf("contact-%d", j), TextVersion: j}, time.Now()); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Error(err)
				}
			}()
		}
		start := time.Now()
		bb.StartTimer()
		ready.Wait()
		waitFor(b, "every delivery", func() bool { return n.Load() >= int64(bb.N) })
		bb.ReportMetric(float64(bb.N)/time.Since(start).Seconds(), "deliveries/s")
	})
}

// BenchmarkChangeToDelivery commits 1,000 changes a second for five
// seconds, each in a write of its own, and measures the time from each
// commit to its delivery's arrival at a local receiver.
func BenchmarkChangeToDelivery(b *testing.B) {
	storetest.Each(b, func(b testing.TB, db *store.DB) {
		bb := b.(*testing.B)
		const rate, total = 1000, 5000
		arrived := make([]atomic.Int64, total)
		committed := make([]atomic.Int64, total)
		commitTook := make([]time.Duration, total)
		srv, n := countingReceiver(b, arrived)
		_, stop := startWorker(b, db, srv.URL)
		defer stop()
		ctx := context.Background()
		for range bb.N {
			for i := range arrived {
				arrived[i].Store(0)
			}
			n.Store(0)
			var wg sync.WaitGroup
			start := time.Now()
			for i := 0; i < total; i++ {
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate))) // pacing the load, not waiting for work
				wg.Add(1)
				go func() {
					defer wg.Done()
					began := time.Now()
					if err := db.Write(ctx, func(tx *store.Tx) error {
						return events.Emit(tx, events.ConsentGranted, fmt.Sprintf("contact-%d", i%300), events.ConsentData{ContactID: fmt.Sprintf("contact-%d", i%300), TextVersion: i}, time.Now())
					}); err != nil {
						b.Error(err)
					}
					committed[i].Store(time.Now().UnixNano())
					commitTook[i] = time.Since(began)
				}()
			}
			wg.Wait()
			waitFor(b, "every delivery", func() bool { return n.Load() >= total })
			lat := make([]time.Duration, total)
			for i := range lat {
				lat[i] = time.Duration(arrived[i].Load() - committed[i].Load())
			}
			slices.Sort(lat)
			bb.ReportMetric(float64(lat[total/2].Milliseconds()), "p50-ms")
			bb.ReportMetric(float64(lat[total*99/100].Milliseconds()), "p99-ms")
			bb.ReportMetric(float64(lat[total-1].Milliseconds()), "max-ms")
			slices.Sort(commitTook)
			bb.ReportMetric(float64(commitTook[total*99/100].Milliseconds()), "commit-p99-ms")
		}
	})
}
