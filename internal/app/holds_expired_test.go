package app_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestHoldThatRanOutCannotBeLifted: once a hold's until date has passed
// and its end is recorded, the API shows when (expired_at), refuses a lift
// by hand with 409 hold_expired and writes nothing; the admin page says
// the hold ended on its date, offers no Lift button, and refuses a forged
// lift the same way; the ledger verifies.
func TestHoldThatRanOutCannotBeLifted(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		var mu sync.Mutex
		now := time.Now()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		e := start(t, db, func(a *app.App) { a.Erasure.Now = clock })
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"ran.out@example.com"}`, 201, &c)
		var hold struct{ ID string }
		until := clock().Add(24 * time.Hour).UTC().Format(time.RFC3339)
		e.api("POST", "/api/v1/contacts/"+c.ID+"/holds", `{"reason":"dispute 31","legal_basis":"legal_claims","until":"`+until+`"}`, 201, &hold)

		mu.Lock()
		now = now.Add(48 * time.Hour)
		mu.Unlock()
		// The job may have come by first; either way the end is recorded.
		if _, err := e.a.Erasure.EndExpiredHolds(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
		var list []struct {
			ID        string
			Active    bool
			ExpiredAt string `json:"expired_at"`
			LiftedAt  string `json:"lifted_at"`
		}
		e.api("GET", "/api/v1/contacts/"+c.ID+"/holds", "", 200, &list)
		if len(list) != 1 || list[0].Active || list[0].ExpiredAt == "" || list[0].LiftedAt != "" {
			t.Fatalf("a hold that ran out: %+v", list)
		}
		written := func() int {
			return count(t, db, `SELECT count(*) FROM ledger_events`) + count(t, db, `SELECT count(*) FROM events`)
		}
		before := written()
		var problem struct{ Error struct{ Code string } }
		e.api("POST", "/api/v1/contacts/"+c.ID+"/holds/"+hold.ID+"/lift", `{"reason":"paid"}`, 409, &problem)
		if problem.Error.Code != "hold_expired" {
			t.Fatalf("lifting a hold that ran out: %+v", problem)
		}

		admin := e.firstAdmin()
		page := e.srv.URL + "/admin/contacts/" + c.ID + "/erasure"
		lift := "/admin/contacts/" + c.ID + "/holds/" + hold.ID + "/lift"
		code, body := admin.get(page)
		if code != 200 || !strings.Contains(body, "Ended on") || strings.Contains(body, lift) {
			t.Fatalf("the page of a hold that ran out: %d, offers a lift: %v", code, strings.Contains(body, lift))
		}
		if code, body := admin.post(e.srv.URL+lift, url.Values{"lift_reason": {"paid"}}); code != 409 || !strings.Contains(body, "ended by itself") {
			t.Fatalf("a forged lift of a hold that ran out: %d", code)
		}
		if n := written(); n != before {
			t.Fatalf("refused lifts wrote %d ledger events and events", n-before)
		}
		if n := count(t, db, `SELECT count(*) FROM legal_holds WHERE lifted_at IS NOT NULL`); n != 0 {
			t.Fatalf("a refused lift marked %d holds lifted", n)
		}
		e.ledgerVerifies()
	})
}
