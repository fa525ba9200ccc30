package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/store"
)

// FuzzWriteRoutes posts arbitrary bodies to the routes that write and checks
// that none answers with a server error and that a refused request changes
// nothing: no contact, consent record or ledger event appears.
func FuzzWriteRoutes(f *testing.F) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	cs := consent.NewService(db)
	people := contact.NewService(db, cs)
	tokens := auth.NewTokens(db)
	secret, _, err := tokens.Create(ctx, "fuzz", nil)
	if err != nil {
		f.Fatal(err)
	}
	srv := New(&Server{DB: db, Consent: cs, Contacts: people, Tokens: tokens})
	email := "seed@example.com"
	seed, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email},
		Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if err != nil {
		f.Fatal(err)
	}
	routes := []string{"/api/v1/contacts", "/api/v1/contacts/" + seed.ID + "/consents", "/api/v1/contacts/" + seed.ID + "/opt-in",
		"/api/v1/purposes", "/api/v1/sources", "/api/v1/fields"}

	for _, s := range []string{
		`{"email":"anna@example.com","kind":"lead"}`,
		`{"email":"b@example.com","opt_in_status":"single_opt_in_user","consents":[{"purpose":"E-marketing","state":"granted","source":"web form"}]}`,
		`{"email":"c@example.com","consents":[{"purpose":"nope","state":"granted","source":"web form"}]}`,
		`{"purpose":"E-marketing","state":"granted","source":"API","evidence":{"method":"import","ip":"192.0.2.1"}}`,
		`{"status":"opt_out_user"}`, `{"status":"double_opt_in"}`,
		`{"name":"Share with partners","legal_basis":"consent","text":"Yes"}`,
		`{"name":"score","type":"number"}`, `{"email":"x@example.com","fields":{"score":"x"}}`,
		`{`, `[]`, `null`, `{"email":1}`, `{"email":"a@example.com"} trailing`, "",
	} {
		for i := range routes {
			f.Add(uint8(i), s)
		}
	}

	counts := func() [3]int {
		var c [3]int
		for i, q := range []string{`SELECT count(*) FROM contacts`, `SELECT count(*) FROM consent_records`, `SELECT count(*) FROM ledger_events`} {
			if err := db.Read.QueryRow(q).Scan(&c[i]); err != nil {
				f.Fatal(err)
			}
		}
		return c
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		before := counts()
		req := httptest.NewRequest("POST", routes[int(route)%len(routes)], strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code >= 400 {
			if after := counts(); after != before {
				t.Fatalf("refused request (%d) changed counts %v -> %v: %q", rec.Code, before, after, body)
			}
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("error body without code and message: %s", rec.Body)
			}
		} else if rec.Code != http.StatusCreated && rec.Code != http.StatusOK {
			t.Fatalf("unexpected status %d", rec.Code)
		}
	})
}
