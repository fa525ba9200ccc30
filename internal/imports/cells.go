package imports

import (
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
)

// Answers a consent or list column may hold, in English, Swedish and
// Dutch, compared regardless of case. An empty cell says nothing.
var (
	yesAnswers = []string{"yes", "y", "true", "1", "x", "granted", "ja", "j", "sant", "waar", "opted in", "opt-in", "subscribed"}
	noAnswers  = []string{"no", "n", "false", "0", "withdrawn", "nej", "nee", "falskt", "onwaar", "opted out", "opt-out", "unsubscribed"}
)

// ParseAnswer reads a yes-or-no cell: granted or withdrawn, "" for an
// empty cell, and an error naming what it accepts otherwise.
func ParseAnswer(cell string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(cell))
	switch {
	case v == "":
		return "", nil
	case contains(yesAnswers, v):
		return consent.StateGranted, nil
	case contains(noAnswers, v):
		return consent.StateWithdrawn, nil
	}
	return "", fmt.Errorf("%q is neither yes nor no (yes, ja, true, 1, x, granted; no, nej, nee, false, 0, withdrawn)", cell)
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// importOptIns are the opt-in statuses an import may set (R5, R6).
var importOptIns = []string{contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.OptOutUser}

// parseOptIn reads an opt-in status cell: one of importOptIns, or a
// common way of writing one; "" for an empty cell.
func parseOptIn(cell string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(cell))
	switch v {
	case "":
		return "", nil
	case contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.OptOutUser:
		return v, nil
	case "opted out", "opt-out", "opt out", "optout", "unsubscribed":
		return contactstate.OptOutUser, nil
	case "opted in", "opt-in", "opt in", "single opt-in", "single_opt_in":
		return contactstate.SingleOptInUser, nil
	}
	return "", fmt.Errorf("%q is not an opt-in status an import may set (%s; opt-out; opt-in)", cell, strings.Join(importOptIns, ", "))
}

// dateLayouts are the ways a date cell may be written: ISO 8601 first,
// then the day-first forms of Swedish and Dutch spreadsheets. A
// month-first date (12/31/2024) is not read: 01/02/2024 would be ambiguous.
var dateLayouts = []string{
	time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02",
	"02-01-2006", "02.01.2006", "02/01/2006", "2-1-2006", "2.1.2006", "2/1/2006",
}

// ParseDate reads a date or a date and time; a time without a zone is UTC.
func ParseDate(cell string) (time.Time, error) {
	v := strings.TrimSpace(cell)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date (write 2024-05-31, 2024-05-31 14:30 or 31-05-2024)", cell)
}

// EarliestCollection is the earliest date an import takes as when a
// consent was collected: 1 January 1990, before the web, email marketing
// and the first European data-protection directive (1995). An earlier
// date is a mistake, most often an empty date cell a spreadsheet or a
// system read as its day zero (1899-12-30, 1900-01-01, 1970-01-01).
var EarliestCollection = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

// implausibleCollection says why t cannot be when a consent was
// collected, as of now: in the future, or before EarliestCollection; ""
// when it can be.
func implausibleCollection(t, now time.Time) string {
	switch {
	case t.After(now):
		return "is in the future"
	case t.Before(EarliestCollection):
		return "is before " + EarliestCollection.Format(time.DateOnly) +
			", earlier than any consent an import records; an empty date read as a spreadsheet's or a system's day zero (1899-12-30, 1900-01-01, 1970-01-01) looks like this"
	}
	return ""
}
