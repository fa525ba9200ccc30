package mail

import (
	"bytes"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"time"
)

// compose writes e into buf as an Internet message (RFC 5322, MIME) with
// CRLF line ends, ready for SMTP: a text/plain part and, when e has HTML,
// a text/html alternative, both quoted-printable in UTF-8. Header values
// outside ASCII are encoded as RFC 2047 words, and a line break in a value
// becomes a space, so no value can add a header. It returns the envelope
// sender and recipient for MAIL FROM and RCPT TO, or an error naming the
// address that is not one.
//
// The standard library's MIME writers do the encoding; a campaign writes
// a million of these, and a general-purpose message builder cost a
// quarter of the CPU of handing each one over.
func compose(buf *bytes.Buffer, e *Envelope) (from, to string, err error) {
	fromAddr, err := mail.ParseAddress(e.From)
	if err != nil {
		return "", "", fmt.Errorf("From %q: %w", e.From, err)
	}
	toAddr, err := mail.ParseAddress(e.To)
	if err != nil {
		return "", "", fmt.Errorf("To %q: %w", e.To, err)
	}
	from = fromAddr.Address
	if e.ReturnPath != "" {
		rp, err := mail.ParseAddress(e.ReturnPath)
		if err != nil {
			return "", "", fmt.Errorf("Return-Path %q: %w", e.ReturnPath, err)
		}
		from = rp.Address
	}
	date := e.Date
	if date.IsZero() {
		date = time.Now()
	}
	header(buf, "Date", date.Format(time.RFC1123Z))
	header(buf, "From", fromAddr.String())
	header(buf, "To", toAddr.String())
	header(buf, "Subject", encodeWords(e.Subject))
	if e.MessageID != "" {
		header(buf, "Message-ID", "<"+e.MessageID+">")
	}
	keys := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		header(buf, textproto.CanonicalMIMEHeaderKey(k), encodeValue(e.Headers[k]))
	}
	header(buf, "MIME-Version", "1.0")
	if e.HTML == "" {
		header(buf, "Content-Type", "text/plain; charset=UTF-8")
		header(buf, "Content-Transfer-Encoding", "quoted-printable")
		buf.WriteString("\r\n")
		return from, toAddr.Address, quoted(buf, e.Text)
	}
	mw := multipart.NewWriter(buf)
	header(buf, "Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	buf.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", e.Text}, {"text/html", e.HTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=UTF-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return "", "", err
		}
		if err := quoted(w, part.body); err != nil {
			return "", "", err
		}
	}
	return from, toAddr.Address, mw.Close()
}

// quoted writes s quoted-printable, with CRLF line ends.
func quoted(w interface{ Write([]byte) (int, error) }, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(s)); err != nil {
		return err
	}
	if err := qp.Close(); err != nil {
		return err
	}
	_, err := w.Write([]byte("\r\n"))
	return err
}

// header writes one header line, folded at spaces to keep lines near 78
// characters where the value allows.
func header(buf *bytes.Buffer, name, value string) {
	value = oneLine(value)
	line := len(name) + 2
	buf.WriteString(name)
	buf.WriteString(": ")
	for i, word := range strings.Split(value, " ") {
		if i > 0 {
			if word != "" && line+1+len(word) > 78 && line > len(name)+2 {
				buf.WriteString("\r\n")
				line = 0
			}
			buf.WriteByte(' ')
			line++
		}
		buf.WriteString(word)
		line += len(word)
	}
	buf.WriteString("\r\n")
}

// encodeWords encodes s as RFC 2047 words when it is not plain ASCII,
// after turning each line break into a space.
func encodeWords(s string) string {
	return mime.QEncoding.Encode("utf-8", oneLine(s))
}

// oneLine turns each line break in a header value into a space.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// encodeValue encodes a header value outside ASCII, leaving a trailing
// angle-bracketed part as it is: "Nyheter för dig <c1.acme.example>" keeps
// its id readable, as List-Id needs.
func encodeValue(v string) string {
	if i := strings.LastIndex(v, " <"); i >= 0 && strings.HasSuffix(v, ">") {
		return encodeWords(v[:i]) + v[i:]
	}
	return encodeWords(v)
}
