package erasure_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// endings returns the hold ids of the ledger's legal_hold "lifted" events,
// oldest first, with their actor kinds.
func (w *world) endings() (ids, actors []string) {
	w.t.Helper()
	rows, err := w.db.Read.Query(`SELECT record_id, actor_kind FROM ledger_events WHERE kind = 'legal_hold' AND value = 'lifted' ORDER BY seq`)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, actor string
		if err := rows.Scan(&id, &actor); err != nil {
			w.t.Fatal(err)
		}
		ids, actors = append(ids, id), append(actors, actor)
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	return ids, actors
}

// hold returns the contact's hold id as the service lists it now.
func (w *world) hold(contactID, id string) *holds.Hold {
	w.t.Helper()
	list, err := w.erase.Holds(context.Background(), contactID)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, h := range list {
		if h.ID == id {
			return h
		}
	}
	w.t.Fatalf("no hold %s on %s", id, contactID)
	return nil
}

// TestHoldsThatRunOutAreRecorded: a hold whose until date passes gets its
// end recorded by the sweep as a lift by hand is (one ledger event
// "lifted" and one legal_hold.lifted, cause expired, by the system), once;
// holds still active are left alone; the erasure that waited on it
// proceeds after the hold's end, in that order; a hold that ran out cannot
// be lifted by hand, recorded or not, and the refusal writes nothing; an
// erasure of a contact whose hold ran out unrecorded records the end
// first, as does a deletion; and the ledger verifies throughout.
func TestHoldsThatRunOutAreRecorded(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		start := w.now
		set := func(contactID string, until *time.Time) *holds.Hold {
			t.Helper()
			h, err := w.erase.SetHold(ctx, contactID, holds.New{Reason: "dispute 9", LegalBasis: holds.BasisLegalClaims, Until: until}, user)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		day, twoDays, late := start.Add(24*time.Hour), start.Add(48*time.Hour), start.Add(26*time.Hour)
		waiting, quiet, open, longer, unswept := w.person("waiting@example.com"), w.person("quiet@example.com"),
			w.person("open@example.com"), w.person("longer@example.com"), w.person("unswept@example.com")
		hWaiting, hQuiet, hOpen, hLonger, hUnswept := set(waiting.ID, &day), set(quiet.ID, &day), set(open.ID, nil),
			set(longer.ID, &twoDays), set(unswept.ID, &late)
		if out, err := w.erase.Erase(ctx, waiting.ID, byUser); err != nil || out.Status != erasure.StatusPartlyErased {
			t.Fatalf("erasure under a hold: %+v, %v", out, err)
		}
		written := eventstest.From(t, db)

		// Nothing has run out yet.
		if n, err := w.erase.EndExpiredHolds(ctx, 1); err != nil || n != 0 {
			t.Fatalf("the sweep before any hold ran out recorded %d: %v", n, err)
		}
		if got := written.Next(t); len(got) != 0 {
			t.Fatalf("the sweep before any hold ran out wrote %v", eventstest.Types(got))
		}

		w.now = day.Add(time.Hour)
		// A batch of one: the sweep goes on until a batch is not full.
		if n, err := w.erase.EndExpiredHolds(ctx, 1); err != nil || n != 2 {
			t.Fatalf("the sweep recorded %d holds' end, want 2: %v", n, err)
		}
		got := written.Next(t)
		if !slices.Equal(eventstest.Types(got), []string{events.LegalHoldLifted, events.LegalHoldLifted}) {
			t.Fatalf("the sweep wrote %v", eventstest.Types(got))
		}
		var ended []string
		for _, e := range got {
			d := eventstest.Data[events.LegalHoldData](t, e)
			if d.Cause != holds.CauseExpired || d.ActorKind != consent.ActorSystem || d.Until == nil || !d.Until.Equal(day) ||
				d.LegalBasis != holds.BasisLegalClaims {
				t.Fatalf("legal_hold.lifted of a hold that ran out: %+v", d)
			}
			ended = append(ended, d.HoldID)
		}
		slices.Sort(ended)
		want := []string{hWaiting.ID, hQuiet.ID}
		slices.Sort(want)
		if !slices.Equal(ended, want) {
			t.Fatalf("the sweep ended %v, want %v", ended, want)
		}
		ids, actors := w.endings()
		if slices.Sort(ids); !slices.Equal(ids, want) || !slices.Equal(actors, []string{consent.ActorSystem, consent.ActorSystem}) {
			t.Fatalf("ledger ends %v by %v, want %v by the system", ids, actors, want)
		}
		if h := w.hold(waiting.ID, hWaiting.ID); h.Active || h.ExpiredAt == nil || !h.ExpiredAt.Equal(w.now) || h.LiftedAt != nil {
			t.Fatalf("a hold that ran out reads %+v", h)
		}
		for _, h := range []*holds.Hold{w.hold(open.ID, hOpen.ID), w.hold(longer.ID, hLonger.ID), w.hold(unswept.ID, hUnswept.ID)} {
			if !h.Active || h.ExpiredAt != nil {
				t.Fatalf("an active hold was touched: %+v", h)
			}
		}
		w.verify()

		// A second sweep finds nothing more.
		if n, err := w.erase.EndExpiredHolds(ctx, 10); err != nil || n != 0 {
			t.Fatalf("a second sweep recorded %d: %v", n, err)
		}
		if got := written.Next(t); len(got) != 0 {
			t.Fatalf("a second sweep wrote %v", eventstest.Types(got))
		}
		if ids, _ := w.endings(); len(ids) != 2 {
			t.Fatalf("%d ledger ends after a second sweep, want 2", len(ids))
		}

		// The waiting erasure proceeds after the hold's end.
		if n, err := w.erase.ResumeReleased(ctx, 10); err != nil || n != 1 {
			t.Fatalf("resumed %d after the hold ran out: %v", n, err)
		}
		if got := written.Next(t); !slices.Equal(eventstest.Types(got), []string{events.ContactErased}) || got[0].ContactID != waiting.ID {
			t.Fatalf("the erasure that waited wrote %v", eventstest.Types(got))
		}
		var holdEnd, erased int64
		if err := db.Read.QueryRow(`SELECT seq FROM ledger_events WHERE kind = 'legal_hold' AND value = 'lifted' AND record_id = $1`,
			hWaiting.ID).Scan(&holdEnd); err != nil {
			t.Fatal(err)
		}
		if err := db.Read.QueryRow(`SELECT max(seq) FROM ledger_events WHERE kind = 'contact_erased'`).Scan(&erased); err != nil {
			t.Fatal(err)
		}
		if holdEnd >= erased {
			t.Fatalf("the ledger has the erasure (%d) before the hold's end (%d)", erased, holdEnd)
		}

		// A hold that ran out cannot be lifted by hand, recorded or not.
		w.now = late.Add(time.Hour)
		for _, h := range []*holds.Hold{hQuiet, hUnswept} {
			_, _, err := w.erase.LiftHold(ctx, h.ContactID, h.ID, "no longer needed", user)
			if e := errs.As(err); e == nil || e.Kind != errs.KindConflict || e.Code != "hold_expired" {
				t.Fatalf("lifting a hold that ran out: %v", err)
			}
		}
		if got := written.Next(t); len(got) != 0 {
			t.Fatalf("refused lifts wrote %v", eventstest.Types(got))
		}
		if ids, _ := w.endings(); len(ids) != 2 {
			t.Fatalf("refused lifts wrote ledger events: %d ends", len(ids))
		}
		if h := w.hold(unswept.ID, hUnswept.ID); h.LiftedAt != nil || h.ExpiredAt != nil {
			t.Fatalf("a refused lift changed the hold: %+v", h)
		}

		// An erasure records the end of a hold that ran out before the
		// sweep came by, and only then erases.
		if out, err := w.erase.Erase(ctx, unswept.ID, byUser); err != nil || out.Status != erasure.StatusErased {
			t.Fatalf("erasure after the hold ran out: %+v, %v", out, err)
		}
		got = written.Next(t)
		if types := eventstest.Types(got); len(types) < 2 || types[0] != events.LegalHoldLifted || types[1] != events.ContactErased {
			t.Fatalf("erasure after an unrecorded end wrote %v", types)
		}
		if d := eventstest.Data[events.LegalHoldData](t, got[0]); d.HoldID != hUnswept.ID || d.Cause != holds.CauseExpired {
			t.Fatalf("the end recorded by the erasure: %+v", d)
		}
		if h := w.hold(unswept.ID, hUnswept.ID); h.ExpiredAt == nil {
			t.Fatalf("the erasure did not record the hold's end: %+v", h)
		}

		// A lift by hand says so.
		if _, _, err := w.erase.LiftHold(ctx, open.ID, hOpen.ID, "dispute settled", user); err != nil {
			t.Fatal(err)
		}
		got = written.Next(t)
		if len(got) != 1 || got[0].Type != events.LegalHoldLifted {
			t.Fatalf("a lift by hand wrote %v", eventstest.Types(got))
		}
		if d := eventstest.Data[events.LegalHoldData](t, got[0]); d.Cause != holds.CauseLifted || d.ActorKind != consent.ActorUser {
			t.Fatalf("legal_hold.lifted of a lift by hand: %+v", d)
		}
		if n, err := w.erase.EndExpiredHolds(ctx, 10); err != nil || n != 0 {
			t.Fatalf("the sweep after the lift recorded %d: %v", n, err)
		}
		if h := w.hold(longer.ID, hLonger.ID); !h.Active {
			t.Fatalf("a hold with a later end was ended: %+v", h)
		}

		// So does a deletion.
		gone := w.person("gone@example.com")
		soon := w.now.Add(time.Hour)
		hGone := set(gone.ID, &soon)
		written.Next(t)
		w.now = soon.Add(time.Hour)
		if err := w.erase.Delete(ctx, gone.ID, user); err != nil {
			t.Fatal(err)
		}
		got = written.Next(t)
		if types := eventstest.Types(got); !slices.Equal(types, []string{events.LegalHoldLifted, events.ContactDeleted}) {
			t.Fatalf("deletion after an unrecorded end wrote %v", types)
		}
		if d := eventstest.Data[events.LegalHoldData](t, got[0]); d.HoldID != hGone.ID || d.Cause != holds.CauseExpired {
			t.Fatalf("the end recorded by the deletion: %+v", d)
		}
		w.verify()
	})
}
