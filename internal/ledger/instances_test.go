package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestTwoInstancesShareOneChain has two handles on one PostgreSQL database,
// as two Consentry instances would, append consent changes concurrently, and
// checks that the chain has every event exactly once and verifies.
func TestTwoInstancesShareOneChain(t *testing.T) {
	a, b := storetest.OpenPostgresTwice(t)
	ctx := context.Background()
	ca, cb := consent.NewService(a), consent.NewService(b)
	people := contact.NewService(a, ca)
	var ids []string
	for i := range 4 {
		email := fmt.Sprintf("p%d@example.com", i)
		c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email}, Actor: actor,
			Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	const perWriter, writers = 50, 8
	var wg sync.WaitGroup
	errc := make(chan error, writers*perWriter)
	for w := range writers {
		svc := ca
		if w%2 == 1 {
			svc = cb
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				state := consent.StateGranted
				if i%2 == 1 {
					state = consent.StateWithdrawn
				}
				_, err := svc.Record(ctx, ids[(w+i)%len(ids)], consent.RecordInput{Purpose: "E-marketing", State: state,
					Source: "API", Actor: actor, Evidence: consent.Evidence{Method: consent.MethodAPI}})
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := cb.VerifyLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Events != writers*perWriter {
		t.Fatalf("verify: %+v %+v", rep, rep.Problem)
	}
}

// TestRolledBackAppendsLeaveNoTrace has writes that append an event and then
// fail, grouped with writes that succeed: the chain must hold exactly the
// successful events, in one unbroken sequence.
func TestRolledBackAppendsLeaveNoTrace(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		const n = 64
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db.Write(context.Background(), func(tx *store.Tx) error {
					if _, err := ledger.Append(tx, &ledger.Event{RecordedAt: time.Now().UnixMicro(), Kind: ledger.KindContactDeleted,
						ContactRef: fmt.Sprintf("ref%d", i)}); err != nil {
						return err
					}
					if i%3 == 0 {
						return fmt.Errorf("fail after appending")
					}
					return nil
				})
			}()
		}
		wg.Wait()
		rep, err := consent.NewService(db).VerifyLedger(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := int64(n - (n+2)/3)
		if !rep.OK || rep.Events != want || rep.HeadSeq != want {
			t.Fatalf("verify: %+v %+v, want %d events", rep, rep.Problem, want)
		}
	})
}
