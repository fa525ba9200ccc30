package inbound

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/internal/errs"
)

// TestReadBounce: a delivery status notification is read for the worst
// of its recipients' outcomes, whatever its encoding; anything else sent
// to a bounce address is no bounce, and a message that does not parse is
// refused naming the part.
func TestReadBounce(t *testing.T) {
	file := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	report := func(status string) string {
		return "From: MAILER-DAEMON@relay.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n" +
			"--R\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--R\r\nContent-Type: message/delivery-status\r\n\r\n" + status + "--R--\r\n"
	}
	for _, c := range []struct {
		name, raw string
		want      Bounce
	}{
		{"a hard bounce from Postfix", file("bounce-hard.eml"), HardBounce},
		{"a full mailbox, base64", file("bounce-soft-base64.eml"), SoftBounce},
		{"delayed", file("bounce-delayed.eml"), NotABounce},
		{"an out-of-office reply", file("bounce-out-of-office.eml"), NotABounce},
		// Older servers' plain-text bounces.
		{"qmail", file("bounce-qmail.eml"), HardBounce},
		{"Exim without a report", file("bounce-exim.eml"), HardBounce},
		{"Exim's delay warning", file("bounce-exim-delay.eml"), NotABounce},
		{"an old Exchange report", file("bounce-exchange-ndr.eml"), HardBounce},
		{"a full mailbox in words", "From: MAILER-DAEMON@mx.example\r\n\r\nYour message could not be delivered: 552 5.2.2 mailbox full\r\n", SoftBounce},
		{"failed, without saying how", "From: postmaster@mx.example\r\nSubject: Returned mail\r\n\r\nThe message could not be delivered.\r\n", SoftBounce},
		{"Exim's failed recipients, nothing more", "From: someone@mx.example\r\nX-Failed-Recipients: a@x.example\r\n\r\nSee the log.\r\n", SoftBounce},
		{"the mail system, not about a failure", "From: postmaster@mx.example\r\nSubject: Welcome\r\n\r\nYour domain is set up.\r\n", NotABounce},
		{"a person quoting an error", "From: Sam <sam@example.org>\r\n\r\nI got this: 550 5.1.1 user unknown. This is a permanent error.\r\n", NotABounce},
		{"a report that reports no failure", file("bounce-delayed.eml"), NotABounce},
		{"two recipients, the worst counts", report("Reporting-MTA: dns; r.example\r\n\r\nFinal-Recipient: rfc822; a@x.example\r\nAction: failed\r\nStatus: 4.4.7\r\n\r\nFinal-Recipient: rfc822; b@x.example\r\nAction: FAILED\r\nStatus: 5.2.1 (disabled)\r\n"), HardBounce},
		{"failed without a status", report("Reporting-MTA: dns; r.example\r\n\r\nFinal-Recipient: rfc822; a@x.example\r\nAction: failed\r\n"), SoftBounce},
		{"delivered", report("Reporting-MTA: dns; r.example\r\n\r\nFinal-Recipient: rfc822; a@x.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n"), NotABounce},
		{"the groups run together", report("Reporting-MTA: dns; r.example\r\nFinal-Recipient: rfc822; a@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"), HardBounce},
		{"quoted-printable", "From: m@r.example\r\nContent-Type: multipart/report; boundary=Q\r\n\r\n--Q\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nFinal-Recipient: rfc822; a@x.example\r\nAction: fail=\r\ned\r\nStatus: 5.1.1\r\n--Q--\r\n", HardBounce},
		{"global (RFC 6533)", "From: m@r.example\r\nContent-Type: multipart/report; report-type=global-delivery-status; boundary=G\r\n\r\n--G\r\nContent-Type: message/global-delivery-status\r\n\r\nFinal-Recipient: utf-8; å@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n--G--\r\n", HardBounce},
	} {
		got, err := ReadBounce([]byte(c.raw))
		if err != nil || got != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
		}
	}
	for _, raw := range []string{
		"no headers at all",
		"From: m@r.example\r\nContent-Type: multipart/report; boundary=Z\r\n\r\n--Z\r\nContent-Type: message/delivery-status\r\n\r\nAction failed without a colon\r\n--Z--\r\n",
	} {
		if _, err := ReadBounce([]byte(raw)); errs.As(err) == nil || errs.As(err).Field != "message" {
			t.Errorf("%q: %v, want an invalid-input error on message", raw, err)
		}
	}
}

// FuzzReadBounce feeds the bounce reader arbitrary messages: it never
// panics, and refuses only with an invalid-input error naming a part.
func FuzzReadBounce(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := ReadBounce(raw)
		if err != nil {
			if e := errs.As(err); e == nil || e.Kind != errs.KindInvalid || e.Field == "" {
				t.Fatalf("not an invalid-input error naming a part: %v", err)
			}
			return
		}
		if b < NotABounce || b > HardBounce {
			t.Fatalf("bounce %d", b)
		}
	})
}
