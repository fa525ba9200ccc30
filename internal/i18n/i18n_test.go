package i18n

import (
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/errs"
)

// TestEveryKeyInEveryLanguage keeps the catalogs in step: the same keys,
// none empty, and the same %-placeholders in each translation.
func TestEveryKeyInEveryLanguage(t *testing.T) {
	en := Keys("en")
	for _, lang := range Languages {
		m := Keys(lang)
		for k, v := range en {
			tr, ok := m[k]
			switch {
			case !ok:
				t.Errorf("%s lacks %s", lang, k)
			case strings.TrimSpace(tr) == "":
				t.Errorf("%s: %s is empty", lang, k)
			case strings.Count(tr, "%") != strings.Count(v, "%"):
				t.Errorf("%s: %s has other placeholders than en", lang, k)
			}
		}
		for k := range m {
			if _, ok := en[k]; !ok {
				t.Errorf("%s has %s, which en lacks", lang, k)
			}
		}
	}
}

func TestMatch(t *testing.T) {
	cases := []struct{ choice, accept, want string }{
		{"", "sv-SE,sv;q=0.9,en;q=0.8", "sv"},
		{"", "nl-BE", "nl"},
		{"", "de-DE,de;q=0.9", "en"},
		{"", "", "en"},
		{"nl", "sv", "nl"},
		{"xx-invalid-", "sv", "sv"},
		{"", "da, sv;q=0.5", "sv"},
	}
	for _, c := range cases {
		if got := Match(c.choice, c.accept); got != c.want {
			t.Errorf("Match(%q, %q) = %s, want %s", c.choice, c.accept, got, c.want)
		}
	}
	if T("sv", "email.footer", "Acme") != "Skickat av Acme." || T("de", "page.confirmed.title") != "Thank you" {
		t.Error("T")
	}
}

func TestParseTag(t *testing.T) {
	for in, want := range map[string]string{"": "", " ": "", "en": "en", "EN": "en", " sv-se ": "sv-SE", "pt-br": "pt-BR",
		"iw": "he", "zh-hant-tw": "zh-Hant-TW", "de-1996": "de-1996"} {
		if got, err := ParseTag("language", in); err != nil || got != want {
			t.Errorf("ParseTag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"english", "en-", "en--US", "e1", "a", "xx", "abcdefghi", "<sv>", "en-US-x-" + strings.Repeat("abcdefgh-", 4) + "a"} {
		got, err := ParseTag("text_language", in)
		if e := errs.As(err); e == nil || e.Kind != errs.KindInvalid || e.Field != "text_language" || got != "" {
			t.Errorf("ParseTag(%q) = %q, %v; want an invalid-input error on text_language", in, got, err)
		}
	}
}
