package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

// fuzzTarget is one server under fuzzing, on one database.
type fuzzTarget struct {
	db     *store.DB
	srv    *Server
	secret string
	seedID string
}

// fuzzTargets opens a server on SQLite and, when CONSENTRY_TEST_POSTGRES is
// set, one on PostgreSQL, since the two refuse different bad input.
func fuzzTargets(f *testing.F) []*fuzzTarget {
	ctx := context.Background()
	dsns := []struct {
		dsn string
		opt store.Options
	}{{filepath.Join(f.TempDir(), "fuzz.db"), store.Options{}}}
	if u := storetest.PostgresURL(); u != "" {
		b := make([]byte, 6)
		rand.Read(b)
		dsns = append(dsns, struct {
			dsn string
			opt store.Options
		}{u, store.Options{Schema: "f_" + hex.EncodeToString(b)}})
	}
	var out []*fuzzTarget
	for _, d := range dsns {
		db, err := store.Open(ctx, d.dsn, d.opt)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { db.DropSchema(context.Background()); db.Close() })
		if _, err := db.Migrate(ctx); err != nil {
			f.Fatal(err)
		}
		cs := consent.NewService(db)
		people := contact.NewService(db, cs)
		people.Vault = vaulttest.New(f)
		tokens := auth.NewTokens(db)
		// The scopes that open purposes and deletion, which it fuzzes too.
		secret, _, err := tokens.Create(ctx, audit.Actor{Kind: "user"}, "fuzz", nil, auth.ScopeAdmin, auth.ScopeErasure)
		if err != nil {
			f.Fatal(err)
		}
		email := "seed@example.com"
		seed, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email},
			Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, &fuzzTarget{db: db, srv: New(&Server{DB: db, Consent: cs, Contacts: people, Tokens: tokens, Requests: &requests.Service{DB: db},
			Erasure: erasure.New(db)}),
			secret: secret, seedID: seed.ID})
	}
	return out
}

func (ft *fuzzTarget) counts(t testing.TB) [3]int {
	var c [3]int
	for i, q := range []string{`SELECT count(*) FROM contacts`, `SELECT count(*) FROM consent_records`, `SELECT count(*) FROM ledger_events`} {
		if err := ft.db.Read.QueryRow(q).Scan(&c[i]); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// send makes one request and checks the answer: never a server error, and
// an error body with a code and message for every 4xx.
func (ft *fuzzTarget) send(t *testing.T, method, target, body string) int {
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	req.URL = &url.URL{Path: target}
	if path, query, ok := strings.Cut(target, "?"); ok {
		req.URL = &url.URL{Path: path, RawQuery: query}
	}
	req.Header.Set("Authorization", "Bearer "+ft.secret)
	rec := httptest.NewRecorder()
	ft.srv.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s: %s %q with %q: status %d: %s", ft.db.Dialect, method, target, body, rec.Code, rec.Body)
	}
	if rec.Code >= 400 {
		var e ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s: error body without code and message: %s", ft.db.Dialect, rec.Body)
		}
	}
	return rec.Code
}

// FuzzWriteRoutes posts arbitrary bodies to the routes that write, on both
// databases, and checks that none answers with a server error and that a
// refused request changes nothing.
func FuzzWriteRoutes(f *testing.F) {
	targets := fuzzTargets(f)
	routes := []string{"/api/v1/contacts", "/api/v1/contacts/{seed}/consents", "/api/v1/contacts/{seed}/opt-in",
		"/api/v1/purposes", "/api/v1/sources", "/api/v1/fields", "/api/v1/contacts/count", "/api/v1/requests"}
	for _, s := range []string{
		`{"email":"anna@example.com","kind":"lead"}`,
		`{"email":"b@example.com","opt_in_status":"single_opt_in_user","consents":[{"purpose":"E-marketing","state":"granted","source":"web form"}]}`,
		`{"email":"c@example.com","consents":[{"purpose":"nope","state":"granted","source":"web form"}]}`,
		`{"purpose":"E-marketing","state":"granted","source":"API","evidence":{"method":"import","ip":"192.0.2.1"}}`,
		`{"status":"opt_out_user"}`, `{"status":"double_opt_in"}`, `{"filter":"region == \"EU\""}`,
		`{"name":"Share with partners","legal_basis":"consent","text":"Yes"}`, `{"email":"n@example.com","first_name":"a\u0000b"}`,
		`{"kind":"erasure","contact_id":"{seed}","note":"by phone"}`, `{"kind":"access","address":"a@example.com"}`,
		`{"name":"score","type":"number"}`, `{"email":"x@example.com","fields":{"score":"x"}}`, `{"name":"x\u0000y"}`,
		`{`, `[]`, `null`, `{"email":1}`, `{"email":"a@example.com"} trailing`, "",
	} {
		for i := range routes {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		for _, ft := range targets {
			before := ft.counts(t)
			path := strings.ReplaceAll(routes[int(route)%len(routes)], "{seed}", ft.seedID)
			body := strings.ReplaceAll(body, "{seed}", ft.seedID)
			if code := ft.send(t, "POST", path, body); code >= 400 {
				if after := ft.counts(t); after != before {
					t.Fatalf("%s: refused request (%d) changed counts %v -> %v: %q", ft.db.Dialect, code, before, after, body)
				}
			}
		}
	})
}

// FuzzPathsAndQueries sends arbitrary path segments and query values to the
// routes that read them, on both databases: never a server error.
func FuzzPathsAndQueries(f *testing.F) {
	targets := fuzzTargets(f)
	for _, s := range []string{"x", "%00", "%ff", "01a20bac-2740-715b-837b-ccb4c4183747", "E-marketing", "a%2Fb", "", "\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		esc := url.PathEscape(v)
		q := url.QueryEscape(v)
		for _, ft := range targets {
			for _, target := range []string{"/api/v1/contacts/" + esc, "/api/v1/contacts/" + esc + "/consents", "/api/v1/purposes/" + esc,
				"/api/v1/purposes/" + esc + "/texts", "/api/v1/fields/" + esc, "/api/v1/contacts?after=" + q,
				"/api/v1/contacts?email=" + q, "/api/v1/contacts?filter=" + q, "/api/v1/contacts?limit=" + q,
				"/api/v1/requests/" + esc, "/api/v1/requests?kind=" + q + "&status=" + q, "/api/v1/requests?contact=" + q + "&open=" + q,
				"/api/v1/requests?offset=" + q} {
				ft.send(t, "GET", target, "")
			}
			ft.send(t, "DELETE", "/api/v1/contacts/"+esc, "")
			ft.send(t, "PATCH", "/api/v1/sources/"+esc, `{"active":true}`)
			ft.send(t, "PATCH", "/api/v1/requests/"+esc, `{"status":"done"}`)
		}
	})
}
