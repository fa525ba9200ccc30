// Package metrics serves Consentry's metrics in the Prometheus text format
// (docs/metrics.md).
//
// What happens in this process and nowhere else is counted as it happens:
// requests served, and what became of each message sent (mail.Outcome).
// Everything the database already knows (the outbox and its oldest
// message, due jobs, pending webhook deliveries, the ledger's size, the
// last verification) is read from it at scrape time, with a short
// timeout, by the package that owns each table: so several instances
// report the same figures, and nothing is threaded through the domain
// packages to keep a gauge up to date.
//
// The registry is the package's own, never Prometheus' global default one,
// so that tests and several App values in one process do not collide.
package metrics

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/webhook"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Sources are what the metrics read at scrape time.
type Sources struct {
	DB *store.DB
	// LastVerification returns the latest ledger verification report,
	// and false when the ledger was never verified
	// (consent.Service.LastVerification).
	LastVerification func(context.Context) (*ledger.Report, bool, error)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Timeout bounds the database reads of one scrape; 5 s when zero.
	Timeout time.Duration
	// Log gets the reads that failed (at warn level); none when nil.
	Log *slog.Logger
}

// Metrics holds the registry and the counters kept in this process.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	messages   *prometheus.CounterVec
	suppressed *prometheus.CounterVec
}

// New makes the metrics of one running service, version being its
// build's version.
func New(src Sources, version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "consentry_http_requests_total",
		Help: "HTTP requests served, by route pattern and status class (2xx, 3xx, 4xx, 5xx).",
	}, []string{"route", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "consentry_http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route pattern.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route"})
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "consentry_email_messages_total",
		Help: "Email messages whose outcome this instance recorded, by kind and outcome (sent, suppressed, failed, retry).",
	}, []string{"kind", "outcome"})
	m.suppressed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "consentry_email_suppressed_total",
		Help: "Email messages the send gate stopped at send time, by kind and reason.",
	}, []string{"kind", "reason"})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "consentry_build_info", Help: "Always 1; the version label is the build's.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.Timeout <= 0 {
		src.Timeout = 5 * time.Second
	}
	m.reg.MustRegister(m.requests, m.latency, m.messages, m.suppressed, build, newDBCollector(src),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are kept in, for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Message counts one message's outcome: the hook of mail.Deliverer and
// campaign.Sender.
func (m *Metrics) Message(o mail.Outcome) {
	m.messages.WithLabelValues(o.Kind, o.Status).Inc()
	if o.Status == mail.StatusSuppressed {
		m.suppressed.WithLabelValues(o.Kind, o.Reason).Inc()
	}
}

// Count wraps next so that every request is counted and timed under the
// route pattern that served it (set by the innermost ServeMux on the
// request it was given, which must be this one: nothing between may
// replace the request). Never the path, which can hold a token or an id;
// a request no route matched is counted under "none".
func (m *Metrics) Count(next http.Handler) http.Handler {
	return httpx.Observe(next, func(r *http.Request, status int, took time.Duration) {
		route := r.Pattern
		if route == "" {
			route = "none"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(status/100)+"xx").Inc()
		m.latency.WithLabelValues(route).Observe(took.Seconds())
	})
}

// Handler serves the metrics in the Prometheus text format. With a token,
// a request must carry it as "Authorization: Bearer TOKEN" and is
// refused with 401 otherwise; "" serves everyone (for a listener of its
// own that only the scraper reaches). A read that fails leaves its
// metrics out of that scrape rather than failing it (see
// consentry_metrics_database_up).
func (m *Metrics) Handler(token string) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	if token == "" {
		return h
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "The metrics need the token set in CONSENTRY_METRICS_TOKEN.", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// dbCollector reads the gauges the database knows, at scrape time.
type dbCollector struct {
	src                                Sources
	up, outbox, outboxLag, jobsDue     *prometheus.Desc
	jobsLag, hooks, hooksLag, ledgerSz *prometheus.Desc
	verifiedAt, verifiedOK             *prometheus.Desc
}

func newDBCollector(src Sources) *dbCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &dbCollector{src: src,
		up:         d("consentry_metrics_database_up", "1 when every database read of this scrape answered in time, 0 when one failed (its metrics are then left out)."),
		outbox:     d("consentry_outbox_messages", "Messages waiting in the outbox (queued or being sent), by kind.", "kind"),
		outboxLag:  d("consentry_outbox_oldest_due_seconds", "How long the queued message due longest has waited; 0 when none is due."),
		jobsDue:    d("consentry_jobs_due", "Background jobs due now and not yet taken."),
		jobsLag:    d("consentry_jobs_lag_seconds", "How long the job due longest has waited; 0 when none is due."),
		hooks:      d("consentry_webhook_deliveries_pending", "Webhook deliveries not yet delivered nor given up on."),
		hooksLag:   d("consentry_webhook_oldest_pending_seconds", "Age of the oldest pending webhook delivery; 0 when none is pending."),
		ledgerSz:   d("consentry_ledger_events", "Events in the consent ledger."),
		verifiedAt: d("consentry_ledger_last_verification_timestamp_seconds", "When the ledger was last verified (API, admin UI or consentry ledger verify); absent when never."),
		verifiedOK: d("consentry_ledger_last_verification_ok", "1 when the last ledger verification found the chain intact, 0 when it found a problem; absent when never verified."),
	}
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.outbox, c.outboxLag, c.jobsDue, c.jobsLag, c.hooks, c.hooksLag, c.ledgerSz, c.verifiedAt, c.verifiedOK} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.src.Timeout)
	defer cancel()
	now := c.src.Now()
	q := c.src.DB.Read
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := 1.0
	failed := func(what string, err error) bool {
		if err == nil {
			return false
		}
		up = 0
		if c.src.Log != nil {
			c.src.Log.WarnContext(ctx, "metrics: read failed", "what", what, "err", err)
		}
		return true
	}
	if byKind, lag, err := mail.Backlog(ctx, q, now); !failed("outbox", err) {
		for _, kind := range mail.Kinds {
			gauge(c.outbox, float64(byKind[kind]), kind)
		}
		gauge(c.outboxLag, lag.Seconds())
	}
	if due, lag, err := jobs.Lag(ctx, q, now); !failed("jobs", err) {
		gauge(c.jobsDue, float64(due))
		gauge(c.jobsLag, lag.Seconds())
	}
	if n, lag, err := webhook.Backlog(ctx, q, now); !failed("webhooks", err) {
		gauge(c.hooks, float64(n))
		gauge(c.hooksLag, lag.Seconds())
	}
	if seq, err := ledger.Head(ctx, q); !failed("ledger", err) {
		gauge(c.ledgerSz, float64(seq))
	}
	if c.src.LastVerification != nil {
		rep, ok, err := c.src.LastVerification(ctx)
		if !failed("ledger verification", err) && ok {
			gauge(c.verifiedAt, float64(rep.CheckedAt.UnixMilli())/1000)
			okv := 0.0
			if rep.OK {
				okv = 1
			}
			gauge(c.verifiedOK, okv)
		}
	}
	gauge(c.up, up)
}
