package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
)

func TestAnEndpointFailingForDaysIsTurnedOffAndTheOperatorEmailed(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		tmpl, err := mail.NewTemplates()
		if err != nil {
			t.Fatal(err)
		}
		f.svc.Mail, f.svc.BaseURL, f.svc.Sender = tmpl, "https://consent.example.com", "Acme"
		if _, err := settings.Update(ctx, db, settings.Patch{PrivacyAddress: ptr("dpo@acme.example")}, audit.Actor{Kind: "user"}, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		down := true
		rc := newReceiver(t, func(received, int) int {
			if down {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		e, _ := f.endpoint(t, rc.URL)
		// A failed delivery is tried again a day later, so that the one
		// that turns the endpoint off is still due later when it is
		// turned on again.
		f.worker.Backoff = func(int) time.Duration { return 24 * time.Hour }
		start := f.clock.Now()
		// A change every six hours, about a new contact each time (so
		// that none waits behind another's), each of whose deliveries
		// fails.
		for i := 0; f.clock.Now().Sub(start) < webhook.DefaultDisableAfter+12*time.Hour; i++ {
			f.emit(t, events.ContactUpdated, "c"+strconv.Itoa(i))
			f.send(t)
			got, err := f.svc.Get(ctx, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			if elapsed := f.clock.Now().Sub(start); got.Enabled != (elapsed < webhook.DefaultDisableAfter) {
				t.Fatalf("after %v the endpoint is enabled: %v (%s)", elapsed, got.Enabled, got.DisabledReason)
			}
			f.clock.Add(6 * time.Hour)
		}
		got, _ := f.svc.Get(ctx, e.ID)
		if got.Enabled || !strings.Contains(got.DisabledReason, "no delivery succeeded") || got.FailingSince == nil || !got.FailingSince.Equal(start) {
			t.Fatalf("endpoint: %+v", got)
		}
		// The audit log says the system turned it off.
		logged, _, err := audit.List(ctx, db.Read, audit.Query{Kind: audit.KindWebhook, Limit: 10})
		if err != nil || len(logged) == 0 || logged[0].Action != audit.ActionWebhookChanged || logged[0].Actor.Kind != audit.ActorSystem ||
			logged[0].Subject != "enabled" || logged[0].OldValue != "true" || logged[0].NewValue != "false" || logged[0].ObjectID != e.ID {
			t.Fatalf("the audit log of the endpoint: %+v %v", logged, err)
		}

		// While off, nothing is attempted, but what happens is queued:
		// a change about a contact whose delivery was being retried when
		// the endpoint was turned off, and one about a new contact.
		before := len(rc.all())
		f.clock.Add(time.Hour)
		f.emit(t, events.ConsentWithdrawn, "c20", "later")
		f.send(t)
		if len(rc.all()) != before {
			t.Fatal("an endpoint turned off was called")
		}

		// The operator hears of it by email, through the outbox.
		srv := mailtest.Start(t)
		smtp, err := mail.NewSMTP(srv.URL(), 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { smtp.Close() })
		d := &mail.Deliverer{DB: db, Transport: smtp, Log: slog.New(slog.DiscardHandler), From: "Consentry <consentry@example.com>",
			Domain: "example.com", Now: f.clock.Now, Batch: 10, Lease: time.Minute, MaxAttempts: 3, Poll: time.Second}
		if _, err := d.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		msgs := srv.Wait(t, 1)
		if m := msgs[0]; m.To[0] != "dpo@acme.example" || !strings.Contains(m.Subject, "turned off") ||
			!strings.Contains(m.Text, rc.URL) || !strings.Contains(m.Text, "https://consent.example.com/admin/webhooks/"+e.ID) ||
			!strings.Contains(m.Text, "HTTP 503") {
			t.Fatalf("email: %s\n%s", m.Subject, m.Text)
		}

		// Turned on again, its waiting deliveries go at once, those it
		// was retrying included, in order: those of the events that
		// happened while it was off too.
		down = false
		if _, err := f.svc.Update(ctx, audit.Actor{Kind: "user"}, e.ID, webhook.EndpointPatch{Enabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		f.send(t)
		got, _ = f.svc.Get(ctx, e.ID)
		if !got.Enabled || got.FailingSince != nil || got.LastSuccessAt == nil {
			t.Fatalf("after turning it on: %+v", got)
		}
		for _, d := range f.deliveries(t, e.ID) {
			if d.Status == webhook.StatusPending {
				t.Errorf("still pending after turning it on: %+v", d)
			}
		}
		about := map[string][]string{} // the types sent about each contact, in order
		for _, r := range rc.all()[before:] {
			var d struct {
				ContactID string `json:"contact_id"`
			}
			if err := json.Unmarshal(r.Envelope.Data, &d); err != nil {
				t.Fatal(err)
			}
			about[d.ContactID] = append(about[d.ContactID], r.Envelope.Type)
		}
		if !slices.Equal(about["c20"], []string{events.ContactUpdated, events.ConsentWithdrawn}) ||
			!slices.Equal(about["c21"], []string{events.ContactUpdated}) || !slices.Equal(about["later"], []string{events.ConsentWithdrawn}) {
			t.Errorf("sent after turning it on: %v", about)
		}
	})
}

func TestPruneRemovesOldDeliveriesAndTheEventsNoOneNeeds(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.svc.DisableAfter = 365 * 24 * time.Hour // failing for weeks, but not turned off
		ok := newReceiver(t, nil)
		failing := newReceiver(t, func(received, int) int { return http.StatusInternalServerError })
		good, _ := f.endpoint(t, ok.URL)
		bad, _ := f.endpoint(t, failing.URL)
		f.emit(t, events.ConsentGranted, "c1")
		f.send(t)
		f.clock.Add(webhook.KeepFor + time.Hour)
		f.emit(t, events.ConsentGranted, "c2")
		f.send(t)
		n, err := f.svc.Prune(ctx, f.clock.Now().Add(-webhook.KeepFor))
		if err != nil {
			t.Fatal(err)
		}
		// The old delivery that succeeded is gone with its attempt; the
		// pending one to the failing endpoint stays, and so does its
		// event, which it needs.
		if ds := f.deliveries(t, good.ID); n != 1 || len(ds) != 1 {
			t.Fatalf("pruned %d; left %+v", n, ds)
		}
		if ds := f.deliveries(t, bad.ID); len(ds) != 2 {
			t.Fatalf("to the failing endpoint: %+v", ds)
		}
		var events_, attempts int
		db.Read.QueryRow(`SELECT count(*) FROM events`).Scan(&events_)
		db.Read.QueryRow(`SELECT count(*) FROM webhook_attempts`).Scan(&attempts)
		if events_ != 2 || attempts != 4 { // the old failing delivery was tried twice
			t.Fatalf("%d events and %d attempts left", events_, attempts)
		}
		// Once that delivery is given up and old, both go.
		f.clock.Add(webhook.KeepFor + webhook.GiveUpAfter)
		f.send(t)
		f.clock.Add(webhook.KeepFor + webhook.GiveUpAfter)
		f.send(t)
		f.prune(t)
		db.Read.QueryRow(`SELECT count(*) FROM events`).Scan(&events_)
		if ds := f.deliveries(t, bad.ID); len(ds) != 0 || events_ != 0 {
			t.Fatalf("left %d events, deliveries %+v", events_, ds)
		}
	})
}

// An endpoint turned off still gets a delivery of every event it wants,
// pending and sent to no one, however long it stays off (the pruning of
// the log keeps them, and their events); turned on again, they go, in the
// order of each contact's events.
func TestEventsWhileAnEndpointIsOffGoWhenItIsTurnedOnAgain(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		rc := newReceiver(t, nil)
		e, secret := f.endpoint(t, rc.URL, events.ContactCreated, events.ConsentGranted, events.ConsentWithdrawn)
		f.emit(t, events.ContactCreated, "c1")
		f.send(t)
		if n := len(rc.all()); n != 1 {
			t.Fatalf("%d requests before it was turned off, want 1", n)
		}

		if _, err := f.svc.Update(ctx, audit.Actor{Kind: "user"}, e.ID, webhook.EndpointPatch{Enabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		f.emit(t, events.ConsentWithdrawn, "c1")
		f.emit(t, events.ContactUpdated, "c1") // a type it does not want
		f.emit(t, events.ConsentGranted, "c1", "c2")
		f.send(t)
		ds := f.deliveries(t, e.ID)
		if len(ds) != 4 || len(rc.all()) != 1 {
			t.Fatalf("while off: %d requests, deliveries %+v", len(rc.all()), ds)
		}
		for _, d := range ds[1:] {
			if d.Status != webhook.StatusPending || d.Attempts != 0 {
				t.Fatalf("a delivery made while off: %+v", d)
			}
		}

		// Off for longer than the log keeps what is finished: the
		// pending deliveries and their events stay.
		f.clock.Add(webhook.KeepFor + time.Hour)
		f.send(t)
		f.prune(t)
		if ds := f.deliveries(t, e.ID); len(ds) != 3 || len(rc.all()) != 1 {
			t.Fatalf("after pruning: %d requests, deliveries %+v", len(rc.all()), ds)
		}

		if _, err := f.svc.Update(ctx, audit.Actor{Kind: "user"}, e.ID, webhook.EndpointPatch{Enabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		f.send(t)
		var c1 []string
		types := map[string]int{}
		for _, r := range rc.all()[1:] {
			if err := verify(t, secret, r); err != nil {
				t.Errorf("%s: %v", r.Envelope.ID, err)
			}
			types[r.Envelope.Type]++
			if bytes.Contains(r.Envelope.Data, []byte(`"c1"`)) {
				c1 = append(c1, r.Envelope.Type)
			}
		}
		if len(rc.all()) != 4 || types[events.ConsentGranted] != 2 || types[events.ConsentWithdrawn] != 1 ||
			!slices.Equal(c1, []string{events.ConsentWithdrawn, events.ConsentGranted}) {
			t.Fatalf("after turning it on: %d requests, %v; about c1 %v", len(rc.all()), types, c1)
		}
		for _, d := range f.deliveries(t, e.ID) {
			if d.Status != webhook.StatusDelivered {
				t.Errorf("after turning it on: %+v", d)
			}
		}
	})
}

// A delivery a workflow rule queues (QueueTx) to an endpoint turned off
// waits, pending, as the others to it do, and QueueTx says so; it goes
// once the endpoint is turned on again, once, though the endpoint also
// wants the event's type. An endpoint that does not exist is not found,
// on endpoint_id.
func TestAQueuedCallToAnEndpointTurnedOffWaits(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		rc := newReceiver(t, nil)
		e, secret := f.endpoint(t, rc.URL, events.ConsentGranted)
		if _, err := f.svc.Update(ctx, audit.Actor{Kind: "user"}, e.ID, webhook.EndpointPatch{Enabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		f.emit(t, events.ConsentGranted, "c1")
		var ev events.Event
		if err := db.Read.QueryRowContext(ctx, `SELECT seq, type, contact_id FROM events`).Scan(&ev.Seq, &ev.Type, &ev.ContactID); err != nil {
			t.Fatal(err)
		}
		queue := func(endpointID string) (string, error) {
			var note string
			err := db.Write(ctx, func(tx *store.Tx) error {
				var err error
				note, err = webhook.QueueTx(tx, endpointID, ev, f.clock.Now())
				return err
			})
			return note, err
		}
		if note, err := queue(e.ID); err != nil || note != webhook.WaitingNote {
			t.Fatalf("queueing to an endpoint turned off: %q, %v", note, err)
		}
		if _, err := queue("no-such-endpoint"); !strings.Contains(fmtErr(err), "endpoint_id") {
			t.Fatalf("an endpoint that does not exist: %v", err)
		}
		f.send(t)
		if ds := f.deliveries(t, e.ID); len(ds) != 1 || ds[0].Status != webhook.StatusPending || ds[0].Attempts != 0 || len(rc.all()) != 0 {
			t.Fatalf("while off: %d requests, deliveries %+v", len(rc.all()), ds)
		}

		if _, err := f.svc.Update(ctx, audit.Actor{Kind: "user"}, e.ID, webhook.EndpointPatch{Enabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		f.send(t)
		got := rc.all()
		if len(got) != 1 || got[0].Envelope.Type != events.ConsentGranted {
			t.Fatalf("after turning it on: %+v", got)
		}
		if err := verify(t, secret, got[0]); err != nil {
			t.Fatal(err)
		}
		if ds := f.deliveries(t, e.ID); len(ds) != 1 || ds[0].Status != webhook.StatusDelivered {
			t.Fatalf("after turning it on: deliveries %+v", ds)
		}
	})
}

// fmtErr is err's text, or "" for none.
func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
