package webhook_test

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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
		if _, err := settings.Update(ctx, db, settings.Patch{PrivacyAddress: ptr("dpo@acme.example")}, f.clock.Now()); err != nil {
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

		// While off, nothing is attempted.
		before := len(rc.all())
		f.clock.Add(time.Hour)
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

		// Turned on again, its waiting deliveries go, in order.
		down = false
		if _, err := f.svc.Update(ctx, e.ID, webhook.EndpointPatch{Enabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			f.send(t)
			f.clock.Add(24 * time.Hour)
		}
		got, _ = f.svc.Get(ctx, e.ID)
		if !got.Enabled || got.FailingSince != nil || got.LastSuccessAt == nil {
			t.Fatalf("after turning it on: %+v", got)
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
		// The events' other consumer, the workflow rules, has read them
		// too (its runner does not run here).
		if err := db.Write(ctx, func(tx *store.Tx) error { _, err := events.Next(tx, "workflows", 100); return err }); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Prune(ctx, f.clock.Now().Add(-webhook.KeepFor)); err != nil {
			t.Fatal(err)
		}
		db.Read.QueryRow(`SELECT count(*) FROM events`).Scan(&events_)
		if ds := f.deliveries(t, bad.ID); len(ds) != 0 || events_ != 0 {
			t.Fatalf("left %d events, deliveries %+v", events_, ds)
		}
	})
}
