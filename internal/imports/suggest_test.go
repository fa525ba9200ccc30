package imports_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/lists"
)

// fieldsOf is the fields suggested, one per column, joined by commas.
func fieldsOf(s []imports.Suggestion) string {
	out := make([]string, len(s))
	for i, c := range s {
		out[i] = c.Field
	}
	return strings.Join(out, ",")
}

// said is what a suggestion says a column holds, in a word: "email",
// "consent:Newsletter", "date:Newsletter", "list:Customers" or "".
func said(s imports.Suggestion) string {
	switch {
	case s.Field != "":
		return s.Field
	case s.Consent != "":
		return "consent:" + s.Consent
	case s.ConsentDate != "":
		return "date:" + s.ConsentDate
	case s.List != "":
		return "list:" + s.List
	}
	return ""
}

func known(purposes, lists_ []string, custom map[string]string) imports.Known {
	k := imports.Known{Custom: custom}
	for i, p := range purposes {
		k.Purposes = append(k.Purposes, &consent.Purpose{ID: fmt.Sprint("p", i), Name: p})
	}
	for i, l := range lists_ {
		k.Lists = append(k.Lists, &lists.List{ID: fmt.Sprint("l", i), Name: l})
	}
	return k
}

// The header suggests, in English, Swedish and Dutch, a column's field,
// the purpose whose answer it holds, a consent's collection date, or a
// list; only when it is unambiguous.
func TestSuggest(t *testing.T) {
	for _, tc := range []struct {
		name           string
		purposes, list []string
		custom         map[string]string
		header         map[string]string // header: what it suggests
	}{
		{"English", []string{"Newsletter", "Share with partners"}, []string{"Customers"}, map[string]string{"company": "Company"},
			map[string]string{"Email": "email", "First name": "first_name", "Company": "company", "Newsletter consent": "consent:Newsletter",
				"Consent to share with partners": "consent:Share with partners", "Newsletter consent date": "date:Newsletter",
				"Share with partners collected at": "date:Share with partners", "List: Customers": "list:Customers", "Notes": ""}},
		{"English, one answer column", []string{"Newsletter", "Share with partners"}, nil, nil,
			map[string]string{"E-mail": "email", "Newsletter": "consent:Newsletter", "Consent date": "date:Newsletter"}},
		{"English, opt-in", []string{"Newsletter", "Share with partners"}, nil, nil,
			map[string]string{"email": "email", "Newsletter opt-in": "consent:Newsletter", "Opt-in date": "date:Newsletter"}},
		{"English, collected at", []string{"Newsletter", "Share with partners"}, nil, nil,
			map[string]string{"email": "email", "newsletter_consent": "consent:Newsletter", "collected at": "date:Newsletter"}},
		{"English, in camel case", []string{"Newsletter", "Share with partners"}, nil, nil,
			map[string]string{"emailAddress": "email", "NewsletterConsent": "consent:Newsletter", "ConsentDate": "date:Newsletter"}},
		{"Swedish", []string{"Nyhetsbrev", "Delning med partner"}, []string{"Kunder"}, map[string]string{"foretag": "Företag"},
			map[string]string{"E-post": "email", "Förnamn": "first_name", "Efternamn": "last_name", "Företag": "foretag",
				"Samtycke nyhetsbrev": "consent:Nyhetsbrev", "Samtycke datum": "date:Nyhetsbrev", "Lista: Kunder": "list:Kunder"}},
		{"Swedish, a compound date", []string{"Nyhetsbrev", "Delning med partner"}, nil, nil,
			map[string]string{"E-post": "email", "Nyhetsbrev": "consent:Nyhetsbrev", "Samtyckesdatum": "date:Nyhetsbrev"}},
		{"Swedish, two purposes", []string{"Nyhetsbrev", "Delning med partner"}, nil, nil,
			map[string]string{"E-post": "email", "Nyhetsbrev": "consent:Nyhetsbrev", "Datum för samtycke nyhetsbrev": "date:Nyhetsbrev",
				"Samtycke till delning med partner": "consent:Delning med partner", "Delning med partner insamlad den": "date:Delning med partner"}},
		{"Dutch", []string{"Nieuwsbrief", "Delen met partners"}, []string{"Klanten"}, nil,
			map[string]string{"E-mailadres": "email", "Voornaam": "first_name", "Achternaam": "last_name", "Telefoon": "phone",
				"Toestemming nieuwsbrief": "consent:Nieuwsbrief", "Datum toestemming": "date:Nieuwsbrief", "Lijst: Klanten": "list:Klanten"}},
		{"Dutch, two purposes", []string{"Nieuwsbrief", "Delen met partners"}, nil, nil,
			map[string]string{"E-mail": "email", "Nieuwsbrief": "consent:Nieuwsbrief", "Datum toestemming nieuwsbrief": "date:Nieuwsbrief",
				"Toestemming voor delen met partners": "consent:Delen met partners", "Delen met partners verzameld op": "date:Delen met partners"}},
		{"Dutch, a compound date", []string{"Nieuwsbrief"}, nil, nil,
			map[string]string{"E-mail": "email", "Toestemmingsdatum": "date:Nieuwsbrief", "Aangemeld": ""}},
		{"the only purpose takes a date that names none", []string{"Newsletter"}, nil, nil,
			map[string]string{"Email": "email", "Consent date": "date:Newsletter"}},
		// A bare "Date" says nothing of consent.
		{"a bare date", []string{"Newsletter"}, nil, nil, map[string]string{"Email": "email", "Newsletter": "consent:Newsletter", "Date": ""}},
		// A date that names no purpose, in a file that answers two.
		{"a date for which purpose", []string{"Newsletter", "Share with partners"}, nil, nil,
			map[string]string{"Email": "email", "Newsletter": "consent:Newsletter", "Share with partners consent": "consent:Share with partners", "Consent date": ""}},
		// Nor in a file that answers none, when there are two.
		{"a date of no purpose", []string{"Newsletter", "Share with partners"}, nil, nil, map[string]string{"Email": "email", "Consent date": ""}},
		// A purpose and a list of the same name: the name alone could be
		// either; with a word for consent or list it is not.
		{"a purpose and a list of one name", []string{"Newsletter"}, []string{"Newsletter"}, nil,
			map[string]string{"Email": "email", "Newsletter": "", "Newsletter consent": "consent:Newsletter", "List: Newsletter": "list:Newsletter"}},
		// Two columns for one thing: neither.
		{"two columns for one purpose", []string{"Newsletter"}, nil, nil,
			map[string]string{"Email": "email", "Newsletter": "", "Newsletter consent": "", "Consent date": "date:Newsletter"}},
		{"two columns for one date", []string{"Newsletter"}, nil, nil,
			map[string]string{"Email": "email", "Newsletter consent date": "", "Consent date": ""}},
		{"two columns for the address", nil, nil, nil, map[string]string{"Email": "", "E-post": "", "Phone": "phone"}},
		// A custom field labelled as a core field is named, or as a
		// consent date: the header could be either.
		{"a custom field against a core field", []string{"Newsletter"}, nil, map[string]string{"mobile_phone": "Mobile", "consent_date": "Consent date"},
			map[string]string{"Email": "email", "Mobile": "", "Consent date": "", "Newsletter": "consent:Newsletter"}},
		// A purpose's name inside another's is not it.
		{"names inside names", []string{"Marketing", "E-marketing"}, nil, nil,
			map[string]string{"Email": "email", "E-marketing consent": "consent:E-marketing", "Marketing": "consent:Marketing"}},
		{"a purpose named as a field", []string{"Status"}, nil, nil, map[string]string{"Email": "email", "Status": "", "Status consent": "consent:Status"}},
		{"other words", []string{"Newsletter"}, []string{"Customers"}, nil,
			map[string]string{"Email": "email", "Newsletter sent": "", "Customers since": "", "Consent": "", "List": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var header []string
			for h := range tc.header {
				header = append(header, h)
			}
			got := imports.Suggest(header, known(tc.purposes, tc.list, tc.custom))
			if len(got) != len(header) {
				t.Fatalf("%d suggestions for %d columns", len(got), len(header))
			}
			for i, s := range got {
				if s.Column != header[i] || said(s) != tc.header[header[i]] {
					t.Errorf("%q: suggested %+v; want %q", header[i], s, tc.header[header[i]])
				}
				parts := 0
				for _, p := range []string{s.Field, s.Consent, s.ConsentDate, s.List} {
					if p != "" {
						parts++
					}
				}
				if parts > 1 {
					t.Errorf("%q: suggested %+v: more than one thing", header[i], s)
				}
			}
		})
	}
}
