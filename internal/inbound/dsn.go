package inbound

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/consentry/consentry/internal/errs"
)

// Bounce is what a delivery status notification (RFC 3464) says of the
// message it came back for.
type Bounce int

const (
	// NotABounce: the message is no delivery status notification (an
	// automatic reply, someone writing to the bounce address), or one
	// that reports no failure (delayed, delivered, relayed, expanded).
	NotABounce Bounce = iota
	// SoftBounce: delivery failed with a temporary status (4.x.x), or
	// without saying which.
	SoftBounce
	// HardBounce: delivery failed with a permanent status (5.x.x): the
	// address does not work.
	HardBounce
)

// ReadBounce reads a raw message sent to a bounce address and returns the
// worst of what its delivery status part says of its recipients: a
// multipart/report whose message/delivery-status (or RFC 6533's
// message/global-delivery-status) part has a recipient whose Action is
// failed. A message in another form is read as the plain-text bounce of
// an older mail server when the mail system wrote it (readOldBounce), and
// is NotABounce otherwise. A message that does not parse is an
// invalid-input error naming the part, as Parse returns.
func ReadBounce(raw []byte) (Bounce, error) {
	if len(raw) > MaxMessageBytes {
		return NotABounce, ErrTooLarge
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return NotABounce, errs.Invalid("message", "is not an RFC 5322 message: %v", cleanErr(err))
	}
	b, err := readReport(m.Header.Get("Content-Type"), m.Body, 0, new(int))
	if err != nil || b != NotABounce {
		return b, err
	}
	if mt, _, _ := mime.ParseMediaType(m.Header.Get("Content-Type")); mt == "multipart/report" {
		return NotABounce, nil // a report that reports no failure
	}
	m, _ = mail.ReadMessage(bytes.NewReader(raw)) // it parsed above
	return readOldBounce(m), nil
}

// readReport looks for the delivery status part in a part of type
// contentType, down to maxDepth levels and maxParts parts (counted in
// *parts).
func readReport(contentType string, body io.Reader, depth int, parts *int) (Bounce, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return NotABounce, nil
	}
	if depth >= maxDepth || params["boundary"] == "" {
		return NotABounce, nil
	}
	worst := NotABounce
	r := multipart.NewReader(body, params["boundary"])
	for {
		p, err := r.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) {
			return worst, nil
		}
		if err != nil {
			return NotABounce, errs.Invalid("message", "has a malformed multipart body: %v", cleanErr(err))
		}
		if *parts++; *parts > maxParts {
			return NotABounce, errs.Invalid("message", "has more than %d MIME parts", maxParts)
		}
		var b Bounce
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch pt {
		case "message/delivery-status", "message/global-delivery-status":
			var in io.Reader = p
			if strings.EqualFold(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")), "base64") {
				in = base64.NewDecoder(base64.StdEncoding, p)
			}
			b, err = readStatus(in)
		default:
			b, err = readReport(p.Header.Get("Content-Type"), p, depth+1, parts)
		}
		if err != nil {
			return NotABounce, err
		}
		worst = max(worst, b)
	}
}

// readStatus reads the fields of a delivery status part: one group for
// the message, then one per recipient, separated by blank lines. Only a
// recipient's group has an Action, so every group is read alike, which
// also reads the few servers that run the groups together.
func readStatus(r io.Reader) (Bounce, error) {
	tp := textproto.NewReader(bufio.NewReader(io.LimitReader(r, MaxMessageBytes)))
	worst := NotABounce
	for group := 0; ; group++ {
		h, err := tp.ReadMIMEHeader()
		if len(h) > 0 {
			worst = max(worst, recipientBounce(h.Get("Action"), h.Get("Status")))
		}
		if errors.Is(err, io.EOF) {
			return worst, nil
		}
		if err != nil {
			return NotABounce, errs.Invalid("message", "has a delivery status that does not parse: %v", cleanErr(err))
		}
		if group > maxAddresses {
			return NotABounce, errs.Invalid("message", "reports on more than %d recipients", maxAddresses)
		}
	}
}

// recipientBounce is what one recipient's Action and Status fields say:
// only a failure is a bounce; a permanent status (5.x.x) makes it hard.
func recipientBounce(action, status string) Bounce {
	if !strings.EqualFold(strings.TrimSpace(action), "failed") {
		return NotABounce
	}
	if code, _, _ := strings.Cut(strings.TrimSpace(status), " "); strings.HasPrefix(code, "5.") {
		return HardBounce
	}
	return SoftBounce
}
