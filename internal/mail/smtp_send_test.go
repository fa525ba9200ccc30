package mail_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
)

func envelope(to string) *mail.Envelope {
	return &mail.Envelope{OutboxID: to, From: "Acme <news@acme.example>", To: to, Subject: "Hello " + to,
		Text: "Hi.\n.\nA line that is only a dot.", HTML: "<p>Hi.</p>", MessageID: to + "@acme.example", Date: time.Now(),
		ReturnPath: "bounces+" + strings.Split(to, "@")[0] + "@acme.example"}
}

// TestRefusalsKeepTheConnection sends four messages over one connection to
// a real SMTP server that offers PIPELINING and CHUNKING, where the second
// address does not exist and the third is refused for now: each outcome
// is its own, and the messages after a refusal arrive whole.
func TestRefusalsKeepTheConnection(t *testing.T) {
	srv := mailtest.Start(t)
	srv.Unknown = map[string]bool{"gone@example.com": true}
	srv.SetBusy("later@example.com", true)
	tr, err := mail.NewSMTP(srv.URL(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	to := []string{"a@example.com", "gone@example.com", "later@example.com", "d@example.com"}
	var envs []*mail.Envelope
	for _, a := range to {
		envs = append(envs, envelope(a))
	}
	errs := tr.Send(context.Background(), envs)
	if errs[0] != nil || errs[3] != nil {
		t.Fatalf("accepted addresses: %v, %v", errs[0], errs[3])
	}
	if !mail.IsBounce(errs[1]) {
		t.Fatalf("an address that does not exist: %v, want a bounce", errs[1])
	}
	if errs[2] == nil || mail.IsPermanent(errs[2]) || !strings.Contains(errs[2].Error(), "451") {
		t.Fatalf("an address refused for now: %v, want a temporary error", errs[2])
	}
	got := srv.Wait(t, 2)
	for i, want := range []string{"a@example.com", "d@example.com"} {
		m := got[i]
		if !slices.Equal(m.To, []string{want}) || m.Subject != "Hello "+want || !strings.Contains(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n.\nA line that is only a dot.") {
			t.Fatalf("message %d: to %v, subject %q, text %q", i, m.To, m.Subject, m.Text)
		}
		if m.From != "bounces+"+strings.Split(want, "@")[0]+"@acme.example" {
			t.Fatalf("message %d: envelope sender %q", i, m.From)
		}
	}
}

// scripted is an SMTP server that offers only the extensions given and
// records every command it reads, to check the order a client sends them
// in. It refuses MAIL FROM for addresses in refuseMail and RCPT TO for
// those in refuseRcpt.
type scripted struct {
	caps       []string
	refuseMail map[string]bool
	refuseRcpt map[string]bool

	mu       sync.Mutex
	commands []string
	messages []string
}

func (s *scripted) start(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return "smtp://" + ln.Addr().String() + "?tls=none"
}

func (s *scripted) record(cmd string) {
	s.mu.Lock()
	s.commands = append(s.commands, cmd)
	s.mu.Unlock()
}

func (s *scripted) serve(c net.Conn) {
	defer c.Close()
	t := textproto.NewConn(c)
	t.PrintfLine("220 scripted ready")
	mailOK, rcptOK := false, false
	for {
		line, err := t.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		s.record(verb)
		switch verb {
		case "EHLO":
			t.PrintfLine("250-scripted greets you")
			for _, c := range s.caps {
				t.PrintfLine("250-%s", c)
			}
			t.PrintfLine("250 HELP")
		case "MAIL":
			if s.refuseMail[address(arg)] {
				t.PrintfLine("451 4.3.0 not now")
				continue
			}
			mailOK = true
			t.PrintfLine("250 2.1.0 ok")
		case "RCPT":
			if !mailOK {
				t.PrintfLine("503 5.5.1 MAIL first")
				continue
			}
			if s.refuseRcpt[address(arg)] {
				t.PrintfLine("550 5.1.1 no such mailbox")
				continue
			}
			rcptOK = true
			t.PrintfLine("250 2.1.5 ok")
		case "DATA", "BDAT":
			var body []byte
			if verb == "BDAT" { // the chunk follows even when refused
				size, _ := strconv.Atoi(strings.Fields(arg)[0])
				body = make([]byte, size)
				if _, err := io.ReadFull(t.R, body); err != nil {
					return
				}
			}
			if !rcptOK {
				t.PrintfLine("554 5.5.1 no valid recipients")
				continue
			}
			if verb == "DATA" {
				t.PrintfLine("354 go ahead")
				if body, err = io.ReadAll(t.DotReader()); err != nil {
					return
				}
			}
			s.mu.Lock()
			s.messages = append(s.messages, string(body))
			s.mu.Unlock()
			mailOK, rcptOK = false, false
			t.PrintfLine("250 2.0.0 queued")
		case "RSET":
			mailOK, rcptOK = false, false
			t.PrintfLine("250 2.0.0 ok")
		case "QUIT":
			t.PrintfLine("221 bye")
			return
		default:
			t.PrintfLine("500 5.5.2 unknown command")
		}
	}
}

func address(arg string) string {
	_, a, _ := strings.Cut(arg, "<")
	a, _, _ = strings.Cut(a, ">")
	return a
}

// TestTransactionFitsWhatTheServerOffers sends the same three messages to
// servers offering less and less, where the second message's sender or
// recipient is refused, and checks the commands each server read: one
// flight with BDAT when it offers PIPELINING and CHUNKING, DATA otherwise,
// one command at a time without PIPELINING (so nothing follows a refused
// MAIL FROM but RSET), and never a RSET after a message taken.
func TestTransactionFitsWhatTheServerOffers(t *testing.T) {
	cases := []struct {
		name   string
		caps   []string
		refuse string // "mail" or "rcpt"
		want   []string
	}{
		{"pipelining and chunking", []string{"PIPELINING", "CHUNKING", "ENHANCEDSTATUSCODES"}, "rcpt",
			[]string{"EHLO", "MAIL", "RCPT", "BDAT", "MAIL", "RCPT", "BDAT", "RSET", "MAIL", "RCPT", "BDAT"}},
		{"pipelining", []string{"PIPELINING", "ENHANCEDSTATUSCODES"}, "rcpt",
			[]string{"EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"}},
		{"one at a time", []string{"ENHANCEDSTATUSCODES"}, "rcpt",
			[]string{"EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "RSET", "MAIL", "RCPT", "DATA"}},
		{"one at a time, sender refused", []string{"ENHANCEDSTATUSCODES"}, "mail",
			[]string{"EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RSET", "MAIL", "RCPT", "DATA"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{caps: tc.caps, refuseMail: map[string]bool{}, refuseRcpt: map[string]bool{}}
			second := envelope("b@example.com")
			if tc.refuse == "mail" {
				s.refuseMail[second.ReturnPath] = true
			} else {
				s.refuseRcpt["b@example.com"] = true
			}
			tr, err := mail.NewSMTP(s.start(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			errs := tr.Send(context.Background(), []*mail.Envelope{envelope("a@example.com"), second, envelope("c@example.com")})
			if errs[0] != nil || errs[2] != nil || errs[1] == nil {
				t.Fatalf("outcomes %v", errs)
			}
			if tc.refuse == "rcpt" && !mail.IsBounce(errs[1]) {
				t.Fatalf("refused recipient: %v, want a bounce", errs[1])
			}
			if tc.refuse == "mail" && (mail.IsPermanent(errs[1]) || !strings.Contains(errs[1].Error(), "451")) {
				t.Fatalf("sender refused for now: %v, want a temporary error", errs[1])
			}
			tr.Close()
			s.mu.Lock()
			defer s.mu.Unlock()
			got := slices.DeleteFunc(slices.Clone(s.commands), func(c string) bool { return c == "QUIT" })
			if !slices.Equal(got, tc.want) {
				t.Fatalf("commands\n got %v\nwant %v", got, tc.want)
			}
			if len(s.messages) != 2 {
				t.Fatalf("%d messages arrived, want 2", len(s.messages))
			}
			for i, m := range s.messages {
				to := []string{"a@example.com", "c@example.com"}[i]
				if slices.Contains(got, "BDAT") && strings.Count(m, "\n") != strings.Count(m, "\r\n") {
					t.Fatalf("message %d sent in a chunk has a bare line feed:\n%q", i, m)
				}
				m = strings.ReplaceAll(m, "\r\n", "\n") // the dot reader gives bare line feeds
				if !strings.Contains(m, "\nTo: <"+to+">\n") || !strings.Contains(m, "\n.\nA line that is only a dot.") {
					t.Fatalf("message %d did not arrive as it was sent:\n%s", i, m)
				}
			}
		})
	}
}

// TestDialCutShortIsNotBegun: a server that accepts the connection but
// never greets holds the dial until the sender's time runs out; the
// message is then reported as not begun (the context's error), to be
// tried again at once, not as the server refusing it.
func TestDialCutShortIsNotBegun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	tr, err := mail.NewSMTP("smtp://"+ln.Addr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errs := tr.Send(ctx, []*mail.Envelope{{From: "news@acme.example", To: "anna@example.com", Subject: "Hi", Text: "Hi"}})
	if !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Fatalf("a dial cut short: %v, want the context's error", errs[0])
	}
}
