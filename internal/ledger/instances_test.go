package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
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
