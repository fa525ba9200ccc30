package inbound

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
)

// Bounces that are not delivery status notifications: qmail's
// (QSBMF), older Exim's and old Exchange's are plain text written by the
// mail server, which says in words and SMTP codes what failed. They are
// read only when the message comes from the mail system itself (its From
// is MAILER-DAEMON or postmaster, or it has Exim's X-Failed-Recipients),
// so that a person's reply that quotes an error is never taken for one.

// oldTextLimit is how much of an old-style bounce's text is read: the
// server's explanation comes first, before the returned message.
const oldTextLimit = 64 << 10

var (
	// Enhanced status codes (RFC 3463) and the SMTP replies that mean the
	// address does not work. 552 and X.2.2 (mailbox full) are not among
	// them: a full mailbox may be emptied.
	permanentCodeRE = regexp.MustCompile(`\b5\.[0-7]\.\d{1,3}\b|\b55[0134][ -]`)
	mailboxFullRE   = regexp.MustCompile(`\b[45]\.2\.2\b|\b552[ -]|mailbox (is )?full|over quota|quota exceeded|exceeded (its|the|their) (storage|quota)`)
	temporaryCodeRE = regexp.MustCompile(`\b4\.[0-7]\.\d{1,3}\b|\b4[25]\d[ -]`)
)

// permanentWords say the server gave up for good; delayWords that it is
// still trying; failedWords that a delivery failed, without saying how.
var (
	permanentWords = []string{"this is a permanent error", "permanent error", "permanent failure", "permanently rejected",
		"user unknown", "unknown user", "no such user", "no such mailbox", "mailbox unavailable", "does not exist", "address rejected",
		"recipient not found", "recipnotfound"}
	delayWords = []string{"not yet been delivered", "has been delayed", "delivery is delayed", "delivery delayed",
		"will continue trying", "will keep trying", "still trying", "will retry", "no action is required"}
	failedWords = []string{"could not be delivered", "couldn't be delivered", "was not able to deliver", "wasn't able to deliver",
		"undeliverable", "delivery has failed", "delivery failed", "failed to deliver", "did not reach", "returned mail",
		"temporary error", "temporary failure"}
)

// readOldBounce reads a message that holds no delivery status part: from
// the mail system, its text says whether a delivery failed and whether
// for good. Anything else is NotABounce.
func readOldBounce(m *mail.Message) Bounce {
	if !fromMailSystem(m.Header) {
		return NotABounce
	}
	text := strings.Join(strings.Fields(strings.ToLower(firstText(m.Header.Get("Content-Type"),
		m.Header.Get("Content-Transfer-Encoding"), m.Body, 0, new(int)))), " ")
	failed := m.Header.Get("X-Failed-Recipients") != ""
	switch {
	case mailboxFullRE.MatchString(text):
		return SoftBounce
	case containsAny(text, permanentWords) || permanentCodeRE.MatchString(text):
		return HardBounce
	case containsAny(text, delayWords) && !failed:
		return NotABounce
	case failed || containsAny(text, failedWords) || temporaryCodeRE.MatchString(text):
		return SoftBounce
	}
	return NotABounce
}

// fromMailSystem reports whether a message was written by a mail server
// rather than a person: its From is MAILER-DAEMON or postmaster, or it
// names failed recipients as Exim does.
func fromMailSystem(h mail.Header) bool {
	if h.Get("X-Failed-Recipients") != "" {
		return true
	}
	a, err := mail.ParseAddress(h.Get("From"))
	if err != nil {
		return false
	}
	local, _, _ := strings.Cut(strings.ToLower(a.Address), "@")
	switch local {
	case "mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster":
		return true
	}
	return false
}

// firstText returns the first text part of a part of type contentType,
// decoded, at most oldTextLimit bytes of it; "" when there is none or it
// does not parse.
func firstText(contentType, encoding string, body io.Reader, depth int, parts *int) string {
	mt, params, err := mime.ParseMediaType(contentType)
	if strings.TrimSpace(contentType) == "" {
		mt, err = "text/plain", nil
	}
	if err != nil {
		return ""
	}
	if strings.HasPrefix(mt, "text/") {
		var in io.Reader = body
		switch strings.ToLower(strings.TrimSpace(encoding)) {
		case "base64":
			in = base64.NewDecoder(base64.StdEncoding, body)
		case "quoted-printable":
			in = quotedprintable.NewReader(body)
		}
		var b bytes.Buffer
		_, _ = io.Copy(&b, io.LimitReader(in, oldTextLimit))
		return b.String()
	}
	if !strings.HasPrefix(mt, "multipart/") || depth >= maxDepth || params["boundary"] == "" {
		return ""
	}
	r := multipart.NewReader(body, params["boundary"])
	for {
		p, err := r.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) || err != nil {
			return ""
		}
		if *parts++; *parts > maxParts {
			return ""
		}
		enc := p.Header.Get("Content-Transfer-Encoding") // empty once NextPart decoded it
		if t := firstText(p.Header.Get("Content-Type"), enc, p, depth+1, parts); t != "" {
			return t
		}
	}
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
