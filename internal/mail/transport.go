package mail

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Envelope is one message ready to hand to a transport.
type Envelope struct {
	OutboxID  string
	From      string
	To        string
	Subject   string
	Text      string
	HTML      string
	Headers   map[string]string
	MessageID string // without angle brackets
	Date      time.Time
	// Attachments go after the bodies, each a part of its own.
	Attachments []Attachment
	// ReturnPath, when set, is the envelope sender (MAIL FROM), where
	// bounces go; otherwise From's address is.
	ReturnPath string
	// Begin, when set, is asked just before the message is begun: on
	// false it is not begun, and its error is ErrNotBegun. End, when set,
	// is called once a message that Begin let begin is over, whatever
	// became of it. A campaign's sender uses them so that a change that
	// stops email to the recipient waits for this message only, and only
	// once it has begun (see store.HandOver).
	Begin func() bool
	End   func()
}

// ErrNotBegun is the error of a message a transport did not begin because
// its Envelope.Begin said no: nothing of it reached the mail server.
var ErrNotBegun = errors.New("mail: not begun: a change to its recipient came first")

// begin asks e whether it may begin now.
func (e *Envelope) begin() bool { return e.Begin == nil || e.Begin() }

// end tells e that its message, begun, is over.
func (e *Envelope) end() {
	if e.End != nil {
		e.End()
	}
}

// Transport hands messages to the world (or, in development, to the
// mailbox).
type Transport interface {
	// Name says which transport is in use, for the log.
	Name() string
	// Send delivers envs and returns one error per envelope, nil for each
	// one accepted. A Permanent error will not get better by retrying.
	// It asks each envelope's Begin just before beginning its message,
	// and calls its End once that message is over (see Envelope).
	Send(ctx context.Context, envs []*Envelope) []error
	Close() error
}

// bouncedError is a permanent refusal of the address itself: a hard
// bounce given while sending.
type bouncedError struct{ permanentError }

// IsBounce reports whether err says the address does not exist (an SMTP
// 5.1.x refusal of the recipient), so that it counts as a hard bounce.
func IsBounce(err error) bool {
	var b bouncedError
	return errors.As(err, &b)
}

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// Permanent marks err as one that retrying will not cure.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked Permanent, a bounce included.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || IsBounce(err)
}

// SMTP sends through an SMTP server, over a small pool of connections kept
// open between batches. go-mail dials, greets, starts TLS and
// authenticates, and writes each message's MIME; the mail transaction
// itself is ours (smtp_send.go), because go-mail waits for a reply to each
// command and resets the session after each message, which costs a
// campaign two round trips per recipient that PIPELINING (RFC 2920) saves.
type SMTP struct {
	host    string
	opts    []gomail.Option
	timeout time.Duration
	conns   int
	idle    chan *smtp.Client
}

// NewSMTP reads an smtp:// (STARTTLS, required; ?tls=opportunistic uses it
// when offered, ?tls=none never, for a relay on the same machine) or
// smtps:// (TLS from the start) URL, with optional user:password for
// authentication and ?timeout= (how long one step of the conversation may
// take, 10s by default, 100ms to 2m), and keeps up to conns connections.
func NewSMTP(raw string, conns int) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("not an smtp:// or smtps:// URL with a host")
	}
	timeout := 10 * time.Second // a step, so one message ends well within the lease
	if v := u.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > 2*time.Minute {
			return nil, fmt.Errorf("timeout= must be a duration from 100ms to 2m, such as 30s")
		}
		timeout = d
	}
	opts := []gomail.Option{gomail.WithTimeout(timeout), gomail.WithoutNoop()}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "587"
		}
		switch u.Query().Get("tls") {
		case "", "required":
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		case "opportunistic":
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
		case "none":
			opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
		default:
			return nil, fmt.Errorf("tls= must be opportunistic, required or none")
		}
	case "smtps":
		if port == "" {
			port = "465"
		}
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("scheme %q: use smtp:// or smtps://", u.Scheme)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("port %q is not a number", port)
	}
	opts = append(opts, gomail.WithPort(p))
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	if conns < 1 {
		conns = 1
	}
	return &SMTP{host: u.Hostname(), opts: opts, timeout: timeout, conns: conns, idle: make(chan *smtp.Client, conns)}, nil
}

// Name is "smtp host:port" without credentials.
func (s *SMTP) Name() string { return "smtp " + s.host }

func (s *SMTP) client(ctx context.Context) (*smtp.Client, error) {
	select {
	case c := <-s.idle:
		return c, nil
	default:
	}
	return s.dial(ctx)
}

// dial opens a connection that has greeted the server, started TLS as
// the URL asks and authenticated.
func (s *SMTP) dial(ctx context.Context) (*smtp.Client, error) {
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return nil, err
	}
	return c.DialToSMTPClientWithContext(ctx)
}

func (s *SMTP) release(c *smtp.Client) {
	select {
	case s.idle <- c:
	default:
		c.Quit()
	}
}

// Send spreads envs over up to conns connections.
func (s *SMTP) Send(ctx context.Context, envs []*Envelope) []error {
	errs := make([]error, len(envs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(s.conns, len(envs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *smtp.Client
			var buf bytes.Buffer
			for i := range work {
				if err := ctx.Err(); err != nil {
					errs[i] = err // not handed over; tried again later
					continue
				}
				var err error
				pooled := c == nil
				if c == nil {
					if c, err = s.client(ctx); err != nil {
						if ctx.Err() != nil {
							// The dial ran out of time: the message was
							// not begun, whatever the dialer says.
							err = ctx.Err()
						}
						errs[i], c = err, nil
						continue
					}
				}
				if !envs[i].begin() {
					errs[i] = ErrNotBegun
					continue
				}
				err = s.transact(c, envs[i], &buf)
				var sent afterData
				if err != nil && pooled && !isReply(err) && !errors.As(err, &sent) {
					// An idle pooled connection may have been closed by the
					// server: one more try on a fresh one.
					c.Close()
					if c, err = s.dial(ctx); err == nil {
						err = s.transact(c, envs[i], &buf)
					}
				}
				envs[i].end()
				if err != nil && !isReply(err) {
					if c != nil {
						c.Close() // the connection's state is unknown now
					}
					c = nil
				}
				errs[i] = err
			}
			if c != nil {
				s.release(c)
			}
		}()
	}
	for i := range envs {
		work <- i
	}
	close(work)
	wg.Wait()
	return errs
}

// Close closes the idle connections.
func (s *SMTP) Close() error {
	for {
		select {
		case c := <-s.idle:
			c.Quit()
		default:
			return nil
		}
	}
}

// Mailbox is the development transport: messages are stored in the
// database and shown at /dev/mailbox and GET /api/v1/mailbox, so a new
// installation can follow a double opt-in link without any mail server.
type Mailbox struct {
	DB  *store.DB
	Now func() time.Time
}

// Name is "dev mailbox".
func (m *Mailbox) Name() string { return "dev mailbox" }

// Send stores every envelope that may begin in one transaction.
func (m *Mailbox) Send(ctx context.Context, envs []*Envelope) []error {
	errs := make([]error, len(envs))
	var begun []*Envelope
	for i, e := range envs {
		if e.begin() {
			begun = append(begun, e)
		} else {
			errs[i] = ErrNotBegun
		}
	}
	err := m.DB.Write(ctx, func(tx *store.Tx) error {
		now := store.Micros(m.Now())
		for _, e := range begun {
			headers := headerJSON(e.Headers)
			if _, err := tx.Exec(`INSERT INTO mailbox (id, outbox_id, to_address, from_address, subject, text_body, html_body, headers, delivered_at)
				VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`, e.OutboxID, e.To, e.From, e.Subject, e.Text, e.HTML, headers, now); err != nil {
				return fmt.Errorf("mail: store in mailbox: %w", err)
			}
		}
		return nil
	})
	for _, e := range begun {
		e.end()
	}
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	return errs
}

// Close does nothing.
func (m *Mailbox) Close() error { return nil }

func headerJSON(h map[string]string) string {
	if len(h) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(h) // a map of strings always encodes
	return string(b)
}

// MailboxMessage is a message in the dev mailbox.
type MailboxMessage struct {
	ID          string              `json:"id"`
	To          string              `json:"to"`
	From        string              `json:"from"`
	Subject     string              `json:"subject"`
	Text        string              `json:"text"`
	HTML        string              `json:"html,omitempty"`
	Headers     map[string]string   `json:"headers"`
	Attachments []MailboxAttachment `json:"attachments" doc:"the message's attachments, while its content is kept (sent_body_days)"`
	DeliveredAt time.Time           `json:"delivered_at"`
}

// MailboxAttachment names an attachment of a dev-mailbox message; N is
// its place among the message's attachments, from 0.
type MailboxAttachment struct {
	N           int    `json:"n"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size" doc:"in bytes"`
}

// MailboxMessages returns the newest messages in the dev mailbox, at most
// limit, each with its attachments (none is an empty list); an empty list
// when there are none.
func MailboxMessages(ctx context.Context, db *store.DB, limit int) ([]MailboxMessage, error) {
	msgs, err := store.QueryAll(ctx, db.Read, func(row store.Scanner) (MailboxMessage, error) {
		var m MailboxMessage
		var headers string
		var at int64
		err := row.Scan(&m.ID, &m.To, &m.From, &m.Subject, &m.Text, &m.HTML, &headers, &at)
		m.DeliveredAt = store.FromMicros(at)
		json.Unmarshal([]byte(headers), &m.Headers)
		m.Attachments = []MailboxAttachment{}
		return m, err
	}, `SELECT id, to_address, from_address, subject, text_body, html_body, headers, delivered_at FROM mailbox
		ORDER BY delivered_at DESC, id DESC LIMIT $1`, limit)
	if err != nil || len(msgs) == 0 {
		return msgs, err
	}
	ids := make([]string, len(msgs))
	at := map[string]int{}
	for i, m := range msgs {
		ids[i], at[m.ID] = m.ID, i
	}
	type named struct {
		outbox string
		a      MailboxAttachment
	}
	cond, args := store.Among(db.Dialect, 1, ids)
	list, err := store.QueryAll(ctx, db.Read, func(row store.Scanner) (named, error) {
		var n named
		return n, row.Scan(&n.outbox, &n.a.N, &n.a.Filename, &n.a.ContentType, &n.a.Size)
	}, `SELECT outbox_id, n, filename, content_type, LENGTH(data) FROM outbox_attachments WHERE outbox_id `+cond+` ORDER BY outbox_id, n`, args...)
	if err != nil {
		return nil, fmt.Errorf("mail: read mailbox attachments: %w", err)
	}
	for _, n := range list {
		m := &msgs[at[n.outbox]]
		m.Attachments = append(m.Attachments, n.a)
	}
	return msgs, nil
}

// MailboxFile returns attachment n of the dev-mailbox message id, with its
// content; an errs.KindNotFound error when the mailbox holds no such
// message, or the message no such attachment (its content was removed).
func MailboxFile(ctx context.Context, db *store.DB, id string, n int) (MailboxAttachment, []byte, error) {
	a := MailboxAttachment{N: n}
	var data []byte
	err := db.Read.QueryRowContext(ctx, `SELECT a.filename, a.content_type, a.data FROM outbox_attachments a
		JOIN mailbox m ON m.outbox_id = a.outbox_id WHERE m.id = $1 AND a.n = $2`, id, n).Scan(&a.Filename, &a.ContentType, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return a, nil, errs.NotFound("attachment", "")
	}
	if err != nil {
		return a, nil, fmt.Errorf("mail: read mailbox attachment: %w", err)
	}
	a.Size = int64(len(data))
	return a, data, nil
}

// PurgeMailboxTx deletes the dev-mailbox messages delivered before before.
func PurgeMailboxTx(tx *store.Tx, before time.Time) error {
	if _, err := tx.Exec(`DELETE FROM mailbox WHERE delivered_at < $1`, store.Micros(before)); err != nil {
		return fmt.Errorf("mail: purge mailbox: %w", err)
	}
	return nil
}
