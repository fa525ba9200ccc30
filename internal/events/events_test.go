package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func emit(t testing.TB, db *store.DB, typ, contact string, data any) {
	t.Helper()
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		return events.Emit(tx, typ, contact, data, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
}

func next(t testing.TB, db *store.DB, consumer string, limit int) []events.Event {
	t.Helper()
	var got []events.Event
	if err := db.Write(context.Background(), func(tx *store.Tx) (err error) {
		got, err = events.Next(tx, consumer, limit)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// A consumer reads each committed event once, in order, starting with what
// happens after it first looked; a rolled-back change leaves no event.
func TestConsumersReadEachEventOnceInOrder(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		emit(t, db, events.ContactCreated, "c0", events.ContactCreatedData{ContactID: "c0"})
		if got := next(t, db, "a", 10); len(got) != 0 {
			t.Fatalf("a new consumer read %d old events, want none", len(got))
		}
		emit(t, db, events.ContactCreated, "c1", events.ContactCreatedData{ContactID: "c1"})
		boom := errors.New("boom")
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			if err := events.Emit(tx, events.ContactUpdated, "c1", events.ContactUpdatedData{ContactID: "c1"}, time.Now()); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("got %v, want boom", err)
		}
		emit(t, db, events.ConsentGranted, "c1", events.ConsentData{ContactID: "c1", Purpose: "Newsletter"})
		emit(t, db, events.CampaignSent, "", events.CampaignSentData{CampaignID: "k1"})

		got := next(t, db, "a", 2)
		if len(got) != 2 || got[0].Type != events.ContactCreated || got[1].Type != events.ConsentGranted {
			t.Fatalf("first read: %+v", got)
		}
		if got[0].ContactID != "c1" || got[0].Version != 1 || got[0].Seq >= got[1].Seq {
			t.Fatalf("first event: %+v", got[0])
		}
		var data map[string]any
		if err := json.Unmarshal(got[1].Data, &data); err != nil || data["purpose"] != "Newsletter" {
			t.Fatalf("data %s: %v", got[1].Data, err)
		}
		rest := next(t, db, "a", 10)
		if len(rest) != 1 || rest[0].Type != events.CampaignSent || rest[0].ContactID != "" {
			t.Fatalf("second read: %+v", rest)
		}
		if again := next(t, db, "a", 10); len(again) != 0 {
			t.Fatalf("read %d events twice", len(again))
		}
	})
}

// A consumer whose transaction fails reads the same events again.
func TestAFailedConsumerReadsAgain(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		next(t, db, "a", 1)
		emit(t, db, events.ContactCreated, "c1", events.ContactCreatedData{ContactID: "c1"})
		boom := errors.New("boom")
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			if _, err := events.Next(tx, "a", 10); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("got %v, want boom", err)
		}
		if got := next(t, db, "a", 10); len(got) != 1 {
			t.Fatalf("read %d events after a failed read, want 1", len(got))
		}
	})
}

func TestUnknownTypeIsRefused(t *testing.T) {
	db := storetest.OpenSQLite(t)
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		return events.Emit(tx, "consent.maybe", "", nil, time.Now())
	})
	if err == nil {
		t.Fatal("an unknown event type was written")
	}
}

// Peek reads outside the writer; Advance writes the move and refuses one
// from a stale position, so two instances never both act on an event.
func TestPeekThenAdvance(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		advance := func(from, to int64) error {
			return db.Write(ctx, func(tx *store.Tx) error { return events.Advance(tx, "w", from, to) })
		}
		emit(t, db, events.ContactCreated, "c0", events.ContactCreatedData{})
		pos, got, err := events.Peek(ctx, db.Read, "w", 10)
		if err != nil || pos != -1 || len(got) != 0 {
			t.Fatalf("new consumer: %d %v %v", pos, got, err)
		}
		if err := advance(pos, 0); err != nil {
			t.Fatal(err)
		}
		emit(t, db, events.ContactCreated, "c1", events.ContactCreatedData{})
		emit(t, db, events.ContactCreated, "c2", events.ContactCreatedData{})
		pos, got, err = events.Peek(ctx, db.Read, "w", 1)
		if err != nil || len(got) != 1 || got[0].ContactID != "c1" {
			t.Fatalf("peek: %d %+v %v", pos, got, err)
		}
		if err := advance(pos, got[0].Seq); err != nil {
			t.Fatal(err)
		}
		if err := advance(pos, got[0].Seq); !errors.Is(err, events.ErrMoved) {
			t.Fatalf("a second advance from the same position: %v, want ErrMoved", err)
		}
		_, rest, err := events.Peek(ctx, db.Read, "w", 10)
		if err != nil || len(rest) != 1 || rest[0].ContactID != "c2" {
			t.Fatalf("after advance: %+v %v", rest, err)
		}
	})
}

// Data of another type than the type's is refused: what is written is what
// the documentation describes.
func TestDataOfAnotherShapeIsRefused(t *testing.T) {
	db := storetest.OpenSQLite(t)
	for _, data := range []any{map[string]string{"contact_id": "c1"}, events.ContactCreatedData{}, &events.ConsentData{}, nil} {
		err := db.Write(context.Background(), func(tx *store.Tx) error {
			return events.Emit(tx, events.ConsentGranted, "c1", data, time.Now())
		})
		if err == nil {
			t.Errorf("consent.granted was written with %T", data)
		}
	}
}

// Every type has a data shape, and every shape names what it is about.
func TestEveryTypeHasItsShape(t *testing.T) {
	for _, typ := range events.Types {
		if typ.Data == nil || typ.Version < 1 || typ.Description == "" || !events.Known(typ.Name) {
			t.Errorf("%s: %+v", typ.Name, typ)
		}
	}
}

// List reads by type and contact after a sequence number, oldest first,
// and refuses a bad limit or an unknown type by name.
func TestList(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		emit(t, db, events.ContactCreated, "c1", events.ContactCreatedData{ContactID: "c1"})
		emit(t, db, events.ContactCreated, "c2", events.ContactCreatedData{ContactID: "c2"})
		emit(t, db, events.ContactUpdated, "c1", events.ContactUpdatedData{ContactID: "c1", Fields: []string{"region"}})
		ctx := context.Background()
		got, next, err := events.List(ctx, db.Read, events.Query{ContactID: "c1", Limit: 10})
		if err != nil || len(got) != 2 || got[0].Type != events.ContactCreated || got[1].Type != events.ContactUpdated || next != got[1].Seq {
			t.Fatalf("by contact: %+v, %d, %v", got, next, err)
		}
		got, _, err = events.List(ctx, db.Read, events.Query{Type: events.ContactCreated, After: got[0].Seq, Limit: 10})
		if err != nil || len(got) != 1 || got[0].ContactID != "c2" {
			t.Fatalf("by type after: %+v, %v", got, err)
		}
		got, next, err = events.List(ctx, db.Read, events.Query{After: 1000, Limit: 10})
		if err != nil || len(got) != 0 || next != 1000 {
			t.Fatalf("after the last: %+v, %d, %v", got, next, err)
		}
		for _, q := range []events.Query{{Limit: 0}, {Limit: 501}, {Limit: 1, Type: "consent.maybe"}, {Limit: 1, After: -1}} {
			if _, _, err := events.List(ctx, db.Read, q); err == nil {
				t.Errorf("%+v was not refused", q)
			}
		}
	})
}
