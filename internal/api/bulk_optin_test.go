package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/consentry/consentry/internal/idempotency"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// postKey sends an authenticated POST with an Idempotency-Key header.
func (e *env) postKey(t testing.TB, path, body, key string) response {
	t.Helper()
	return e.send(t, "POST", path, "application/json", e.token, body, key)
}

// send sends a request of contentType with the token and, unless key is
// "", an Idempotency-Key header.
func (e *env) send(t testing.TB, method, path, contentType, token, body, key string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// seedLeads stores n contacts with addresses, directly, and returns their
// ids as a JSON array.
func seedLeads(t testing.TB, db *store.DB, n int) string {
	t.Helper()
	prefix, from := storetest.Series(db)
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Exec(prefix+`INSERT INTO contacts (id, ref, kind, email, email_key, created_at, updated_at)
			SELECT 'lead-' || i, 'ref-' || i, 'lead', 'lead' || i || '@example.com', 'lead' || i || '@example.com', 1, 1 `+from, n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("lead-%d", i+1)
	}
	out, _ := json.Marshal(ids)
	return string(out)
}

func (e *env) count(t testing.TB, q string) int {
	t.Helper()
	var n int
	if err := e.a.DB.Read.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBulkDoubleOptInIsAJobAndRetriesAreSafe invites more contacts than
// one request invites at once: the request answers 202 with a run, the job
// invites everyone, the run says so, and every email arrives at a real SMTP
// server once, each to its contact with a confirmation link of its own
// that confirms. The same request again with its Idempotency-Key answers the
// same run and sends nothing more; the key with another body is refused.
func TestBulkDoubleOptInIsAJobAndRetriesAreSafe(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		smtp := mailtest.Start(t)
		e := newEnvSMTP(t, db, smtp.URL())
		ctx := context.Background()
		n := optin.MaxInline + 50
		body := `{"contact_ids": ` + seedLeads(t, db, n) + `}`

		r := e.postKey(t, "/api/v1/double-opt-in", body, `"bulk-1"`)
		if r.status != 202 {
			t.Fatalf("bulk request: %d %s", r.status, r.body)
		}
		run := decodeAs[optin.Bulk](t, r.body)
		if run.Status != optin.BulkQueued || run.Total != n || run.Processed != 0 {
			t.Fatalf("run as queued: %+v", run)
		}
		if _, err := e.a.Jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		done := decodeAs[optin.Bulk](t, e.get(t, "/api/v1/double-opt-in/runs/"+run.ID))
		if done.Status != optin.BulkDone || done.Processed != n || done.Invited != n || done.FinishedAt == nil {
			t.Fatalf("run after its job: %+v", done)
		}
		for {
			sent, err := e.a.Deliverer.RunDue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if sent == 0 {
				break
			}
		}
		got := smtp.Wait(t, n)
		links, to := map[string]bool{}, map[string]bool{}
		for _, m := range got {
			var link string
			for _, l := range m.Links() {
				if strings.HasPrefix(l, "http://test/confirm/") {
					link = strings.TrimPrefix(l, "http://test/confirm/")
				}
			}
			if len(link) != 43 || links[link] || len(m.To) != 1 || to[m.To[0]] || !strings.Contains(m.HTML, link) {
				t.Fatalf("email to %v: link %q (of %d seen), want a link of its own in both parts", m.To, link, len(links))
			}
			links[link], to[m.To[0]] = true, true
		}
		for link := range links {
			if _, err := e.a.OptIn.Confirm(ctx, link, optin.Evidence{IP: "192.0.2.1", UserAgent: "test"}); err != nil {
				t.Fatalf("a link from the bulk run does not confirm: %v", err)
			}
			break
		}
		if got := e.count(t, `SELECT count(*) FROM contacts WHERE opt_in_status = 'double_opt_in'`); got != 1 {
			t.Fatalf("%d contacts confirmed, want 1", got)
		}

		again := e.postKey(t, "/api/v1/double-opt-in", body, `"bulk-1"`)
		if again.status != 202 || decodeAs[optin.Bulk](t, again.body).ID != run.ID {
			t.Fatalf("retry: %d %s, want 202 with run %s", again.status, again.body, run.ID)
		}
		if ran, err := e.a.Jobs.RunDue(ctx); err != nil || ran != 0 {
			t.Fatalf("jobs run after the retry: %d, %v", ran, err)
		}
		if sent, err := e.a.Deliverer.RunDue(ctx); err != nil || sent != 0 {
			t.Fatalf("emails sent after the retry: %d, %v", sent, err)
		}
		if got := smtp.Received(); got != n {
			t.Fatalf("SMTP server received %d emails, want %d", got, n)
		}
		if got := e.count(t, `SELECT count(*) FROM optin_invitations`); got != n {
			t.Fatalf("%d invitations, want %d", got, n)
		}

		other := e.postKey(t, "/api/v1/double-opt-in", `{"contact_ids": ["lead-1"]}`, `"bulk-1"`)
		checkError(t, other, "idempotency_key_reused", "Idempotency-Key")
		if other.status != 422 {
			t.Fatalf("key with another body: %d, want 422", other.status)
		}
		if e.get(t, "/api/v1/double-opt-in/runs/"+run.ID) == nil {
			t.Fatal("run gone")
		}
		if r := e.do(t, "GET", "/api/v1/double-opt-in/runs/no-such-run", "", ""); r.status != 404 {
			t.Fatalf("unknown run: %d", r.status)
		}
	})
}

// TestIdempotencyKeyInUseIsAConflict: while a request with a key is being
// processed, the same request with that key is answered 409 and does
// nothing; once the first gives the key up, the request goes through.
// Requests sent at once with one key invite once.
func TestIdempotencyKeyInUseIsAConflict(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		seedLeads(t, db, 3)
		body := `{"contact_ids": ["lead-1", "lead-2"]}`
		keys := &idempotency.Keys{DB: db, Now: e.a.OptIn.Now}
		inFlight := idempotency.Request{Scope: e.tokID, Key: "k-busy", Fingerprint: idempotency.Fingerprint("POST", "/api/v1/double-opt-in", []byte(body))}
		if ans, err := keys.Begin(context.Background(), inFlight); err != nil || ans != nil {
			t.Fatalf("claim: %v %v", ans, err)
		}
		r := e.postKey(t, "/api/v1/double-opt-in", body, "k-busy")
		checkError(t, r, "idempotency_key_in_use", "Idempotency-Key")
		if r.status != 409 || e.count(t, `SELECT count(*) FROM optin_invitations`) != 0 {
			t.Fatalf("key in use: %d %s", r.status, r.body)
		}
		if err := keys.Release(context.Background(), inFlight); err != nil {
			t.Fatal(err)
		}
		if r := e.postKey(t, "/api/v1/double-opt-in", body, "k-busy"); r.status != 200 {
			t.Fatalf("after release: %d %s", r.status, r.body)
		}

		const clients = 6
		var wg sync.WaitGroup
		got := make([]response, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i] = e.postKey(t, "/api/v1/double-opt-in", `{"contact_ids": ["lead-3"]}`, "k-race")
			}()
		}
		wg.Wait()
		var first string
		for _, r := range got {
			switch {
			case r.status == 409:
			case r.status == 200 && (first == "" || first == string(r.body)):
				first = string(r.body)
			default:
				t.Fatalf("concurrent request: %d %s", r.status, r.body)
			}
		}
		if n := e.count(t, `SELECT count(*) FROM optin_invitations WHERE contact_id = 'lead-3'`); n != 1 {
			t.Fatalf("%d invitations for one key, want 1", n)
		}
	})
}
