package inbound_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// seedContacts stores n contacts c1@example.com ... cn@example.com with
// one set-based insert.
func seedContacts(b *testing.B, db *store.DB, n int) {
	series, from := storetest.Series(db)
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Exec(series+`INSERT INTO contacts (id, ref, kind, email, email_key, fields, opt_in_status, created_at, updated_at)
			SELECT 'c' || i, 'r' || i, 'contact', 'c' || i || '@example.com', 'c' || i || '@example.com', '{}', 'double_opt_in', 0, 0 `+from, n)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// benchMessage is the i-th message of a run: every other sender is a
// contact, every message a new address, so each records a request and
// queues its confirmation.
func benchMessage(i int64) []byte {
	from := fmt.Sprintf("c%d@example.com", i)
	if i%2 == 1 {
		from = fmt.Sprintf("stranger%d@example.net", i)
	}
	return raw(from, "=?UTF-8?B?UkFERVJB?= mina uppgifter")
}

// BenchmarkHandle handles erasure requests through the domain function,
// 8 at a time (as concurrent SMTP sessions would). Target: at least 200
// messages/s. Each message is one transaction: the request, its ledger
// event, the daily limit and the queued confirmation.
func BenchmarkHandle(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		f := setup(b, db)
		seedContacts(b, db, b.N+1)
		var next atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := f.svc.Handle(context.Background(), benchMessage(next.Add(1))); err != nil {
					b.Error(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkSMTP delivers the same messages to the SMTP listener over 8
// connections on loopback, each delivering one message after another.
// Target: at least 200 messages/s. The client runs in the same process.
func BenchmarkSMTP(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		f := setup(b, db)
		seedContacts(b, db, b.N+1)
		l := &inbound.Listener{Service: f.svc, Addr: "127.0.0.1:0", Domain: "acme.example",
			Limit: clientip.NewLimiter(1e9, 1e9, time.Minute), PerConnection: 1 << 30}
		addr, err := l.Start()
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		var next atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			c, err := smtp.Dial(addr.String())
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			if err := c.Hello("bench.example"); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				if err := c.SendMail("bench@example.com", []string{privacy}, bytes.NewReader(benchMessage(next.Add(1)))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
