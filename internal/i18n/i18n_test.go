package i18n

import (
	"strings"
	"testing"
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
