package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/webhook"
)

// clock is a settable clock for the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// received is one request a receiver was sent.
type received struct {
	Body   []byte
	Header http.Header
	// Envelope is the body decoded.
	Envelope struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Version   int             `json:"version"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	Status int // what the receiver answered
}

// receiver is a webhook receiver over real HTTP. answer picks the status
// of each request (nil: 204).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(r received, n int) int // n: how many requests came before
}

func newReceiver(t testing.TB, answer func(r received, n int) int) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var got received
		got.Body, _ = io.ReadAll(r.Body)
		got.Header = r.Header.Clone()
		if err := json.Unmarshal(got.Body, &got.Envelope); err != nil {
			t.Errorf("the body is not an envelope: %v: %s", err, got.Body)
		}
		rc.mu.Lock()
		got.Status = http.StatusNoContent
		if rc.answer != nil {
			got.Status = rc.answer(got, len(rc.got))
		}
		rc.got = append(rc.got, got)
		rc.mu.Unlock()
		w.WriteHeader(got.Status)
		io.WriteString(w, "answered "+http.StatusText(got.Status))
	}))
	t.Cleanup(rc.Close)
	return rc
}

// byID returns the first request with webhook-id id.
func (rc *receiver) byID(id string) received {
	for _, r := range rc.all() {
		if r.Envelope.ID == id {
			return r
		}
	}
	return received{}
}

// all returns what the receiver was sent so far.
func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// verify checks r's signature with the reference library of Standard
// Webhooks, as a receiver would, at the time it says it was sent.
func verify(t testing.TB, secret string, r received) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh.VerifyIgnoringTimestamp(r.Body, r.Header)
}

// fixture is a service and a worker on db, with a clock set to the real
// time (so that the reference library's timestamp check passes) and
// loopback receivers allowed.
type fixture struct {
	svc    *webhook.Service
	worker *webhook.Worker
	clock  *clock
	db     *store.DB
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	c := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
	svc := &webhook.Service{DB: db, Now: c.Now, Policy: webhook.Policy{AllowHTTPLocalhost: true}}
	return &fixture{svc: svc, worker: webhook.NewWorker(svc), clock: c, db: db}
}

// endpoint creates an endpoint at url for types (none: all) and returns
// it with its secret.
func (f *fixture) endpoint(t testing.TB, url string, types ...string) (webhook.Endpoint, string) {
	t.Helper()
	e, secret, err := f.svc.Create(context.Background(), audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: url, EventTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	return e, secret
}

// emit writes events of typ about each contact in turn, one change each,
// at the clock's time.
func (f *fixture) emit(t testing.TB, typ string, contacts ...string) {
	t.Helper()
	for _, c := range contacts {
		if err := f.db.Write(context.Background(), func(tx *store.Tx) error {
			return events.Emit(tx, typ, c, eventstest.About(typ, c), f.clock.Now())
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// send makes the deliveries of the events so far and sends those due.
func (f *fixture) send(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.svc.DispatchAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.worker.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
}

// prune runs the pruning of the log as its hourly job does, once the
// events' other consumer, the workflow rules (whose runner does not run
// here), has read them too.
func (f *fixture) prune(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	if err := f.db.Write(ctx, func(tx *store.Tx) error { _, err := events.Next(tx, "workflows", 100); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Prune(ctx, f.clock.Now().Add(-webhook.KeepFor)); err != nil {
		t.Fatal(err)
	}
}

// deliveries returns every delivery to the endpoint, oldest first.
func (f *fixture) deliveries(t testing.TB, endpointID string) []webhook.Delivery {
	t.Helper()
	ds, err := f.svc.Deliveries(context.Background(), endpointID, webhook.Page{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

func ptr[T any](v T) *T { return &v }
