package mail

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

// readBack parses a composed message the way a mail client does and
// returns its decoded headers and parts by media type.
func readBack(t *testing.T, raw []byte) (mail.Header, map[string]string) {
	t.Helper()
	for i, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line %d is %d characters long", i, len(line))
		}
		if strings.Contains(line, "\n") {
			t.Fatalf("line %d has a bare line feed", i)
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]string{}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if mt != "multipart/alternative" {
		b, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
		parts[mt] = string(b)
		return m.Header, parts
	}
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			return m.Header, parts
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Fatalf("%s part: %q", pt, p.Header.Get("Content-Transfer-Encoding"))
		}
		b, _ := io.ReadAll(quotedprintable.NewReader(p))
		parts[pt] = string(b)
	}
}

// TestComposeRoundTrips composes messages with what operators and
// contacts write (names and subjects outside ASCII, long lines, a line
// that is only a dot, an attempt to add a header through the subject)
// and reads them back as a mail client would: every value arrives as it
// was, and nothing else does.
func TestComposeRoundTrips(t *testing.T) {
	long := strings.Repeat("Ett långt nyhetsbrev om allt som händer hos oss i höst, ", 8)
	bodyLine := strings.Repeat("<td>ord</td>", 200) // one 2,400-character line
	e := &Envelope{
		From: `"Åsa på Acme" <news@acme.example>`, To: `Zoë Ölund <zoe@example.com>`,
		Subject: long, Text: "Hej Zoë,\n.\nslut\n", HTML: "<p>Hej Zoë</p>" + bodyLine,
		MessageID: "c1.2@acme.example", Date: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		ReturnPath: "bounces+c1-2@acme.example",
		Headers: map[string]string{"List-Id": "Nyheter för dig <c1.acme.example>", "List-Unsubscribe": "<https://acme.example/m/u/2/x>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
	}
	var buf bytes.Buffer
	from, to, err := compose(&buf, e)
	if err != nil {
		t.Fatal(err)
	}
	if from != "bounces+c1-2@acme.example" || to != "zoe@example.com" {
		t.Fatalf("envelope: %q %q", from, to)
	}
	h, parts := readBack(t, buf.Bytes())
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil || subject != long {
		t.Fatalf("subject: %q %v", subject, err)
	}
	if a, err := h.AddressList("From"); err != nil || a[0].Name != "Åsa på Acme" || a[0].Address != "news@acme.example" {
		t.Fatalf("From: %v %v", a, err)
	}
	if a, err := h.AddressList("To"); err != nil || a[0].Name != "Zoë Ölund" {
		t.Fatalf("To: %v %v", a, err)
	}
	if id, _ := dec.DecodeHeader(h.Get("List-Id")); id != "Nyheter för dig <c1.acme.example>" || !strings.HasSuffix(h.Get("List-Id"), " <c1.acme.example>") {
		t.Fatalf("List-Id: %q", h.Get("List-Id"))
	}
	for k, want := range map[string]string{"Message-Id": "<c1.2@acme.example>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"List-Unsubscribe": "<https://acme.example/m/u/2/x>", "Mime-Version": "1.0"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if d, err := h.Date(); err != nil || !d.Equal(e.Date) {
		t.Errorf("Date: %v %v", d, err)
	}
	if got := strings.ReplaceAll(parts["text/plain"], "\r\n", "\n"); got != e.Text+"\n" {
		t.Errorf("text: %q", got)
	}
	if got := strings.TrimSuffix(parts["text/html"], "\r\n"); got != e.HTML {
		t.Errorf("html: %d characters, want %d", len(got), len(e.HTML))
	}

	// A subject cannot add a header, and a message without HTML is one
	// text part.
	e.Subject, e.HTML = "Hello\r\nBcc: everyone@example.com", ""
	buf.Reset()
	if _, _, err := compose(&buf, e); err != nil {
		t.Fatal(err)
	}
	h, parts = readBack(t, buf.Bytes())
	if h.Get("Bcc") != "" || h.Get("Subject") != "Hello  Bcc: everyone@example.com" {
		t.Fatalf("a line break in the subject: Bcc %q, Subject %q", h.Get("Bcc"), h.Get("Subject"))
	}
	if _, ok := parts["text/plain"]; !ok || len(parts) != 1 {
		t.Fatalf("parts: %v", parts)
	}

	e.To = "not an address"
	if _, _, err := compose(&buf, e); err == nil || !strings.Contains(err.Error(), "To") {
		t.Fatalf("a bad recipient: %v", err)
	}
}

// BenchmarkCompose is the cost of writing one campaign-sized message.
func BenchmarkCompose(b *testing.B) {
	e := &Envelope{From: "Acme <news@acme.example>", To: "c1@example.com", Subject: "Hi Cleo",
		Text: strings.Repeat("Some news for you. ", 40), HTML: "<p>" + strings.Repeat("Some news for you. ", 40) + "</p>",
		MessageID: "c1.2@acme.example", Date: time.Now(), ReturnPath: "bounces+c1-2@acme.example",
		Headers: map[string]string{"List-Id": "News <c1.acme.example>", "List-Unsubscribe": "<https://acme.example/m/u/2/x>"}}
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if _, _, err := compose(&buf, e); err != nil {
			b.Fatal(err)
		}
	}
}
