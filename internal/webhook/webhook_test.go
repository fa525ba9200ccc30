package webhook_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
)

func TestDeliveriesAreSignedAfterStandardWebhooks(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		all, granted := newReceiver(t, nil), newReceiver(t, nil)
		_, allSecret := f.endpoint(t, all.URL+"/hooks?x=1")
		_, grantedSecret := f.endpoint(t, granted.URL, events.ConsentGranted)
		off, _, err := f.svc.Create(context.Background(), audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: all.URL + "/off", Enabled: ptr(false)})
		if err != nil {
			t.Fatal(err)
		}
		f.emit(t, events.ConsentGranted, "c1")
		f.emit(t, events.ContactCreated, "c2")
		f.send(t)

		got := all.all()
		slices.SortFunc(got, func(a, b received) int { return strings.Compare(a.Envelope.ID, b.Envelope.ID) })
		if len(got) != 2 || len(granted.all()) != 1 {
			t.Fatalf("the endpoint for all types got %d, the one for consent.granted %d; want 2 and 1", len(got), len(granted.all()))
		}
		for _, r := range got {
			wh, _ := standardwebhooks.NewWebhook(allSecret)
			if err := wh.Verify(r.Body, r.Header); err != nil {
				t.Errorf("%s does not verify: %v", r.Envelope.ID, err)
			}
			if r.Header.Get("webhook-id") != r.Envelope.ID || !strings.HasPrefix(r.Envelope.ID, "evt_") {
				t.Errorf("webhook-id %q, envelope id %q", r.Header.Get("webhook-id"), r.Envelope.ID)
			}
			if r.Header.Get("Content-Type") != "application/json" || !strings.Contains(r.Header.Get("User-Agent"), "Consentry") {
				t.Errorf("headers: %v", r.Header)
			}
			if _, err := time.Parse(time.RFC3339, r.Envelope.Timestamp); err != nil || r.Envelope.Version != 1 {
				t.Errorf("envelope: %+v", r.Envelope)
			}
		}
		if got[0].Envelope.Type != events.ConsentGranted || got[1].Envelope.Type != events.ContactCreated ||
			!bytes.Contains(got[0].Envelope.Data, []byte(`"c1"`)) {
			t.Errorf("envelopes: %s / %s", got[0].Body, got[1].Body)
		}
		g := granted.all()[0]
		if err := verify(t, grantedSecret, g); err != nil || g.Envelope.ID != got[0].Envelope.ID {
			t.Errorf("the consent.granted endpoint: %v, %s", err, g.Body)
		}
		if err := verify(t, allSecret, g); err == nil {
			t.Error("a signature verifies under another endpoint's secret")
		}
		// A disabled endpoint is sent nothing (the receiver above would
		// have had it, at /off); its deliveries wait, pending.
		if ds := f.deliveries(t, off.ID); len(ds) != 2 || ds[0].Status != webhook.StatusPending || ds[0].Attempts != 0 ||
			ds[1].Status != webhook.StatusPending || ds[1].Attempts != 0 {
			t.Errorf("the deliveries to a disabled endpoint: %+v", ds)
		}

		// An endpoint made after an event does not get it.
		late := newReceiver(t, nil)
		f.endpoint(t, late.URL)
		f.send(t)
		if n := len(late.all()); n != 0 {
			t.Errorf("an endpoint made later got %d earlier events", n)
		}
	})
}

func TestRetriesBackOffThenSucceedWithTheSameIDAndBody(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		rc := newReceiver(t, func(_ received, n int) int {
			if n < 3 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		e, secret := f.endpoint(t, rc.URL)
		f.emit(t, events.ConsentWithdrawn, "c1")
		f.send(t)
		waits := []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute}
		for i, want := range waits {
			d := f.deliveries(t, e.ID)[0]
			if d.Status != webhook.StatusPending || d.Attempts != i+1 || d.LastStatus != 500 || d.NextAttemptAt == nil {
				t.Fatalf("after failure %d: %+v", i+1, d)
			}
			wait := d.NextAttemptAt.Sub(f.clock.Now())
			if wait < want*9/10 || wait > want*11/10 {
				t.Errorf("wait after failure %d is %v, want about %v", i+1, wait, want)
			}
			f.clock.Add(wait / 2)
			f.send(t)
			if n := len(rc.all()); n != i+1 {
				t.Fatalf("tried again before its time: %d requests", n)
			}
			f.clock.Set(*d.NextAttemptAt)
			f.send(t)
		}
		got := rc.all()
		if len(got) != 4 {
			t.Fatalf("%d requests, want 4", len(got))
		}
		d := f.deliveries(t, e.ID)[0]
		if d.Status != webhook.StatusDelivered || d.Attempts != 4 || d.FinishedAt == nil {
			t.Fatalf("after the success: %+v", d)
		}
		for i, r := range got {
			if r.Header.Get("webhook-id") != d.EventID || !bytes.Equal(r.Body, got[0].Body) {
				t.Errorf("attempt %d: id %s, body %s", i+1, r.Header.Get("webhook-id"), r.Body)
			}
			if err := verify(t, secret, r); err != nil {
				t.Errorf("attempt %d does not verify: %v", i+1, err)
			}
			if i > 0 && r.Header.Get("webhook-timestamp") == got[i-1].Header.Get("webhook-timestamp") {
				t.Errorf("attempt %d has the timestamp of the one before", i+1)
			}
		}
		if ts, _ := strconv.ParseInt(got[3].Header.Get("webhook-timestamp"), 10, 64); ts != f.clock.Now().Unix() {
			t.Errorf("webhook-timestamp %d, want the attempt's time %d", ts, f.clock.Now().Unix())
		}
		as, err := f.svc.Attempts(context.Background(), d.ID, webhook.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 4 || as[0].StatusCode != 200 || as[0].Error != "" || as[3].StatusCode != 500 || as[3].Error == "" ||
			as[3].Response != "answered Internal Server Error" || as[0].Latency <= 0 {
			t.Fatalf("attempts: %+v", as)
		}
		page, err := f.svc.Attempts(context.Background(), d.ID, webhook.Page{Before: as[1].ID, Limit: 1})
		if err != nil || len(page) != 1 || page[0].ID != as[2].ID {
			t.Fatalf("second page: %+v %v", page, err)
		}
	})
}

func TestADeliveryIsGivenUpThreeDaysAfterItsFirstAttempt(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		rc := newReceiver(t, func(received, int) int { return http.StatusServiceUnavailable })
		e, _ := f.endpoint(t, rc.URL)
		f.emit(t, events.OptInChanged, "c1")
		start := f.clock.Now()
		f.send(t)
		for i := 0; i < 30; i++ {
			d := f.deliveries(t, e.ID)[0]
			if d.Status != webhook.StatusPending {
				break
			}
			f.clock.Set(*d.NextAttemptAt)
			f.send(t)
		}
		d := f.deliveries(t, e.ID)[0]
		if d.Status != webhook.StatusFailed || f.clock.Now().Sub(start) != webhook.GiveUpAfter {
			t.Fatalf("after %v: %+v", f.clock.Now().Sub(start), d)
		}
		if d.Attempts < 9 || d.Attempts > 12 || len(rc.all()) != d.Attempts {
			t.Errorf("%d attempts (%d requests) over three days", d.Attempts, len(rc.all()))
		}
	})
}

func TestDeliveriesAboutOneContactArriveInOrderUnderFailures(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		failed := map[string]bool{}
		rc := newReceiver(t, func(r received, n int) int {
			// Every contact's first delivery fails once, and one in three
			// of the others.
			if !failed[r.Envelope.ID] && (n%3 == 0 || strings.Contains(string(r.Envelope.Data), "first")) {
				failed[r.Envelope.ID] = true
				return http.StatusBadGateway
			}
			return http.StatusOK
		})
		f.endpoint(t, rc.URL)
		contacts := []string{"a", "b", "c", "d", "e", "f"}
		for round := 0; round < 5; round++ {
			for _, c := range contacts {
				data := events.ContactUpdatedData{ContactID: c}
				if round == 0 {
					data.Fields = []string{"first"}
				}
				if err := db.Write(context.Background(), func(tx *store.Tx) error {
					return events.Emit(tx, events.ContactUpdated, c, data, f.clock.Now())
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.send(t)
		// While a contact's first delivery waits to be tried again, none
		// of their later ones went.
		for _, r := range rc.all() {
			if !strings.Contains(string(r.Envelope.Data), "first") {
				t.Fatalf("a later delivery went before the first: %s", r.Body)
			}
		}
		for i := 0; i < 40 && len(delivered(rc)) < 30; i++ {
			f.clock.Add(time.Hour)
			f.send(t)
		}
		ok := delivered(rc)
		if len(ok) != 30 {
			t.Fatalf("%d of 30 delivered", len(ok))
		}
		last := map[string]int64{}
		for _, r := range rc.all() {
			seq, _ := strconv.ParseInt(strings.TrimPrefix(r.Envelope.ID, "evt_"), 10, 64)
			c := contactOf(r)
			if seq < last[c] {
				t.Fatalf("contact %s: %s came after evt_%d had been delivered", c, r.Envelope.ID, last[c])
			}
			if r.Status == http.StatusOK {
				last[c] = seq
			} else if seq <= last[c] {
				t.Fatalf("contact %s: %s retried after a later one", c, r.Envelope.ID)
			}
		}
	})
}

func delivered(rc *receiver) []received {
	var out []received
	for _, r := range rc.all() {
		if r.Status == http.StatusOK {
			out = append(out, r)
		}
	}
	return out
}

func contactOf(r received) string {
	s := string(r.Envelope.Data)
	i := strings.Index(s, `"contact_id":"`)
	return s[i+14 : i+15]
}

func TestRotatedSecretSignsBesideTheNewOneForADay(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		rc := newReceiver(t, nil)
		e, old := f.endpoint(t, rc.URL)
		fresh, err := f.svc.RotateSecret(context.Background(), audit.Actor{Kind: "user"}, e.ID)
		if err != nil || fresh == old || !strings.HasPrefix(fresh, "whsec_") {
			t.Fatalf("rotate: %q %v", fresh, err)
		}
		f.emit(t, events.ConsentGranted, "c1")
		f.send(t)
		r := rc.all()[0]
		if sigs := strings.Fields(r.Header.Get("webhook-signature")); len(sigs) != 2 {
			t.Fatalf("during the overlap: %q", r.Header.Get("webhook-signature"))
		}
		for _, s := range []string{old, fresh} {
			wh, _ := standardwebhooks.NewWebhook(s)
			if err := wh.Verify(r.Body, r.Header); err != nil {
				t.Errorf("during the overlap a secret does not verify: %v", err)
			}
		}
		if got, _ := f.svc.Get(context.Background(), e.ID); got.PreviousSecretUntil == nil {
			t.Error("the endpoint does not say the previous secret still signs")
		}
		f.clock.Add(webhook.DefaultRotationOverlap + time.Second)
		f.emit(t, events.ConsentGranted, "c1")
		f.send(t)
		r = rc.all()[1]
		if err := verify(t, fresh, r); err != nil {
			t.Errorf("after the overlap the new secret does not verify: %v", err)
		}
		if err := verify(t, old, r); err == nil {
			t.Error("after the overlap the old secret still verifies")
		}
		if _, err := f.svc.RotateSecret(context.Background(), audit.Actor{Kind: "user"}, "nope"); !errs.Is(err, errs.KindNotFound) {
			t.Errorf("rotating no endpoint: %v", err)
		}
	})
}

func TestReplaySendsAgainWithTheSameID(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		rc := newReceiver(t, nil)
		e, secret := f.endpoint(t, rc.URL)
		f.emit(t, events.ContactCreated, "a")
		f.clock.Add(time.Hour)
		since := f.clock.Now()
		f.emit(t, events.ContactCreated, "b", "c")
		f.send(t)
		ds := f.deliveries(t, e.ID)
		if len(ds) != 3 || ds[0].Status != webhook.StatusDelivered {
			t.Fatalf("deliveries: %+v", ds)
		}
		d, err := f.svc.Replay(context.Background(), ds[0].ID)
		if err != nil || d.Status != webhook.StatusPending {
			t.Fatalf("replay: %+v %v", d, err)
		}
		f.send(t)
		got := rc.all()
		if len(got) != 4 || got[3].Envelope.ID != ds[0].EventID || !bytes.Equal(got[3].Body, rc.byID(ds[0].EventID).Body) {
			t.Fatalf("the replay: %d requests, last %s", len(got), got[len(got)-1].Body)
		}
		if err := verify(t, secret, got[3]); err != nil {
			t.Error(err)
		}
		n, err := f.svc.ReplaySince(context.Background(), e.ID, since)
		if err != nil || n != 2 {
			t.Fatalf("replay since: %d %v", n, err)
		}
		f.send(t)
		got = rc.all()
		replayed := []string{got[4].Envelope.ID, got[5].Envelope.ID}
		slices.Sort(replayed)
		if len(got) != 6 || replayed[0] != ds[1].EventID || replayed[1] != ds[2].EventID {
			t.Fatalf("replayed since: %d requests", len(got))
		}
		if _, err := f.svc.Replay(context.Background(), 9999); !errs.Is(err, errs.KindNotFound) {
			t.Errorf("replay of no delivery: %v", err)
		}
		if _, err := f.svc.ReplaySince(context.Background(), "nope", since); !errs.Is(err, errs.KindNotFound) {
			t.Errorf("replay to no endpoint: %v", err)
		}
	})
}

func TestEndpointsAreKeptAndChecked(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		bad := map[string]webhook.EndpointInput{
			"url":         {URL: "ftp://example.com/x"},
			"event_types": {URL: "https://example.com/x", EventTypes: []string{"consent.granted", "consent.maybe"}},
			"description": {URL: "https://example.com/x", Description: "two\nlines"},
		}
		for field, in := range bad {
			if _, _, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, in); errs.As(err) == nil || errs.As(err).Field != field {
				t.Errorf("%s: got %v", field, err)
			}
		}
		if list, _ := f.svc.List(ctx); len(list) != 0 {
			t.Fatalf("a refused endpoint was written: %+v", list)
		}
		e, _ := f.endpoint(t, "https://example.com/x", events.ConsentGranted, events.ConsentGranted)
		if len(e.EventTypes) != 1 {
			t.Errorf("event types: %v", e.EventTypes)
		}
		u, err := f.svc.Update(ctx, audit.Actor{Kind: "user"}, e.ID, webhook.EndpointPatch{Description: ptr("CRM"), EventTypes: ptr([]string{}), Enabled: ptr(false)})
		if err != nil || u.Description != "CRM" || len(u.EventTypes) != 0 || u.Enabled {
			t.Fatalf("update: %+v %v", u, err)
		}
		got, err := f.svc.Get(ctx, e.ID)
		if err != nil || got.Description != "CRM" || got.Enabled || !got.Wants(events.RequestDone) {
			t.Fatalf("get: %+v %v", got, err)
		}
		if _, err := f.svc.Update(ctx, audit.Actor{Kind: "user"}, e.ID, webhook.EndpointPatch{URL: ptr("http://example.com")}); errs.As(err) == nil || errs.As(err).Field != "url" {
			t.Errorf("update to http: %v", err)
		}
		if err := f.svc.Delete(ctx, audit.Actor{Kind: "user"}, e.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Get(ctx, e.ID); !errs.Is(err, errs.KindNotFound) {
			t.Errorf("get after delete: %v", err)
		}
		if err := f.svc.Delete(ctx, audit.Actor{Kind: "user"}, e.ID); !errs.Is(err, errs.KindNotFound) {
			t.Errorf("delete twice: %v", err)
		}
	})
}

// While no endpoint exists the dispatcher moves past every event at once,
// however many, without reading them; an endpoint made afterwards gets
// what happens from then on, as ever.
func TestNoEndpointMovesPastEveryEventAtOnce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if _, err := f.svc.Dispatch(ctx); err != nil { // the consumer starts here
			t.Fatal(err)
		}
		const many = 1200 // more than one batch of reading
		if err := db.Write(ctx, func(tx *store.Tx) error {
			for i := range many {
				c := "c" + strconv.Itoa(i)
				if err := events.Emit(tx, events.ContactCreated, c, eventstest.About(events.ContactCreated, c), f.clock.Now()); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := f.svc.Dispatch(ctx); err != nil || n != 0 {
			t.Fatalf("with no endpoint, Dispatch read %d events (%v), want none read", n, err)
		}
		var pos, newest int64
		if err := db.Read.QueryRow(`SELECT (SELECT position FROM event_cursors WHERE consumer = $1), (SELECT MAX(seq) FROM events)`,
			webhook.Consumer).Scan(&pos, &newest); err != nil {
			t.Fatal(err)
		}
		if pos != newest {
			t.Fatalf("the dispatcher is at event %d after one call, want the newest, %d", pos, newest)
		}

		f.clock.Add(time.Second)
		r := newReceiver(t, nil)
		f.endpoint(t, r.URL)
		f.clock.Add(time.Second)
		f.emit(t, events.ContactCreated, "after1", "after2")
		f.send(t)
		got := r.all()
		if len(got) != 2 {
			t.Fatalf("the endpoint made after %d events got %d deliveries, want the 2 made after it", many, len(got))
		}
		for _, g := range got {
			if !bytes.Contains(g.Envelope.Data, []byte(`"after`)) {
				t.Errorf("the new endpoint got an event from before it: %s", g.Body)
			}
		}
	})
}
