package imports

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

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

// headerNames are the column headers Suggest recognises for each core
// field, in English, Swedish and Dutch, folded (fold).
var headerNames = map[string][]string{
	"email":      {"email", "e-mail", "emailaddress", "e-mailaddress", "mail", "epost", "e-post", "epostadress", "e-postadress", "mejl", "mejladress", "e-mailadres", "emailadres", "mailadres"},
	"first_name": {"firstname", "first", "givenname", "forename", "fornamn", "voornaam", "roepnaam"},
	"last_name":  {"lastname", "last", "surname", "familyname", "efternamn", "achternaam", "familienaam"},
	"phone":      {"phone", "phonenumber", "telephone", "mobile", "mobilephone", "cell", "telefon", "telefonnummer", "mobil", "mobilnummer", "telefoon", "telefoonnummer", "mobiel", "mobielnummer"},
	"country":    {"country", "countrycode", "land", "landskod", "landcode"},
	"region":     {"region", "state", "province", "county", "lan", "provincie", "regio"},
	"language":   {"language", "lang", "sprak", "taal"},
	"stage":      {"stage", "lifecyclestage", "status", "fas", "stadium"},
	"owner":      {"owner", "accountowner", "agare", "ansvarig", "eigenaar"},
}

// fold makes a header comparable: lower case, accents and everything but
// letters and digits removed ("Förnamn" and "fornamn", "E-mail adres"
// and "emailadres" match).
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Suggest proposes a field for each header: a core field whose English,
// Swedish or Dutch name it is, or a custom field of that name or label;
// "" where nothing fits. No field is proposed twice.
func Suggest(header []string, custom map[string]string) []string {
	byFolded := map[string]string{}
	for field, names := range headerNames {
		for _, n := range names {
			byFolded[fold(n)] = field
		}
	}
	for name, label := range custom {
		byFolded[fold(name)] = name
		if label != "" {
			byFolded[fold(label)] = name
		}
	}
	out := make([]string, len(header))
	taken := map[string]bool{}
	for i, h := range header {
		if f := byFolded[fold(h)]; f != "" && !taken[f] {
			out[i], taken[f] = f, true
		}
	}
	return out
}
