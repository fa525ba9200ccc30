package inbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/errs"
)

// Listener receives mail for the privacy address, and bounces sent to
// campaign messages' Return-Paths, over SMTP (CONSENTRY_INBOUND_SMTP_ADDR),
// for an MX record or a relay that forwards it, and hands each message to
// the Service. It accepts only those recipients, needs no AUTH (it relays
// nothing: every message ends here), and answers in SMTP's terms: 550 for
// another recipient, 552 for a message over MaxMessageBytes, 550 for one
// that does not parse, 421 for a client over its limit, 451 when the
// database fails.
type Listener struct {
	Service *Service
	// Addr is host:port to listen on.
	Addr string
	// Domain is the name the server greets with.
	Domain string
	Log    *slog.Logger
	// Limit counts each client address's sessions and messages; nil
	// means DefaultLimit.
	Limit *clientip.Limiter
	// PerConnection is how many messages one connection may deliver; 0
	// means 20.
	PerConnection int

	srv *smtp.Server
	ln  net.Listener
}

// DefaultLimit lets a client address open sessions and deliver messages
// 30 times a minute on average, in bursts of up to 60: more than any
// person writing to a privacy address needs.
func DefaultLimit() *clientip.Limiter { return clientip.NewLimiter(30, 60, 10*time.Minute) }

// Start listens and serves in the background until Close. It returns the
// address it listens on (useful with port 0).
func (l *Listener) Start() (net.Addr, error) {
	if l.Limit == nil {
		l.Limit = DefaultLimit()
	}
	if l.PerConnection == 0 {
		l.PerConnection = 20
	}
	if l.Log == nil {
		l.Log = slog.New(slog.DiscardHandler)
	}
	s := smtp.NewServer(smtp.BackendFunc(l.newSession))
	s.Domain = l.Domain
	s.MaxMessageBytes = MaxMessageBytes
	s.MaxRecipients = 10
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	s.ErrorLog = quietLog{l.Log}
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return nil, fmt.Errorf("inbound: listen on %s: %w", l.Addr, err)
	}
	l.srv, l.ln = s, ln
	go func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			l.Log.Error("inbound SMTP stopped", "err", err)
		}
	}()
	return ln.Addr(), nil
}

// BoundAddr is the address the listener listens on once started, or nil.
func (l *Listener) BoundAddr() net.Addr {
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Close stops listening and ends open connections.
func (l *Listener) Close() error {
	if l.srv == nil {
		return nil
	}
	return l.srv.Close()
}

// quietLog passes go-smtp's connection errors to the log at debug level
// without their text, which names the client's address.
type quietLog struct{ log *slog.Logger }

func (q quietLog) Printf(string, ...any) { q.log.Debug("inbound SMTP connection error") }
func (q quietLog) Println(...any)        { q.log.Debug("inbound SMTP connection error") }

var (
	errTooMany = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many messages from your address; try again later"}
	errNoSuch  = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such recipient here"}
	errTooBig  = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: fmt.Sprintf("Message larger than %d bytes", MaxMessageBytes)}
	errTempo   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure; try again later"}
)

func (l *Listener) newSession(c *smtp.Conn) (smtp.Session, error) {
	key := ""
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		key = clientip.LimitKey(ap.Addr())
	}
	if !l.Limit.Allow(key) {
		return nil, errTooMany
	}
	return &session{l: l, key: key}, nil
}

// session is one SMTP connection; it counts the messages delivered. A
// message's recipients are the privacy address (privacy), campaign
// messages' Return-Paths (bounces), or both.
type session struct {
	l        *Listener
	key      string // the client address's key in the limiter
	messages int
	privacy  bool
	bounces  []int64
}

func (s *session) Reset()        { s.privacy, s.bounces = false, nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(string, *smtp.MailOptions) error { return nil }

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := s.l.Service.Accepts(ctx, to)
	if err != nil {
		s.l.Log.Error("inbound SMTP: read settings", "err", err)
		return errTempo
	}
	if ok {
		s.privacy = true
		return nil
	}
	if s.l.Service.Bounces != nil && len(s.bounces) < maxAddresses {
		id, ok, err := s.l.Service.Bounces.Recipient(ctx, to)
		if err != nil {
			s.l.Log.Error("inbound SMTP: read a Return-Path", "err", err)
			return errTempo
		}
		if ok {
			s.bounces = append(s.bounces, id)
			return nil
		}
	}
	return errNoSuch
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r) // bounded by the server's MaxMessageBytes
	if errors.Is(err, smtp.ErrDataTooLarge) {
		return errTooBig
	}
	if err != nil {
		return err
	}
	// A bounce to a Return-Path this installation made (which a forger
	// cannot make) is not counted against the client's limit: a mail
	// relay returns a large campaign's bounces from one address.
	bounceOnly := len(s.bounces) > 0 && !s.privacy
	if s.messages++; s.messages > s.l.PerConnection || (!bounceOnly && !s.l.Limit.Allow(s.key)) {
		return errTooMany
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(s.bounces) > 0 {
		// The envelope says which messages bounced; a bounce is never a
		// request, even if it went to the privacy address too.
		_, err = s.l.Service.HandleBounce(ctx, raw, s.bounces)
		return smtpError(err, s.l.Log)
	}
	_, err = s.l.Service.Handle(ctx, raw)
	return smtpError(err, s.l.Log)
}

// smtpError answers a Service error in SMTP's terms.
func smtpError(err error, log *slog.Logger) error {
	if err == nil {
		return nil
	}
	if err == ErrTooLarge {
		return errTooBig
	}
	if e := errs.As(err); e != nil {
		code, enhanced := 550, smtp.EnhancedCode{5, 6, 0}
		if e == ErrOff {
			enhanced = smtp.EnhancedCode{5, 1, 1}
		}
		return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: "Message refused: " + e.Error()}
	}
	log.Error("inbound SMTP: handle message", "err", err)
	return errTempo
}
