package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// limitedAPI is a server with small limits on a fresh database, and two
// tokens. Its limits' clock reads at, which moves only when a test moves
// it, so that no assertion depends on how fast the test runs.
type limitedAPI struct {
	srv      *Server
	at       time.Time
	ada, bob string // the tokens' secrets
}

func newLimitedAPI(t testing.TB, db *store.DB, l Limits) *limitedAPI {
	t.Helper()
	ctx := context.Background()
	tokens := auth.NewTokens(db)
	a := &limitedAPI{at: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var err error
	if a.ada, _, err = tokens.Create(ctx, audit.Actor{Kind: "user"}, "ada", nil); err != nil {
		t.Fatal(err)
	}
	if a.bob, _, err = tokens.Create(ctx, audit.Actor{Kind: "user"}, "bob", nil); err != nil {
		t.Fatal(err)
	}
	a.srv = New(&Server{DB: db, Consent: consent.NewService(db), Tokens: tokens, Limits: l, Now: func() time.Time { return a.at }})
	return a
}

// get sends GET path from the client address ip with the Authorization
// header auth ("" for none).
func (a *limitedAPI) get(path, ip, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = ip + ":40000"
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	a.srv.ServeHTTP(rec, req)
	return rec
}

// refused checks that rec is a 429 with a Retry-After of wantWait
// seconds and the API's error body with code, saying the wait.
func refused(t testing.TB, what string, rec *httptest.ResponseRecorder, code, wantWait string) {
	t.Helper()
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("%s: status %d, want 429: %s", what, rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Retry-After"); got != wantWait {
		t.Errorf("%s: Retry-After %q, want %q", what, got, wantWait)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	var e ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("%s: body is not the error body: %v: %s", what, err, rec.Body)
	}
	if e.Error.Code != code || !strings.Contains(e.Error.Message, "try again in "+wantWait+" second") {
		t.Errorf("%s: error %+v, want code %s and a message saying to wait %s s", what, e.Error, code, wantWait)
	}
}

// TestTokenRateLimit: a token past its limit is answered 429 with
// Retry-After and the error body naming the limit, changing nothing,
// while another token goes on; the bucket fills again at the rate.
func TestTokenRateLimit(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		a := newLimitedAPI(t, db, Limits{Token: clientip.Rate{PerMinute: 30, Burst: 3}}) // one every 2 s
		for i := range 3 {
			if rec := a.get("/api/v1/sources", "192.0.2.1", "Bearer "+a.ada); rec.Code != 200 {
				t.Fatalf("request %d of the burst: %d %s", i+1, rec.Code, rec.Body)
			}
		}
		refused(t, "past the burst", a.get("/api/v1/sources", "192.0.2.1", "Bearer "+a.ada), "rate_limited", "2")
		// A write refused for the limit writes nothing: it is refused
		// before its handler reads the body.
		req := httptest.NewRequest("POST", "/api/v1/sources", strings.NewReader(`{"name":"Refused"}`))
		req.RemoteAddr, req.Header["Authorization"] = "192.0.2.1:40000", []string{"Bearer " + a.ada}
		rec := httptest.NewRecorder()
		a.srv.ServeHTTP(rec, req)
		refused(t, "a write past the burst", rec, "rate_limited", "2")
		if got := a.get("/api/v1/sources", "192.0.2.1", "Bearer "+a.bob); got.Code != 200 || strings.Contains(got.Body.String(), "Refused") {
			t.Fatalf("another token, from the same address: %d %s", got.Code, got.Body)
		}
		// Another token has a bucket of its own: its whole burst.
		for i := range 2 {
			if rec := a.get("/api/v1/sources", "198.51.100.7", "Bearer "+a.bob); rec.Code != 200 {
				t.Fatalf("another token's request %d: %d %s", i+2, rec.Code, rec.Body)
			}
		}
		refused(t, "the other token past its own burst", a.get("/api/v1/sources", "198.51.100.7", "Bearer "+a.bob), "rate_limited", "2")
		a.at = a.at.Add(1500 * time.Millisecond)
		refused(t, "1.5 s later", a.get("/api/v1/sources", "192.0.2.1", "Bearer "+a.ada), "rate_limited", "1")
		a.at = a.at.Add(500 * time.Millisecond)
		if rec := a.get("/api/v1/sources", "192.0.2.1", "Bearer "+a.ada); rec.Code != 200 {
			t.Fatalf("after the wait it said: %d %s", rec.Code, rec.Body)
		}
		refused(t, "and only one", a.get("/api/v1/sources", "192.0.2.1", "Bearer "+a.ada), "rate_limited", "2")
		// Routes without a token are not counted against any.
		for range 5 {
			if rec := a.get("/healthz", "192.0.2.1", ""); rec.Code != 200 {
				t.Fatalf("/healthz: %d", rec.Code)
			}
		}
	})
}

// TestBadTokenRateLimit: requests with a missing or invalid token from
// one client address are answered 401 up to the limit, then 429; past it,
// even a good token from that address is refused before it is looked at,
// so that a guess that hits cannot be told from one that misses. Other
// addresses go on, and good tokens do not use up their address's limit.
func TestBadTokenRateLimit(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		a := newLimitedAPI(t, db, Limits{BadToken: clientip.Rate{PerMinute: 6, Burst: 3}}) // one every 10 s
		// Good tokens count only while they are checked.
		for range 10 {
			if rec := a.get("/api/v1/sources", "203.0.113.9", "Bearer "+a.ada); rec.Code != 200 {
				t.Fatalf("a good token: %d %s", rec.Code, rec.Body)
			}
		}
		guess := "Bearer " + auth.TokenPrefix + strings.Repeat("A", 43) // well-formed, unknown
		for i, authz := range []string{"", "Bearer nope", guess} {
			rec := a.get("/api/v1/sources", "203.0.113.9", authz)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("bad token %d within the limit: %d %s", i+1, rec.Code, rec.Body)
			}
		}
		refused(t, "a guess past the limit", a.get("/api/v1/sources", "203.0.113.9", guess), "too_many_bad_tokens", "10")
		refused(t, "a good token from that address", a.get("/api/v1/sources", "203.0.113.9", "Bearer "+a.ada), "too_many_bad_tokens", "10")
		refused(t, "no token from that address", a.get("/api/v1/contacts", "203.0.113.9", ""), "too_many_bad_tokens", "10")
		// IPv6 clients count by their /64.
		for i := range 3 {
			if rec := a.get("/api/v1/sources", "2001:db8:1:2::1", guess); rec.Code != http.StatusUnauthorized {
				t.Fatalf("IPv6 guess %d: %d", i+1, rec.Code)
			}
		}
		refused(t, "a guess from the same /64", a.get("/api/v1/sources", "2001:db8:1:2::ffff", guess), "too_many_bad_tokens", "10")
		if rec := a.get("/api/v1/sources", "198.51.100.7", guess); rec.Code != http.StatusUnauthorized {
			t.Fatalf("a guess from another address: %d %s", rec.Code, rec.Body)
		}
		if rec := a.get("/api/v1/sources", "198.51.100.7", "Bearer "+a.ada); rec.Code != 200 {
			t.Fatalf("a good token from another address: %d %s", rec.Code, rec.Body)
		}
		a.at = a.at.Add(10 * time.Second)
		if rec := a.get("/api/v1/sources", "203.0.113.9", "Bearer "+a.ada); rec.Code != 200 {
			t.Fatalf("a good token once the limit lets one through: %d %s", rec.Code, rec.Body)
		}
		if rec := a.get("/api/v1/sources", "203.0.113.9", guess); rec.Code != http.StatusUnauthorized {
			t.Fatalf("a guess once the limit lets one through: %d %s", rec.Code, rec.Body)
		}
		refused(t, "and only one", a.get("/api/v1/sources", "203.0.113.9", guess), "too_many_bad_tokens", "10")
	})
}

// TestDefaultLimitsApplyWhenUnset: a server given no limits applies the
// defaults, which an integrator's bursts fit.
func TestDefaultLimitsApplyWhenUnset(t *testing.T) {
	s := New(&Server{})
	if s.Limits != DefaultLimits() {
		t.Fatalf("limits %+v, want the defaults %+v", s.Limits, DefaultLimits())
	}
	if d := DefaultLimits(); d.Token.PerMinute < 100*60 || d.Token.Burst < 100 || d.BadToken.Burst < 64 {
		t.Fatalf("defaults %+v: too low for an integrator's sync, or for its requests in flight at once", d)
	}
}
