package inbound

import (
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/errs"
)

// msg builds a raw message from header lines and a body.
func msg(body string, headers ...string) []byte {
	return []byte(strings.Join(headers, "\r\n") + "\r\n\r\n" + body)
}

func TestParse(t *testing.T) {
	m, err := Parse(msg("Please erase me.", `From: "privacy@acme.example" <Eve@Evil.Example>`,
		"To: Acme Privacy <Privacy@Acme.example>, other@x.example", "Cc: grp: a@b.example, c@d.example;",
		"Subject: =?UTF-8?B?UkFERVJB?= mina uppgifter"))
	if err != nil {
		t.Fatal(err)
	}
	// Only the address counts, normalised; the display name that looks
	// like the privacy address does not.
	if m.From != "eve@evil.example" || m.Subject != "RADERA mina uppgifter" {
		t.Fatalf("%+v", m)
	}
	if strings.Join(m.Recipients, " ") != "privacy@acme.example other@x.example a@b.example c@d.example" {
		t.Fatalf("recipients %v", m.Recipients)
	}
}

func TestParseSubjectsInAnyCharset(t *testing.T) {
	for raw, want := range map[string]string{
		"=?UTF-8?B?UkFERVJB?=":                                 "RADERA",
		"=?utf-8?q?Radera_mina_uppgifter_=C3=A5=C3=A4=C3=B6?=": "Radera mina uppgifter åäö",
		"=?ISO-8859-1?Q?Radera_mina_uppgifter_=E5=E4=F6?=":     "Radera mina uppgifter åäö",
		"=?windows-1252?Q?verwijder_=80?=":                     "verwijder €",
		"=?KOI8-R?B?0sHExdLB?=":                                "радера",
		"=?Shift_JIS?B?g4GBWw==?=":                             "メー",
		"Re: =?UTF-8?Q?delete?= =?UTF-8?Q?_me?=":               "Re: delete me",
	} {
		m, err := Parse(msg("x", "From: a@b.example", "To: p@acme.example", "Subject: "+raw))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if m.Subject != want {
			t.Errorf("%s: got %q, want %q", raw, m.Subject, want)
		}
	}
}

// TestParseRefuses: each bad message is an invalid-input error naming the
// part at fault.
func TestParseRefuses(t *testing.T) {
	big := msg(strings.Repeat("x", MaxMessageBytes), "From: a@b.example", "To: p@acme.example", "Subject: DELETE")
	cases := []struct {
		name  string
		raw   []byte
		field string
	}{
		{"oversize", big, "message"},
		{"no headers", []byte("just text, no header"), "message"},
		{"no From", msg("x", "To: p@acme.example", "Subject: DELETE"), "from"},
		{"two From headers", msg("x", "From: a@b.example", "From: c@d.example", "To: p@acme.example", "Subject: DELETE"), "from"},
		{"two senders in one From", msg("x", "From: a@b.example, c@d.example", "To: p@acme.example", "Subject: DELETE"), "from"},
		{"empty From", msg("x", "From: ", "To: p@acme.example"), "from"},
		{"a group as From", msg("x", "From: undisclosed:;", "To: p@acme.example"), "from"},
		{"unquoted @ in the display name", msg("x", "From: privacy@acme.example <eve@evil.example>", "To: p@acme.example"), "from"},
		{"no address", msg("x", "From: Eve", "To: p@acme.example"), "from"},
		{"bad To", msg("x", "From: a@b.example", "To: <<<"), "to"},
		{"two subjects", msg("x", "From: a@b.example", "To: p@acme.example", "Subject: hello", "Subject: DELETE"), "subject"},
		{"unknown charset", msg("x", "From: a@b.example", "To: p@acme.example", "Subject: =?x-no-such?B?UkFERVJB?="), "subject"},
		{"bad Content-Type", msg("x", "From: a@b.example", "To: p@acme.example", "Content-Type: text/plain; ;;="), "message"},
		{"multipart without boundary", msg("x", "From: a@b.example", "To: p@acme.example", "Content-Type: multipart/mixed"), "message"},
		{"multipart never closed", msg("--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n", "From: a@b.example", "To: p@acme.example",
			`Content-Type: multipart/mixed; boundary="b"`), "message"},
		{"unknown transfer encoding", msg("x", "From: a@b.example", "To: p@acme.example", "Content-Transfer-Encoding: x-rot13"), "message"},
	}
	for _, c := range cases {
		_, err := Parse(c.raw)
		e := errs.As(err)
		if e == nil || e.Kind != errs.KindInvalid || e.Field != c.field {
			t.Errorf("%s: got %v, want an invalid-input error on %s", c.name, err, c.field)
		}
		if e != nil && strings.Contains(e.Message, "evil") {
			t.Errorf("%s: the error quotes the input: %s", c.name, e.Message)
		}
	}
	if _, err := Parse(big); err != ErrTooLarge {
		t.Fatalf("oversize: %v", err)
	}
}

func TestParseMultipart(t *testing.T) {
	body := "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n" +
		"--c\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--c--\r\n--b--\r\n"
	m, err := Parse(msg(body, "From: a@b.example", "To: p@acme.example", "Subject: DELETE", "MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="b"`, "Auto-Submitted: auto-replied"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.AutoReplied {
		t.Fatal("Auto-Submitted not seen")
	}
}

func TestKeyword(t *testing.T) {
	keywords := []string{"DELETE", "ERASE", "VERWIJDER", "RADERA", "OPT-OUT"}
	for subject, want := range map[string]string{
		"DELETE":                        "DELETE",
		"please delete my data":         "DELETE",
		"Re: Radera mina uppgifter":     "RADERA",
		"verwijder mijn gegevens a.u.b": "VERWIJDER",
		"RE:ERASE":                      "ERASE",
		"request-delete":                "DELETE",
		"please opt-out":                "OPT-OUT",
		"Deleted items":                 "",
		"undelete":                      "",
		"raderade":                      "",
		"opt out":                       "",
		"":                              "",
	} {
		got, ok := Keyword(subject, keywords)
		if got != want || ok != (want != "") {
			t.Errorf("%q: got %q %v, want %q", subject, got, ok, want)
		}
	}
}
