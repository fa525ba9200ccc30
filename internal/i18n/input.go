package i18n

import (
	"strings"

	"github.com/consentry/consentry/internal/errs"
)

// InputError is the message shown to a contact next to a field of a public
// form (a webform, the preferences page's "Correct my details") that
// refused what they typed, in lang: the catalog's wording of what went
// wrong, as the domain's error says it, so that they read the reason in
// the page's language. field is the product's name of the field the error
// is about (email, phone, country, fields.NAME, consents[0].version):
// e.Field on a webform, the core field's name on the preferences page,
// which names its inputs profile.NAME. What none of the rules recognises
// gets a general message that the answer cannot be used.
func InputError(lang, field string, e *errs.Error) string {
	for _, m := range inputErrors {
		if m.match(field, e) {
			return T(lang, "input.error."+m.key)
		}
	}
	return T(lang, "input.error.invalid")
}

// inputErrors map refusals of typed input to catalog keys, the first
// match winning.
var inputErrors = []struct {
	key   string
	match func(field string, e *errs.Error) bool
}{
	{"required", func(_ string, e *errs.Error) bool { return e.Code == "required" }},
	{"one_line", func(_ string, e *errs.Error) bool { return e.Code == "line_break" }},
	{"invisible", func(_ string, e *errs.Error) bool {
		return e.Code == "invisible_character" || strings.Contains(e.Message, "control character")
	}},
	{"version", func(field string, _ *errs.Error) bool { return strings.HasSuffix(field, ".version") }},
	{"repeated", func(_ string, e *errs.Error) bool { return strings.Contains(e.Message, "more than once") }},
	{"too_long", func(_ string, e *errs.Error) bool { return strings.Contains(e.Message, "at most") }},
	{"email", func(field string, e *errs.Error) bool {
		return field == "email" || strings.Contains(e.Message, "email address")
	}},
	{"phone", func(field string, _ *errs.Error) bool { return field == "phone" }},
	{"country", func(field string, _ *errs.Error) bool { return field == "country" }},
	{"number", func(_ string, e *errs.Error) bool { return strings.Contains(e.Message, "number") }},
	{"date", func(_ string, e *errs.Error) bool { return strings.Contains(e.Message, "date") }},
}
