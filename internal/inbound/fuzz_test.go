package inbound

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/consentry/consentry/internal/errs"
)

// FuzzParse feeds the parser arbitrary messages: it never panics, refuses
// with an invalid-input error naming a part, and what it accepts has one
// normalised sender address; the keyword search never panics on what it
// decoded. Seeds: testdata/*.eml and the shapes below.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	for _, s := range []string{
		"From: a@b.example\r\nTo: p@acme.example\r\nSubject: DELETE\r\n\r\nx",
		"From: a@b.example\nFrom: c@d.example\n\n",
		"From: a@b.example, c@d.example\r\n\r\n",
		"From: \"x@y\" <a@b.example>\r\nSubject: =?UTF-8?B?UkFERVJB?=\r\n\r\n",
		"From: a@b.example\r\nSubject: =?x?Q?=FF?=\r\n\r\n",
		"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n--y--\r\n--z--\r\n",
		"From: g: a@b.example;\r\nCc: =?utf-8?q?=C3=A5?= <c@d.example>\r\n\r\n",
		"",
		"\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	keywords := []string{"DELETE", "ERASE", "VERWIJDER", "RADERA", "OPT-OUT"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw)
		if err != nil {
			if e := errs.As(err); e == nil || e.Kind != errs.KindInvalid || e.Field == "" {
				t.Fatalf("not an invalid-input error naming a part: %v", err)
			}
			return
		}
		if m.From == "" || !strings.Contains(m.From, "@") || m.From != Normalize(m.From) {
			t.Fatalf("sender %q", m.From)
		}
		for _, r := range m.Recipients {
			if r != Normalize(r) {
				t.Fatalf("recipient %q", r)
			}
		}
		if k, ok := Keyword(m.Subject, keywords); ok && (k == "" || !utf8.ValidString(k)) {
			t.Fatalf("keyword %q", k)
		}
	})
}

// addSeeds adds the messages in testdata/*.eml to f's corpus.
func addSeeds(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.eml")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}
