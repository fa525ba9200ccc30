package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// writesKillPlan is how many times TestAcknowledgedWritesSurviveKill9
// kills the service: 20, or with CONSENTRY_LONG=1 200.
func writesKillPlan() int {
	if os.Getenv("CONSENTRY_LONG") == "1" {
		return 200
	}
	return 20
}

// TestAcknowledgedWritesSurviveKill9 runs `consentry serve` as a child
// process with eight concurrent writers creating contacts and recording
// consents through the API, and kills it with SIGKILL at random moments,
// starting it again each time. Every write the service acknowledged must
// be in the database afterwards, each contact's current consent must be
// the last one acknowledged unless a later write was cut off by a kill,
// and `ledger verify` must pass.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	eachKillRun(t, "kills it under concurrent writers", writesKillRun)
}

// ack is one write the service acknowledged.
type ack struct {
	email   string // a webform post's address; the rest is then empty
	contact string // the contact created or changed
	record  string // the consent record written; "" for a new contact's
	state   string
}

// writeLoad is the writers' shared view of the service: its address, and
// a channel closed while it is up, replaced before each kill.
type writeLoad struct {
	mu      sync.Mutex
	base    string
	up      chan struct{}
	acks    chan struct{} // a token per acknowledged write, for the killer
	fails   chan string   // the answers that were no acknowledgement, as far as there is room
	writers []*loadWriter
	form    string // the webform the writers post to
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

func (l *writeLoad) current() (string, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.base, l.up
}

// loadWriter is one of the concurrent writers: its contacts, what the service
// acknowledged, and the contacts whose last write was cut off.
type loadWriter struct {
	n      int
	token  string
	client *http.Client
	// noRedirect is client without following redirects, for webforms.
	noRedirect *http.Client
	contacts   []string
	acked      []ack
	last       map[string]string // contact → state last acknowledged
	cut        map[string]bool   // contact → a later write got no answer
	tries      int
	mu         sync.Mutex
	failure    string // the last answer that was no acknowledgement
	load       *writeLoad
}

func writesKillRun(t *testing.T, bin string, db *store.DB, env []string) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	env = append(env, loadEnv...)
	child := startChild(t, bin, env)
	load := startLoad(t, bin, env, child)

	kills := writesKillPlan()
	start := time.Now()
	for range kills {
		load.waitAcks(t, child, 5+rng.IntN(76)) // a random moment
		load.pause()
		child.kill(t)
		child = startChild(t, bin, env)
		load.resume(child)
	}
	load.waitAcks(t, child, 50) // a last stretch after the last kill
	load.stop()
	child.stop(t)
	load.check(t, db, fmt.Sprintf("%d kills in %s", kills, time.Since(start).Round(time.Millisecond)))
	verifyLedger(t, bin, env)
}

// loadEnv is the settings of a service under the writers' load: quiet
// logs, the test trusted as a proxy, so that each webform post comes
// from a client address of its own, as many visitors' posts do, and no
// rate limit on the writers' token, which writes as fast as the service
// acknowledges: what is under test is what a kill does to the writes,
// not how many the limit lets through.
var loadEnv = []string{"CONSENTRY_LOG_LEVEL=warn", "CONSENTRY_TRUSTED_PROXIES=127.0.0.1", "CONSENTRY_RATE_API=1000000:1000000"}

// startLoad makes an API token and a source, and starts eight writers
// against child.
func startLoad(t *testing.T, bin string, env []string, child *child) *writeLoad {
	code, secret, stderr := runBinary(t, bin, env, "token", "create", "--name", "load", "--scope", "admin")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, stderr)
	}
	token := strings.TrimSpace(secret)
	load := &writeLoad{base: "http://" + child.addr, up: make(chan struct{}), acks: make(chan struct{}, 1024), fails: make(chan string, 64)}
	close(load.up)
	api := &apiClient{t: t, base: load.base, token: token}
	api.do("POST", "/api/v1/sources", map[string]any{"name": "Kill test"}, nil)
	api.do("POST", "/api/v1/purposes", map[string]any{"name": "Share with partners", "legal_basis": "consent", "text": "Share my details with partners"}, nil)
	var form struct{ ID string }
	api.do("POST", "/api/v1/webforms", map[string]any{"name": "signup", "title": "Sign up", "fields": []any{map[string]any{"name": "email"}},
		"consents": []any{map[string]any{"purpose": "Share with partners"}}, "privacy_policy_url": "https://acme.example/privacy"}, &form)
	load.form = form.ID
	ctx, stop := context.WithCancel(context.Background())
	load.cancel = stop
	load.writers = make([]*loadWriter, 8)
	for i := range load.writers {
		w := &loadWriter{n: i, token: token, client: &http.Client{Timeout: 20 * time.Second},
			noRedirect: &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
			last:       map[string]string{}, cut: map[string]bool{}, load: load}
		load.writers[i] = w
		load.wg.Add(1)
		go func() { defer load.wg.Done(); w.run(ctx, load) }()
	}
	t.Cleanup(load.stop)
	return load
}

// waitAcks returns after n more writes were acknowledged.
func (l *writeLoad) waitAcks(t *testing.T, child *child, n int) {
	t.Helper()
	for range n {
		select {
		case <-l.acks:
		case <-child.exited:
			t.Fatalf("serve exited by itself with %v:\n%s", child.cmd.ProcessState, child.output())
		case <-time.After(time.Minute):
			for _, w := range l.writers {
				w.mu.Lock()
				t.Logf("writer %d: last failure: %s", w.n, w.failure)
				w.mu.Unlock()
			}
			t.Fatalf("no write was acknowledged for a minute; the service's goroutines:\n%s", child.dump())
		}
	}
}

// pause makes writers whose write fails wait for resume.
func (l *writeLoad) pause() {
	l.mu.Lock()
	l.up = make(chan struct{})
	l.mu.Unlock()
}

// drain forgets the acknowledgements not waited for yet.
func (l *writeLoad) drain() {
	for {
		select {
		case <-l.acks:
		default:
			return
		}
	}
}

// resume sends the writers to child.
func (l *writeLoad) resume(child *child) {
	l.mu.Lock()
	l.base = "http://" + child.addr
	close(l.up)
	l.mu.Unlock()
}

// stop ends the writers and waits for them.
func (l *writeLoad) stop() {
	l.cancel()
	l.mu.Lock()
	select {
	case <-l.up:
	default:
		close(l.up)
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// check wants every acknowledged write in db, and each contact's current
// consent the last one acknowledged, unless a later write of the contact
// got no answer. what says what the writers went through, for the log.
func (l *writeLoad) check(t *testing.T, db *store.DB, what string) {
	t.Helper()
	var acked, posts, cut, tries int
	for _, w := range l.writers {
		acked += len(w.acked)
		tries += w.tries
		cut += len(w.cut)
		for _, a := range w.acked {
			if a.email != "" {
				posts++
				var n int
				err := db.Read.QueryRow(`SELECT count(*) FROM consent_records r JOIN contacts c ON c.id = r.contact_id
					JOIN purposes p ON p.id = r.purpose_id WHERE c.email_key = $1 AND p.name = 'Share with partners' AND r.state = 'granted'`,
					a.email).Scan(&n)
				if err != nil || n != 1 {
					t.Errorf("acknowledged webform post of %s: %d consent records (%v), want 1", a.email, n, err)
				}
				continue
			}
			var n int
			err := db.Read.QueryRow(`SELECT count(*) FROM consent_records WHERE contact_id = $1 AND state = $2 AND ($3 = '' OR id = $3)`,
				a.contact, a.state, a.record).Scan(&n)
			if err != nil || n == 0 {
				t.Errorf("acknowledged write lost: contact %s, record %q, %s (%v)", a.contact, a.record, a.state, err)
			}
		}
		for c, want := range w.last {
			if w.cut[c] {
				continue // a write after the last acknowledged one may or may not have committed
			}
			var state string
			err := db.Read.QueryRow(`SELECT cc.state FROM consent_current cc JOIN purposes p ON p.id = cc.purpose_id
				WHERE cc.contact_id = $1 AND p.name = 'E-marketing'`, c).Scan(&state)
			if err != nil || state != want {
				t.Errorf("contact %s: current consent %q (%v), last acknowledged %q", c, state, err, want)
			}
		}
	}
	if acked == 0 {
		t.Fatal("no write was acknowledged")
	}
	if posts == 0 {
		t.Error("no webform post was acknowledged")
	}
	t.Logf("%s: %d writes tried, %d acknowledged (%d of them webform posts) and all present; %d contacts had a write cut off", what, tries,
		acked, posts, cut)
}

// verifyLedger runs `consentry ledger verify` and wants it to pass.
func verifyLedger(t *testing.T, bin string, env []string) {
	t.Helper()
	code, out, stderr := runBinary(t, bin, env, "ledger", "verify")
	var rep struct{ OK bool }
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK {
		t.Fatalf("ledger verify: %d %s %s", code, out, stderr)
	}
}

// run writes until ctx ends: every fourth write creates a contact with a
// granted consent, the others flip the consent of one of the writer's
// contacts. A write that gets no answer, or an error, waits until the
// service is up again.
func (w *loadWriter) run(ctx context.Context, load *writeLoad) {
	states := []string{"granted", "withdrawn"}
	for i := 0; ctx.Err() == nil; i++ {
		base, up := load.current()
		var (
			path    string
			body    map[string]any
			contact string
			state   = states[i%2]
		)
		consent := map[string]any{"purpose": "E-marketing", "state": state, "source": "Kill test"}
		if i%4 == 2 {
			email := fmt.Sprintf("f%d-%d@example.org", w.n, i)
			w.tries++
			if w.postForm(ctx, base, load.form, email, i) {
				w.acked = append(w.acked, ack{email: email})
				select {
				case load.acks <- struct{}{}:
				default:
				}
				continue
			}
			_, up = load.current()
			select {
			case <-up:
			case <-ctx.Done():
			}
			continue
		}
		if len(w.contacts) == 0 || i%4 == 0 {
			path = "/api/v1/contacts"
			body = map[string]any{"email": fmt.Sprintf("w%d-%d@example.org", w.n, i), "consents": []any{consent}}
		} else {
			contact = w.contacts[i%len(w.contacts)]
			path = "/api/v1/contacts/" + contact + "/consents"
			body = consent
		}
		w.tries++
		got, ok := w.post(ctx, base+path, body)
		switch {
		case ok && contact == "":
			var c struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(got, &c) != nil || c.ID == "" {
				continue
			}
			w.contacts = append(w.contacts, c.ID)
			w.last[c.ID] = state
			w.acked = append(w.acked, ack{contact: c.ID, state: state})
		case ok:
			var r struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(got, &r) != nil || r.ID == "" {
				continue
			}
			w.acked = append(w.acked, ack{contact: contact, record: r.ID, state: state})
			w.last[contact] = state
			delete(w.cut, contact)
		default:
			if contact != "" {
				w.cut[contact] = true
			}
			select {
			case <-up: // closed: the failure was not a kill's
			default:
			}
			_, up = load.current()
			select {
			case <-up:
			case <-ctx.Done():
			}
			continue
		}
		select {
		case load.acks <- struct{}{}:
		default:
		}
	}
}

// post sends body as JSON and returns a 201 answer's body; ok is false
// for anything else, including no answer.
func (w *loadWriter) post(ctx context.Context, url string, body any) ([]byte, bool) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		w.failed(err.Error())
		return nil, false
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusCreated {
		w.failed(fmt.Sprintf("%s %d %s %v", url, resp.StatusCode, got, err))
		return nil, false
	}
	return got, true
}

// postForm posts the webform as a browser on another site does, from a
// client address of its own (the service trusts the test's X-Forwarded-For,
// as it would a proxy's), and reports whether the service acknowledged it
// with its redirect to the thanks.
func (w *loadWriter) postForm(ctx context.Context, base, form, email string, i int) bool {
	body := url.Values{"email": {email}, "consents[0].checked": {"yes"}, "consents[0].version": {"1"}}
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/f/"+form, strings.NewReader(body.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://acme.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("User-Agent", "Mozilla/5.0 (load)")
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", w.n, i/250%250, i%250))
	resp, err := w.noRedirect.Do(req)
	if err != nil {
		w.failed(err.Error())
		return false
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/f/sent") {
		w.failed(fmt.Sprintf("webform %d %s", resp.StatusCode, got))
		return false
	}
	return true
}

func (w *loadWriter) failed(why string) {
	w.mu.Lock()
	w.failure = why
	w.mu.Unlock()
	select {
	case w.load.fails <- why:
	default:
	}
}
