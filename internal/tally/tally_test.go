package tally_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/tally"
)

// The seed's consented purpose (contacttest.SeedMillion).
const seededPurpose = "01930000-0000-7000-8000-000000000002"

func TestCountKeepsOneSetPerDay(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
		cs := consent.NewService(db)
		s := &tally.Service{DB: db, Consent: cs, Now: func() time.Time { return now }}

		if _, found, err := s.Latest(ctx); err != nil || found {
			t.Fatalf("nothing counted yet: found %v, %v", found, err)
		}
		// Twelve contacts, all without opt-in; 3 of every 4 have a
		// consent record, half granted.
		contacttest.SeedMillion(t, db, 12)
		if err := s.Count(ctx); err != nil {
			t.Fatal(err)
		}
		// Later the same day, one opts out: the day's set is replaced.
		if _, err := cs.SetOptIn(ctx, "c1", consent.OptInInput{Status: contactstate.OptOutUser, Channel: consent.ChannelUser,
			Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: consent.MethodAPI}}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(8 * time.Hour)
		if err := s.Count(ctx); err != nil {
			t.Fatal(err)
		}
		f, found, err := s.Latest(ctx)
		if err != nil || !found {
			t.Fatalf("latest: %v %v", found, err)
		}
		if !f.Day.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) || !f.CountedAt.Equal(now) || f.Contacts() != 12 ||
			f.Count(tally.MeasureOptIn, contactstate.OptInNone) != 11 || f.Count(tally.MeasureOptIn, contactstate.OptOutUser) != 1 ||
			f.Count(tally.MeasureGranted, seededPurpose) != 6 || f.Count(tally.MeasureWithdrawn, seededPurpose) != 3 {
			t.Fatalf("latest: %+v", f)
		}

		// Two days on (a day with the service down in between): a second
		// day, the first kept, the missing one absent.
		now = now.AddDate(0, 0, 2)
		if _, err := cs.SetOptIn(ctx, "c2", consent.OptInInput{Status: contactstate.OptOutUser, Channel: consent.ChannelUser,
			Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: consent.MethodAPI}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Count(ctx); err != nil {
			t.Fatal(err)
		}
		days, err := s.Since(ctx, tally.MeasureOptIn, now.AddDate(0, 0, -29))
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 2 || days[0].Day.Day() != 1 || days[1].Day.Day() != 3 ||
			days[0].Count(tally.MeasureOptIn, contactstate.OptOutUser) != 1 || days[1].Count(tally.MeasureOptIn, contactstate.OptOutUser) != 2 ||
			days[1].Counts[tally.MeasureGranted] != nil {
			t.Fatalf("since: %+v %+v", days[0], days[len(days)-1])
		}
		if days, err := s.Since(ctx, tally.MeasureOptIn, now); err != nil || len(days) != 1 {
			t.Fatalf("since today: %d %v", len(days), err)
		}
	})
}
