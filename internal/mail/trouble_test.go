package mail_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// troubleRelay stands between the deliverer and a real SMTP server and
// gives each new connection the next trouble of its plan, then passes
// connections through once the plan is done:
//   - "close": the connection is closed before the greeting;
//   - "hang": nothing is ever said, so the client's timeout ends it;
//   - "cut": the conversation goes through until the client has sent a
//     random 200 to 4,000 bytes, then the client's write that crosses that
//     mark is passed on only in part and the connection is dropped: the
//     client is left without an answer, and the server holding part of a
//     command or message, after any number of whole ones it acknowledged.
type troubleRelay struct {
	ln   net.Listener
	to   string
	rng  *rand.Rand
	mu   sync.Mutex
	plan []string
	had  map[string]int
	open []net.Conn
}

func startTroubleRelay(t *testing.T, to string, seed uint64, plan ...string) *troubleRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &troubleRelay{ln: ln, to: to, rng: rand.New(rand.NewPCG(seed, 2)), plan: plan, had: map[string]int{}}
	go r.serve()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.open {
			c.Close()
		}
	})
	return r
}

func (r *troubleRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		mode := "pass"
		if len(r.plan) > 0 {
			mode, r.plan = r.plan[0], r.plan[1:]
		}
		r.had[mode]++
		r.open = append(r.open, c)
		cutAt := 200 + r.rng.IntN(3800)
		r.mu.Unlock()
		go r.handle(c, mode, cutAt)
	}
}

func (r *troubleRelay) handle(c net.Conn, mode string, cutAt int) {
	switch mode {
	case "close":
		c.Close()
		return
	case "hang":
		io.Copy(io.Discard, c) // until the client gives up and closes
		c.Close()
		return
	}
	up, err := net.Dial("tcp", r.to)
	if err != nil {
		c.Close()
		return
	}
	defer c.Close()
	go func() { io.Copy(c, up); c.Close() }()
	buf := make([]byte, 32<<10)
	sent := 0
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if mode == "cut" && sent+n > cutAt {
				// Half, and never the last five bytes: a message's end
				// (".\r\n", or a BDAT chunk's last byte) ends a write,
				// and a server that got it would take a message the
				// client never hears it took.
				up.Write(buf[:max(min(n/2, n-5), 0)])
				// The server's side stays open, as it would with a
				// client that vanished without a word: go-smtp, the
				// test's server, would take a BDAT chunk cut short by
				// a closed connection for a whole message.
				r.mu.Lock()
				r.open = append(r.open, up)
				r.mu.Unlock()
				return
			}
			if _, err := up.Write(buf[:n]); err != nil {
				up.Close()
				return
			}
			sent += n
		}
		if err != nil {
			up.Close()
			return
		}
	}
}

// attemptLog is a Transport that records, for each outbox message, how
// many times it was handed to the transport and how many times the
// server acknowledged it.
type attemptLog struct {
	mail.Transport
	mu           sync.Mutex
	tried, acked map[string]int
}

func (a *attemptLog) Send(ctx context.Context, envs []*mail.Envelope) []error {
	errs := a.Transport.Send(ctx, envs)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, e := range envs {
		a.tried[e.OutboxID]++
		if errs[i] == nil {
			a.acked[e.OutboxID]++
		}
	}
	return errs
}

func (r *troubleRelay) count(mode string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.had[mode]
}

// TestSMTPTroubleLosesNothing queues forty messages and delivers them
// through a mail server that closes connections before greeting, never
// answers, drops connections in the middle of a message, and refuses
// some recipients with 451 for a while. The deliverer retries with
// backoff until every message is sent. None is lost; none the server
// acknowledged is handed over again; a recipient gets a second copy only
// of a message whose first attempt broke off after its last byte went out,
// before the server's answer came back (SMTP cannot tell then whether the
// server took it).
func TestSMTPTroubleLosesNothing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		tt := t.(*testing.T)
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		srv := mailtest.Start(t)
		relay := startTroubleRelay(tt, srv.Addr, seed, "close", "cut", "hang", "cut", "close", "cut", "hang", "cut", "cut", "cut")
		smtp, err := mail.NewSMTP("smtp://"+relay.ln.Addr().String()+"?tls=none&timeout=1s", 2)
		if err != nil {
			t.Fatal(err)
		}
		tr := &attemptLog{Transport: smtp, tried: map[string]int{}, acked: map[string]int{}}
		people := contact.NewService(db, consent.NewService(db))
		const n = 40
		ids := map[string]string{}
		for i := range n {
			to := fmt.Sprintf("r%d@example.com", i)
			ids[enqueue(t, db, mail.Message{ContactID: addContact(t, people, to, ""), Kind: mail.KindAdHoc,
				Subject: "Hello", Text: fmt.Sprintf("Message %d. %0800d", i, i)})] = to
			if i < 5 {
				srv.SetBusy(to, true) // 451 for now
			}
		}
		now := time.Now()
		d := newDeliverer(db, tr, func() time.Time { return now })
		d.MaxAttempts = 50
		sent := func() int {
			var k int
			if err := db.Read.QueryRow(`SELECT count(*) FROM outbox WHERE status = 'sent'`).Scan(&k); err != nil {
				t.Fatal(err)
			}
			return k
		}
		rounds := 0
		for ; sent() < n; rounds++ {
			if rounds == 30 {
				t.Fatalf("after 30 rounds %d of %d messages are sent", sent(), n)
			}
			if rounds == 3 {
				for i := range 5 {
					srv.SetBusy(fmt.Sprintf("r%d@example.com", i), false)
				}
			}
			if _, err := d.RunDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			// What failed waits for its backoff: nothing is due at once.
			if k, err := d.RunDue(context.Background()); err != nil || k != 0 {
				t.Fatalf("round %d: %d messages tried again before their backoff (%v)", rounds, k, err)
			}
			now = now.Add(2 * time.Hour)
		}
		got := map[string]int{}
		for _, m := range srv.Wait(t, n) {
			for _, to := range m.To {
				got[to]++
			}
		}
		twice := 0
		for id, to := range ids {
			switch {
			case tr.acked[id] != 1:
				t.Errorf("message %s to %s: acknowledged %d times, want once", id, to, tr.acked[id])
			case got[to] == 0:
				t.Errorf("message %s to %s is sent but never arrived", id, to)
			case got[to] > tr.tried[id]:
				t.Errorf("message %s to %s arrived %d times in %d attempts", id, to, got[to], tr.tried[id])
			case got[to] > 1:
				twice++
			}
		}
		var retried int
		if err := db.Read.QueryRow(`SELECT count(*) FROM outbox WHERE attempts > 1`).Scan(&retried); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"close", "hang", "cut"} {
			if relay.count(mode) == 0 {
				t.Errorf("no connection met %q", mode)
			}
		}
		if retried < 5 {
			t.Errorf("only %d messages needed more than one attempt; the trouble did not reach them", retried)
		}
		t.Logf("%d messages sent in %d rounds, %d of them after more than one attempt, %d arrived twice; connections: %d passed, %d closed, %d hung, %d cut",
			n, rounds, retried, twice, relay.count("pass"), relay.count("close"), relay.count("hang"), relay.count("cut"))
	})
}
