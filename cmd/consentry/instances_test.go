package main

import (
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestTwoInstancesOneKilledDuringCampaign runs two `consentry serve`
// processes on one PostgreSQL database, sends a campaign of 3,000, and
// kills one instance with SIGKILL once a third has arrived. The other
// finishes the campaign by itself; nobody gets the email twice, and only
// the batch in flight at the kill may end unknown.
func TestTwoInstancesOneKilledDuringCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs two instances; skipped with -short")
	}
	db := storetest.OpenPostgres(t)
	bin := buildBinary(t)
	const n = 3000
	seedReachable(t, db, n)
	smtp := mailtest.Start(t)
	smtp.Count = true
	got := &arrivals{to: map[string]int{}, more: make(chan struct{}, 1)}
	smtp.OnData = got.add
	env := append(postgresEnv(t, bin, db), "CONSENTRY_SMTP_URL="+smtp.URL(), "CONSENTRY_LOG_LEVEL=warn", "CONSENTRY_CAMPAIGN_LEASE=3s")
	code, secret, stderr := runBinary(t, bin, env, "token", "create", "--name", "two instances", "--scope", "campaigns")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, stderr)
	}
	first, second := startChild(t, bin, env), startChild(t, bin, env)
	api := &apiClient{t: t, token: strings.TrimSpace(secret), base: "http://" + first.addr}
	var c struct{ ID string }
	api.do("POST", "/api/v1/campaigns", map[string]any{"name": "Everyone", "condition": `email != ""`,
		"variants": []map[string]string{{"language": "en", "subject": "Hi {{first_name}}", "html": "<p>Hi {{first_name}}.</p>"}}}, &c)
	api.do("POST", "/api/v1/campaigns/"+c.ID+"/send", nil, nil)

	stalled := time.Now().Add(2 * time.Minute)
	for got.count() < n/3 {
		if time.Now().After(stalled) {
			t.Fatalf("%d of %d messages arrived; the first instance's goroutines:\n%s", got.count(), n, first.dump())
		}
		first.waitMore(t, got)
	}
	first.kill(t)
	t.Logf("killed the first instance after %d of %d messages arrived", got.count(), n)

	api.base = "http://" + second.addr
	var p struct{ Status string }
	deadline := time.Now().Add(5 * time.Minute)
	for api.do("GET", "/api/v1/campaigns/"+c.ID+"/progress", nil, &p); p.Status != "sent"; api.do("GET", "/api/v1/campaigns/"+c.ID+"/progress", nil, &p) {
		if time.Now().After(deadline) {
			t.Fatalf("the second instance did not finish the campaign: %+v; its goroutines:\n%s", p, second.dump())
		}
		second.waitMore(t, got)
	}
	second.stop(t)
	checkCampaignOutcome(t, db, c.ID, got, n, 1)
	verifyLedger(t, bin, env)
}
