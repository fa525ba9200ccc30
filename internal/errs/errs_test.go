package errs

import (
	"strings"
	"testing"
)

func TestSingleLine(t *testing.T) {
	for _, ok := range []string{"", "Ann", "Åsa-Lena O'Brien", "José María", "Zoë 🙂", "山田 太郎", "محمد"} {
		if err := SingleLine("first_name", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for s, code := range map[string]string{
		"Ann\nBerg": "line_break", "Ann\r": "line_break", "Ann\u2028Berg": "line_break", "Ann\u0085": "line_break",
		"Ann\tBerg": "invalid", "Ann\x00": "invalid", "Ann\x1b[31m": "invalid", "Ann\u009b": "invalid",
		"Ann\u202eexe.pdf": "invisible_character", "\u2066Ann\u2069": "invisible_character", "A\u200bnn": "invisible_character",
		"A\u200dnn": "invisible_character", "\ufeffAnn": "invisible_character", "Ann\u200f": "invisible_character",
		"Ann\u061c": "invisible_character", "Ann\xff": "invalid",
	} {
		err := SingleLine("first_name", s)
		e := As(err)
		if e == nil || e.Code != code || e.Field != "first_name" || e.Kind != KindInvalid {
			t.Errorf("%q: %#v, want code %s", s, err, code)
		}
	}
	// TrimLine trims first: a line break at either end is only space.
	v := "  Ann\n"
	if err := TrimLine("first_name", &v, 10); err != nil || v != "Ann" {
		t.Fatalf("TrimLine: %q %v", v, err)
	}
	v = "Ann\nBerg"
	if err := OptionalLine("last_name", &v, 10); As(err) == nil || As(err).Field != "last_name" {
		t.Fatalf("OptionalLine: %v", err)
	}
	// Multi-line text stays allowed where it belongs.
	v = "Para one.\n\nPara two."
	if err := TrimText("text", &v, 100); err != nil {
		t.Fatal(err)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{1 << 20: "1 MiB", 64 << 10: "64 KiB", 2 << 30: "2 GiB", 1500: "1500 bytes", 1536 << 10: "1536 KiB", 0: "0 bytes"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestWebAddressPort: an address whose port no connection can use is
// refused, naming the field; no port, or one from 1 to 65535, is kept.
func TestWebAddressPort(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://example.com/privacy": true, "https://example.com:443/privacy": true, "https://example.com:65535/": true,
		"https://example.com:99999/privacy": false, "https://example.com:0/": false, "https://example.com:65536/": false,
	} {
		_, err := WebAddress("privacy_policy_url", raw, 2000, "https://example.com/privacy")
		if (err == nil) != ok {
			t.Errorf("%s: %v", raw, err)
		}
		if e := As(err); err != nil && (e == nil || e.Field != "privacy_policy_url" || !strings.Contains(e.Message, "1 to 65535")) {
			t.Errorf("%s: %v does not name the field and the range", raw, err)
		}
	}
}
