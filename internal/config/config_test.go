package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != DefaultDatabase || c.HTTPAddr != "127.0.0.1:8080" || c.BaseURL != "http://127.0.0.1:8080" ||
		c.LogLevel != "info" || c.LogFormat != "text" || c.CampaignLease != 2*time.Minute || c.ImportChunkTime != 25*time.Millisecond || c.WebhooksAllowHTTPLocalhost || c.WebhooksLease != 2*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestValidSettings(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"CONSENTRY_DATABASE_URL":                  "postgres://app:secret@db.internal:5432/consentry?sslmode=require",
		"CONSENTRY_HTTP_ADDR":                     ":9000",
		"CONSENTRY_BASE_URL":                      "https://consent.example.com/",
		"CONSENTRY_LOG_FORMAT":                    "JSON",
		"CONSENTRY_INBOUND_SMTP_ADDR":             ":2525",
		"CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST": "true",
		"CONSENTRY_IMPORT_CHUNK_TIME":             "100ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "https://consent.example.com" || c.LogFormat != "json" || c.InboundSMTPAddr != ":2525" || !c.WebhooksAllowHTTPLocalhost ||
		c.ImportChunkTime != 100*time.Millisecond {
		t.Fatalf("%+v", c)
	}
	if r := c.RedactedDatabase(); strings.Contains(r, "secret") {
		t.Fatalf("password in redacted URL: %s", r)
	}
	c.DatabaseURL = "postgres://app@db/consentry?password=hunter2&sslmode=require"
	if r := c.RedactedDatabase(); strings.Contains(r, "hunter2") {
		t.Fatalf("password in redacted URL: %s", r)
	}
}

func TestInvalidSettingsNameTheVariable(t *testing.T) {
	cases := map[string]string{
		"CONSENTRY_DATABASE_URL":                  "host=db password=hunter2 dbname=consentry",
		"CONSENTRY_HTTP_ADDR":                     "8080",
		"CONSENTRY_BASE_URL":                      "consent.example.com",
		"CONSENTRY_LOG_LEVEL":                     "loud",
		"CONSENTRY_LOG_FORMAT":                    "xml",
		"CONSENTRY_INBOUND_SMTP_ADDR":             "2525",
		"CONSENTRY_CAMPAIGN_LEASE":                "10ms",
		"CONSENTRY_IMPORT_CHUNK_TIME":             "2s",
		"CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST": "sometimes",
		"CONSENTRY_WEBHOOKS_LEASE":                "0s",
		"CONSENTRY_METRICS_TOKEN":                 "short",
		"CONSENTRY_METRICS_ADDR":                  "9090",
		"CONSENTRY_LOG_REQUESTS":                  "some",
		"CONSENTRY_RATE_PAGES":                    "20:0",
		"CONSENTRY_RATE_ONE_CLICK":                "fast",
		"CONSENTRY_RATE_WEBFORM":                  "-1",
		"CONSENTRY_RATE_LEDGER":                   "0:0",
		"CONSENTRY_RATE_NEW_LINK":                 "1:5:6",
		"CONSENTRY_RATE_WEBFORM_PER_ADDRESS":      "0",
		"CONSENTRY_RATE_NEW_LINK_PER_ADDRESS":     "many",
		"CONSENTRY_RATE_API":                      "0",
		"CONSENTRY_RATE_API_BAD_TOKEN":            "60:many",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := FromEnv(env(map[string]string{name: value}))
			if err == nil || !strings.HasPrefix(err.Error(), name+": ") {
				t.Fatalf("got %v, want an error naming %s", err, name)
			}
		})
	}
	_, err := FromEnv(env(map[string]string{"CONSENTRY_HTTP_ADDR": "x:99999", "CONSENTRY_LOG_LEVEL": "loud"}))
	if err == nil || !strings.Contains(err.Error(), "CONSENTRY_HTTP_ADDR") || !strings.Contains(err.Error(), "CONSENTRY_LOG_LEVEL") {
		t.Fatalf("every bad variable should be listed: %v", err)
	}
}

func TestUnknownVariables(t *testing.T) {
	got := Unknown([]string{"CONSENTRY_DATABSE_URL=x", "CONSENTRY_HTTP_ADDR=:1", "CONSENTRY_TEST_POSTGRES=x", "CONSENTRY_REQUIRE_BROWSER=1", "HOME=/"})
	if len(got) != 1 || got[0] != "CONSENTRY_DATABSE_URL" {
		t.Fatalf("got %v", got)
	}
}

// TestMailFromNamed: only a name the operator gave CONSENTRY_MAIL_FROM
// counts as theirs; the default's "Consentry" and a bare address leave the
// sender to be named by the organisation name in the settings.
func TestMailFromNamed(t *testing.T) {
	for from, named := range map[string]bool{"": false, "news@acme.example": false, "Acme News <news@acme.example>": true} {
		c, err := FromEnv(env(map[string]string{"CONSENTRY_MAIL_FROM": from}))
		if err != nil || c.MailFromNamed != named {
			t.Errorf("%q: named %v, want %v (%v)", from, c.MailFromNamed, named, err)
		}
	}
}

// TestObservabilitySettings: the metrics' access, the request log per
// route class and the public rate limits are read, with today's limits as
// defaults.
func TestObservabilitySettings(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsToken != "" || c.MetricsAddr != "" || c.LogRequests["public"] != "all" || c.LogRequests["api"] != "all" ||
		c.Rates.Pages.PerMinute != 20 || c.Rates.Pages.Burst != 40 || c.Rates.OneClick.Burst != 600 || c.Rates.Ledger.PerMinute != 600 || c.Rates.WebformPerAddress != 5 ||
		c.Rates.API.PerMinute != 18000 || c.Rates.API.Burst != 600 || c.Rates.APIBadToken.PerMinute != 60 || c.Rates.APIBadToken.Burst != 120 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = FromEnv(env(map[string]string{
		"CONSENTRY_METRICS_TOKEN": "0123456789abcdef0123", "CONSENTRY_METRICS_ADDR": "127.0.0.1:9090",
		"CONSENTRY_LOG_REQUESTS": "public=errors, admin=none", "CONSENTRY_RATE_PAGES": "100", "CONSENTRY_RATE_WEBFORM": "5:10",
		"CONSENTRY_RATE_NEW_LINK_PER_ADDRESS": "10", "CONSENTRY_RATE_API": "60000:1200",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsToken != "0123456789abcdef0123" || c.MetricsAddr != "127.0.0.1:9090" ||
		c.LogRequests["public"] != "errors" || c.LogRequests["admin"] != "none" || c.LogRequests["api"] != "all" ||
		c.Rates.Pages.PerMinute != 100 || c.Rates.Pages.Burst != 100 || c.Rates.Webform.PerMinute != 5 || c.Rates.Webform.Burst != 10 ||
		c.Rates.NewLinkPerAddress != 10 || c.Rates.API.PerMinute != 60000 || c.Rates.API.Burst != 1200 {
		t.Fatalf("%+v", c)
	}
	if c, err := FromEnv(env(map[string]string{"CONSENTRY_LOG_REQUESTS": "ERRORS"})); err != nil || c.LogRequests["admin"] != "errors" {
		t.Fatalf("one mode for every class: %v %+v", err, c)
	}
	for _, bad := range []string{"web=all", "public=loud", "public"} {
		if _, err := FromEnv(env(map[string]string{"CONSENTRY_LOG_REQUESTS": bad})); err == nil || !strings.HasPrefix(err.Error(), "CONSENTRY_LOG_REQUESTS: ") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestEverySettingReadIsListed: every variable FromEnv reads is in
// Settings, so that a start does not warn that a setting it applies is
// unknown, and the docs' table can be checked against one list.
func TestEverySettingReadIsListed(t *testing.T) {
	var read []string
	if _, err := FromEnv(func(k string) string { read = append(read, k); return "" }); err != nil {
		t.Fatal(err)
	}
	var environ []string
	for _, name := range read {
		environ = append(environ, name+"=x")
	}
	if len(read) < len(Settings) {
		t.Fatalf("FromEnv read %d variables, Settings lists %d", len(read), len(Settings))
	}
	if unknown := Unknown(environ); len(unknown) != 0 {
		t.Fatalf("read by FromEnv but not in Settings (a start would call them unknown): %v", unknown)
	}
}
