package imports

import (
	"context"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/lists"
)

// Suggestion is what a column's header says the column holds. At most one
// of Field, Consent, ConsentDate and List is set, and only when the header
// says it unambiguously: a header that could be two things (a purpose and
// a list of the same name, a custom field labelled "Consent date"), and a
// thing two headers could be (two columns named as the email address),
// suggest nothing, for the user to choose.
type Suggestion struct {
	Column      string `json:"column"`
	Field       string `json:"field" doc:"the core or custom field the column fills (columns[].field); empty when the header suggests none"`
	Consent     string `json:"consent,omitempty" doc:"the name of the purpose whose answer, yes or no, each row holds in the column (consents[].column)"`
	ConsentDate string `json:"consent_date,omitempty" doc:"the name of the purpose whose collection date each row holds in the column (consents[].collected_at_column)"`
	List        string `json:"list,omitempty" doc:"the name of the list that the rows whose column says yes join (lists[].column)"`
}

// Known is what Suggest matches headers against besides the core fields:
// the custom fields (label by name), the purposes and the lists.
type Known struct {
	Custom   map[string]string
	Purposes []*consent.Purpose
	Lists    []*lists.List
}

// Suggestions proposes what each column of a file with header holds,
// from the installation's custom fields, purposes and lists (Suggest).
func (s *Service) Suggestions(ctx context.Context, header []string) ([]Suggestion, error) {
	fields, err := s.Contacts.Fields(ctx)
	if err != nil {
		return nil, err
	}
	k := Known{Custom: make(map[string]string, len(fields))}
	for _, f := range fields {
		k.Custom[f.Name] = f.Label
	}
	if k.Purposes, err = s.Consent.Purposes(ctx); err != nil {
		return nil, err
	}
	if k.Lists, err = s.Lists.All(ctx); err != nil {
		return nil, err
	}
	return Suggest(header, k), nil
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

// The words, folded (fold), that headers about consents and lists are
// made of besides a purpose's or a list's name, in English, Swedish and
// Dutch. A header says a purpose's answer when its other words are all
// consentWords or givenWords ("Newsletter consent", "Samtycke
// nyhetsbrev", "Toestemming nieuwsbrief", "Newsletter": the name alone);
// its collection date when they are all of the four sets, with a date or
// a collection word among them, or a preposition of time and a consent
// word ("Newsletter consent date", "Datum toestemming nieuwsbrief",
// "Newsletter consented at"); and a list when they are all listWords
// ("List: Customers", "Lista: Kunder", "Lijst Klanten", the name alone).
// fillerWords count for nothing.
var (
	consentWords = words("consent", "consents", "consented", "samtycke", "samtycken", "samtyckt", "samtyckes",
		"toestemming", "toestemmingen", "optin", "optedin")
	givenWords   = words("given", "givet", "lamnat", "lamnad", "gegeven")
	dateWords    = words("date", "dated", "datum", "time", "tid", "tidpunkt", "tijd", "tijdstip", "timestamp", "when", "nar", "wanneer", "day", "dag")
	collectWords = words("collected", "collection", "obtained", "received", "recorded", "insamlad", "insamlat", "insamling", "mottaget",
		"verzameld", "verzameling", "verkregen", "ontvangen", "vastgelegd")
	atWords     = words("at", "on", "op", "pa", "den", "per")
	listWords   = words("list", "lista", "listan", "lijst", "member", "medlem", "lid")
	fillerWords = words("to", "for", "of", "the", "a", "an", "till", "av", "voor", "van", "om", "de", "het", "een")
)

func words(ws ...string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[w] = true
	}
	return m
}

// fold makes a header comparable: lower case, accents and everything but
// letters and digits removed ("Förnamn" and "fornamn", "E-mail adres"
// and "emailadres" match).
func fold(s string) string { return strings.Join(headerWords(s, false), "") }

// headerWords splits s into its words, folded: lower case, without
// accents, split at everything but letters and digits. With compounds,
// a change from a small letter to a capital splits too ("ConsentDate"),
// "opt in" is one word, and a word that ends in a date word after a
// consent or collection word is two ("samtyckesdatum", "optindate").
func headerWords(s string, compounds bool) []string {
	var out []string
	var b strings.Builder
	end := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	lower := false
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if compounds && lower && unicode.IsUpper(r) {
				end()
			}
			lower = unicode.IsLower(r)
			b.WriteRune(unicode.ToLower(r))
		default:
			lower = false
			end()
		}
	}
	end()
	if !compounds {
		return out
	}
	joined := out[:0:0]
	for i := 0; i < len(out); i++ {
		w := out[i]
		if (w == "opt" || w == "opted") && i+1 < len(out) && out[i+1] == "in" {
			joined = append(joined, w+"in")
			i++
			continue
		}
		joined = append(joined, splitDate(w)...)
	}
	return joined
}

// splitDate splits a compound of a consent or collection word and a date
// word ("samtyckesdatum", with the joining s); any other word is itself.
func splitDate(w string) []string {
	for _, d := range []string{"datum", "date"} {
		head, ok := strings.CutSuffix(w, d)
		if !ok || head == "" {
			continue
		}
		for _, h := range []string{head, strings.TrimSuffix(head, "s")} {
			if consentWords[h] || collectWords[h] {
				return []string{h, d}
			}
		}
	}
	return []string{w}
}

// without returns ws without the first run of name's words in it, and
// the fillers; false when name's words are not in ws.
func without(ws, name []string) ([]string, bool) {
	if len(name) == 0 {
		return nil, false
	}
	for i := 0; i+len(name) <= len(ws); i++ {
		if slices.Equal(ws[i:i+len(name)], name) {
			rest := append(slices.Clone(ws[:i]), ws[i+len(name):]...)
			return slices.DeleteFunc(rest, func(w string) bool { return fillerWords[w] }), true
		}
	}
	return nil, false
}

// What the words of a header, besides a name, say a column holds.
const (
	holdsNothing = iota
	holdsAnswer
	holdsDate
)

// classify says what rest, the words of a header besides a purpose's
// name, say the column holds (see consentWords), and whether they say it
// of a consent without the name: a date with a consent or collection
// word ("Consent date", "collected at", "Opt-in date"), not a bare "Date".
func classify(rest []string) (holds int, ofConsent bool) {
	answer, signal, at, consentWord := true, false, false, false
	for _, w := range rest {
		switch {
		case consentWords[w]:
			consentWord = true
		case givenWords[w]:
		case dateWords[w]:
			answer, signal = false, true
		case collectWords[w]:
			answer, signal, consentWord = false, true, true
		case atWords[w]:
			answer, at = false, true
		case fillerWords[w]:
		default:
			return holdsNothing, false
		}
	}
	switch {
	case answer:
		return holdsAnswer, false
	case signal || at && consentWord:
		return holdsDate, consentWord
	}
	return holdsNothing, false
}

// target is what a column may hold: a field (by name), a purpose's answer
// or collection date, or a list (by id).
type target struct {
	kind byte // 'f', 'a', 'd', 'l'
	key  string
}

// anyPurposeDate stands for a consent's collection date whose header
// names no purpose ("Consent date"): the date of the one purpose the
// file's other columns answer, or of the only purpose.
var anyPurposeDate = target{kind: 'd'}

// Suggest proposes what each column of header holds (Suggestion): a core
// field whose English, Swedish or Dutch name its header is, or a custom
// field of that name or label; a purpose's answer, when the header names
// the purpose, alone or with a word for consent; the collection date of
// the purpose it names, or, when it names none ("Consent date",
// "Samtyckesdatum", "collected at"), of the one purpose the file's other
// columns answer, or the only purpose there is; a list, when it names the
// list, alone or with a word for list. A header that fits two of these,
// and a field, purpose or list that two headers fit, suggest nothing.
func Suggest(header []string, k Known) []Suggestion {
	fields := map[string][]string{}
	add := func(folded, field string) {
		if folded != "" && !slices.Contains(fields[folded], field) {
			fields[folded] = append(fields[folded], field)
		}
	}
	for field, names := range headerNames {
		for _, n := range names {
			add(fold(n), field)
		}
	}
	for name, label := range k.Custom {
		add(fold(name), name)
		if label != "" {
			add(fold(label), name)
		}
	}
	picked := make([]target, len(header))
	for i, h := range header {
		var found []target
		for _, f := range fields[fold(h)] {
			found = append(found, target{'f', f})
		}
		ws := headerWords(h, true)
		for _, p := range k.Purposes {
			rest, ok := without(ws, headerWords(p.Name, true))
			if !ok {
				continue
			}
			switch holds, _ := classify(rest); holds {
			case holdsAnswer:
				found = append(found, target{'a', p.ID})
			case holdsDate:
				found = append(found, target{'d', p.ID})
			}
		}
		for _, l := range k.Lists {
			if rest, ok := without(ws, headerWords(l.Name, true)); ok && !slices.ContainsFunc(rest, func(w string) bool { return !listWords[w] }) {
				found = append(found, target{'l', l.ID})
			}
		}
		if holds, ofConsent := classify(ws); holds == holdsDate && ofConsent {
			found = append(found, anyPurposeDate)
		}
		if len(found) == 1 {
			picked[i] = found[0]
		}
	}
	dropShared(picked)
	var answered []string
	for _, t := range picked {
		if t.kind == 'a' {
			answered = append(answered, t.key)
		}
	}
	only := ""
	switch {
	case len(answered) == 1:
		only = answered[0]
	case len(answered) == 0 && len(k.Purposes) == 1:
		only = k.Purposes[0].ID
	}
	for i, t := range picked {
		if t == anyPurposeDate {
			picked[i] = target{'d', only}
			if only == "" {
				picked[i] = target{}
			}
		}
	}
	dropShared(picked)
	return suggestions(header, picked, k)
}

// dropShared clears every target that more than one column has.
func dropShared(picked []target) {
	n := map[target]int{}
	for _, t := range picked {
		n[t]++
	}
	for i, t := range picked {
		if n[t] > 1 {
			picked[i] = target{}
		}
	}
}

// suggestions writes the targets picked for header's columns as
// suggestions, purposes and lists by name.
func suggestions(header []string, picked []target, k Known) []Suggestion {
	purposes, lists := map[string]string{}, map[string]string{}
	for _, p := range k.Purposes {
		purposes[p.ID] = p.Name
	}
	for _, l := range k.Lists {
		lists[l.ID] = l.Name
	}
	out := make([]Suggestion, len(header))
	for i, t := range picked {
		out[i].Column = header[i]
		switch t.kind {
		case 'f':
			out[i].Field = t.key
		case 'a':
			out[i].Consent = purposes[t.key]
		case 'd':
			out[i].ConsentDate = purposes[t.key]
		case 'l':
			out[i].List = lists[t.key]
		}
	}
	return out
}
