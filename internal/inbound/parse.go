package inbound

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"

	"golang.org/x/text/encoding/htmlindex"

	"github.com/consentry/consentry/internal/errs"
)

// MaxMessageBytes is the largest message read (1 MiB): a request needs a
// subject and a sender, not attachments. The SMTP listener announces it
// (SIZE) and answers a larger message with 552.
const MaxMessageBytes = 1 << 20

// Limits on a message's structure, so that a crafted message costs little
// to look at.
const (
	maxParts     = 100
	maxDepth     = 5
	maxAddresses = 100
)

// ErrTooLarge is the error for a message over MaxMessageBytes.
var ErrTooLarge = &errs.Error{Kind: errs.KindInvalid, Code: "message_too_large", Field: "message",
	Message: fmt.Sprintf("is larger than %d bytes", MaxMessageBytes)}

// Message is what Consentry reads of an email: the one sender's address,
// the addresses in To and Cc, and the subject, decoded. Addresses are
// normalised (trimmed, lower case); display names are dropped, since only
// the address says where a reply goes.
type Message struct {
	From        string
	Recipients  []string
	Subject     string
	AutoReplied bool // Auto-Submitted says a machine sent it (RFC 3834)
}

// wordDecoder decodes RFC 2047 encoded words in every charset
// golang.org/x/text knows (by the WHATWG names and labels).
var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("unknown charset %q", charset)
	}
	return enc.NewDecoder().Reader(input), nil
}}

var addressParser = &mail.AddressParser{WordDecoder: wordDecoder}

// Parse reads a raw RFC 5322 message. It refuses, with an invalid-input
// error naming the part: a message over MaxMessageBytes (ErrTooLarge),
// headers or MIME structure that do not parse, no From or more than one
// sender (in one From header or in several), a subject given twice or not
// decodable. The body is checked for structure, not read.
func Parse(raw []byte) (*Message, error) {
	if len(raw) > MaxMessageBytes {
		return nil, ErrTooLarge
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, errs.Invalid("message", "is not an RFC 5322 message: %v", cleanErr(err))
	}
	out := &Message{}
	froms := m.Header["From"]
	switch {
	case len(froms) == 0:
		return nil, errs.Required("from")
	case len(froms) > 1:
		return nil, errs.Invalid("from", "is given more than once")
	}
	from, err := addresses(froms[0], "from")
	if err != nil {
		return nil, err
	}
	if len(from) != 1 {
		return nil, errs.Invalid("from", "must name exactly one sender")
	}
	out.From = from[0]
	for _, name := range []string{"To", "Cc"} {
		for _, v := range m.Header[name] {
			as, err := addresses(v, strings.ToLower(name))
			if err != nil {
				return nil, err
			}
			out.Recipients = append(out.Recipients, as...)
			if len(out.Recipients) > maxAddresses {
				return nil, errs.Invalid(strings.ToLower(name), "names more than %d addresses", maxAddresses)
			}
		}
	}
	subjects := m.Header["Subject"]
	if len(subjects) > 1 {
		return nil, errs.Invalid("subject", "is given more than once")
	}
	if len(subjects) == 1 {
		if out.Subject, err = wordDecoder.DecodeHeader(subjects[0]); err != nil {
			return nil, errs.Invalid("subject", "cannot be decoded: %v", cleanErr(err))
		}
	}
	auto := strings.ToLower(strings.TrimSpace(m.Header.Get("Auto-Submitted")))
	out.AutoReplied = auto != "" && auto != "no"
	if err := checkMIME(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body, 0, new(int)); err != nil {
		return nil, err
	}
	return out, nil
}

// addresses parses one address header into normalised addresses; groups
// are read as their members.
func addresses(v, field string) ([]string, error) {
	list, err := addressParser.ParseList(v)
	if err != nil {
		return nil, errs.Invalid(field, "is not a list of addresses: %v", cleanErr(err))
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, Normalize(a.Address))
	}
	return out, nil
}

// Normalize is the form addresses are compared in: trimmed, lower case.
func Normalize(address string) string { return strings.ToLower(strings.TrimSpace(address)) }

// checkMIME checks that a part's Content-Type parses and, for a multipart
// part, that its parts do, down to maxDepth levels and maxParts parts in
// all (counted in *parts).
func checkMIME(contentType, encoding string, body io.Reader, depth int, parts *int) error {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "7bit", "8bit", "binary", "quoted-printable", "base64":
	default:
		return errs.Invalid("message", "has an unknown Content-Transfer-Encoding")
	}
	if strings.TrimSpace(contentType) == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return errs.Invalid("message", "has a Content-Type that does not parse: %v", cleanErr(err))
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return nil
	}
	if depth >= maxDepth {
		return errs.Invalid("message", "nests multipart parts more than %d deep", maxDepth)
	}
	if params["boundary"] == "" {
		return errs.Invalid("message", "is multipart without a boundary")
	}
	r := multipart.NewReader(body, params["boundary"])
	for {
		p, err := r.NextRawPart()
		if errors.Is(err, io.EOF) {
			if *parts == 0 {
				return errs.Invalid("message", "is multipart without parts")
			}
			return nil
		}
		if err != nil {
			return errs.Invalid("message", "has a malformed multipart body: %v", cleanErr(err))
		}
		if *parts++; *parts > maxParts {
			return errs.Invalid("message", "has more than %d MIME parts", maxParts)
		}
		if err := checkMIME(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1, parts); err != nil {
			return err
		}
		// The rest of the part, to its boundary: a part cut off is an error
		// here, not a silent end.
		if _, err := io.Copy(io.Discard, p); err != nil {
			return errs.Invalid("message", "has a malformed multipart body: %v", cleanErr(err))
		}
	}
}

// cleanErr is a parser's error as text without the input it quotes,
// which could hold addresses: only its first words, up to a colon.
func cleanErr(err error) string {
	s := err.Error()
	for _, p := range []string{"mail: ", "mime: ", "multipart: "} {
		s = strings.TrimPrefix(s, p)
	}
	if i := strings.IndexAny(s, ":\"'<"); i > 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
