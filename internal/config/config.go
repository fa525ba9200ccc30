// Package config reads Consentry's settings from the environment and checks
// them before anything starts, naming the variable and the problem.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/clientip"
)

// Config is every setting, after defaults and validation.
type Config struct {
	// DatabaseURL is a postgres:// URL or the path of an SQLite file.
	DatabaseURL string
	// HTTPAddr is the host:port the server listens on.
	HTTPAddr string
	// BaseURL is the public address of the service, used in links sent to
	// contacts. No trailing slash.
	BaseURL string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string
	// SMTPURL is where email goes; empty means the dev mailbox.
	SMTPURL string
	// SMTPConnections is how many connections to the SMTP server to use.
	SMTPConnections int
	// MailFrom is the sender of every email, "Name <address>".
	MailFrom string
	// MailFromNamed is set when CONSENTRY_MAIL_FROM gives a name: the
	// operator chose it. Otherwise the organisation name in the settings,
	// once set, names the sender instead of the default.
	MailFromNamed bool
	// KeysetFile is the keyset that encrypts sensitive fields, and MasterKey
	// the key it is encrypted under. Both empty: generated next to the
	// embedded database on first run (not for PostgreSQL).
	KeysetFile string
	MasterKey  string
	// CheckpointFile and CheckpointURL, when set, receive a copy of every
	// signed ledger checkpoint (written in place; posted as text/plain),
	// so that one lives outside the database. CheckpointEvery is how often
	// a checkpoint is made while the ledger grows.
	CheckpointFile  string
	CheckpointURL   string
	CheckpointEvery time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed.
	TrustedProxies clientip.Resolver
	// InboundSMTPAddr is host:port of the SMTP listener that receives
	// requests emailed to the privacy address; empty means none.
	InboundSMTPAddr string
	// ImportChunkTime is how long one chunk of an import may hold the
	// writer (imports.Service.Budget): other changes wait behind it.
	ImportChunkTime time.Duration
	// CampaignLease is how long a campaign batch stays its sender's; the
	// recipients of a batch whose sender died are declared unknown once
	// it runs out (PostgreSQL; on SQLite at once on restart).
	CampaignLease time.Duration
	// WebhooksAllowHTTPLocalhost lets webhook endpoints be plain http://
	// addresses on this machine (localhost, loopback addresses), for
	// development and tests; otherwise every endpoint is https:// and no
	// loopback address is called.
	WebhooksAllowHTTPLocalhost bool
	// WebhooksLease is how long a webhook delivery being sent stays its
	// instance's; one whose instance died is sent again once it runs out.
	WebhooksLease time.Duration
	// MetricsToken, when set, is the bearer token GET /metrics needs; on
	// the main listener, /metrics is served only then. MetricsAddr, when
	// set, is host:port of a listener of its own for /metrics, /healthz
	// and /readyz (the token applies there too when set).
	MetricsToken string
	MetricsAddr  string
	// LogRequests says, for each route class (api, admin, public), which
	// requests are logged: all, errors or none.
	LogRequests map[string]string
	// Rates are the rate limits of the public pages (see public.Limits)
	// and of the API (see api.Limits).
	Rates Rates
}

// Rates are the rate limits: for the public pages, per client address a
// rate and per email address a number an hour; for the API, a rate per
// token and one per client address for missing or invalid tokens.
type Rates struct {
	Pages, OneClick, Webform, NewLink, Ledger clientip.Rate
	WebformPerAddress, NewLinkPerAddress      int
	API, APIBadToken                          clientip.Rate
}

// RouteClasses are the classes of routes whose request log is set apart.
var RouteClasses = []string{"api", "admin", "public"}

// Setting describes one environment variable, for validation and the docs.
type Setting struct {
	Name    string
	Default string
	Doc     string
}

// DefaultDatabase is where the embedded SQLite database lives unless
// CONSENTRY_DATABASE_URL says otherwise.
const DefaultDatabase = "consentry-data/consentry.db"

// Settings lists every variable Consentry reads.
var Settings = []Setting{
	{"CONSENTRY_DATABASE_URL", DefaultDatabase, "an SQLite file path (created with its directory), or a postgres:// URL"},
	{"CONSENTRY_HTTP_ADDR", "127.0.0.1:8080", "host:port to listen on"},
	{"CONSENTRY_BASE_URL", "http://<CONSENTRY_HTTP_ADDR>", "public address used in links sent to contacts"},
	{"CONSENTRY_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"CONSENTRY_LOG_FORMAT", "text", "text or json"},
	{"CONSENTRY_SMTP_URL", "", "smtp://[user:password@]host[:587] (STARTTLS required; ?tls=opportunistic or ?tls=none for a relay on the same machine) or smtps://host[:465]; without it email goes to the dev mailbox at /dev/mailbox"},
	{"CONSENTRY_SMTP_CONNECTIONS", "4", "connections to the SMTP server, 1 to 64"},
	{"CONSENTRY_MAIL_FROM", "Consentry <consentry@<host of CONSENTRY_BASE_URL>>", "the sender of every email; unless it gives a name of its own, email is sent in the organisation name set in the settings"},
	{"CONSENTRY_KEYSET_FILE", "<data directory>/keyset.json with SQLite", "the keyset that encrypts sensitive fields (make one with consentry keys create)"},
	{"CONSENTRY_MASTER_KEY", "<data directory>/master.key with SQLite", "the key the keyset file is encrypted under: 32 bytes in base64"},
	{"CONSENTRY_TRUSTED_PROXIES", "", "reverse proxies whose X-Forwarded-For gives the client address, e.g. 127.0.0.1 or 10.0.0.0/8"},
	{"CONSENTRY_INBOUND_SMTP_ADDR", "", "host:port of an SMTP listener that receives requests emailed to the privacy address, e.g. :2525 (docs/inbound-email.md); off when empty"},
	{"CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST", "false", "true lets webhook endpoints be http:// addresses on this machine (localhost, 127.0.0.1, ::1), for development; never in production"},
	{"CONSENTRY_WEBHOOKS_LEASE", "2m", "how long after an instance died the webhook deliveries it was sending are sent again; at least 1s, and longer than an attempt takes (10s)"},
	{"CONSENTRY_IMPORT_CHUNK_TIME", "25ms", "how long one chunk of an import may hold the database's writer, 5ms to 1s: longer imports faster, and makes other changes wait longer meanwhile (docs/imports.md)"},
	{"CONSENTRY_CAMPAIGN_LEASE", "2m", "PostgreSQL: how long after an instance died its campaign batch in flight is declared unknown; at least 1s, and longer than a batch takes to hand over"},
	{"CONSENTRY_METRICS_TOKEN", "", "bearer token GET /metrics needs; without it (and without CONSENTRY_METRICS_ADDR) no metrics are served; at least 16 characters"},
	{"CONSENTRY_METRICS_ADDR", "", "host:port of a separate listener for /metrics, /healthz and /readyz, e.g. 127.0.0.1:9090; off when empty"},
	{"CONSENTRY_LOG_REQUESTS", "all", "which requests are logged: all, errors (status 400 and above) or none, for every route class or per class, e.g. public=errors,api=all,admin=all"},
	{"CONSENTRY_LEDGER_CHECKPOINT_EVERY", "5m", "how often a signed checkpoint of the ledger is made while it grows, 1s to 24h (docs/ledger.md)"},
	{"CONSENTRY_LEDGER_CHECKPOINT_FILE", "", "a file that always holds the latest signed checkpoint, replaced whole at each new one"},
	{"CONSENTRY_LEDGER_CHECKPOINT_URL", "", "an http(s):// address each new checkpoint is posted to as text/plain"},
	{"CONSENTRY_RATE_PAGES", "20:40", "public pages per client address: requests a minute, and the burst (PER_MINUTE:BURST)"},
	{"CONSENTRY_RATE_ONE_CLICK", "600:600", "one-click unsubscribes and campaign opens and clicks per client address (PER_MINUTE:BURST)"},
	{"CONSENTRY_RATE_LEDGER", "600:600", "the ledger's public endpoints (/ledger/...: checkpoints, proofs, keys and the tree's tiles) per client address (PER_MINUTE:BURST): a mirror fetches thousands of tiles"},
	{"CONSENTRY_RATE_WEBFORM", "20:40", "webform posts per client address (PER_MINUTE:BURST)"},
	{"CONSENTRY_RATE_WEBFORM_PER_ADDRESS", "5", "webform posts an hour about one email address; past it, posts write nothing"},
	{"CONSENTRY_RATE_NEW_LINK", "1:5", "requests for a new preferences link per client address (PER_MINUTE:BURST)"},
	{"CONSENTRY_RATE_NEW_LINK_PER_ADDRESS", "3", "new preferences links an hour for one email address; past it, requests send nothing"},
	{"CONSENTRY_RATE_API", "18000:600", "API requests per token (PER_MINUTE:BURST): 300 a second in bursts of 600 by default; past it, a 429"},
	{"CONSENTRY_RATE_API_BAD_TOKEN", "60:120", "API requests with a missing or invalid token per client address (PER_MINUTE:BURST); past it, a 429 for every request from the address until the limit lets one through"},
}

// defaultOf is the default of the setting name.
func defaultOf(name string) string {
	for _, st := range Settings {
		if st.Name == name {
			return st.Default
		}
	}
	return ""
}

// FromEnv reads the configuration through getenv (os.Getenv in the program,
// a map in tests) and validates it. The error lists every bad variable.
func FromEnv(getenv func(string) string) (*Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := &Config{
		DatabaseURL: get("CONSENTRY_DATABASE_URL", DefaultDatabase),
		HTTPAddr:    get("CONSENTRY_HTTP_ADDR", "127.0.0.1:8080"),
		LogLevel:    strings.ToLower(get("CONSENTRY_LOG_LEVEL", "info")),
		LogFormat:   strings.ToLower(get("CONSENTRY_LOG_FORMAT", "text")),
	}
	var problems []error
	bad := func(name, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if !strings.Contains(c.DatabaseURL, "://") && strings.Contains(c.DatabaseURL, "=") && strings.ContainsAny(c.DatabaseURL, " \t") {
		bad("CONSENTRY_DATABASE_URL", "looks like a key=value connection string; write it as a postgres:// URL")
	} else if strings.Contains(c.DatabaseURL, "://") {
		u, err := url.Parse(c.DatabaseURL)
		switch {
		case err != nil:
			bad("CONSENTRY_DATABASE_URL", "is not a valid URL")
		case u.Scheme != "postgres" && u.Scheme != "postgresql" && u.Scheme != "sqlite":
			bad("CONSENTRY_DATABASE_URL", "scheme %q is not supported; use postgres:// or an SQLite file path", u.Scheme)
		case (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.Host == "":
			bad("CONSENTRY_DATABASE_URL", "a postgres:// URL needs a host, e.g. postgres://user@127.0.0.1:5432/consentry")
		}
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		bad("CONSENTRY_HTTP_ADDR", "must be host:port, e.g. 127.0.0.1:8080")
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("CONSENTRY_HTTP_ADDR", "port %q must be a number from 0 to 65535", port)
	}
	if host == "" {
		host = "localhost"
	}
	c.BaseURL = strings.TrimRight(get("CONSENTRY_BASE_URL", "http://"+net.JoinHostPort(host, port)), "/")
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("CONSENTRY_BASE_URL", "must be an absolute http:// or https:// URL without query or fragment, e.g. https://consent.example.com")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("CONSENTRY_LOG_LEVEL", "must be debug, info, warn or error, not %q", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("CONSENTRY_LOG_FORMAT", "must be text or json, not %q", c.LogFormat)
	}
	c.SMTPURL = get("CONSENTRY_SMTP_URL", "")
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			bad("CONSENTRY_SMTP_URL", "must be smtp://host[:port] or smtps://host[:port], with user:password@ before the host for authentication")
		}
	}
	conns, err := strconv.Atoi(get("CONSENTRY_SMTP_CONNECTIONS", "4"))
	if err != nil || conns < 1 || conns > 64 {
		bad("CONSENTRY_SMTP_CONNECTIONS", "must be a number from 1 to 64")
	}
	c.SMTPConnections = conns
	baseHost := "localhost"
	if u, err := url.Parse(c.BaseURL); err == nil && u.Hostname() != "" {
		baseHost = u.Hostname()
	}
	c.MailFrom = get("CONSENTRY_MAIL_FROM", "Consentry <consentry@"+baseHost+">")
	if a, err := mail.ParseAddress(c.MailFrom); err != nil {
		bad("CONSENTRY_MAIL_FROM", "must be an address, optionally with a name: Acme <privacy@acme.example>")
	} else {
		c.MailFromNamed = a.Name != "" && strings.TrimSpace(getenv("CONSENTRY_MAIL_FROM")) != ""
	}
	c.CheckpointFile = get("CONSENTRY_LEDGER_CHECKPOINT_FILE", "")
	c.CheckpointURL = get("CONSENTRY_LEDGER_CHECKPOINT_URL", "")
	if c.CheckpointURL != "" {
		if u, err := url.Parse(c.CheckpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("CONSENTRY_LEDGER_CHECKPOINT_URL", "must be an absolute http:// or https:// URL")
		}
	}
	if every, err := time.ParseDuration(get("CONSENTRY_LEDGER_CHECKPOINT_EVERY", defaultOf("CONSENTRY_LEDGER_CHECKPOINT_EVERY"))); err != nil || every < time.Second || every > 24*time.Hour {
		bad("CONSENTRY_LEDGER_CHECKPOINT_EVERY", "must be a duration from 1s to 24h, e.g. 5m")
	} else {
		c.CheckpointEvery = every
	}
	c.KeysetFile = get("CONSENTRY_KEYSET_FILE", "")
	c.MasterKey = get("CONSENTRY_MASTER_KEY", "")
	if r, err := clientip.Parse(get("CONSENTRY_TRUSTED_PROXIES", "")); err != nil {
		bad("CONSENTRY_TRUSTED_PROXIES", "must be addresses or CIDR prefixes separated by commas, e.g. 127.0.0.1, 10.0.0.0/8")
	} else {
		c.TrustedProxies = r
	}
	if c.InboundSMTPAddr = get("CONSENTRY_INBOUND_SMTP_ADDR", ""); c.InboundSMTPAddr != "" {
		if _, p, err := net.SplitHostPort(c.InboundSMTPAddr); err != nil {
			bad("CONSENTRY_INBOUND_SMTP_ADDR", "must be host:port, e.g. :25 or 127.0.0.1:2525")
		} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			bad("CONSENTRY_INBOUND_SMTP_ADDR", "port %q must be a number from 0 to 65535", p)
		}
	}
	if d, err := time.ParseDuration(get("CONSENTRY_IMPORT_CHUNK_TIME", "25ms")); err != nil || d < 5*time.Millisecond || d > time.Second {
		bad("CONSENTRY_IMPORT_CHUNK_TIME", "must be a duration from 5ms to 1s, e.g. 25ms")
	} else {
		c.ImportChunkTime = d
	}
	if d, err := time.ParseDuration(get("CONSENTRY_CAMPAIGN_LEASE", "2m")); err != nil || d < time.Second {
		bad("CONSENTRY_CAMPAIGN_LEASE", "must be a duration of at least 1s, e.g. 2m")
	} else {
		c.CampaignLease = d
	}
	if d, err := time.ParseDuration(get("CONSENTRY_WEBHOOKS_LEASE", "2m")); err != nil || d < time.Second {
		bad("CONSENTRY_WEBHOOKS_LEASE", "must be a duration of at least 1s, e.g. 2m")
	} else {
		c.WebhooksLease = d
	}
	switch v := strings.ToLower(get("CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST", "false")); v {
	case "true", "1", "yes":
		c.WebhooksAllowHTTPLocalhost = true
	case "false", "0", "no":
	default:
		bad("CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST", "must be true or false, not %q", v)
	}
	c.readObservability(get, bad)
	c.readRates(get, bad)
	if (c.KeysetFile == "") != (c.MasterKey == "") {
		bad("CONSENTRY_MASTER_KEY", "CONSENTRY_KEYSET_FILE and CONSENTRY_MASTER_KEY are set together or not at all")
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return c, nil
}

// readObservability reads the metrics' access and the request log.
func (c *Config) readObservability(get func(string, string) string, bad func(string, string, ...any)) {
	if c.MetricsToken = get("CONSENTRY_METRICS_TOKEN", ""); c.MetricsToken != "" && (len(c.MetricsToken) < 16 || strings.ContainsAny(c.MetricsToken, " \t")) {
		bad("CONSENTRY_METRICS_TOKEN", "must be at least 16 characters without spaces, e.g. from openssl rand -hex 24")
	}
	if c.MetricsAddr = get("CONSENTRY_METRICS_ADDR", ""); c.MetricsAddr != "" {
		if _, p, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("CONSENTRY_METRICS_ADDR", "must be host:port, e.g. 127.0.0.1:9090")
		} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			bad("CONSENTRY_METRICS_ADDR", "port %q must be a number from 0 to 65535", p)
		}
	}
	logs, err := parseRequestLog(get("CONSENTRY_LOG_REQUESTS", "all"))
	if err != nil {
		bad("CONSENTRY_LOG_REQUESTS", "%v", err)
	}
	c.LogRequests = logs
}

// parseRequestLog reads CONSENTRY_LOG_REQUESTS: one mode for every class,
// or class=mode pairs separated by commas (classes left out log all).
func parseRequestLog(v string) (map[string]string, error) {
	modes := []string{"all", "errors", "none"}
	out := map[string]string{}
	if !strings.Contains(v, "=") {
		v = strings.ToLower(v)
		if !slices.Contains(modes, v) {
			return nil, fmt.Errorf("must be all, errors or none, or class=mode pairs such as public=errors,api=all, not %q", v)
		}
		for _, class := range RouteClasses {
			out[class] = v
		}
		return out, nil
	}
	for _, class := range RouteClasses {
		out[class] = "all"
	}
	for _, pair := range strings.Split(v, ",") {
		class, mode, _ := strings.Cut(strings.TrimSpace(pair), "=")
		class, mode = strings.ToLower(strings.TrimSpace(class)), strings.ToLower(strings.TrimSpace(mode))
		if !slices.Contains(RouteClasses, class) {
			return nil, fmt.Errorf("class %q is not one of %s", class, strings.Join(RouteClasses, ", "))
		}
		if !slices.Contains(modes, mode) {
			return nil, fmt.Errorf("mode %q for %s must be all, errors or none", mode, class)
		}
		out[class] = mode
	}
	return out, nil
}

// readRates reads the public pages' and the API's rate limits.
func (c *Config) readRates(get func(string, string) string, bad func(string, string, ...any)) {
	rate := func(name string) clientip.Rate {
		r, err := clientip.ParseRate(get(name, defaultOf(name)))
		if err != nil {
			bad(name, "%v; e.g. %s", err, defaultOf(name))
		}
		return r
	}
	perHour := func(name string) int {
		n, err := strconv.Atoi(get(name, defaultOf(name)))
		if err != nil || n < 1 || n > 1_000_000 {
			bad(name, "must be a number from 1 to 1000000 (an hour per email address)")
		}
		return n
	}
	c.Rates = Rates{Pages: rate("CONSENTRY_RATE_PAGES"), OneClick: rate("CONSENTRY_RATE_ONE_CLICK"), Webform: rate("CONSENTRY_RATE_WEBFORM"),
		NewLink: rate("CONSENTRY_RATE_NEW_LINK"), Ledger: rate("CONSENTRY_RATE_LEDGER"), WebformPerAddress: perHour("CONSENTRY_RATE_WEBFORM_PER_ADDRESS"),
		NewLinkPerAddress: perHour("CONSENTRY_RATE_NEW_LINK_PER_ADDRESS"), API: rate("CONSENTRY_RATE_API"), APIBadToken: rate("CONSENTRY_RATE_API_BAD_TOKEN")}
}

// Sender returns the display name of MailFrom, or its address.
func (c *Config) Sender() string {
	a, err := mail.ParseAddress(c.MailFrom)
	if err != nil {
		return c.MailFrom
	}
	if a.Name != "" {
		return a.Name
	}
	return a.Address
}

// MailAddress is the address of MailFrom, without the name.
func (c *Config) MailAddress() string {
	a, err := mail.ParseAddress(c.MailFrom)
	if err != nil {
		return ""
	}
	return a.Address
}

// MailDomain is the domain of MailFrom, for Message-IDs.
func (c *Config) MailDomain() string {
	a := c.MailAddress()
	if a == "" {
		return "localhost"
	}
	return a[strings.LastIndexByte(a, '@')+1:]
}

// RedactedSMTP is the SMTP setting safe to log: no password.
func (c *Config) RedactedSMTP() string {
	u, err := url.Parse(c.SMTPURL)
	if err != nil {
		return ""
	}
	return u.Redacted()
}

// Unknown returns the CONSENTRY_ variables in environ that are not settings,
// most likely misspelt ones, so that start-up can warn about them. Variables
// for the test suite (CONSENTRY_TEST_*, CONSENTRY_REQUIRE_*) are not counted.
func Unknown(environ []string) []string {
	known := map[string]bool{}
	for _, s := range Settings {
		known[s.Name] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "CONSENTRY_") && !known[name] &&
			!strings.HasPrefix(name, "CONSENTRY_TEST_") && !strings.HasPrefix(name, "CONSENTRY_REQUIRE_") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// RedactedDatabase is the database setting safe to log: the password of a
// URL is removed.
func (c *Config) RedactedDatabase() string {
	u, err := url.Parse(c.DatabaseURL)
	if err != nil || u.Scheme == "" {
		return c.DatabaseURL
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Environ is os.Environ, named here so callers read config.Environ().
func Environ() []string { return os.Environ() }
