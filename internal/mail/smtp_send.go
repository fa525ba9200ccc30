package mail

import (
	"bytes"
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	"github.com/wneessen/go-mail/smtp"
)

// replyError is the server's refusal of one step of a mail transaction.
// The connection stays usable after it.
type replyError struct {
	step  string // MAIL FROM, RCPT TO, DATA or the message itself
	reply *textproto.Error
}

func (e replyError) Error() string {
	return fmt.Sprintf("smtp: %s refused: %d %s", e.step, e.reply.Code, e.reply.Msg)
}

// isReply reports whether err is a refusal by the server rather than a
// broken connection.
func isReply(err error) bool {
	var r replyError
	return errors.As(err, &r)
}

// classify marks a refusal as it should be treated: a 5xx refusal of the
// recipient with an enhanced code 5.1.x is a hard bounce, any other 5xx
// is Permanent, and a 4xx is worth trying again.
func classify(r replyError) error {
	switch {
	case r.reply.Code < 500:
		return r
	case r.step == "RCPT TO" && strings.HasPrefix(r.reply.Msg, "5.1."):
		return bouncedError{permanentError{r}}
	default:
		return Permanent(r)
	}
}

// transact hands one message to the server in one mail transaction, on a
// connection that has greeted it, in as few round trips as the server
// allows:
//   - with PIPELINING and CHUNKING, MAIL FROM, RCPT TO and the message as
//     one BDAT chunk go out in one write, and the replies are read
//     together (RFC 2920 and RFC 3030): one round trip;
//   - with PIPELINING only, MAIL FROM, RCPT TO and DATA go out together,
//     then the message: two round trips;
//   - otherwise each command waits for its reply.
//
// No RSET follows a message the server took: a transaction ends with its
// data (RFC 5321 section 4.1.1.4).
//
// It returns nil when the server took the message; a refusal (isReply),
// after which the connection is ready for the next message; afterData
// when the connection broke while the server may have taken the message;
// or any other error, after which the connection must be closed and the
// message was not taken.
func (s *SMTP) transact(c *smtp.Client, e *Envelope, buf *bytes.Buffer) error {
	buf.Reset()
	from, to, err := compose(buf, e)
	if err != nil {
		return Permanent(fmt.Errorf("smtp: %w", err))
	}
	mailCmd := "MAIL FROM:<" + from + ">"
	if !ascii(from, to) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return Permanent(errors.New("smtp: the server takes no address outside ASCII (no SMTPUTF8)"))
		}
		mailCmd += " SMTPUTF8"
	}
	steps := []step{{"MAIL FROM", mailCmd, 250}, {"RCPT TO", "RCPT TO:<" + to + ">", 25}}
	for _, st := range steps {
		if strings.ContainsAny(st.cmd, "\r\n") {
			return Permanent(errors.New("smtp: an address holds a line break"))
		}
	}
	if err := c.UpdateDeadline(s.timeout); err != nil {
		return err
	}
	pipelining, _ := c.Extension("PIPELINING")
	chunking, _ := c.Extension("CHUNKING")
	t := c.Text
	var refused *replyError
	dataOpen := false
	// reply reads the reply to st; it returns an error only when the
	// connection failed, and keeps the first refusal in refused.
	reply := func(st step) error {
		_, _, err := t.ReadResponse(st.want)
		var te *textproto.Error
		switch {
		case errors.As(err, &te):
			if refused == nil {
				refused = &replyError{step: st.name, reply: te}
			}
		case err != nil:
			return err
		default:
			dataOpen = st.name == "DATA"
		}
		return nil
	}
	end := func() error {
		if err := c.Reset(); err != nil {
			return err
		}
		return classify(*refused)
	}

	if pipelining && chunking {
		for _, st := range steps {
			t.W.WriteString(st.cmd + "\r\n")
		}
		fmt.Fprintf(t.W, "BDAT %d LAST\r\n", buf.Len())
		t.W.Write(buf.Bytes())
		if err := t.W.Flush(); err != nil {
			return err
		}
		// The whole message went out with its commands: from here on, a
		// broken connection may have left it with the server, even while
		// the replies to the commands are still being read.
		for _, st := range steps {
			if err := reply(st); err != nil {
				return afterData{err}
			}
		}
		if err := reply(step{name: "message", want: 250}); err != nil {
			return afterData{err}
		}
		if refused != nil {
			return end()
		}
		return nil
	}

	steps = append(steps, step{"DATA", "DATA", 354})
	if pipelining {
		for _, st := range steps {
			t.W.WriteString(st.cmd + "\r\n")
		}
		if err := t.W.Flush(); err != nil {
			return err
		}
	}
	for _, st := range steps {
		if !pipelining {
			if err := t.PrintfLine("%s", st.cmd); err != nil {
				return err
			}
		}
		if err := reply(st); err != nil {
			return err
		}
		if refused != nil && !pipelining {
			break
		}
	}
	if refused != nil {
		if dataOpen {
			// The server opened the data after a refused step: an empty
			// message ends it (RFC 2920 section 3.1).
			if err := t.PrintfLine("."); err != nil {
				return err
			}
			if _, _, err := t.ReadResponse(0); err != nil && !isTextproto(err) {
				return err
			}
		}
		return end()
	}
	w := t.DotWriter()
	if _, err := w.Write(buf.Bytes()); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return afterData{err}
	}
	if err := reply(step{name: "message", want: 250}); err != nil {
		return afterData{err}
	}
	if refused != nil {
		return classify(*refused) // the transaction ended with the data
	}
	return nil
}

// step is one command of a mail transaction and the reply code it wants
// (a single digit accepts any code in that class).
type step struct {
	name, cmd string
	want      int
}

// afterData is a broken connection after the whole message went out: the
// server may have taken it, so it is not tried again on a fresh
// connection at once.
type afterData struct{ error }

func (e afterData) Unwrap() error { return e.error }

func isTextproto(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}

// ascii reports whether every address is plain ASCII, which any server
// takes without SMTPUTF8.
func ascii(addrs ...string) bool {
	for _, a := range addrs {
		for i := 0; i < len(a); i++ {
			if a[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}
