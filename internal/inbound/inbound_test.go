package inbound_test

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

const privacy = "privacy@acme.example"

// clock is a fake clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time       { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)  { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func newClock() *clock                { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }
func raw(from, subject string) []byte { return rawTo(from, privacy, subject) }
func rawTo(from, to, subject string) []byte {
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: <" + uuid.NewString() +
		"@x>\r\n\r\nPlease erase my data.\r\n")
}

type fixture struct {
	t     testing.TB
	db    *store.DB
	clock *clock
	svc   *inbound.Service
	d     *mail.Deliverer
	told  []string // requests the operator was told of
}

func setup(t testing.TB, db *store.DB) *fixture {
	tmpl, err := mail.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, clock: newClock()}
	f.svc = &inbound.Service{DB: db, Mail: tmpl, BaseURL: "https://consent.acme.example", Sender: "Acme", OwnAddress: "consentry@acme.example", Now: f.clock.Now,
		Notify: func(_ *store.Tx, r *requests.Request, _ time.Time) error { f.told = append(f.told, r.ID); return nil }}
	f.d = &mail.Deliverer{DB: db, Transport: &mail.Mailbox{DB: db, Now: f.clock.Now}, Log: slog.New(slog.DiscardHandler),
		From: "Acme <privacy@acme.example>", Domain: "acme.example", Now: f.clock.Now, Batch: 50, Lease: time.Minute, MaxAttempts: 3,
		BaseURL: "https://consent.acme.example"}
	if _, err := settings.Update(context.Background(), db, settings.Patch{PrivacyAddress: ptr(privacy)}, audit.Actor{Kind: "user"}, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return f
}

func ptr[T any](v T) *T { return &v }

// contact stores a contact with the address and returns its id.
func (f *fixture) contact(email string) string {
	id := uuid.NewString()
	err := f.db.Write(context.Background(), func(tx *store.Tx) error {
		return contactstate.InsertTx(tx, &contactstate.Profile{ID: id, Ref: uuid.NewString(), Kind: "contact", Email: email, Fields: map[string]any{}}, contactstate.OptInNone, f.clock.Now())
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) handle(m []byte) string {
	f.t.Helper()
	out, err := f.svc.Handle(context.Background(), m)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// deliver sends what is queued and returns the mailbox, newest first.
func (f *fixture) deliver() []mail.MailboxMessage {
	f.t.Helper()
	if _, err := f.d.RunDue(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	msgs, err := mail.MailboxMessages(context.Background(), f.db, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	return msgs
}

func (f *fixture) requests() []*requests.Request {
	f.t.Helper()
	out, err := requests.List(context.Background(), f.db.Read, requests.Query{}, f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

var tokenRE = regexp.MustCompile(`/r/([A-Za-z0-9_-]{43})\?lang=`)

// TestKnownAndUnknownSendersAlike: a contact and a stranger who write the
// same message get the same outcome and the same email, word for word but
// for the link; each request waits as received until its link is
// followed, and only then is verified, noted on the contact and told to
// the operator.
func TestKnownAndUnknownSendersAlike(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setup(t, db)
		known := f.contact("Kim@Example.com")
		if o := f.handle(raw(`"Kim" <kim@example.COM>`, "=?UTF-8?B?UkFERVJB?=")); o != inbound.OutcomeRequested {
			t.Fatalf("known: %s", o)
		}
		if o := f.handle(raw("stranger@example.net", "=?UTF-8?B?UkFERVJB?=")); o != inbound.OutcomeRequested {
			t.Fatalf("unknown: %s", o)
		}
		msgs := f.deliver()
		if len(msgs) != 2 {
			t.Fatalf("%d emails", len(msgs))
		}
		byTo := map[string]mail.MailboxMessage{}
		for _, m := range msgs {
			byTo[strings.ToLower(m.To)] = m
		}
		a, b := byTo["kim@example.com"], byTo["stranger@example.net"]
		strip := func(s string) string { return tokenRE.ReplaceAllString(s, "/r/TOKEN?lang=") }
		if a.Subject != b.Subject || strip(a.Text) != strip(b.Text) || strip(a.HTML) != strip(b.HTML) || a.Subject != "Bekräfta din begäran om radering" {
			t.Fatalf("the emails differ:\n%s\n%s", a.Text, b.Text)
		}
		rs := f.requests()
		if len(rs) != 2 {
			t.Fatalf("%d requests", len(rs))
		}
		for _, r := range rs {
			if r.Kind != requests.KindErasure || r.Channel != requests.ChannelEmail || r.Status != requests.StatusReceived {
				t.Fatalf("%+v", r)
			}
			if (r.ContactID == known) == (r.Address == "stranger@example.net") {
				t.Fatalf("request about %q / %q", r.ContactID, r.Address)
			}
		}
		if len(f.told) != 0 {
			t.Fatal("the operator was told before confirmation")
		}
		// The outbox never held the links.
		var links int
		db.Read.QueryRow(`SELECT count(*) FROM outbox WHERE text_body LIKE '%/r/link-%'`).Scan(&links)
		if links != 2 {
			t.Fatalf("%d outbox bodies with placeholders", links)
		}

		for _, m := range []mail.MailboxMessage{a, b} {
			secret := tokenRE.FindStringSubmatch(m.Text)[1]
			if ok, err := f.svc.Pending(context.Background(), secret); err != nil || !ok {
				t.Fatalf("pending: %v %v", ok, err)
			}
			if err := f.svc.Confirm(context.Background(), secret); err != nil {
				t.Fatal(err)
			}
			if err := f.svc.Confirm(context.Background(), secret); err != inbound.ErrNotConfirmed {
				t.Fatalf("second confirmation: %v", err)
			}
			if ok, _ := f.svc.Pending(context.Background(), secret); ok {
				t.Fatal("a used link still pending")
			}
		}
		for _, r := range f.requests() {
			if r.Status != requests.StatusVerified {
				t.Fatalf("after confirming: %+v", r)
			}
		}
		if len(f.told) != 2 {
			t.Fatalf("operator told of %d", len(f.told))
		}
		db.Write(context.Background(), func(tx *store.Tx) error {
			st, err := contactstate.Load(tx, known)
			if err != nil || !st.ErasureRequested {
				t.Fatalf("erasure not noted: %+v %v", st, err)
			}
			return nil
		})
		if err := f.svc.Confirm(context.Background(), strings.Repeat("A", 43)); err != inbound.ErrNotConfirmed {
			t.Fatalf("unknown token: %v", err)
		}
	})
}

// TestOneConfirmationADay: however many requests arrive in an address's
// name, it gets one confirmation a day; the day is the fake clock's.
func TestOneConfirmationADay(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setup(t, db)
		f.contact("kim@example.com")
		for _, from := range []string{"kim@example.com", "x@unknown.example"} {
			if o := f.handle(raw(from, "DELETE")); o != inbound.OutcomeRequested {
				t.Fatalf("%s: %s", from, o)
			}
			f.clock.Add(23 * time.Hour)
			if o := f.handle(raw(strings.ToUpper(from), "Re: delete")); o != inbound.OutcomeLimited {
				t.Fatalf("%s within the day: %s", from, o)
			}
			f.clock.Add(time.Hour)
			if o := f.handle(raw(from, "ERASE")); o != inbound.OutcomeRequested {
				t.Fatalf("%s a day later: %s", from, o)
			}
		}
		if n := len(f.deliver()); n != 4 {
			t.Fatalf("%d emails, want 4", n)
		}
		if n := len(f.requests()); n != 4 {
			t.Fatalf("%d requests, want 4", n)
		}
		if err := db.Write(context.Background(), func(tx *store.Tx) error { return inbound.PurgeTx(tx, f.clock.Now().Add(25*time.Hour)) }); err != nil {
			t.Fatal(err)
		}
		var left int
		db.Read.QueryRow(`SELECT count(*) FROM inbound_confirmations`).Scan(&left)
		if left != 0 {
			t.Fatalf("%d limits left after a day", left)
		}
	})
}

// TestWhatIsNotARequest: the privacy address in neither To nor Cc, no
// keyword, an automatic reply, or mail from the privacy address itself
// record nothing; with no privacy address set, inbound requests are off.
func TestWhatIsNotARequest(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setup(t, db)
		for name, m := range map[string][]byte{
			"no keyword":     raw("a@example.com", "Question about my data"),
			"not addressed":  rawTo("a@example.com", "someone@acme.example", "DELETE"),
			"auto reply":     []byte("From: a@example.com\r\nTo: " + privacy + "\r\nSubject: DELETE\r\nAuto-Submitted: auto-replied\r\n\r\nx"),
			"from ourselves": raw(privacy, "DELETE"),
			"from Consentry": raw("Acme <Consentry@acme.example>", "Data subject request: DELETE"),
		} {
			if o := f.handle(m); o != inbound.OutcomeIgnored {
				t.Errorf("%s: %s", name, o)
			}
		}
		if n := len(f.requests()); n != 0 {
			t.Fatalf("%d requests", n)
		}
		if c := f.svc.Counts(); c[inbound.OutcomeIgnored] != 5 {
			t.Fatalf("counts %v", c)
		}
		if ok, _ := f.svc.Accepts(context.Background(), "PRIVACY@acme.example"); !ok {
			t.Fatal("the privacy address is not accepted")
		}
		if ok, _ := f.svc.Accepts(context.Background(), "other@acme.example"); ok {
			t.Fatal("another address is accepted")
		}
		settings.Update(context.Background(), db, settings.Patch{PrivacyAddress: ptr("")}, audit.Actor{Kind: "user"}, f.clock.Now())
		if _, err := f.svc.Handle(context.Background(), raw("a@example.com", "DELETE")); err != inbound.ErrOff {
			t.Fatalf("off: %v", err)
		}
		if ok, _ := f.svc.Accepts(context.Background(), privacy); ok {
			t.Fatal("accepted while off")
		}
	})
}

// TestKeywordsSetting: the keywords are the operator's; Dutch and Swedish
// defaults answer in Dutch and Swedish, others in the default language.
func TestKeywordsSetting(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setup(t, db)
		f.handle(raw("nl@example.com", "Verwijder mijn gegevens"))
		f.handle(raw("en@example.com", "please delete"))
		settings.Update(context.Background(), db, settings.Patch{ErasureKeywords: &[]string{"LÖSCHEN"}}, audit.Actor{Kind: "user"}, f.clock.Now())
		if o := f.handle(raw("de@example.com", "Bitte =?UTF-8?Q?l=C3=B6schen?=")); o != inbound.OutcomeRequested {
			t.Fatalf("custom keyword: %s", o)
		}
		if o := f.handle(raw("x@example.com", "DELETE")); o != inbound.OutcomeIgnored {
			t.Fatalf("a keyword no longer set: %s", o)
		}
		subjects := map[string]string{}
		for _, m := range f.deliver() {
			subjects[m.To] = m.Subject
		}
		if subjects["nl@example.com"] != "Bevestig uw verzoek tot verwijdering" || subjects["en@example.com"] != "Please confirm your erasure request" ||
			subjects["de@example.com"] != "Please confirm your erasure request" {
			t.Fatalf("%v", subjects)
		}
	})
}

// TestGateKeepsItsProtections: a blocklisted or bounced contact gets no
// confirmation (the request is recorded, the answer the same); an address
// that becomes a blocklisted contact's between queueing and sending gets
// none either.
func TestGateKeepsItsProtections(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setup(t, db)
		id := f.contact("blocked@example.com")
		block := func(id string) {
			db.Write(context.Background(), func(tx *store.Tx) error {
				st, err := contactstate.Load(tx, id)
				if err != nil {
					return err
				}
				st.ID = id
				return contactstate.SetBlocklistedTx(tx, &st, true, f.clock.Now())
			})
		}
		block(id)
		if o := f.handle(raw("blocked@example.com", "DELETE")); o != inbound.OutcomeRequested {
			t.Fatalf("blocklisted: %s", o)
		}
		f.handle(raw("later@example.com", "DELETE"))
		block(f.contact("later@example.com"))
		if n := len(f.deliver()); n != 0 {
			t.Fatalf("%d emails went out", n)
		}
		var reasons []string
		rows, _ := db.Read.Query(`SELECT reason FROM outbox ORDER BY created_at`)
		for rows.Next() {
			var r string
			rows.Scan(&r)
			reasons = append(reasons, r)
		}
		rows.Close()
		if strings.Join(reasons, ",") != mail.ReasonBlocklisted+","+mail.ReasonBlocklisted {
			t.Fatalf("reasons %v", reasons)
		}
	})
}

// TestConfirmationLinksExpire: a link followed after LinkValidity does
// nothing, and the request it would have confirmed is then refused as
// unconfirmed (its address forgotten, as for any closed request).
func TestConfirmationLinksExpire(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setup(t, db)
		f.handle(raw("late@example.com", "DELETE"))
		secret := tokenRE.FindStringSubmatch(f.deliver()[0].Text)[1]
		f.clock.Add(inbound.LinkValidity + time.Second)
		if err := f.svc.Confirm(context.Background(), secret); err != inbound.ErrNotConfirmed {
			t.Fatalf("expired link: %v", err)
		}
		if r := f.requests()[0]; r.Status != requests.StatusReceived {
			t.Fatalf("%+v", r)
		}
		// A request entered by someone else, of the same channel, is not
		// this package's to refuse.
		err := db.Write(context.Background(), func(tx *store.Tx) error {
			_, err := requests.CreateTx(tx, requests.New{Kind: requests.KindErasure, Channel: requests.ChannelEmail, Address: "letter@example.com",
				Actor: consent.Actor{Kind: consent.ActorUser, ID: "u1"}}, nil, f.clock.Now().Add(-30*24*time.Hour))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []int{1, 0} { // the second run finds nothing left
			n, err := f.svc.RefuseUnconfirmed(context.Background())
			if err != nil || n != want {
				t.Fatalf("refused %d, want %d (%v)", n, want, err)
			}
		}
		for _, r := range f.requests() {
			if r.Address == "" && (r.Status != requests.StatusRefused || r.Reason != inbound.UnconfirmedReason) {
				t.Fatalf("unconfirmed request: %+v", r)
			}
			if r.Address == "letter@example.com" && r.Status != requests.StatusReceived {
				t.Fatalf("another's request: %+v", r)
			}
		}
	})
}

// TestBadMessagesWriteNothing: a refused message is an invalid-input error
// and leaves no trace.
func TestBadMessagesWriteNothing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setup(t, db)
		for _, m := range [][]byte{
			[]byte("From: a@example.com\r\nFrom: b@example.com\r\nTo: " + privacy + "\r\nSubject: DELETE\r\n\r\nx"),
			[]byte("To: " + privacy + "\r\nSubject: DELETE\r\n\r\nx"),
			[]byte("garbage"),
		} {
			if _, err := f.svc.Handle(context.Background(), m); !errs.Is(err, errs.KindInvalid) {
				t.Fatalf("got %v", err)
			}
		}
		var n int
		db.Read.QueryRow(`SELECT (SELECT count(*) FROM subject_requests) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM inbound_confirmations)`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d rows written", n)
		}
	})
}
