package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/logtest"
	"github.com/consentry/consentry/internal/public"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

const metricsToken = "test-metrics-token-0123456789"

// served is the service's handler behind a test server, without its
// workers: what a test reads stays as the requests left it.
type served struct {
	a     *app.App
	srv   *httptest.Server
	log   *logtest.Buffer
	token string
}

// serveOnly builds the service on db with the configuration configure
// changes, and serves it; no worker runs.
func serveOnly(t testing.TB, db *store.DB, configure func(*config.Config)) *served {
	s := &served{log: &logtest.Buffer{}}
	var handler http.Handler
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(s.srv.Close)
	keyset, master := vaulttest.Files(t)
	cfg := &config.Config{BaseURL: s.srv.URL, MailFrom: "Acme <privacy@acme.example>", KeysetFile: keyset, MasterKey: master}
	if configure != nil {
		configure(cfg)
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})), db)
	if err != nil {
		t.Fatal(err)
	}
	handler, s.a = a.Handler(), a
	if s.token, _, err = a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "test", nil); err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends a request with the given headers and returns the answer, its
// body read.
func (s *served) do(t testing.TB, method, path, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// scrape reads /metrics with the token and parses the text format.
func (s *served) scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	res, body := s.do(t, "GET", "/metrics", "", "Authorization", "Bearer "+metricsToken)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s %.200s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the metrics do not parse: %v", err)
	}
	return fams
}

// value is the value of the metric named name whose labels include
// labels (name=value pairs), and false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsNeedTheToken: without CONSENTRY_METRICS_TOKEN the public
// listener serves no metrics; with it, only to a request carrying it.
func TestMetricsNeedTheToken(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		open := serveOnly(t, db, nil)
		if res, _ := open.do(t, "GET", "/metrics", ""); res.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /metrics without a token configured: %d, want 404", res.StatusCode)
		}
		s := serveOnly(t, db, func(c *config.Config) { c.MetricsToken = metricsToken })
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + metricsToken, metricsToken} {
			if res, body := s.do(t, "GET", "/metrics", "", "Authorization", auth); res.StatusCode != http.StatusUnauthorized || strings.Contains(body, "consentry_") {
				t.Fatalf("GET /metrics with Authorization %q: %d %.100s", auth, res.StatusCode, body)
			}
		}
		fams := s.scrape(t)
		if up, ok := value(fams, "consentry_metrics_database_up"); !ok || up != 1 {
			t.Fatalf("consentry_metrics_database_up = %v (%v)", up, ok)
		}
		// The separate listener's handler serves them with the same token.
		rec := httptest.NewRecorder()
		s.a.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("metrics listener without the token: %d", rec.Code)
		}
	})
}

// TestMetricsMove: requests are counted under their route pattern, never
// their path; a queued message shows in the outbox gauge; a ledger
// verification's time and result are there.
func TestMetricsMove(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := serveOnly(t, db, func(c *config.Config) { c.MetricsToken = metricsToken })
		before := s.scrape(t)
		created, _ := value(before, "consentry_http_requests_total", "route", "POST /api/v1/contacts", "status", "2xx")
		if n, _ := value(before, "consentry_outbox_messages", "kind", "double_opt_in"); n != 0 {
			t.Fatalf("outbox before: %v", n)
		}
		if _, ok := value(before, "consentry_ledger_last_verification_ok"); ok {
			t.Fatal("a last verification before any")
		}
		auth := []string{"Authorization", "Bearer " + s.token}
		res, body := s.do(t, "POST", "/api/v1/contacts", `{"email":"noor@example.com","kind":"lead"}`, auth...)
		if res.StatusCode != 201 {
			t.Fatalf("create contact: %d %s", res.StatusCode, body)
		}
		var c struct{ ID string }
		json.Unmarshal([]byte(body), &c)
		if res, body := s.do(t, "POST", "/api/v1/double-opt-in", `{"contact_ids":["`+c.ID+`"]}`, auth...); res.StatusCode != 200 {
			t.Fatalf("double opt-in: %d %s", res.StatusCode, body)
		}
		if res, body := s.do(t, "GET", "/api/v1/contacts/"+c.ID, "", auth...); res.StatusCode != 200 {
			t.Fatalf("get contact: %d %s", res.StatusCode, body)
		}
		if res, body := s.do(t, "GET", "/api/v1/ledger/verify", "", auth...); res.StatusCode != 200 {
			t.Fatalf("verify: %d %s", res.StatusCode, body)
		}
		after := s.scrape(t)
		if n, _ := value(after, "consentry_http_requests_total", "route", "POST /api/v1/contacts", "status", "2xx"); n != created+1 {
			t.Fatalf("POST /api/v1/contacts counted %v times, was %v", n, created)
		}
		if n, _ := value(after, "consentry_http_request_duration_seconds", "route", "GET /api/v1/contacts/{id}"); n != 1 {
			t.Fatalf("GET /api/v1/contacts/{id} timed %v times", n)
		}
		for _, m := range after["consentry_http_requests_total"].Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), c.ID) {
					t.Fatalf("a label holds the contact's id: %v", l)
				}
			}
		}
		if n, _ := value(after, "consentry_outbox_messages", "kind", "double_opt_in"); n != 1 {
			t.Fatalf("outbox after queueing one invitation: %v", n)
		}
		if _, ok := value(after, "consentry_ledger_events"); !ok {
			t.Fatal("no ledger size")
		}
		if ok, _ := value(after, "consentry_ledger_last_verification_ok"); ok != 1 {
			t.Fatalf("last verification ok: %v", ok)
		}
		if at, _ := value(after, "consentry_ledger_last_verification_timestamp_seconds"); at <= 0 {
			t.Fatalf("last verification time: %v", at)
		}
		// Delivering the message moves it from the gauge to the counter.
		if _, err := s.a.Deliverer.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		done := s.scrape(t)
		if n, _ := value(done, "consentry_outbox_messages", "kind", "double_opt_in"); n != 0 {
			t.Fatalf("outbox after delivery: %v", n)
		}
		if n, _ := value(done, "consentry_email_messages_total", "kind", "double_opt_in", "outcome", "sent"); n != 1 {
			t.Fatalf("sent double opt-in messages: %v", n)
		}
	})
}

// TestReadyz: ready on a working service; 503 naming the database once
// it is closed; /healthz stays as it was.
func TestReadyz(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		if db.Dialect == store.Postgres {
			// A handle of the test's own to close: the test's cleanup
			// drops the schema through the first.
			own, err := store.Open(context.Background(), storetest.PostgresURL(), store.Options{Schema: db.Schema()})
			if err != nil {
				t.Fatal(err)
			}
			db = own
		}
		s := serveOnly(t, db, nil)
		var rd struct {
			Status   string
			Checks   map[string]string
			NotReady []string `json:"not_ready"`
		}
		res, body := s.do(t, "GET", "/readyz", "")
		json.Unmarshal([]byte(body), &rd)
		if res.StatusCode != 200 || rd.Status != "ready" || rd.Checks["database"] != "ok" || rd.Checks["migrations"] != "ok" || rd.Checks["keyset"] != "ok" {
			t.Fatalf("GET /readyz: %d %s", res.StatusCode, body)
		}
		if res, body := s.do(t, "GET", "/healthz", ""); res.StatusCode != 200 {
			t.Fatalf("GET /healthz: %d %s", res.StatusCode, body)
		}
		db.Close()
		rd.NotReady = nil
		res, body = s.do(t, "GET", "/readyz", "")
		json.Unmarshal([]byte(body), &rd)
		if res.StatusCode != http.StatusServiceUnavailable || rd.Status != "not_ready" || len(rd.NotReady) == 0 || rd.NotReady[0] != "database" {
			t.Fatalf("GET /readyz with the database closed: %d %s", res.StatusCode, body)
		}
	})
}

// TestRequestID: a safe X-Request-Id is kept, anything else replaced;
// the response gives the id, and the request's log line carries it.
func TestRequestID(t *testing.T) {
	s := serveOnly(t, storetest.OpenSQLite(t), nil)
	res, _ := s.do(t, "GET", "/healthz", "", "X-Request-Id", "proxy-7f3a.1")
	if got := res.Header.Get("X-Request-Id"); got != "proxy-7f3a.1" {
		t.Fatalf("X-Request-Id %q, want the one sent", got)
	}
	if !strings.Contains(s.log.String(), "request_id=proxy-7f3a.1") {
		t.Fatalf("no log line with the request id:\n%s", s.log.String())
	}
	for _, sent := range []string{"", "has spaces", strings.Repeat("a", 65), "x;DROP"} {
		res, _ := s.do(t, "GET", "/api/v1/contacts", "", "X-Request-Id", sent)
		got := res.Header.Get("X-Request-Id")
		if got == "" || got == sent || strings.ContainsAny(got, " ;") {
			t.Fatalf("sent X-Request-Id %q, got %q", sent, got)
		}
		line := ""
		for l := range strings.Lines(s.log.String()) {
			if strings.Contains(l, "request_id="+got) {
				line = l
			}
		}
		if !strings.Contains(line, `route="GET /api/v1/contacts"`) || !strings.Contains(line, "status=401") {
			t.Fatalf("the request's log line (id %s): %q", got, line)
		}
	}
}

// TestRateLimitSetting: a lower limit for pages set in the configuration
// is the one applied.
func TestRateLimitSetting(t *testing.T) {
	s := serveOnly(t, storetest.OpenSQLite(t), func(c *config.Config) {
		c.Rates.Pages.PerMinute, c.Rates.Pages.Burst = 1, 2
	})
	var codes []int
	for range 3 {
		res, _ := s.do(t, "GET", "/p/link-invalid", "")
		codes = append(codes, res.StatusCode)
	}
	if codes[0] != http.StatusGone || codes[1] != http.StatusGone || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v, want 410 410 429", codes)
	}
	if d := public.DefaultLimits(); d.Pages.Burst <= 3 {
		t.Fatalf("the default burst %d would limit as soon", d.Pages.Burst)
	}
}

// TestClientHangUpIsNoError: a request whose client went away before it
// was answered is logged at info level, not as an error.
func TestClientHangUpIsNoError(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := serveOnly(t, db, nil)
		// Reading the session of an admin page fails with the request's
		// context: logged as an error were the client still there.
		for _, path := range []string{"/admin/", "/api/v1/contacts"} {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			req := httptest.NewRequestWithContext(ctx, "GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+s.token)
			req.AddCookie(&http.Cookie{Name: "consentry_session", Value: strings.Repeat("A", 43)})
			s.a.Handler().ServeHTTP(httptest.NewRecorder(), req)
		}
		logged := s.log.String()
		if !strings.Contains(logged, `msg="read session"`) {
			t.Fatalf("reading the session was not logged:\n%s", logged)
		}
		// Logged deep in the handler with the request's context, the
		// line carries the request's id.
		for l := range strings.Lines(logged) {
			if strings.Contains(l, `msg="read session"`) && !strings.Contains(l, "request_id=") {
				t.Fatalf("no request id: %s", l)
			}
		}
		if strings.Contains(logged, "level=ERROR") {
			t.Fatalf("a client that went away logged as an error:\n%s", logged)
		}
		if !strings.Contains(logged, "client_gone=true") {
			t.Fatalf("no log line says the client went away:\n%s", logged)
		}
	})
}

// TestConfiguredRatesAreTheDefaults: the settings' defaults are the
// limits the public pages apply when none is set.
func TestConfiguredRatesAreTheDefaults(t *testing.T) {
	cfg, err := config.FromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	r, d := cfg.Rates, public.DefaultLimits()
	if r.Pages != d.Pages || r.OneClick != d.OneClick || r.Webform != d.Webform || r.NewLink != d.NewLink ||
		r.WebformPerAddress != d.WebformPerAddress || r.NewLinkPerAddress != d.NewLinkPerAddress {
		t.Fatalf("configuration defaults %+v, pages' defaults %+v", r, d)
	}
	if a := api.DefaultLimits(); r.API != a.Token || r.APIBadToken != a.BadToken {
		t.Fatalf("configuration defaults %+v, the API's defaults %+v", r, a)
	}
}

// TestAPIRateLimitSetting: the API's limits set in the configuration are
// the ones applied, per token and, for bad tokens, per client address.
func TestAPIRateLimitSetting(t *testing.T) {
	s := serveOnly(t, storetest.OpenSQLite(t), func(c *config.Config) {
		c.Rates.API = clientip.Rate{PerMinute: 1, Burst: 2}
		c.Rates.APIBadToken = clientip.Rate{PerMinute: 1, Burst: 2}
	})
	var codes []int
	for _, token := range []string{s.token, s.token, s.token, "nope", "nope", "nope"} {
		res, _ := s.do(t, "GET", "/api/v1/sources", "", "Authorization", "Bearer "+token)
		codes = append(codes, res.StatusCode)
	}
	if want := []int{200, 200, 429, 401, 401, 429}; !slices.Equal(codes, want) {
		t.Fatalf("statuses %v, want %v", codes, want)
	}
}
