// Package tally keeps the dashboard's daily figures (B10): how many
// contacts have each email opt-in status, and how many have granted or
// withdrawn each purpose, one set per day in UTC.
//
// Counting a million contacts takes the better part of a second, too slow
// for every view of a page, and the opt-in statuses of past days cannot be
// read from the contacts at all. So a periodic job (Job, every Interval)
// counts them and replaces the day's set: the last count of a day stands
// for it, the dashboard reads a few rows, and the days kept draw the
// statuses over time. The first count after installation fills the first
// day from the current figures; earlier days stay without figures, as do
// days on which the service was down.
package tally

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/store"
)

// Job is the periodic job that counts the day's figures.
const Job = "tally.count"

// Interval is how often the figures are counted: the dashboard is at most
// this much behind.
const Interval = 15 * time.Minute

// Measures of a figure.
const (
	MeasureOptIn     = "opt_in"    // subject: the opt-in status
	MeasureGranted   = "granted"   // subject: the purpose's id
	MeasureWithdrawn = "withdrawn" // subject: the purpose's id
)

// dayLayout is how a day is stored: it sorts as text.
const dayLayout = "2006-01-02"

// Service counts and reads the daily figures.
type Service struct {
	DB      *store.DB
	Consent *consent.Service
	Now     func() time.Time
}

// Figures are one day's set: counts by measure, then by subject.
type Figures struct {
	Day       time.Time // midnight UTC
	CountedAt time.Time
	Counts    map[string]map[string]int64
}

// Contacts is how many contacts there were: the sum over the opt-in
// statuses, each contact having one.
func (f *Figures) Contacts() int64 {
	var n int64
	for _, c := range f.Counts[MeasureOptIn] {
		n += c
	}
	return n
}

// Count is the day's figure of a measure and subject; 0 when there is
// none.
func (f *Figures) Count(measure, subject string) int64 { return f.Counts[measure][subject] }

// Count counts today's figures from the contacts and their consents, and
// replaces today's set with them in one transaction.
func (s *Service) Count(ctx context.Context) error {
	now := store.Now(s.Now)
	optIns, err := s.Consent.OptInCounts(ctx)
	if err != nil {
		return err
	}
	coverage, err := s.Consent.CoverageByPurpose(ctx)
	if err != nil {
		return err
	}
	day := now.UTC().Format(dayLayout)
	at := store.Micros(now)
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(`DELETE FROM daily_tallies WHERE day = $1`, day); err != nil {
			return fmt.Errorf("tally: replace %s: %w", day, err)
		}
		insert := func(measure, subject string, n int64) error {
			_, err := tx.Exec(`INSERT INTO daily_tallies (day, measure, subject, contacts, counted_at) VALUES ($1, $2, $3, $4, $5)`,
				day, measure, subject, n, at)
			if err != nil {
				return fmt.Errorf("tally: write %s %s: %w", measure, subject, err)
			}
			return nil
		}
		for status, n := range optIns {
			if err := insert(MeasureOptIn, status, n); err != nil {
				return err
			}
		}
		for _, c := range coverage {
			if err := insert(MeasureGranted, c.PurposeID, c.Granted); err != nil {
				return err
			}
			if err := insert(MeasureWithdrawn, c.PurposeID, c.Withdrawn); err != nil {
				return err
			}
		}
		return nil
	})
}

// Latest returns the most recent day's figures, and false when nothing
// has been counted yet.
func (s *Service) Latest(ctx context.Context) (*Figures, bool, error) {
	days, err := s.read(ctx, `WHERE day = (SELECT max(day) FROM daily_tallies)`)
	if err != nil || len(days) == 0 {
		return nil, false, err
	}
	return days[0], true, nil
}

// Since returns the figures of one measure for every counted day from
// from's day (UTC) on, oldest first; days without figures are absent, and
// nothing counted is an empty slice.
func (s *Service) Since(ctx context.Context, measure string, from time.Time) ([]*Figures, error) {
	return s.read(ctx, `WHERE day >= $1 AND measure = $2`, from.UTC().Format(dayLayout), measure)
}

// read returns the sets of the rows where says, by day, oldest first.
func (s *Service) read(ctx context.Context, where string, args ...any) ([]*Figures, error) {
	type row struct {
		day, measure, subject string
		n, at                 int64
	}
	rows, err := store.QueryAll(ctx, s.DB.Read, func(sc store.Scanner) (row, error) {
		var r row
		return r, sc.Scan(&r.day, &r.measure, &r.subject, &r.n, &r.at)
	}, `SELECT day, measure, subject, contacts, counted_at FROM daily_tallies `+where+` ORDER BY day`, args...)
	if err != nil {
		return nil, fmt.Errorf("tally: read: %w", err)
	}
	var out []*Figures
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].Day.Format(dayLayout) != r.day {
			day, err := time.Parse(dayLayout, r.day)
			if err != nil {
				return nil, fmt.Errorf("tally: day %q: %w", r.day, err)
			}
			out = append(out, &Figures{Day: day, CountedAt: store.FromMicros(r.at), Counts: map[string]map[string]int64{}})
		}
		f := out[len(out)-1]
		if f.Counts[r.measure] == nil {
			f.Counts[r.measure] = map[string]int64{}
		}
		f.Counts[r.measure][r.subject] = r.n
	}
	return out, nil
}
