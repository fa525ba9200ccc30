// Package mailtest runs a real SMTP server (emersion/go-smtp) inside a test
// process, so that tests see email as a mail server would: over SMTP, as
// MIME, with the links a contact would click.
package mailtest

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one email the server accepted.
type Message struct {
	From    string
	To      []string
	Subject string // decoded from RFC 2047
	Header  mail.Header
	Text    string // the text/plain part
	HTML    string // the text/html part, if any
	// Attachments are the parts whose Content-Disposition is attachment,
	// decoded, in order.
	Attachments []Attachment
	Raw         []byte
	// At is when the server had the whole message, before it answered
	// the client that it accepted it.
	At time.Time
}

// Attachment is a file a message carries.
type Attachment struct {
	Filename    string // the Content-Disposition's filename
	ContentType string // the media type, without parameters
	Data        []byte
}

// Links returns the http(s) links in the text part, in order.
func (m Message) Links() []string { return linkRE.FindAllString(m.Text, -1) }

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Server is an SMTP server on 127.0.0.1 that keeps what it receives.
type Server struct {
	Addr string
	srv  *smtp.Server
	mu   sync.Mutex
	msgs []Message
	more chan struct{}
	// Count, when set, makes the server only count messages (for
	// benchmarks): nothing is parsed or kept.
	Count bool
	// Unknown lists recipients the server refuses as non-existent
	// (550 5.1.1), as a mail server refuses an address that bounces.
	Unknown map[string]bool
	busy    map[string]bool
	// OnData, when set, is called for every message the server accepts,
	// in Count mode too, with its recipients and the time the server had
	// the whole message, before it answers the client. Tests that order
	// deliveries against other events use it. Set it before sending.
	OnData func(to []string, at time.Time)
	n      int
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	s := &Server{more: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = 10 << 20
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// SetBusy makes the server refuse the recipient for now (451 4.3.0), as a
// server under load does, until it is called again with false.
func (s *Server) SetBusy(to string, busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy == nil {
		s.busy = map[string]bool{}
	}
	s.busy[to] = busy
}

// SetCount switches Count mode on or off while the server runs.
func (s *Server) SetCount(count bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Count = count
}

// URL is the CONSENTRY_SMTP_URL that reaches this server.
func (s *Server) URL() string { return "smtp://" + s.Addr + "?tls=none" }

// Received returns how many messages arrived.
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Wait returns once n messages have arrived, failing the test if that takes
// longer than a generous limit. It waits on arrivals, not on time.
func (s *Server) Wait(t testing.TB, n int) []Message {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.n >= n {
			out := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		select {
		case <-s.more:
		case <-deadline.C:
			t.Fatalf("waited for %d messages, got %d", n, s.Received())
		}
	}
}

type session struct {
	s    *Server
	from string
	to   []string
}

func (x *session) AuthPlain(username, password string) error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if x.s.Unknown[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	x.s.mu.Lock()
	busy := x.s.busy[to]
	x.s.mu.Unlock()
	if busy {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	x.to = append(x.to, to)
	return nil
}
func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

func (x *session) Data(r io.Reader) error {
	s := x.s
	s.mu.Lock()
	count := s.Count
	s.mu.Unlock()
	var raw []byte
	var err error
	if count {
		_, err = io.Copy(io.Discard, r) // nothing is kept
	} else {
		raw, err = io.ReadAll(r)
	}
	if err != nil {
		return err
	}
	at := time.Now()
	if s.OnData != nil {
		s.OnData(x.to, at)
	}
	if count {
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
	} else {
		m := parse(raw)
		m.From, m.To, m.At = x.from, x.to, at
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		s.n++
		s.mu.Unlock()
	}
	select {
	case s.more <- struct{}{}:
	default:
	}
	return nil
}

// parse reads the headers and the text and HTML parts of a message.
func parse(raw []byte) Message {
	m := Message{Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return m
	}
	m.Header = msg.Header
	if s, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err == nil {
		m.Subject = s
	}
	walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body, &m)
	return m
}

func walk(contentType, encoding, disposition string, body io.Reader, m *Message) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p, m)
		}
	}
	text := decode(encoding, body)
	if d, dp, err := mime.ParseMediaType(disposition); err == nil && d == "attachment" {
		m.Attachments = append(m.Attachments, Attachment{Filename: dp["filename"], ContentType: mt, Data: []byte(text)})
		return
	}
	switch mt {
	case "text/plain":
		m.Text = text
	case "text/html":
		m.HTML = text
	}
}
