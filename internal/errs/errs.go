// Package errs holds the error kinds that domain packages return and that the
// HTTP front ends map to status codes (httpx.Status). Domain code never
// speaks HTTP; it says what went wrong (invalid input, not found, conflict,
// refused, locked) and, for invalid input, which field.
package errs

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind classifies an error for callers that must react differently to each.
type Kind int

const (
	// KindInvalid: the input is malformed or fails validation. Nothing was written.
	KindInvalid Kind = iota + 1
	// KindNotFound: the thing named does not exist.
	KindNotFound
	// KindConflict: the input is valid but clashes with the current state
	// (for example an email that is already in use).
	KindConflict
	// KindRefused: a rule forbids this change (for example an opt-in status
	// transition that only the contact may make).
	KindRefused
	// KindLocked: the record is locked and cannot be edited.
	KindLocked
	// KindUnauthorized: no valid credentials were given.
	KindUnauthorized
	// KindForbidden: the credentials lack the permission.
	KindForbidden
	// KindUnavailable: the database cannot take the request now (it
	// cannot be reached, or its disk is full). Nothing was written;
	// the same request may succeed later.
	KindUnavailable
)

// Error is a domain error with a stable machine-readable code, a message for
// people and, for validation errors, the field it is about.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Field   string
	// Position, for an error in a condition, is where in it the problem is,
	// counted in characters from 1.
	Position int
	// Row, for an error in an uploaded file, is the row the problem is
	// in, counted from 1 as a spreadsheet shows them; 0 when it is about
	// no one row.
	Row int
	// Byte is where in the uploaded file the problem is, counted in bytes
	// from 1; 0 when that is not known (a problem found after the part
	// of the file that decides its encoding is told by its row alone).
	Byte int64
	// Cause is the error behind this one, for the log and for the front
	// ends' status codes, never for the caller: the driver's error for
	// an unavailable database, the *http.MaxBytesError of a request body
	// over its limit.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Invalid reports bad input in one field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Code: "invalid", Field: field, Message: fmt.Sprintf(format, args...)}
}

// Required reports a missing field.
func Required(field string) *Error {
	return &Error{Kind: KindInvalid, Code: "required", Field: field, Message: "is required"}
}

// NotFound reports that the thing named by what (for example "contact")
// does not exist. field names the input that named it, if any. The code
// is what in snake case, then _not_found ("import_mapping_not_found").
func NotFound(what, field string) *Error {
	code := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return '_'
		}
		return r
	}, what)
	return &Error{Kind: KindNotFound, Code: code + "_not_found", Field: field, Message: what + " not found"}
}

// Conflict reports a clash with the current state.
func Conflict(code, field, format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Refused reports a change that a rule forbids.
func Refused(code, field, format string, args ...any) *Error {
	return &Error{Kind: KindRefused, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Locked reports that a record cannot be edited and why.
func Locked(code, format string, args ...any) *Error {
	return &Error{Kind: KindLocked, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Cause }

// Unavailable reports that the database cannot take the request now, with
// message for the caller and cause for the log.
func Unavailable(message string, cause error) *Error {
	return &Error{Kind: KindUnavailable, Code: "database_unavailable", Message: message, Cause: cause}
}

// As returns the domain error inside err, or nil when err is not one.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Size writes a size of n bytes as a message names a limit: in the
// largest unit it is a whole number of ("1 MiB", "64 KiB", "2 GiB"), else
// in bytes ("1500 bytes").
func Size(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// Is reports whether err is a domain error of the given kind.
func Is(err error, k Kind) bool {
	e := As(err)
	return e != nil && e.Kind == k
}

// WebAddress checks an address of a web page that contacts are sent to:
// absolute, https (http only for localhost, a site under development), no
// user name or password, at most max characters; example shows one in the
// error. It returns the address as parsed; an empty one is "" and no
// error, for the caller to require or not.
func WebAddress(field, raw string, max int, example string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	if len(raw) > max {
		return "", Invalid(field, "must be at most %d characters", max)
	}
	if err := PlainText(field, raw); err != nil {
		return "", err
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(raw, " \t\r\n") {
		return "", Invalid(field, "must be an absolute URL such as %s", example)
	}
	switch h := u.Hostname(); {
	case u.Scheme == "https":
	case u.Scheme == "http" && (h == "localhost" || h == "127.0.0.1" || h == "::1"):
	default:
		return "", Invalid(field, "must use https (http only for localhost)")
	}
	if err := Port(field, u); err != nil {
		return "", err
	}
	return u.String(), nil
}

// Port checks the port of u, a parsed address: none (the scheme's own),
// or a number from 1 to 65535. url.Parse takes any digits, so an address
// with port 99999 parses, is saved, and no connection to it can ever be
// made. The error names field.
func Port(field string, u *url.URL) error {
	p := u.Port()
	if p == "" {
		return nil
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return Invalid(field, "has the port %s; a port is a number from 1 to 65535", p)
	}
	return nil
}

// IDCursor checks after, the cursor of a list paged by id (the id of the
// last item of the previous page): empty, for the first page, or an id as
// the product makes them, a UUID in its canonical lower-case form. Any
// other value is an error naming field: compared as text with the ids, it
// would give a page that is empty or starts anywhere, with no word of why.
func IDCursor(field, after string) error {
	if after == "" {
		return nil
	}
	ok := len(after) == 36
	for i := 0; ok && i < len(after); i++ {
		c := after[i]
		switch i {
		case 8, 13, 18, 23:
			ok = c == '-'
		default:
			ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
		}
	}
	if !ok {
		return Invalid(field, "must be the next cursor of the previous page")
	}
	return nil
}

// PlainText checks that s is valid UTF-8 without control characters other
// than tab, line feed and carriage return. Such text is stored and shown the
// same everywhere; a NUL byte, for one, is refused by PostgreSQL and would
// end a C string early.
func PlainText(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "is not valid UTF-8 text")
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return Invalid(field, "contains a control character (U+%04X)", r)
		}
	}
	return nil
}

// SingleLine checks that s is valid UTF-8 on one line, as a name, a
// subject or a label must be: no line break, tab or other control
// character, and none of the invisible characters that change how the text
// around them reads: bidirectional embeddings, overrides, isolates and
// marks (U+202A-U+202E, U+2066-U+2069, U+061C), zero-width spaces, joiners
// and direction marks (U+200B-U+200F) and the byte order mark (U+FEFF).
// Such a value is written into email greetings and subjects and onto
// pages: a line break there starts a paragraph of someone else's words (a
// first name from a public form in a double opt-in email), an override
// makes a name or an address read backwards.
func SingleLine(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "is not valid UTF-8 text")
	}
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029:
			return &Error{Kind: KindInvalid, Code: "line_break", Field: field,
				Message: fmt.Sprintf("must be a single line; it contains a line break (U+%04X)", r)}
		case unicode.IsControl(r):
			return Invalid(field, "contains a control character (U+%04X)", r)
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x061C,
			r >= 0x200B && r <= 0x200F, r == 0xFEFF:
			return &Error{Kind: KindInvalid, Code: "invisible_character", Field: field,
				Message: fmt.Sprintf("contains an invisible formatting character (U+%04X)", r)}
		}
	}
	return nil
}

// Visible checks that s, an email address or another identifier compared
// by its characters, holds only characters that can be seen: no control
// character, no format character (Unicode category Cf: zero-width spaces
// and joiners, direction marks and overrides, the byte order mark U+FEFF,
// the soft hyphen U+00AD, the word joiner U+2060, U+180E), no separator
// but the plain space, and none of the other characters Unicode says to draw
// as nothing (variation selectors, Hangul fillers, U+034F). An address
// with one of these looks like another address on every page but is not
// equal to it, so it would get round the suppression of an erased address
// and the detection of duplicates, and mail would be sent to it. A plain
// space (U+0020) can be seen, and is left to the caller's own check of
// the value's form (an address with a space is not a valid address).
func Visible(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "is not valid UTF-8 text")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return Invalid(field, "contains a control character (U+%04X)", r)
		}
		if r != ' ' && unicode.In(r, unicode.Cf, unicode.Z, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) {
			return &Error{Kind: KindInvalid, Code: "invisible_character", Field: field,
				Message: fmt.Sprintf("contains an invisible character (U+%04X)", r)}
		}
	}
	return nil
}

// TrimText trims the text *p points at in place and checks that it is not
// empty, is plain text (PlainText) and has at most max characters, naming
// field in the error. A nil p (the field was not given) is left alone and
// is not an error.
func TrimText(field string, p *string, max int) error {
	return trimmed(field, p, max, PlainText)
}

// OptionalText is TrimText for text that may be empty.
func OptionalText(field string, p *string, max int) error {
	return optional(field, p, max, PlainText)
}

// TrimLine is TrimText for text that must be one line (SingleLine): names,
// subjects, labels.
func TrimLine(field string, p *string, max int) error {
	return trimmed(field, p, max, SingleLine)
}

// OptionalLine is TrimLine for a line that may be empty.
func OptionalLine(field string, p *string, max int) error {
	return optional(field, p, max, SingleLine)
}

func trimmed(field string, p *string, max int, check func(field, s string) error) error {
	if p == nil {
		return nil
	}
	*p = strings.TrimSpace(*p)
	if *p == "" {
		return Required(field)
	}
	if err := check(field, *p); err != nil {
		return err
	}
	if utf8.RuneCountInString(*p) > max {
		return Invalid(field, "must be at most %d characters", max)
	}
	return nil
}

func optional(field string, p *string, max int, check func(field, s string) error) error {
	if p == nil || strings.TrimSpace(*p) == "" {
		if p != nil {
			*p = ""
		}
		return nil
	}
	return trimmed(field, p, max, check)
}

// WithField returns err with the field it names rewritten by rename, so that
// an error from a nested input says where it is in the request
// ("consents[1].source", "opt_in_status"). An error that is not an *Error is
// returned as it is.
func WithField(err error, rename func(field string) string) error {
	e := As(err)
	if e == nil {
		return err
	}
	out := *e
	out.Field = rename(e.Field)
	return &out
}

// Field is the rename for WithField that names one field whatever the error
// named.
func Field(name string) func(string) string { return func(string) string { return name } }
