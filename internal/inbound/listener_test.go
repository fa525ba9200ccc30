package inbound_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func code(err error) int {
	var e *smtp.SMTPError
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// TestListenerLimits: a connection delivers at most PerConnection
// messages, and a client address that opens sessions or delivers faster
// than its limit is told to come back later (421), without anything
// recorded; the recipient must be the privacy address, in any case.
func TestListenerLimits(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setup(t, db)
		limit := clientip.NewLimiter(1, 3, time.Minute)
		limit.Now = f.clock.Now // the limiter's clock stands still with the test's
		l := &inbound.Listener{Service: f.svc, Addr: "127.0.0.1:0", Domain: "acme.example", Limit: limit, PerConnection: 2}
		addr, err := l.Start()
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()

		c, err := smtp.Dial(addr.String()) // session 1 of 3
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.example"); err != nil {
			t.Fatal(err)
		}
		if err := c.Mail("a@example.org", nil); err != nil {
			t.Fatal(err)
		}
		if got := code(c.Rcpt("someone@acme.example", nil)); got != 550 {
			t.Fatalf("another recipient: %d", got)
		}
		c.Reset()
		send := func(c *smtp.Client, from string) error {
			return c.SendMail(from, []string{"PRIVACY@acme.example"}, bytes.NewReader(raw(from, "DELETE")))
		}
		for _, from := range []string{"a@example.org", "b@example.org"} { // messages 2 and 3 of 3
			if err := send(c, from); err != nil {
				t.Fatalf("%s: %v", from, err)
			}
		}
		if got := code(send(c, "c@example.org")); got != 421 {
			t.Fatalf("third message in one connection: %d", got)
		}
		c2, err := smtp.Dial(addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if got := code(c2.Hello("client.example")); got != 421 {
			t.Fatalf("a session over the limit: %d", got)
		}
		if n := len(f.requests()); n != 2 {
			t.Fatalf("%d requests", n)
		}
	})
}
